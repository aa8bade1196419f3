"""Rendering and sending the report mails.

Why ``smtplib`` + ``email.message.EmailMessage`` and not prefect-email: each
message needs a deterministic Message-ID (so a server, or a person, can recognise
a re-send), an explicit choice between STARTTLS on a plain connection and implicit
TLS (``SMTP_SSL``), and bookkeeping in the delivery ledger before and after every
single message, with failures classified as transient (retry) or permanent (report
and move on). prefect-email hides all three behind a block, would add a dependency,
and would put a Prefect import into ``evaluation/``, which must stay Prefect-free so
that it can be used and tested without an orchestrator.

One connection per message: a handful of reports a year does not need pipelining,
and a fresh connection keeps each message's outcome independent of the others.

The SMTP transaction is driven step by step (MAIL, RCPT, DATA and its 354, the content,
then the final reply) so that the stage of a failure is known. Before the content has
been completely sent, a failure is retryable or permanent as its cause says: the server
cannot have accepted a message it never received whole. After it, a failure to read the
final reply (a dropped connection, a timeout) leaves the outcome unknown:
``UncertainDeliveryError``, which must not be retried automatically. An explicit reply
(250, or a 4xx/5xx refusal) is an answer either way. ``check_server`` connects, greets,
logs in and quits, so a server that is down is found before anything is attempted.

Subject and bodies come from ``templates/email/`` (Simplified Chinese). The HTML
part is rendered with autoescaping; the text part and the subject are rendered
without HTML escaping (no ``&amp;`` in a plain-text mail), and every interpolated
value has CR/LF and other control characters replaced, so neither a configured name
nor a revision line can inject a header; the subject is also collapsed to one line.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from evaluation.distribution.model import Delivery
from evaluation.distribution.recipients import SmtpSettings

EMAIL_TEMPLATES_DIR: Path = Path(__file__).resolve().parents[2] / "templates" / "email"
SENDER_OFFICE = "陇南市生态环境局"

_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\x85]")


class PermanentDeliveryError(Exception):
    """A send that a retry will not fix (5xx, refused address, bad TLS setup); Chinese reason."""


class RetryableDeliveryError(Exception):
    """A send that a retry may fix (network, timeout, disconnect, 4xx) and that cannot have been
    delivered; Chinese reason. ``unreachable``: the server itself failed (not one recipient)."""

    def __init__(self, reason: str, unreachable: bool = False):
        super().__init__(reason)
        self.unreachable = unreachable

    def __reduce__(self):
        return (type(self), (str(self), self.unreachable))


class UncertainDeliveryError(Exception):
    """The content was sent but no final reply came: it may or may not have arrived; Chinese reason."""


# rendering ---------------------------------------------------------------------

def _one_line(value: Any) -> Any:
    """Jinja finalize: values never carry line breaks or control characters into the output."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _UNSAFE.sub(" ", value.replace("\r\n", " "))
    return value


@lru_cache(maxsize=None)
def _environment(html: bool) -> Environment:
    return Environment(
        loader=FileSystemLoader(EMAIL_TEMPLATES_DIR),
        autoescape=html,
        finalize=_one_line,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def mail_context(delivery: Delivery) -> dict[str, Any]:
    """What the templates print; computed here so the templates compute nothing."""
    return {
        "recipient_name": delivery.recipient.name,
        "title": delivery.title,
        "file_name": delivery.file_name,
        "year": delivery.year,
        "version": delivery.version,
        "revision_lines": list(delivery.revision_lines),
        "sample": delivery.sample,
        "sha256": delivery.report_sha256,
        "sender_office": delivery.office or SENDER_OFFICE,
        "contact": delivery.contact,
    }


def render_subject(delivery: Delivery) -> str:
    text = _environment(False).get_template("subject.txt").render(mail_context(delivery))
    return " ".join(text.split())


def render_text(delivery: Delivery) -> str:
    return _environment(False).get_template("body.txt").render(mail_context(delivery))


def render_html(delivery: Delivery) -> str:
    return _environment(True).get_template("body.html").render(mail_context(delivery))


def outbox_text(delivery: Delivery, sender: str | None = None) -> str:
    """The mail as a person would read it, stored next to the PDF in the outbox."""
    sender = sender or delivery.office or SENDER_OFFICE
    header = (
        f"发件人：{sender}\n"
        f"收件人：{delivery.recipient.name} <{delivery.recipient.email}>\n"
        f"主题：{render_subject(delivery)}\n"
        f"附件：{delivery.file_name}\n"
        f"Message-ID：{delivery.message_id}\n"
    )
    return header + "\n" + render_text(delivery)


def build_message(delivery: Delivery, pdf: bytes, settings: SmtpSettings) -> EmailMessage:
    """The complete mail: text and HTML alternatives plus the PDF under its Chinese name."""
    msg = EmailMessage()
    msg["Subject"] = render_subject(delivery)
    msg["From"] = Address(display_name=settings.from_name, addr_spec=settings.from_address)
    msg["To"] = Address(display_name=delivery.recipient.name, addr_spec=delivery.recipient.email)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = delivery.message_id
    msg["X-Report-SHA256"] = delivery.report_sha256
    msg.set_content(render_text(delivery), subtype="plain", charset="utf-8")
    msg.add_alternative(render_html(delivery), subtype="html", charset="utf-8")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=delivery.file_name)
    return msg


# sending -----------------------------------------------------------------------

def _reply_text(resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return " ".join(text.split())


def _by_code(code: int, reply: str, what: str) -> Exception:
    """4xx: the server asks to try later (421: it is closing the connection); anything else is final."""
    detail = f"{what}（{code} {reply}）"
    if 400 <= code < 500:
        return RetryableDeliveryError(f"{detail}，属暂时性错误，稍后重试", unreachable=code == 421)
    return PermanentDeliveryError(detail)


def _unreachable(reason: str) -> RetryableDeliveryError:
    return RetryableDeliveryError(reason, unreachable=True)


def classify(exc: BaseException, settings: SmtpSettings) -> Exception:
    """Map an smtplib/socket failure to a retryable or permanent error with a Chinese reason."""
    server = f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [(addr, code, _reply_text(resp)) for addr, (code, resp) in exc.recipients.items()]
        addr, code, reply = codes[0] if codes else ("?", 550, "")
        if any(400 <= c < 500 for _, c, _ in codes):
            return _by_code(code, reply, f"邮件服务器暂时不接受收件人 {addr}")
        return PermanentDeliveryError(f"邮件服务器拒绝收件人 {addr}（{code} {reply}）")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _by_code(exc.smtp_code, _reply_text(exc.smtp_error), f"邮件服务器拒绝发件地址 {exc.sender}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _by_code(exc.smtp_code, _reply_text(exc.smtp_error), "登录邮件服务器失败，请检查用户名和密码")
    if isinstance(exc, smtplib.SMTPDataError):
        return _by_code(exc.smtp_code, _reply_text(exc.smtp_error), "邮件服务器拒收邮件内容")
    if isinstance(exc, smtplib.SMTPConnectError):
        return _by_code(exc.smtp_code, _reply_text(exc.smtp_error), f"邮件服务器 {server} 拒绝连接")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, _reply_text(exc.smtp_error), f"邮件服务器 {server} 返回错误")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"邮件服务器 {server} 不支持所需功能（如 STARTTLS），请检查 smtp.security 设置")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _unreachable(f"邮件服务器 {server} 意外断开连接，稍后重试")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"邮件服务器 {server} 的证书验证失败，请检查服务器地址与证书")
    if isinstance(exc, ConnectionRefusedError):
        return _unreachable(f"无法连接邮件服务器 {server}（连接被拒绝），稍后重试")
    if isinstance(exc, ConnectionResetError):
        return _unreachable(f"与邮件服务器 {server} 的连接被重置，稍后重试")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return _unreachable(f"连接邮件服务器 {server} 超时，稍后重试")
    if isinstance(exc, socket.gaierror):
        return _unreachable(f"无法解析邮件服务器地址 {settings.host}，稍后重试")
    if isinstance(exc, (OSError, smtplib.SMTPException)):
        return _unreachable(f"与邮件服务器 {server} 通信时出现网络错误（{type(exc).__name__}），稍后重试")
    return PermanentDeliveryError(f"发送失败（{type(exc).__name__}）")


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    host, port, timeout = settings.host, settings.effective_port, settings.timeout
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    client = smtplib.SMTP(host, port, timeout=timeout)
    try:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def _wire_bytes(msg: EmailMessage) -> bytes:
    """The message as sent after DATA: CRLF lines, leading dots doubled, ending with <CRLF>.<CRLF>."""
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _close(client: smtplib.SMTP) -> None:
    try:
        client.close()
    except OSError:
        pass


def _envelope(client: smtplib.SMTP, sender: str, recipient: str, size: int) -> None:
    """MAIL FROM and RCPT TO; raises smtplib's refusals (classified by the caller)."""
    client.ehlo_or_helo_if_needed()
    options = [f"size={size}"] if client.does_esmtp and client.has_extn("size") else []
    code, reply = client.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})


def send_message(msg: EmailMessage, settings: SmtpSettings, envelope_to: str,
                 credentials: tuple[str, str] | None) -> None:
    """Send one message on its own connection.

    Raises ``RetryableDeliveryError`` or ``PermanentDeliveryError`` when the message cannot
    have been accepted (a failure before its content was completely sent, or a refusal in
    the server's final reply), ``UncertainDeliveryError`` when the content was sent and the
    final reply never came. Once the server has accepted the data the message counts as
    sent: an error while saying goodbye (QUIT) is ignored.
    """
    payload = _wire_bytes(msg)
    server = f"{settings.host}:{settings.effective_port}"
    try:
        client = _connect(settings)
    except Exception as exc:  # noqa: BLE001 - classified below
        raise classify(exc, settings) from None
    try:
        if credentials is not None:
            client.login(*credentials)
        _envelope(client, settings.from_address, envelope_to, len(payload))
        code, reply = client.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        client.send(payload)  # all or nothing for the server: it accepts only after the final <CRLF>.<CRLF>
    except Exception as exc:  # noqa: BLE001 - classified below
        _close(client)
        raise classify(exc, settings) from None
    try:
        code, reply = client.getreply()
    except Exception as exc:  # noqa: BLE001 - the content is out: whatever happened, we cannot know
        _close(client)
        raise UncertainDeliveryError(
            f"邮件内容已全部发出，但邮件服务器 {server} 在确认收到之前断开了连接（{type(exc).__name__}），"
            "无法确定对方是否已收到"
        ) from None
    if code != 250:
        _close(client)
        raise classify(smtplib.SMTPDataError(code, reply), settings) from None
    _quit(client)


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye; a failure now changes nothing (the message, if any, is already accepted)."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        _close(client)


def check_server(settings: SmtpSettings, credentials: tuple[str, str] | None) -> None:
    """Connect, greet (and STARTTLS), log in if configured, quit; sends nothing.

    Raises ``RetryableDeliveryError`` or ``PermanentDeliveryError`` as ``classify`` says.
    """
    try:
        client = _connect(settings)
    except Exception as exc:  # noqa: BLE001 - classified below
        raise classify(exc, settings) from None
    try:
        client.ehlo_or_helo_if_needed()
        if credentials is not None:
            client.login(*credentials)
    except Exception as exc:  # noqa: BLE001 - classified below
        _close(client)
        raise classify(exc, settings) from None
    _quit(client)

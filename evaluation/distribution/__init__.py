"""Distribution: send each issued report to the people it is for, at most once.

    recipients = load_recipients(catalogue)                 # config/recipients.yaml, checked
    ledger = DeliveryLedger.at(out_dir)                      # same database as the submission ledger
    # holding the version's distribution lock (flows/distribute.py):
    recover_interrupted(manifest, ledger, "email", now)      # rows a dead run left "sending" -> "uncertain"
    plan = make_plan(manifest, recipients, ledger, "email", catalogue)
    for line in describe(plan.send) + describe_held(plan.uncertain): print(line)   # dry run
    check_smtp(smtp)                                         # once, before sending anything
    for d in plan.send: deliver_one(d, version_folder, ledger, now=clock, smtp=smtp)

- A version's ``manifest.json`` lists its PDFs with their sha256. Each file goes to
  the recipients of its code (the first six characters of the name) only.
- The delivery ledger remembers (recipient, sha256, channel); what it shows
  ``delivered`` is not planned again. A rerun sends only what is undelivered, and a
  correction whose unchanged PDFs are byte-identical sends only the changed ones.
- Each report reaches each recipient at most once per channel. ``deliver_one`` records
  the attempt (``sending``) before sending and the result after, checks the PDF's bytes
  against the manifest's sha256, raises ``TransientDeliveryError`` only for what cannot
  have been delivered and a retry may fix, returns a ``failed`` ``Outcome`` for what a
  retry will not fix, and an ``uncertain`` one when the mail's content went out but the
  server's final reply never came. Uncertain deliveries (also those a dead run left
  ``sending``) are planned again only with ``resend_uncertain=True``, after a person has
  checked with the recipient.
- Paths are built only from validated recipient ids and manifest file names checked
  against ``^[0-9]{6}_[^/\\\\]+\\.pdf$``.

Channels: ``outbox`` (default; no network: the PDF and the rendered mail are written to
``<outbox>/<recipient id>/<year>/v<version>/``) and ``email`` (SMTP, see ``mail.py``).
No Prefect imports here: orchestration (retries, backoff, mapping) belongs in flows/.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evaluation.catalogue import Catalogue
from evaluation.distribution.deliveries import DeliveryLedger
from evaluation.distribution.model import (
    CHANNELS,
    SHA256,
    Delivery,
    DistributionError,
    Outcome,
    TransientDeliveryError,
    safe_file_name,
)
from evaluation.distribution.recipients import (
    Recipient,
    Recipients,
    RecipientsError,
    SmtpSettings,
    load_recipients,
)
from evaluation.fsutil import atomic_write

__all__ = [
    "Delivery", "DeliveryLedger", "DistributionError", "Outcome", "Plan", "Recipient", "Recipients",
    "RecipientsError", "SmtpSettings", "TransientDeliveryError", "check_smtp", "deliver_one", "describe",
    "describe_held", "load_recipients", "make_plan", "outbox_path", "recover_interrupted",
]

INTERRUPTED_ZH = "上次分发在发送这封邮件时中断（进程被终止或崩溃），无法确定对方是否已收到"

log = logging.getLogger(__name__)


# planning ----------------------------------------------------------------------

def _title(code: str, year: int, catalogue: Catalogue) -> str:
    if code == catalogue.city.code:
        return f"{catalogue.city.name}{year}年度两山转化绩效评价汇总报告"
    for county in catalogue.counties:
        if county.code == code:
            return f"{county.name}{year}年度两山转化绩效评价报告"
    raise DistributionError(f"清单中的报告代码 {code} 既不是目录中的区县，也不是市级代码 {catalogue.city.code}")


def _manifest_fields(manifest: dict[str, Any]) -> tuple[int, int, dict[str, str], dict[str, Any], dict[str, Any], bool]:
    try:
        year, version = int(manifest["year"]), int(manifest["version"])
        outputs = manifest["outputs"]
    except (KeyError, TypeError, ValueError):
        raise DistributionError("版本清单（manifest.json）缺少有效的 year、version 或 outputs") from None
    revisions = manifest.get("revisions") or {}
    editions = manifest.get("editions") or {}
    for key, value, shape in (("outputs", outputs, "文件名: SHA-256"), ("revisions", revisions, "代码: 说明列表"),
                              ("editions", editions, "文件名: 版次")):
        if not isinstance(value, dict):
            raise DistributionError(f"版本清单（manifest.json）的 {key} 应为“{shape}”的映射")
    return year, version, outputs, revisions, editions, bool(manifest.get("sample_data", False))


def _edition(editions: dict[str, Any], file_name: str, version: int) -> int:
    """The version whose rendering a file is (lower than `version` for a carried-over file)."""
    try:
        edition = int(editions.get(file_name, version))
    except (TypeError, ValueError):
        raise DistributionError(f"版本清单中 {file_name} 的版次无效") from None
    if not 1 <= edition <= version:
        raise DistributionError(f"版本清单中 {file_name} 的版次 {edition} 超出范围（1–{version}）")
    return edition


def _check_output(file_name: Any, sha256: Any) -> None:
    if not isinstance(file_name, str) or not safe_file_name(file_name):
        raise DistributionError(f"版本清单中的文件名“{file_name}”不符合“6位代码_名称.pdf”的格式，已拒绝")
    if not isinstance(sha256, str) or not SHA256.match(sha256):
        raise DistributionError(f"版本清单中 {file_name} 的 SHA-256 值无效")


@dataclass(frozen=True)
class Plan:
    """What a run does with a version's (report, recipient) pairs over one channel.

    send: to attempt now; uncertain: held back because an earlier attempt's outcome is
    unknown (not resent without ``resend_uncertain``); delivered: delivered earlier.
    """

    send: list[Delivery] = field(default_factory=list)
    uncertain: list[Delivery] = field(default_factory=list)
    delivered: list[Delivery] = field(default_factory=list)


def make_plan(manifest: dict[str, Any], recipients: Recipients, deliveries: DeliveryLedger, channel: str,
              catalogue: Catalogue, *, resend_uncertain: bool = False) -> Plan:
    """Every (report, recipient) of a version's manifest, sorted by what the ledger shows.

    A Delivery's ``version`` is the edition printed on the PDF: the manifest's ``editions``
    entry for a file carried over unchanged from an earlier version (so an undelivered
    carried-over report goes out as the edition it is, without this version's 修订说明),
    the manifest's ``version`` otherwise or when the manifest has no ``editions``.

    An ``uncertain`` row is held back unless ``resend_uncertain``; so is an email row still
    ``sending`` (its run died; ``recover_interrupted`` records it as uncertain). An outbox
    row left ``sending`` is planned again: rewriting the same file is harmless.
    """
    if channel not in CHANNELS:
        raise DistributionError(f"未知的发送方式“{channel}”（应为 outbox 或 email）")
    year, version, outputs, revisions, editions, sample = _manifest_fields(manifest)
    plan = Plan()
    held = set() if resend_uncertain else {"uncertain"} if channel == "outbox" else {"uncertain", "sending"}
    for file_name, sha256 in sorted(outputs.items()):
        _check_output(file_name, sha256)
        code = file_name[:6]
        title = _title(code, year, catalogue)
        people = recipients.for_code(code)
        if not people:
            raise DistributionError(f"报告 {file_name} 没有收件人（代码 {code}），请检查收件人配置")
        edition = _edition(editions, file_name, version)
        lines = tuple(str(line) for line in revisions.get(code) or ()) if edition == version else ()
        for person in sorted(people, key=lambda r: r.id):
            delivery = Delivery(recipient=person, county_code=code, year=year, version=edition,
                                file_name=file_name, report_sha256=sha256, channel=channel,  # type: ignore[arg-type]
                                title=title, revision_lines=lines, sample=sample,
                                office=catalogue.city.issuer or "", contact=catalogue.city.contact)
            status = deliveries.status(person.id, sha256, channel)
            if status == "delivered":
                plan.delivered.append(delivery)
            elif status in held:
                plan.uncertain.append(delivery)
            else:
                plan.send.append(delivery)
    return plan


def recover_interrupted(manifest: dict[str, Any], deliveries: DeliveryLedger, channel: str, now: str) -> int:
    """Record as ``uncertain`` the email deliveries of this version that a dead run left ``sending``.

    Call it holding the version's distribution lock (no live run is sending them then).
    Outbox rows are left alone: they are planned again, as rewriting a file is harmless.
    """
    if channel != "email":
        return 0
    _, _, outputs, _, _, _ = _manifest_fields(manifest)
    return deliveries.mark_interrupted(channel, [str(sha) for sha in outputs.values()], now, INTERRUPTED_ZH)


def describe(deliveries: list[Delivery]) -> list[str]:
    """Dry-run lines, one per planned delivery (Chinese)."""
    if not deliveries:
        return ["没有需要发送的报告（均已送达）。"]
    lines = []
    for d in deliveries:
        verb = "将发送" if d.channel == "email" else "将放入发件箱"
        note = "，含修订说明" if d.revision_lines else ""
        lines.append(f"{verb} {d.recipient.name} <{d.recipient.email}>：{d.file_name}（第{d.version}版{note}）")
    return lines


def describe_held(deliveries: list[Delivery]) -> list[str]:
    """Dry-run lines for the deliveries held back as uncertain (Chinese)."""
    return [f"结果不确定，不会重发（除非加 --resend-uncertain）：{d.recipient.name} <{d.recipient.email}>："
            f"{d.file_name}（第{d.version}版）" for d in deliveries]


# delivering --------------------------------------------------------------------

def outbox_path(delivery: Delivery, outbox_dir: Path) -> Path:
    """``<outbox>/<recipient id>/<year>/v<version>/<file name>`` from checked parts only."""
    delivery.check()
    return Path(outbox_dir) / delivery.recipient.id / str(int(delivery.year)) / f"v{int(delivery.version)}" / \
        delivery.file_name


def _read_verified(delivery: Delivery, folder: Path) -> tuple[bytes | None, str | None]:
    """The PDF's bytes if they match the manifest's sha256, else (None, Chinese reason)."""
    path = Path(folder) / delivery.file_name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"报告文件 {delivery.file_name} 不在版本目录中，已拒绝发送"
    except OSError as exc:
        return None, f"无法读取报告文件 {delivery.file_name}（{exc.strerror or type(exc).__name__}），已拒绝发送"
    actual = hashlib.sha256(data).hexdigest()
    if actual != delivery.report_sha256:
        return None, (f"报告文件 {delivery.file_name} 与版本清单不一致（SHA-256 应为 {delivery.report_sha256[:16]}…，"
                      f"实为 {actual[:16]}…），文件可能在签发后被改动，已拒绝发送")
    return data, None


def _send_outbox(delivery: Delivery, data: bytes, outbox_dir: Path) -> None:
    from evaluation.distribution.mail import outbox_text

    target = outbox_path(delivery, outbox_dir)
    atomic_write(target, data)
    atomic_write(target.with_suffix(".txt"), outbox_text(delivery).encode("utf-8"))


def _send_email(delivery: Delivery, data: bytes, smtp: SmtpSettings, credentials: tuple[str, str] | None) -> None:
    from evaluation.distribution.mail import build_message, send_message

    send_message(build_message(delivery, data, smtp), smtp, delivery.recipient.email, credentials)


def check_smtp(smtp: SmtpSettings) -> None:
    """Reach the mail server once without sending anything (connect, greet, log in, quit).

    Raises ``TransientDeliveryError`` (``unreachable``) when a retry may help,
    ``DistributionError`` when it will not (bad TLS setup, wrong password, missing
    credentials): the message says why, in Chinese.
    """
    from evaluation.distribution.mail import PermanentDeliveryError, RetryableDeliveryError, check_server

    try:
        credentials = smtp.credentials()
    except RecipientsError as exc:
        raise DistributionError(str(exc)) from None
    try:
        check_server(smtp, credentials)
    except PermanentDeliveryError as exc:
        raise DistributionError(str(exc)) from None
    except RetryableDeliveryError as exc:
        raise TransientDeliveryError(str(exc), unreachable=True) from None


Clock = Callable[[], str]


def deliver_one(delivery: Delivery, folder: Path, deliveries: DeliveryLedger, *, now: str | Clock,
                outbox_dir: Path | None = None, smtp: SmtpSettings | None = None,
                resend_uncertain: bool = False) -> Outcome:
    """Send one report: claim it (``sending``), verify the bytes, send, record the result.

    now: the time to record (ISO 8601 UTC), or a function giving it at each step.
    Returns ``delivered``; ``skipped`` when the ledger already shows it delivered;
    ``uncertain`` when its outcome is unknown (the content went out and no final reply
    came; or the ledger shows it uncertain, or sending by another run, and
    ``resend_uncertain`` is not set: nothing is sent then); ``failed`` with a Chinese
    reason when a retry will not help. Raises ``TransientDeliveryError`` (after recording
    the failure) when a retry may help and the message cannot have been delivered;
    ``DistributionError`` before recording anything when the delivery cannot be attempted
    (malformed delivery, missing channel settings or credentials).
    """
    from evaluation.distribution.mail import PermanentDeliveryError, RetryableDeliveryError, UncertainDeliveryError

    clock: Clock = now if callable(now) else (lambda: now)  # type: ignore[assignment,return-value]
    delivery.check()
    credentials = _channel_ready(delivery, outbox_dir, smtp)
    key = dict(recipient_id=delivery.recipient.id, file_name=delivery.file_name, channel=delivery.channel)
    if not deliveries.start(delivery, clock(), resend_uncertain=resend_uncertain):
        row = deliveries.get(delivery.recipient.id, delivery.report_sha256, delivery.channel) or {}
        if row.get("status") == "delivered":
            return Outcome(**key, status="skipped", message_id=row.get("message_id") or delivery.message_id)
        if row.get("status") == "uncertain":
            return Outcome(**key, status="uncertain", message_id=None,
                           error=row.get("last_error") or "此前的发送结果不确定，未重发")
        return Outcome(**key, status="uncertain", message_id=None,
                       error="另一分发正在发送这封邮件（台账显示“发送中”），本次未发送")
    data, refusal = _read_verified(delivery, folder)
    if data is None:
        return _failed(delivery, deliveries, clock(), refusal or "")
    try:
        if delivery.channel == "outbox":
            _send_outbox(delivery, data, outbox_dir)  # type: ignore[arg-type]
        else:
            _send_email(delivery, data, smtp, credentials)  # type: ignore[arg-type]
    except PermanentDeliveryError as exc:
        return _failed(delivery, deliveries, clock(), str(exc))
    except UncertainDeliveryError as exc:
        deliveries.uncertain(delivery, clock(), str(exc))
        log.warning("delivery of %s to %s is uncertain: no reply after the content", delivery.file_name,
                    delivery.recipient.id)
        return Outcome(**key, status="uncertain", message_id=delivery.message_id, error=str(exc))
    except RetryableDeliveryError as exc:
        _transient(delivery, deliveries, clock(), str(exc), exc.unreachable)
    except OSError as exc:  # outbox: a full disk or a network share may recover
        _transient(delivery, deliveries, clock(), f"写入发件箱失败（{exc.strerror or type(exc).__name__}），稍后重试",
                   False)
    deliveries.succeed(delivery, clock(), delivery.message_id)
    log.info("delivered %s to %s over %s", delivery.file_name, delivery.recipient.id, delivery.channel)
    return Outcome(**key, status="delivered", message_id=delivery.message_id)


def _channel_ready(delivery: Delivery, outbox_dir: Path | None,
                   smtp: SmtpSettings | None) -> tuple[str, str] | None:
    if delivery.channel == "outbox":
        if outbox_dir is None:
            raise DistributionError("发件箱方式需要指定发件箱目录（outbox_dir）")
        return None
    if smtp is None:
        raise DistributionError("邮件方式需要邮件服务器设置（recipients.yaml 的 smtp 部分）")
    try:
        return smtp.credentials()
    except RecipientsError as exc:
        raise DistributionError(str(exc)) from None


def _failed(delivery: Delivery, deliveries: DeliveryLedger, now: str, reason: str) -> Outcome:
    deliveries.fail(delivery, now, reason)
    log.warning("delivery of %s to %s failed permanently", delivery.file_name, delivery.recipient.id)
    return Outcome(recipient_id=delivery.recipient.id, file_name=delivery.file_name, channel=delivery.channel,
                   status="failed", message_id=None, error=reason)


def _transient(delivery: Delivery, deliveries: DeliveryLedger, now: str, reason: str, unreachable: bool) -> None:
    deliveries.fail(delivery, now, reason)
    log.warning("delivery of %s to %s failed, retryable", delivery.file_name, delivery.recipient.id)
    raise TransientDeliveryError(reason, recipient_id=delivery.recipient.id, file_name=delivery.file_name,
                                 unreachable=unreachable) from None

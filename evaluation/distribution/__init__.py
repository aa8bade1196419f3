"""Distribution: send each issued report to the people it is for, once.

    recipients = load_recipients(catalogue)                 # config/recipients.yaml, checked
    ledger = DeliveryLedger.at(out_dir)                      # same database as the submission ledger
    todo = plan_deliveries(manifest, recipients, ledger, "outbox", catalogue)
    for line in describe(todo): print(line)                  # dry run
    for d in todo: deliver_one(d, version_folder, ledger, outbox_dir=out_dir / "outbox")

- A version's ``manifest.json`` lists its PDFs with their sha256. Each file goes to
  the recipients of its code (the first six characters of the name) only.
- The delivery ledger remembers (recipient, sha256, channel); what it shows
  ``delivered`` is not planned again. A rerun sends only what is undelivered, and a
  correction whose unchanged PDFs are byte-identical sends only the changed ones.
- ``deliver_one`` records the attempt before sending and the result after, checks
  the PDF's bytes against the manifest's sha256, raises ``TransientDeliveryError``
  for what a retry may fix and returns a ``failed`` ``Outcome`` for what it will not.
- Paths are built only from validated recipient ids and manifest file names checked
  against ``^[0-9]{6}_[^/\\\\]+\\.pdf$``.

Channels: ``outbox`` (default; no network: the PDF and the rendered mail are written to
``<outbox>/<recipient id>/<year>/v<version>/``) and ``email`` (SMTP, see ``mail.py``).
No Prefect imports here: orchestration (retries, backoff, mapping) belongs in flows/.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

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
    "Delivery", "DeliveryLedger", "DistributionError", "Outcome", "Recipient", "Recipients", "RecipientsError",
    "SmtpSettings", "TransientDeliveryError", "deliver_one", "describe", "load_recipients", "outbox_path",
    "plan_deliveries",
]

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


def plan_deliveries(manifest: dict[str, Any], recipients: Recipients, deliveries: DeliveryLedger, channel: str,
                    catalogue: Catalogue) -> list[Delivery]:
    """Every (report, recipient) of a version's manifest that the ledger does not show delivered.

    A Delivery's ``version`` is the edition printed on the PDF: the manifest's ``editions``
    entry for a file carried over unchanged from an earlier version (so an undelivered
    carried-over report goes out as the edition it is, without this version's 修订说明),
    the manifest's ``version`` otherwise or when the manifest has no ``editions``.
    """
    if channel not in CHANNELS:
        raise DistributionError(f"未知的发送方式“{channel}”（应为 outbox 或 email）")
    year, version, outputs, revisions, editions, sample = _manifest_fields(manifest)
    planned: list[Delivery] = []
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
            if deliveries.delivered(person.id, sha256, channel):
                continue
            planned.append(Delivery(recipient=person, county_code=code, year=year, version=edition,
                                    file_name=file_name, report_sha256=sha256, channel=channel,  # type: ignore[arg-type]
                                    title=title, revision_lines=lines, sample=sample))
    return planned


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


def deliver_one(delivery: Delivery, folder: Path, deliveries: DeliveryLedger, *, outbox_dir: Path | None = None,
                smtp: SmtpSettings | None = None) -> Outcome:
    """Send one report: record ``start``, verify the bytes, send, record the result.

    Raises ``TransientDeliveryError`` (after recording the failure) when a retry may help;
    returns a ``failed`` Outcome with a Chinese reason when it will not; raises
    ``DistributionError`` before recording anything when the delivery cannot be attempted
    (malformed delivery, missing channel settings or credentials).
    """
    from evaluation.distribution.mail import PermanentDeliveryError, RetryableDeliveryError

    delivery.check()
    credentials = _channel_ready(delivery, outbox_dir, smtp)
    key = dict(recipient_id=delivery.recipient.id, file_name=delivery.file_name, channel=delivery.channel)
    if not deliveries.start(delivery):
        return Outcome(**key, status="skipped", message_id=delivery.message_id)
    data, refusal = _read_verified(delivery, folder)
    if data is None:
        return _failed(delivery, deliveries, refusal or "")
    try:
        if delivery.channel == "outbox":
            _send_outbox(delivery, data, outbox_dir)  # type: ignore[arg-type]
        else:
            _send_email(delivery, data, smtp, credentials)  # type: ignore[arg-type]
    except PermanentDeliveryError as exc:
        return _failed(delivery, deliveries, str(exc))
    except RetryableDeliveryError as exc:
        _transient(delivery, deliveries, str(exc))
    except OSError as exc:  # outbox: a full disk or a network share may recover
        _transient(delivery, deliveries, f"写入发件箱失败（{exc.strerror or type(exc).__name__}），稍后重试")
    deliveries.succeed(delivery, delivery.message_id)
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


def _failed(delivery: Delivery, deliveries: DeliveryLedger, reason: str) -> Outcome:
    deliveries.fail(delivery, reason)
    log.warning("delivery of %s to %s failed permanently", delivery.file_name, delivery.recipient.id)
    return Outcome(recipient_id=delivery.recipient.id, file_name=delivery.file_name, channel=delivery.channel,
                   status="failed", message_id=None, error=reason)


def _transient(delivery: Delivery, deliveries: DeliveryLedger, reason: str) -> None:
    deliveries.fail(delivery, reason)
    log.warning("delivery of %s to %s failed, retryable", delivery.file_name, delivery.recipient.id)
    raise TransientDeliveryError(reason, recipient_id=delivery.recipient.id, file_name=delivery.file_name) from None

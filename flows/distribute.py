"""Distribute an issued version's reports: each county its scorecard, the city leaders the summary.

Orchestration only; `evaluation.distribution` plans, sends and keeps the delivery ledger.
A report goes to a recipient once per channel (keyed on its sha256), so a rerun sends
only what is still undelivered, and after a correction only the re-issued reports go out.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from prefect.tasks import exponential_backoff

from evaluation import versions
from evaluation.catalogue import load_catalogue
from evaluation.distribution import (
    Delivery,
    DeliveryLedger,
    DistributionError,
    Outcome,
    TransientDeliveryError,
    deliver_one,
    describe,
    plan_deliveries,
)
from evaluation.distribution.recipients import RecipientsError, load_recipients
from flows.retrying import retry_on

CHANNELS = ("outbox", "email")
STATUS_ZH = {"delivered": "已送达", "skipped": "此前已送达", "failed": "失败"}


@task(cache_policy=NO_CACHE, persist_result=False)
def to_outbox(delivery: Delivery, folder: Path, ledger: DeliveryLedger, outbox_dir: Path) -> Outcome:
    """Put one report in a recipient's outbox folder (local disk: no retries)."""
    return deliver_one(delivery, folder, ledger, outbox_dir=outbox_dir)


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_jitter_factor=0.2,
      retry_condition_fn=retry_on(TransientDeliveryError))
def send_email(delivery: Delivery, folder: Path, ledger: DeliveryLedger, smtp) -> Outcome:
    """Mail one report over SMTP; a refused connection, a timeout or a 4xx reply is retried with backoff."""
    return deliver_one(delivery, folder, ledger, smtp=smtp)


@flow(name="distribute-scorecards")
def distribute_scorecards(
    year: int | None = None,
    version: int | None = None,
    channel: str = "outbox",
    out_dir: str = "reports",
    outbox_dir: str | None = None,
    ledger_url: str | None = None,
    config_dir: str | None = None,
    recipients: str | None = None,
    dry_run: bool = False,
    retry_backoff_seconds: float = 10.0,
    smtp_secret: str | None = None,
):
    """Send the reports of `year` (default: the previous calendar year), version `version`
    (default: the latest issued), over `channel` ("outbox" or "email").

    smtp_secret: the name of a Prefect Secret block holding {"username": ..., "password": ...}
    for the SMTP login (instead of the environment variables recipients.yaml names).

    Returns a dict: status ("sent", "nothing", "dry-run", "partial" or "refused"), version,
    counts per outcome, and one row per delivery.
    """
    logger = get_run_logger()
    year = int(year) if year is not None else dt.date.today().year - 1
    out = Path(out_dir)
    if channel not in CHANNELS:
        return _refuse(f"未知的发送方式：{channel}（可选：outbox 发件箱、email 邮件）")
    catalogue = load_catalogue(config_dir)
    try:
        book = load_recipients(catalogue, recipients)
    except RecipientsError as exc:
        return _refuse(str(exc))
    if channel == "email":
        if book.smtp is None:
            return _refuse("recipients.yaml 中没有 smtp 设置，无法通过邮件发送。")
        smtp = book.smtp
        if not book.verified:
            logger.warning("recipients.yaml says verified: false; check every address before mailing real reports")
        if smtp_secret:
            login = _secret_login(smtp_secret)
            if isinstance(login, str):
                return _refuse(login)
            smtp = smtp.with_credentials(*login)
        try:
            smtp.credentials()
        except RecipientsError as exc:
            return _refuse(str(exc))
    found = versions.versions(out, year)
    if not found or (version is not None and version not in found):
        return _refuse(f"{year} 年度没有{'第 %d 版' % version if version else '已出具的'}报告，无法分发。")
    version = version or found[-1]
    folder = versions.year_dir(out, year) / f"v{version}"
    manifest = versions.read_manifest(folder)

    ledger = DeliveryLedger.at(out, ledger_url)
    try:
        try:
            plan = plan_deliveries(manifest, book, ledger, channel, catalogue)
        except DistributionError as exc:
            return _refuse(str(exc))
        if dry_run:
            lines = describe(plan)
            for line in lines:
                logger.info("%s", line)
            return {"status": "dry-run", "version": version, "lines": lines, "planned": len(plan)}
        logger.info("%s v%d: %d deliveries over %s", year, version, len(plan), channel)
        sender = to_outbox.with_options() if channel == "outbox" else send_email.with_options(
            retry_delay_seconds=exponential_backoff(retry_backoff_seconds))
        target = Path(outbox_dir) if outbox_dir else out / "outbox"
        rows = []
        for i, delivery in enumerate(plan, 1):
            arg = target if channel == "outbox" else smtp
            state = sender(delivery, folder, ledger, arg, return_state=True)
            if state.is_failed():
                error = state.result(raise_on_failure=False)
                outcome = Outcome(delivery.recipient.id, delivery.file_name, channel, "failed", None,
                                  getattr(error, "reason", None) or str(error))
            else:
                outcome = state.result()
            logger.info("[%d/%d] %s -> %s: %s", i, len(plan), delivery.file_name, delivery.recipient.id, outcome.status)
            rows.append({"收件人": f"{delivery.recipient.name} <{delivery.recipient.email}>", "报告": delivery.file_name,
                         "版次": delivery.version, "方式": channel, "结果": STATUS_ZH.get(outcome.status, outcome.status),
                         "Message-ID": outcome.message_id or "", "说明": outcome.error or ""})
    finally:
        ledger.close()

    counts = {s: sum(1 for r in rows if r["结果"] == STATUS_ZH[s]) for s in STATUS_ZH}
    if rows:
        create_table_artifact(key=f"deliveries-{year}-v{version}", table=rows,
                              description=f"{year} v{version} deliveries over {channel}")
    data = {"status": "sent" if not counts["failed"] else "partial", "version": version, "counts": counts,
            "rows": rows}
    if not plan:
        data["status"] = "nothing"
        logger.info("没有需要发送的报告：%d 年第 %d 版均已送达。", year, version)
    if counts["failed"]:
        return Failed(message=f"{counts['failed']} 份报告未能送达", data=data)
    return Completed(message=f"{counts['delivered']} delivered", data=data)


def _secret_login(name: str) -> tuple[str, str] | str:
    """(username, password) from a Prefect Secret block, or a Chinese message saying what is wrong."""
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except (ValueError, KeyError) as exc:
        return f"找不到 Prefect Secret“{name}”：{type(exc).__name__}"
    if not (isinstance(value, dict) and isinstance(value.get("username"), str) and isinstance(value.get("password"), str)):
        return f"Prefect Secret“{name}”应为 {{\"username\": …, \"password\": …}}。"
    return value["username"], value["password"]


def _refuse(message: str):
    get_run_logger().error(message)
    return Failed(message=message, data={"status": "refused", "message": message})

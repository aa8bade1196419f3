"""Distribute an issued version's reports: each county its scorecard, the city leaders the summary.

Orchestration only; `evaluation.distribution` plans, sends and keeps the delivery ledger.
What is guaranteed: each report reaches each recipient at most once per channel (keyed on
its sha256), so a rerun sends only what is still undelivered, and after a correction only
the re-issued reports go out. A mail whose outcome is unknown (the connection dropped after
its content was sent, or a run died while sending it) is reported as uncertain and is never
resent unless the caller says so (`resend_uncertain`).

How:
- a lock per year and version (`reports/<year>/.distribute-v<N>.lock`) is held while
  planning and sending; a second run waits `lock_wait_seconds` for it, then plans (finding
  everything delivered) or is refused with a sentence naming the holder;
- under the lock, rows a dead run left `sending` become `uncertain`, then the plan is made;
- before the first mail, the SMTP server is reached once (connect, EHLO, login, QUIT;
  `check_attempts` tries, backoff from `check_backoff_seconds`); if it cannot be, nothing
  is attempted and the run is refused (exit code 7);
- each mail is retried `retries` times (backoff from `retry_backoff_seconds`) only when it
  cannot have arrived; if the server is unreachable after that, the rest is not attempted.

The result's `code` is the CLI's exit code (`evaluation.errors.ExitCode`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from prefect.tasks import exponential_backoff

from evaluation import versions
from evaluation.catalogue import CatalogueError, load_catalogue
from evaluation.distribution import (
    Delivery,
    DeliveryLedger,
    DistributionError,
    Outcome,
    TransientDeliveryError,
    check_smtp,
    deliver_one,
)
from evaluation.distribution.runs import Distribution, lock_path, plan_distribution, send_planned
from evaluation.distribution.recipients import RecipientsError, SmtpSettings, load_recipients
from evaluation.errors import Busy, ExitCode, UserError
from evaluation.locks import describe_holder, file_lock
from evaluation.resources import open_deliveries, today, utc_now
from flows.retrying import retry_on

CHANNELS = ("outbox", "email")
RETRIES = 2  # per mail, only when it cannot have arrived; with 1 s backoff: 1 s, then 2 s


@task(cache_policy=NO_CACHE, persist_result=False)
def to_outbox(delivery: Delivery, folder: Path, ledger: DeliveryLedger, outbox_dir: Path,
              resend_uncertain: bool = False) -> Outcome:
    """Put one report in a recipient's outbox folder (local disk: no retries)."""
    return deliver_one(delivery, folder, ledger, now=utc_now, outbox_dir=outbox_dir,
                       resend_uncertain=resend_uncertain)


@task(cache_policy=NO_CACHE, persist_result=False, retries=RETRIES, retry_jitter_factor=0.2,
      retry_condition_fn=retry_on(TransientDeliveryError))
def send_email(delivery: Delivery, folder: Path, ledger: DeliveryLedger, smtp: SmtpSettings,
               resend_uncertain: bool = False) -> Outcome:
    """Mail one report over SMTP. Retried (with backoff) only on `TransientDeliveryError`: a refused
    connection, a timeout or a 4xx before the server can have accepted the mail. A mail whose
    content went out without a final reply comes back `uncertain` and is not retried."""
    return deliver_one(delivery, folder, ledger, now=utc_now, smtp=smtp, resend_uncertain=resend_uncertain)


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_condition_fn=retry_on(TransientDeliveryError))
def reach_smtp(smtp: SmtpSettings) -> str | None:
    """Reach the mail server once without sending anything. None when it answers; a Chinese
    sentence when a retry will not help (bad TLS setup, wrong password); raises
    `TransientDeliveryError` when it may."""
    try:
        check_smtp(smtp)
    except DistributionError as exc:
        return str(exc)
    return None


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
    retry_backoff_seconds: float = 1.0,
    smtp_secret: str | None = None,
    resend_uncertain: bool = False,
    retries: int = RETRIES,
    check_attempts: int = 3,
    check_backoff_seconds: float = 1.0,
    lock_wait_seconds: float = 15.0,
):
    """Send the reports of `year` (default: the previous calendar year), version `version`
    (default: the latest issued), over `channel` ("outbox" or "email"); each report to each
    recipient at most once per channel.

    resend_uncertain: also send the mails whose outcome is unknown (check with the recipients first).
    smtp_secret: the name of a Prefect Secret block holding {"username": ..., "password": ...}
    for the SMTP login (instead of the environment variables recipients.yaml names).
    retries, retry_backoff_seconds: per mail, when it cannot have arrived (exponential backoff).
    check_attempts, check_backoff_seconds: reaching the SMTP server before the first mail.
    lock_wait_seconds: how long to wait for another run distributing the same version.

    Returns a dict: status ("sent", "nothing", "dry-run", "partial", "uncertain",
    "unreachable" or "refused"), code (the CLI's exit code), version, counts per outcome
    (delivered, skipped = delivered earlier, failed, uncertain, not_attempted), one row per
    delivery of this run, and a message (Chinese) unless everything went out.
    """
    logger = get_run_logger()
    year = int(year) if year is not None else today().year - 1
    out = Path(out_dir)
    if channel not in CHANNELS:
        return _refuse(f"未知的发送方式：{channel}（可选：outbox 发件箱、email 邮件）")
    try:
        catalogue = load_catalogue(config_dir)
        book = load_recipients(catalogue, recipients, config_dir=config_dir)
    except (CatalogueError, RecipientsError) as exc:
        return _refuse(str(exc))
    smtp = None
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
    try:
        manifest = versions.read_manifest(folder)
    except (OSError, ValueError):
        return _refuse(f"无法读取 {folder / versions.MANIFEST}：文件损坏或不可读，无法分发。")

    def busy(holder: dict) -> str:
        return (f"{year} 年第 {version} 版的报告正由{describe_holder(holder)}分发；等待 {lock_wait_seconds:g} 秒后"
                "仍未结束。为避免重复发送，本次未发送任何报告，请等该运行结束后再试。")

    try:
        with file_lock(lock_path(out, year, version), wait=lock_wait_seconds, what="distribute-scorecards",
                       busy=busy):
            return _distribute_locked(
                year=year, version=version, channel=channel, out=out, folder=folder, manifest=manifest, book=book,
                catalogue=catalogue, smtp=smtp, outbox_dir=outbox_dir, ledger_url=ledger_url, dry_run=dry_run,
                resend_uncertain=resend_uncertain, retries=retries, retry_backoff_seconds=retry_backoff_seconds,
                check_attempts=check_attempts, check_backoff_seconds=check_backoff_seconds)
    except Busy as exc:
        return _refuse(exc.message, ExitCode.BUSY)
    except UserError as exc:  # the lock file could not be written: permission, full disk
        return _refuse(exc.message, exc.code)


def _distribute_locked(*, year: int, version: int, channel: str, out: Path, folder: Path, manifest: dict, book,
                       catalogue, smtp: SmtpSettings | None, outbox_dir: str | None, ledger_url: str | None,
                       dry_run: bool, resend_uncertain: bool, retries: int, retry_backoff_seconds: float,
                       check_attempts: int, check_backoff_seconds: float):
    logger = get_run_logger()
    with open_deliveries(out, ledger_url) as ledger:
        try:
            planned = plan_distribution(ledger, manifest, book, channel, catalogue, now=utc_now(),
                                        resend_uncertain=resend_uncertain, dry_run=dry_run)
        except DistributionError as exc:
            return _refuse(str(exc))
        if planned.swept:
            logger.warning("%d deliveries left 'sending' by an interrupted run are now 'uncertain'", planned.swept)
        if dry_run:
            lines = planned.lines()
            logger.info("dry run %s v%d over %s: %d to send, %d held back as uncertain, %d delivered earlier",
                        year, version, channel, len(planned.send), len(planned.uncertain), planned.delivered)
            create_markdown_artifact(key=f"distribution-plan-{year}-v{version}",
                                     markdown="\n".join(f"- {line}" for line in lines),
                                     description=f"{year} v{version} dry run over {channel}")
            return {"status": "dry-run", "code": int(ExitCode.OK), "version": version, "lines": lines,
                    "planned": len(planned.send), "uncertain": len(planned.uncertain)}
        logger.info("%s v%d: %d deliveries over %s (%d held back as uncertain, %d delivered earlier)", year, version,
                    len(planned.send), channel, len(planned.uncertain), planned.delivered)
        if channel == "email" and planned.send:
            refusal = _reach(smtp, check_attempts, check_backoff_seconds)  # type: ignore[arg-type]
            if refusal is not None:
                return refusal
        send = _sender(folder, ledger, channel, smtp, Path(outbox_dir) if outbox_dir else out / "outbox",
                       resend_uncertain, retries, retry_backoff_seconds)

        def progress(i: int, total: int, delivery: Delivery, outcome: Outcome) -> None:
            logger.info("[%d/%d] %s -> %s: %s", i, total, delivery.file_name, delivery.recipient.id, outcome.status)

        done = send_planned(planned, ledger, send, year=year, version=version, channel=channel, progress=progress)
    return _result(done)


def _reach(smtp: SmtpSettings, attempts: int, backoff: float):
    """None when the SMTP server answers; otherwise the refusal to return (nothing was attempted)."""
    checker = reach_smtp.with_options(retries=max(0, int(attempts) - 1),
                                      retry_delay_seconds=exponential_backoff(backoff))
    state = checker(smtp, return_state=True)
    if not state.is_failed():
        problem = state.result()
        return None if problem is None else _refuse(f"{problem}；未发送任何报告。")
    error = state.result(raise_on_failure=False)
    reason = getattr(error, "reason", None) or f"无法连接邮件服务器 {smtp.host}:{smtp.effective_port}（{type(error).__name__}）"
    return _refuse(f"{reason.removesuffix('，稍后重试')}；共尝试 {max(1, int(attempts))} 次，未发送任何报告。"
                   "请确认邮件服务器已启动、recipients.yaml 中 smtp 的地址和端口正确后再运行。", ExitCode.UNREACHABLE)


def _sender(folder: Path, ledger: DeliveryLedger, channel: str, smtp: SmtpSettings | None, outbox: Path,
            resend_uncertain: bool, retries: int, backoff: float):
    """send(delivery) -> Outcome through the channel's task (email: retried with backoff); a failed
    task's error is raised, as evaluation.distribution.runs.send_planned expects."""
    if channel == "outbox":
        sender, arg = to_outbox, outbox
    else:
        sender, arg = send_email.with_options(retries=max(0, int(retries)),
                                              retry_delay_seconds=exponential_backoff(backoff)), smtp

    def send(delivery: Delivery) -> Outcome:
        state = sender(delivery, folder, ledger, arg, resend_uncertain, return_state=True)
        if state.is_failed():
            raise state.result(raise_on_failure=False)
        return state.result()

    return send


def _result(done: Distribution):
    """The run's state: its data is what the CLI prints; its message the one Chinese sentence."""
    status, code, message = done.verdict()
    rows = done.rows()
    if rows:
        create_table_artifact(key=f"deliveries-{done.year}-v{done.version}", table=rows,
                              description=f"{done.year} v{done.version} deliveries over {done.channel}")
    data = {"version": done.version, "year": done.year, "channel": done.channel, "counts": done.counts(),
            "rows": rows, "status": status, "code": int(code)}
    if message is not None:
        return Failed(message=message, data={**data, "message": message})
    if status == "nothing":
        get_run_logger().info("nothing to send: %d v%d is delivered to everyone", done.year, done.version)
        return Completed(message="nothing to send", data=data)
    return Completed(message=f"{data['counts']['delivered']} delivered", data=data)


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


def _refuse(message: str, code: ExitCode = ExitCode.USAGE):
    """Nothing sent: the Chinese sentence is the state's message (the console and the UI show it once)."""
    get_run_logger().warning("distribution refused, nothing sent (exit code %d)", int(code))
    return Failed(message=message, data={"status": "refused", "message": message, "code": int(code)})

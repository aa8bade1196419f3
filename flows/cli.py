"""The `twomountains` command line. 两山转化绩效评价命令行工具。"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from flows import clizh
from rich.table import Table

from evaluation.errors import ExitCode, Unreachable, UserError, exit_codes_help, find_user_error

clizh.install()  # click's and typer's own messages and help headings in Chinese, wrapped by display width
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="“两山”转化绩效评价 / Two-mountains conversion performance evaluation.",
    epilog=exit_codes_help(),
)
# No console markup anywhere: bureau cells, file names and config names are printed as they are
# (a "[/]" in a county name must not be read as a closing tag). Styles are passed as style=.
console = Console(markup=False, highlight=False)
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def _load_catalogue(config_dir: Optional[Path]):
    from evaluation.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue(config_dir)
    except CatalogueError as exc:
        err.print(f"{exc}", style="red")
        raise typer.Exit(2) from None


@app.command()
def run(
    year: int = typer.Option(..., "--year", help="评价年度 / evaluation year"),
    data: Optional[Path] = typer.Option(None, "--data", help="数据目录，含各年度子目录（默认：工作区的 data/）/ data folder"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告输出目录（默认：工作区的 reports/）/ output folder"),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                          help="数据不完整时仍出具临时报告 / issue provisional reports"),
    run_date: Optional[str] = typer.Option(None, "--run-date", help="报告日期 YYYY-MM-DD（默认今天）/ report date"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="报送台账数据库（SQLAlchemy URL，默认 <out>/ledger/ledger.sqlite）/ ledger URL"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="任务缓存目录（默认 <out>/.cache/prefect）/ task cache folder"),
    refresh_cache: bool = typer.Option(False, "--refresh-cache", help="忽略缓存，全部重新计算 / recompute every cached step"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", envvar="TWOMOUNTAINS_DASK_ADDRESS",
                                               help="在已有的 Dask 集群上校验和出具报告，如 tcp://10.0.0.5:8786 / run tasks on this Dask scheduler"),
) -> None:
    """运行年度评价并出具评价报告 / Run the annual evaluation and issue scorecards."""
    if not (1990 <= year <= 2100):
        err.print(f"年度 {year} 不在有效范围（1990–2100）内。", style="red")
        raise typer.Exit(2)
    if run_date is not None:
        try:
            dt.date.fromisoformat(run_date)
        except ValueError:
            err.print(f"--run-date 必须是 YYYY-MM-DD 格式，收到：{run_date}", style="red")
            raise typer.Exit(2) from None
    if not data.is_dir():
        err.print(f"数据目录不存在：{data}。请用 --data 指定，或在工作区的 twomountains.yaml 中设置 data"
                  "（见 README“工作区”）。", style="red")
        raise typer.Exit(2)
    catalogue = _load_catalogue(config_dir)  # fail fast, with a clear message, before Prefect starts
    _check_dask(dask_address)
    _preflight(out, year, len(catalogue.counties) + 1)
    _evaluate(year=year, data=data, out=out, run_date=run_date, allow_incomplete=allow_incomplete,
              config_dir=config_dir, ledger=ledger, cache_dir=cache_dir, refresh_cache=refresh_cache,
              dask_address=dask_address)


def _check_dask(address: Optional[str]) -> None:
    """Refuse an unreachable Dask scheduler up front, in words, rather than mid-run."""
    if not address:
        return
    if not re.fullmatch(r"(tcp|tls|ucx|ws|wss)://[\w.\-\[\]:]+", address.strip()):
        err.print(f"--dask-address 应形如 tcp://主机:端口，收到：{address}", style="red")
        raise typer.Exit(2)
    try:
        from distributed import Client
    except ImportError:
        err.print("未安装 Dask（distributed、prefect-dask），无法使用 --dask-address。", style="red")
        raise typer.Exit(2) from None
    try:
        with console.status(f"正在连接 Dask 集群 {address} …"):
            Client(address.strip(), timeout="5s").close()
    except (OSError, TimeoutError) as exc:
        raise Unreachable(f"无法连接 Dask 集群 {address}：{exc}") from None


# Room a run needs: the ledger, the cache and Data Docs, plus about half a megabyte per report.
_BASE_SPACE = 50 * 2**20
_PER_REPORT = 2**19


def _preflight(out: Path, year: int, reports: int) -> None:
    """Refuse, in words and before Prefect starts, a reports folder that cannot be written or is nearly full."""
    from evaluation.errors import StorageError, storage_error
    from evaluation.fsutil import atomic_write

    target = out / str(int(year))
    probe = target / f".write-test-{os.getpid()}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        atomic_write(probe, b"ok")
        probe.unlink()
        free = shutil.disk_usage(target).free
    except OSError as exc:
        raise (storage_error(exc, target) or exc) from None
    need = _BASE_SPACE + reports * _PER_REPORT
    if free < need:
        raise StorageError(f"磁盘空间不足：{target} 所在磁盘只剩 {free / 2**20:.0f} MB，出具 {reports} 份报告约需 "
                           f"{need / 2**20:.0f} MB。请清理磁盘或用 --out 指定其他目录。", ExitCode.DISK_FULL)


def _check_prefect_server(url: str) -> None:
    """The Prefect server PREFECT_API_URL names must answer before anything is recorded for it."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=10) as response:
            if response.status == 200:
                return
    except (urllib.error.URLError, OSError, ValueError):
        pass
    raise Unreachable(f"无法连接 Prefect 服务器 {url}（PREFECT_API_URL）。请确认服务器已启动，"
                      "或取消该设置以在本机重新评价。")


def _start_prefect():
    """Start the local Prefect server now (it boots while the command imports its flows), unless
    PREFECT_API_URL names a server; see flows.localserver."""
    from flows.localserver import ensure_server
    from flows.processes import run_dir

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return ensure_server(run_dir().parent / "twomountains.log")


def _evaluate(*, year: int, data: Path, out: Path, run_date: Optional[str], allow_incomplete: bool = False,
              config_dir: Optional[Path] = None, ledger: Optional[str] = None, cache_dir: Optional[Path] = None,
              refresh_cache: bool = False, dask_address: Optional[str] = None) -> dict:
    """Run the annual flow (Prefect's temporary local server unless PREFECT_API_URL names one) and report."""
    from evaluation.versions import year_lock

    # Held from here, before Prefect starts: a second run for the year is refused at once, in words
    # (the flow takes the same lock again; it is re-entrant within this process).
    with year_lock(out, year, what=f"twomountains run --year {year}"):
        server = _start_prefect()
        with console.status("正在启动 Prefect（本地服务）…"):
            from flows.annual import annual_evaluation
            from flows.logs import quiet_console
            from flows.runners import task_runner
            if server is not None:
                from evaluation.validation.gate import warm_up

                warm_up()  # GX's import and first context, on this core while the server starts on the other
                server.wait_ready()
        quiet_console()
        if dask_address:
            annual_evaluation = annual_evaluation.with_options(task_runner=task_runner(dask_address.strip()))
        state = annual_evaluation(
            year=year, data_dir=str(data), out_dir=str(out), run_date=run_date,
            allow_incomplete=allow_incomplete, config_dir=str(config_dir) if config_dir else None,
            ledger_url=ledger, cache_dir=str(cache_dir) if cache_dir else None, refresh_cache=refresh_cache,
            return_state=True,
        )
    outcome = _state_data(state)
    status = outcome.get("status")
    if status == "error":  # a failure the user can fix, already in words
        raise UserError(outcome["message"], ExitCode(outcome["code"]))
    if status == "refused":
        err.print(f"数据不完整，未出具评价报告（报送目录：{data / str(year)}）：", style="red")
        for line in outcome.get("problems", []):
            err.print(f"  - {line}")
        err.print("如确需先出具临时报告，请加 --allow-incomplete（报告将标注“未完整（临时）”）。")
        raise typer.Exit(1)
    if status not in ("issued", "unchanged"):
        found = find_user_error(outcome.get("exception"))
        if found is not None:
            raise found
        err.print(f"评价运行失败：{state.message}", style="red")
        raise typer.Exit(1)
    folder = Path(outcome["folder"])
    if status == "unchanged":
        console.print(f"没有变化：各报告内容均未变化，沿用第 {outcome['version']} 版。")
    else:
        _print_scores(outcome.get("scores", []), config_dir)
        if outcome.get("incomplete"):
            console.print("注意：数据不完整，报告已标注“未完整（临时）”。", style="yellow")
        if outcome.get("carried"):
            console.print(f"第 {outcome['version']} 版：重新出具 {len(outcome['rendered'])} 份报告，"
                          f"{len(outcome['carried'])} 份内容未变、沿用原文件。")
    book = next(folder.glob("*_评价结果.xlsx"), None)  # the analysts' workbook (versions before it have none)
    kept = (folder / "contexts.zip").is_file()  # the contexts the workbench shows each report from
    method = next(folder.glob("*评价技术报告.pdf"), None)  # the methodology report (not sent to counties)
    console.print(f"报告目录 / reports: {folder} （{len(outcome['files'])} 个 PDF + manifest.json"
                  + (f" + {book.name}" if book else "") + (f" + {method.name}（技术报告，不发送）" if method else "")
                  + (" + contexts.zip" if kept else "") + "）")
    return outcome


@app.command()
def correct(
    file: Path = typer.Argument(..., help="更正后的数据文件（xlsx 或 csv）/ the corrected table"),
    department: str = typer.Option(..., "--department", help="部门代码，如 stats、eco / department id"),
    year: int = typer.Option(..., "--year", help="数据年度 / year of the data"),
    reason: str = typer.Option(..., "--reason", help="更正原因（写入修订说明）/ why it is corrected"),
    data: Optional[Path] = typer.Option(None, "--data", help="数据目录（默认：工作区的 data/）/ data folder"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告输出目录（默认：工作区的 reports/）/ output folder"),
    run_date: Optional[str] = typer.Option(None, "--run-date", help="报告日期 YYYY-MM-DD（默认今天）/ report date"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="报送台账数据库 URL / ledger URL"),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", envvar="TWOMOUNTAINS_DASK_ADDRESS",
                                               help="在已有的 Dask 集群上重新出具报告 / run tasks on this Dask scheduler"),
) -> None:
    """登记部门更正数据并重新评价，只重出内容有变化的报告 / Record a bureau's correction and re-issue what changed.

    设置了 PREFECT_API_URL 时，登记后通知该 Prefect 服务器（事件 twomountains.submission.corrected），
    由部署 correction-rerun 重新评价；否则在本机重新评价。
    """
    from evaluation import operations
    from evaluation.resources import open_ledger, utc_now
    from evaluation.versions import year_lock

    catalogue = _load_catalogue(config_dir)
    if department not in catalogue.sources:
        err.print(f"未知部门：{department}。可选：{'、'.join(sorted(catalogue.sources))}", style="red")
        raise typer.Exit(2)
    if not (1990 <= year <= 2100) or not reason.strip():
        err.print("请给出有效的年度和更正原因（--reason）。", style="red")
        raise typer.Exit(2)
    _check_dask(dask_address)
    _preflight(out, year, len(catalogue.counties) + 1)
    server_url = os.environ.get("PREFECT_API_URL")  # a Prefect server's deployment re-issues, not this process
    if server_url:
        _check_prefect_server(server_url)
    else:
        _start_prefect()  # boots while the correction is checked and recorded
    name = catalogue.departments[department].name
    # The year is held from recording to re-issuing: no run can slip in between.
    with year_lock(out, year, what=f"twomountains correct --department {department} --year {year}"):
        with open_ledger(out, ledger) as book:
            checked, recorded = operations.correct(book, catalogue, department, year, file, reason.strip(), utc_now())
        if recorded is None:  # the file could not even be read: nothing to keep
            err.print(f"{name}《{file.name}》无法读取：{checked.message}", markup=False)
            raise typer.Exit(2)
        if not checked.accepted:
            console.print(checked.message or f"{name}《{file.name}》无法读取。", markup=False, soft_wrap=True)
            err.print("更正文件未通过校验，已记录但未采用；原数据继续有效。", style="red")
            raise typer.Exit(1)
        if recorded.new:
            replaced = f"，取代 {recorded.supersedes[:12]}" if recorded.supersedes else ""
            console.print(f"已登记{name}的更正《{file.name}》（提交编号 {recorded.submission_id[:12]}{replaced}）。")
        else:
            console.print(f"该文件此前已登记（提交编号 {recorded.submission_id[:12]}），不重复记录。")
        if server_url:
            from flows.events import announce_correction

            announce_correction(recorded.submission_id, year, department, checked.file, wait=True)
            console.print(f"已通知 Prefect 服务器 {server_url}：部署 correction-rerun 将重新评价 {year} 年度，"
                          "只重出内容有变化的报告（在 Prefect 界面查看其运行）。", markup=False)
            return
        outcome = _evaluate(year=year, data=data, out=out, run_date=run_date, config_dir=config_dir, ledger=ledger,
                            dask_address=dask_address)
    for code, lines in sorted(outcome.get("revisions", {}).items()):
        console.print(f"{code} 修订说明", style="bold")
        for line in lines:
            console.print(f"  {line}", markup=False, soft_wrap=True)


@app.command()
def distribute(
    year: int = typer.Option(..., "--year", help="评价年度 / year"),
    version: Optional[int] = typer.Option(None, "--version", help="报告版本（默认最新）/ version (default: latest)"),
    channel: str = typer.Option("outbox", "--channel", help="outbox 发件箱（默认）或 email 邮件 / outbox or email"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只列出将发送的内容 / only show what would be sent"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    outbox: Optional[Path] = typer.Option(None, "--outbox", help="发件箱目录（默认 <out>/outbox）/ outbox folder"),
    recipients: Optional[Path] = typer.Option(None, "--recipients", help="收件人配置（默认 config/recipients.yaml）/ recipients file"),
    smtp_secret: Optional[str] = typer.Option(None, "--smtp-secret", help="存放邮件登录信息的 Prefect Secret 名称 / Prefect Secret block with the SMTP login"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
    resend_uncertain: bool = typer.Option(
        False, "--resend-uncertain",
        help="也重新发送“结果不确定”的邮件（请先向收件人核实确未收到）/ also resend the mails whose outcome is unknown"),
) -> None:
    """把评价报告分发给各县区政府和市领导 / Send each county its scorecard and the city leaders the summary.

    \b
    保证：同一发送方式下，每份报告最多送达每位收件人一次；重新运行只发送尚未送达的报告。
    发送结果无法确定的邮件（内容已发出但邮件服务器未确认就断开，或发送中进程被终止）列为“不确定”，
    绝不自动重发：请先向收件人核实，如需重发再加 --resend-uncertain（重发本版全部不确定的邮件）。
    同一版本同时只有一个分发在运行：另一个等待至多 15 秒，仍被占用则不发送。
    发送前先检查邮件服务器，连不上时共尝试 3 次（约 3 秒）后不发送任何报告；
    发送中途服务器无法连接时停止发送其余报告，并说明有几份未尝试。

    Guarantee: each report reaches each recipient at most once per channel; a mail whose
    outcome is unknown is reported as uncertain (不确定) and never resent automatically.
    """
    def stop(message: str, code: int) -> None:
        raise UserError(message, ExitCode(code))  # printed, with its exit code, by _friendly

    from evaluation.distribution.recipients import RecipientsError, load_recipients

    if not (1990 <= year <= 2100):
        stop(f"年度 {year} 不在有效范围（1990–2100）内。", ExitCode.USAGE)
    if channel not in ("outbox", "email"):
        stop(f"未知的发送方式：{channel}（可选：outbox 发件箱、email 邮件）", ExitCode.USAGE)
    catalogue = _load_catalogue(config_dir)  # config and recipients checked before Prefect starts
    try:
        book = load_recipients(catalogue, recipients, config_dir=config_dir)  # the workspace's or --config's
    except RecipientsError as exc:
        stop(str(exc), ExitCode.USAGE)
    if channel == "email":
        if book.smtp is None:
            stop("收件人配置中没有 smtp 设置，无法通过邮件发送。", ExitCode.USAGE)
        if not smtp_secret:
            try:
                book.smtp.credentials()
            except RecipientsError as exc:
                stop(str(exc), ExitCode.USAGE)
    server = _start_prefect()
    with console.status("正在启动 Prefect（本地服务）…"):
        from flows.distribute import distribute_scorecards
        from flows.logs import quiet_console
        if server is not None:
            server.wait_ready()
    quiet_console()
    state = distribute_scorecards(
        year=year, version=version, channel=channel, out_dir=str(out), outbox_dir=str(outbox) if outbox else None,
        ledger_url=ledger, config_dir=str(config_dir) if config_dir else None,
        recipients=str(recipients) if recipients else None, dry_run=dry_run, smtp_secret=smtp_secret,
        resend_uncertain=resend_uncertain, return_state=True)
    outcome = _state_data(state)
    status = outcome.get("status")
    code = int(outcome.get("code") or ExitCode.OK)
    if status == "refused":
        stop(outcome.get("message", ""), code or ExitCode.USAGE)
    if status == "dry-run":
        for line in outcome["lines"]:
            console.print(line, markup=False, soft_wrap=True)
        return
    if "counts" not in outcome:
        stop(f"分发失败：{state.message}", ExitCode.REJECTED)
    counts = outcome["counts"]
    where = "邮件" if channel == "email" else "发件箱"
    if status == "nothing":
        console.print(f"{year} 年第 {outcome['version']} 版（{where}）：没有需要发送的报告，"
                      f"{counts['skipped']} 份均已送达。", markup=False)
        return
    console.print(f"{year} 年第 {outcome['version']} 版（{where}）：送达 {counts['delivered']} 份，"
                  f"此前已送达 {counts['skipped']} 份，失败 {counts['failed']} 份，"
                  f"结果不确定 {counts['uncertain']} 份，未尝试 {counts['not_attempted']} 份。", markup=False, soft_wrap=True)
    labels = {"失败": "未送达", "结果不确定": "结果不确定"}
    for row in outcome["rows"]:
        if row["结果"] in labels:
            err.print(f"  {labels[row['结果']]}：{row['收件人']}《{row['报告']}》：{row['说明']}", markup=False,
                      soft_wrap=True)
    if outcome.get("message"):
        err.print(outcome["message"], markup=False, soft_wrap=True)
    if code:
        raise typer.Exit(code)


def _county_code(catalogue, text: str) -> str:
    """A county's code from its code, full name or short name (武都区, 武都); refused in words when no county or
    more than one (two provinces may both have a 朝阳区) answers to it."""
    text = text.strip()
    matches = sorted({c.code for c in catalogue.counties if text in (c.code, c.name, c.short)})
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"未知县区：{text}（可填县区代码或名称，如 {catalogue.counties[0].code} 或 "
                        f"{catalogue.counties[0].name}）", ExitCode.USAGE)
    named = "、".join(f"{catalogue.county(code).name} {code}" for code in matches[:10])
    raise UserError(f"“{text}”对应多个县区：{named}。请改用县区代码。", ExitCode.USAGE)


def _state_data(state) -> dict:
    """The dict a flow returned, or {"status": "failed", "exception": ...} when it crashed."""
    data = getattr(state, "data", None)
    try:
        value = state.result(raise_on_failure=False)
    except Exception as exc:  # a failed state may hold an exception instead of data
        value = data if isinstance(data, dict) else exc
    if isinstance(value, dict):
        return value
    return {"status": "failed", "exception": value if isinstance(value, BaseException) else None}


def _print_scores(scores: list[dict], config_dir: Optional[Path]) -> None:
    catalogue = _load_catalogue(config_dir)
    table = Table(title="综合得分与排名 / scores and ranks")
    for col in ("排名", "县区", "功能区", "综合得分", "等级", "区内排名"):
        table.add_column(col, overflow="fold")
    for s in scores:
        county = catalogue.county(s["county_code"])
        table.add_row(str(s["rank"]), f"{county.name} {county.code}", catalogue.zone_types[s["zone"]].name,
                      f"{s['overall']:.1f}", s["grade"], str(s["zone_rank"]))
    console.print(table)


@app.command()
def suites(
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
) -> None:
    """由指标目录生成校验规则（GX 套件）/ Regenerate the GX suites from the catalogue."""
    from evaluation.validation import write_suites

    for path in write_suites(_load_catalogue(config_dir)):
        console.print(str(path))


@app.command()
def validate(
    file: Path = typer.Argument(..., help="要校验的数据文件（xlsx 或 csv）/ the table to check"),
    department: Optional[str] = typer.Option(
        None, "--department", help="部门代码，如 stats、eco（默认按文件名中的部门名称判断）/ department id"),
    year: Optional[int] = typer.Option(None, "--year", help="报送年度（默认取文件名中的年份）/ year"),
    html: bool = typer.Option(False, "--html", help="同时在文件旁生成 HTML 校验报告 / also write an HTML report"),
    with_gx: bool = typer.Option(False, "--gx", help="用 Great Expectations 校验（与正式评价同一引擎，多用几秒）/ check with GX"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录，读取上年已采用数据（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="报送台账数据库 URL / ledger URL"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
) -> None:
    """校验一个部门数据表（报送前自查）/ Check a bureau table before sending it.

    退出码 / exit code: 0 通过 accepted, 1 退回 rejected, 2 无法读取 unreadable.
    """
    from evaluation import operations
    from evaluation.validation import name_year

    catalogue = _load_catalogue(config_dir)
    known = "、".join(f"{k}（{d.name}）" for k, d in catalogue.departments.items() if k in catalogue.sources)
    if department is None:
        from evaluation.ingest.drop import bureau_from_name

        department = bureau_from_name(file.name, catalogue)
        if department is None:
            raise UserError(f"从文件名看不出是哪个部门的表，请用 --department 指定。可选：{known}", ExitCode.USAGE)
        console.print(f"按文件名判断为{catalogue.departments[department].name}（{department}）的表。")
    if department not in catalogue.sources:
        err.print(f"未知部门：{department}。可选：{known}", style="red")
        raise typer.Exit(2)
    year = year if year is not None else (name_year(file.name) or 0)
    with _existing_ledger(out, ledger) as book:  # last year's accepted values, when a ledger exists
        # the same suite as the boundary's, evaluated in pandas (precheck.py: a test holds both to the same
        # outcomes), unless --gx asks for GX itself
        from evaluation.validation.precheck import PrecheckGate

        intake = operations.check_file(catalogue, department, year, file, ledger=book if year else None,
                                       gate=None if with_gx else PrecheckGate())
    if intake.report is None:
        console.print(f"{catalogue.departments[department].name}《{file.name}》无法读取：{intake.message}", markup=False,
                      soft_wrap=True)
        raise typer.Exit(2)
    report = intake.report
    console.print(report.summary_zh(), markup=False, highlight=False, soft_wrap=True)
    if html:
        from evaluation.fsutil import atomic_write

        target = file.with_name(file.name + ".校验报告.html")
        atomic_write(target, report.html().encode("utf-8"))  # replaces an existing link, never writes through it
        console.print(f"HTML 校验报告：{target}", markup=False)
    raise typer.Exit(0 if report.accepted else 1)


@contextlib.contextmanager
def _existing_ledger(out: Path, ledger_url: Optional[str]):
    """The ledger when one exists (a check creates none), else None."""
    from evaluation.workspace import LEDGER_ENV

    if not (ledger_url or os.environ.get(LEDGER_ENV) or (out / "ledger" / "ledger.sqlite").is_file()):
        yield None  # and SQLAlchemy is never imported: a bureau's self-check stays quick
        return
    from evaluation.resources import open_ledger

    with open_ledger(out, ledger_url) as book:
        yield book


@app.command()
def index(
    data: Optional[Path] = typer.Option(None, "--data", help="COINr 格式 iData.csv / indicator data"),
    meta: Optional[Path] = typer.Option(None, "--meta", help="COINr 格式 iMeta.csv / indicator metadata"),
    spec: Optional[Path] = typer.Option(None, "--spec", help="方法步骤 spec.yaml / the steps to run"),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", help="已出具版本的 manifest.json：按其中保存的数据与步骤重算综合指数 / recompute a version's index"),
    out: Path = typer.Option(..., "--out", help="结果 CSV / results CSV"),
) -> None:
    """单独运行综合指数引擎（COINr 格式输入，或某一版本的 manifest.json）/ Run the index engine on
    COINr-style tables, or again on what an issued version's manifest kept."""
    from evaluation.exports import write_csv
    from evaluation.index.coin import SpecError, load_coin, load_spec, manifest_inputs, run as run_index
    from evaluation.index.methods import MethodError

    try:
        if manifest is not None:
            coin, steps = manifest_inputs(manifest)
        elif data is None or meta is None or spec is None:
            raise SpecError("请给出 --data、--meta 和 --spec，或给出 --manifest / give --data, --meta and --spec, or --manifest")
        else:
            coin, steps = load_coin(data, meta), load_spec(spec)
        result = run_index(coin, steps)
    except (SpecError, MethodError) as exc:
        err.print(f"{exc}", style="red")
        raise typer.Exit(2) from None
    write_csv(result.results, out)
    top = result.results.head(5)
    console.print(f"{len(result.results)} 个单元，已写入 / units written to {out}"
                  + (f"；筛除 / screened out: {', '.join(result.screened_out)}" if result.screened_out else ""))
    console.print(top.round(2).to_string(index=False), markup=False, highlight=False, soft_wrap=True)
    if result.audit:  # the spec's `audit` step: do the indicators of each group hang together?
        from evaluation.index.audit import FLAG_ZH, flags_table, table

        console.print("统计检验 / statistical audit（Cronbach's alpha；第一主成分方差占比 / first component's share）：")
        console.print(table(result.audit).round(4).to_string(index=False), markup=False, highlight=False,
                      soft_wrap=True)
        for flag in flags_table(result.audit).itertuples():
            console.print(f"  {FLAG_ZH[flag.kind]} / {flag.kind}: {flag.group} · {flag.indicator}"
                          + (f" (r = {flag.value:.3f})" if flag.value == flag.value else ""), markup=False,
                          highlight=False, soft_wrap=True)


@app.command()
def template(
    department: str = typer.Option(..., "--department", help="部门代码，如 stats、eco / department id"),
    year: int = typer.Option(..., "--year", help="填报年度 / year"),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output",
        help="输出的 xlsx 文件（默认：当前目录下报送目录要求的文件名）/ output .xlsx (default: the drop folder's name)"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
) -> None:
    """生成部门数据填报表（xlsx）/ Write a bureau's submission form."""
    from evaluation.ingest.forms import make_form

    catalogue = _load_catalogue(config_dir)
    if department not in catalogue.departments:
        known = "、".join(f"{k}（{d.name}）" for k, d in catalogue.departments.items())
        err.print(f"未知部门：{department}。可选：{known}", style="red")
        raise typer.Exit(2)
    source = catalogue.sources.get(department)
    expected = source.file_name(year) if source is not None and source.kind == "folder" else ""
    if output is None:
        output = Path(expected or f"{catalogue.departments[department].name}_{int(year)}年填报表.xlsx")
    if output.suffix.lower() != ".xlsx":
        err.print("输出文件名须以 .xlsx 结尾。", style="red")
        raise typer.Exit(2)
    if not output.parent.is_dir():
        err.print(f"目录不存在：{output.parent}", style="red")
        raise typer.Exit(2)
    from evaluation.fsutil import atomic_write

    atomic_write(output, make_form(catalogue, department, year))
    console.print(f"已生成 {catalogue.departments[department].name} {year} 年度填报表：{output}")
    if expected and output.name != expected:
        console.print(f"注意：放入报送目录时，文件名须为“{expected}”。")


@app.command()
def history(
    year: Optional[int] = typer.Option(None, "--year", help="评价年度 / year"),
    county: Optional[str] = typer.Option(None, "--county", help="县区代码或名称，列出该县区每个数据的来源 / county code or name"),
    audit: bool = typer.Option(False, "--audit", help="列出报送门户的操作记录（谁、做了什么、何时、从哪里）/ the portal's audit trail"),
    limit: int = typer.Option(200, "--limit", help="--audit 列出的条数 / audit lines shown"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="报送台账数据库 URL / ledger URL"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
) -> None:
    """报送记录、报告版本与数据来源 / Submissions, report versions and where each figure came from."""
    from evaluation import operations, versions
    from evaluation.resources import open_deliveries, open_ledger

    if audit:
        _print_audit(out, ledger, limit)
        return
    if year is None:
        raise UserError("请用 --year 给出年度（或用 --audit 列出门户操作记录）。", ExitCode.USAGE)

    catalogue = _load_catalogue(config_dir)
    if county is not None:
        county = _county_code(catalogue, county)
    issued = bool(versions.versions(out, year))  # the delivery ledger is opened (and made) only once there is one
    with open_ledger(out, ledger) as book, (open_deliveries(out, ledger) if issued else contextlib.nullcontext()) as sent:
        found = operations.history(book, sent, out, year, county)
    dept_name = {k: d.name for k, d in catalogue.departments.items()}
    table = Table(title=f"{year} 年度报送记录 / submissions")
    for col in ("部门", "文件", "提交编号", "接收时间", "状态", "说明"):
        table.add_column(col, overflow="fold")
    status_zh = {"accepted": "已采用", "rejected": "校验未通过", "unreadable": "无法读取"}
    for s in found.submissions:
        state = status_zh.get(s["status"], s["status"])
        note = []
        if s["superseded_by"]:
            state = "已被更正"
            note.append(f"被 {s['superseded_by'][:12]} 取代")
        if s["supersedes"]:
            note.append(f"取代 {s['supersedes'][:12]}")
        table.add_row(dept_name.get(s["department"], s["department"]), s["original_name"], s["id"][:12],
                      _local_time(s["received_at"]), state, "；".join(note))
    console.print(table if found.submissions else f"{year} 年度台账中没有报送记录。")
    _print_versions(found, county, catalogue)
    facts = found.facts
    if facts is not None:
        name = catalogue.county(county).name
        if facts.empty:
            console.print(f"{name}（{county}）{year} 年度台账中没有已采用的数据。")
            return
        var_name = {v.id: v.name for v in catalogue.variables.values()}
        ind_name = {i.id: i.name for i in catalogue.indicators}
        console.print(f"\n{name}（{county}）{year} 年度数据来源 / provenance", style="bold")
        for sid, group in facts.groupby("submission_id", sort=False):
            first = group.iloc[0]
            sheet = f"工作表“{first['sheet']}”" if first["sheet"] else "CSV"
            console.print(f"{dept_name.get(first['department'], first['department'])}《{first['original_name']}》"
                          f" {sheet}，接收于 {_local_time(first['received_at'])}\n"
                          f"  提交编号 {sid[:12]}，文件 sha256 {first['sha256']}")
            t = Table(show_header=True, box=None, pad_edge=False)
            for col in ("数据项", "数值", "单位", "行", "用于指标"):
                t.add_column(col)
            for f in group.itertuples():
                t.add_row(var_name.get(f.variable_id, f.variable_id), "—" if f.value is None or f.value != f.value else f"{f.value:g}",
                          f.unit, str(f.row), "、".join(ind_name[i] for i in catalogue.feeds(f.variable_id)) or "—")
            console.print(t)
        if catalogue.gep is not None:
            console.print("注：标为“人均GEP”“GEP增速”“生态产品价值实现率”的数据项是GEP核算账户的实物量与价格，"
                          "各核算项目的价值见评价工作簿“GEP核算账户”表。")


def _print_audit(out: Path, ledger: Optional[str], limit: int) -> None:
    with _accounts(out, ledger) as book:
        lines = book.audit_lines(limit=max(1, min(limit, 100000)))
    if not lines:
        console.print("没有门户操作记录。")
        return
    from evaluation.accounts import ACTIONS_ZH, OUTCOMES_ZH

    table = Table(title="报送门户操作记录（最新在前）/ audit trail")
    for col in ("时间", "账户", "操作", "对象", "结果", "来源地址", "说明"):
        table.add_column(col, overflow="fold")
    for a in lines:
        table.add_row(_local_time(a["at"]), a["actor"], ACTIONS_ZH.get(a["action"], a["action"]), a["target"],
                      OUTCOMES_ZH.get(a["outcome"], a["outcome"]),
                      a["address"], a["detail"][:120])
    console.print(table)


def _print_versions(found, county: Optional[str], catalogue) -> None:
    """Each issued version: what it re-issued, why, and (once distributed) what was delivered."""
    if not found.versions:
        console.print(f"{found.year} 年度尚未出具报告。")
        return
    dept_name = {k: d.name for k, d in catalogue.departments.items()}
    table = Table(title=f"{found.year} 年度报告版本 / versions")
    for col in ("版本", "日期", "重新出具", "沿用", "更正的数据", "已送达"):
        table.add_column(col, overflow="fold")
    for v in found.versions:
        changed = "、".join(dept_name.get(d, d) for d in v.changed)
        table.add_row(f"v{v.version}", v.run_date, str(v.renewed), str(v.carried),
                      changed or ("首次出具" if v.first else "—"), f"{v.delivered}/{v.reports}")
    console.print(table)
    if county is None:
        return
    name = catalogue.county(county).name
    console.print(f"\n{name}（{county}）各版本 / its report in each version", style="bold")
    for r in found.reports:
        sent = "；".join(f"{d['channel']} {d['recipient_id']} {_local_time(d['delivered_at'] or '')}" for d in r.deliveries)
        state = "本版重新出具" if r.edition == r.version else f"沿用第{r.edition}版"
        console.print(f"v{r.version}：{state}，sha256 {r.sha256[:12]}，送达：{sent or '未送达'}", markup=False)
        for line in r.revision:
            console.print(f"  {line}", markup=False, soft_wrap=True)


def _local_time(iso: str) -> str:
    from evaluation.resources import local_time

    return local_time(iso)


users_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="报送门户账户管理 / portal accounts.")
app.add_typer(users_app, name="users")


def _accounts(out: Path, ledger: Optional[str]):
    from evaluation.accounts import Accounts

    return Accounts.at(out, ledger)


def _audit_cli(action: str, target: str, out: Path, ledger: Optional[str], detail: str = "") -> None:
    import getpass

    from evaluation.resources import utc_now

    with _accounts(out, ledger) as book:
        book.audit(f"cli:{getpass.getuser()}", action, now=dt.datetime.fromisoformat(utc_now()), target=target,
                   address="localhost", detail=detail)


def _password(given: Optional[str]) -> str:
    if given:
        return given
    if not sys.stdin.isatty():  # a script pipes it in: the first line
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("密码（至少 10 个字符）", hide_input=True, confirmation_prompt="再输入一次")


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="用户名（英文字母、数字、_ . -）/ user name"),
    role: str = typer.Option(..., "--role", help="bureau 部门填报人员、analyst 分析人员、admin 系统管理员"),
    department: Optional[str] = typer.Option(None, "--department", help="部门代码（bureau 账户必填），如 stats、eco"),
    name: str = typer.Option("", "--name", help="姓名 / display name"),
    password: Optional[str] = typer.Option(None, "--password", help="初始密码（省略则提示输入，或从标准输入读取一行）"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录，账户保存在其台账中（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
) -> None:
    """新建门户账户 / Add a portal account."""
    from evaluation.accounts import AccountError

    catalogue = _load_catalogue(config_dir)
    departments = {k: d.name for k, d in catalogue.departments.items() if k in catalogue.sources}
    try:
        with _accounts(out, ledger) as book:
            made = book.add(username, _password(password), role, now=dt.datetime.now(dt.timezone.utc),
                            department=department, display_name=name, departments=departments)
    except AccountError as exc:
        raise UserError(str(exc), ExitCode.USAGE) from None
    _audit_cli("account-add", made.username, out, ledger, f"{made.role} {made.department or ''}")
    where = f"，部门：{departments[made.department]}" if made.department else ""
    console.print(f"已创建账户 {made.username}（{made.role_name}{where}）。")


@users_app.command("list")
def users_list(
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
) -> None:
    """列出门户账户 / List portal accounts."""
    with _accounts(out, ledger) as book:
        users = book.list()
    if not users:
        console.print("还没有门户账户。用 twomountains users add 创建。")
        return
    table = Table(title="门户账户 / accounts")
    for col in ("用户名", "姓名", "角色", "部门", "状态", "创建时间"):
        table.add_column(col, overflow="fold")
    for u in users:
        table.add_row(u.username, u.display_name, u.role_name, u.department or "全部", "启用" if u.active else "已停用",
                      _local_time(u.created_at))
    console.print(table)


def _change(username: str, out: Path, ledger: Optional[str], action: str, change) -> None:
    from evaluation.accounts import AccountError

    try:
        with _accounts(out, ledger) as book:
            change(book)
    except AccountError as exc:
        raise UserError(str(exc), ExitCode.USAGE) from None
    _audit_cli(action, username, out, ledger)


@users_app.command("disable")
def users_disable(
    username: str = typer.Argument(..., help="用户名 / user name"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
) -> None:
    """停用账户（立即退出所有会话）/ Disable an account."""
    _change(username, out, ledger, "account-disable", lambda book: book.set_active(username, False))
    console.print(f"已停用账户 {username}。")


@users_app.command("enable")
def users_enable(
    username: str = typer.Argument(..., help="用户名 / user name"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
) -> None:
    """重新启用账户 / Enable an account again."""
    _change(username, out, ledger, "account-enable", lambda book: book.set_active(username, True))
    console.print(f"已启用账户 {username}。")


@users_app.command("reset-password")
def users_reset_password(
    username: str = typer.Argument(..., help="用户名 / user name"),
    password: Optional[str] = typer.Option(None, "--password", help="新密码（省略则提示输入，或从标准输入读取一行）"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
) -> None:
    """重置密码（解除登录锁定，原有会话失效）/ Reset a password."""
    new = _password(password)
    _change(username, out, ledger, "account-reset-password", lambda book: book.reset_password(username, new))
    console.print(f"已重置 {username} 的密码；该账户原有的登录会话已失效。")


@app.command()
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="监听地址 / address to listen on"),
    port: int = typer.Option(8000, "--port", help="端口 / port"),
    data: Optional[Path] = typer.Option(None, "--data", help="数据目录（默认：工作区的 data/）/ data folder"),
    out: Optional[Path] = typer.Option(None, "--out", help="报告目录（默认：工作区的 reports/）/ report folder"),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="台账数据库 URL / ledger URL"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
    max_upload_mb: int = typer.Option(20, "--max-upload-mb", help="上传文件大小上限（MB）/ upload limit"),
    session_hours: float = typer.Option(8, "--session-hours", help="登录有效时长（小时）/ session lifetime"),
    year: Optional[int] = typer.Option(None, "--year", help="页面默认年度（默认：台账中最近的年度）/ default year"),
    secure_cookies: bool = typer.Option(False, "--secure-cookies",
                                        help="只经 HTTPS 发送登录凭据（门户在 HTTPS 反向代理之后时使用）/ behind HTTPS"),
) -> None:
    """启动数据报送门户（网页）/ Start the bureaus' web portal."""
    import uvicorn

    from web.app import Settings, create_app

    _load_catalogue(config_dir)
    if not (1 <= max_upload_mb <= 1024) or not (0 < session_hours <= 24 * 7):
        raise UserError("--max-upload-mb 须在 1–1024 之间，--session-hours 须在 0–168 之间。", ExitCode.USAGE)
    settings = Settings(data_dir=data.resolve(), out_dir=out.resolve(), config_dir=config_dir, ledger_url=ledger,
                        max_upload_bytes=max_upload_mb * 2**20, session_seconds=int(session_hours * 3600),
                        prefect_api_url=os.environ.get("PREFECT_API_URL"), year=year, secure_cookies=secure_cookies)
    application = create_app(settings)
    with _accounts(out, ledger) as book:
        if not book.list():
            err.print("提示：还没有门户账户。请先创建，例如：twomountains users add admin --role admin", style="yellow")
    console.print(f"数据报送门户 / portal: http://{host}:{port}/  （Ctrl-C 停止）")
    uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=False)


def _from_workspace(kwargs: dict) -> None:
    """Fill the folders and ledger a command was not given from the workspace (evaluation/workspace.py)."""
    wanted = [k for k in ("data", "out", "config_dir", "ledger") if k in kwargs and kwargs[k] is None]
    if not wanted:
        return
    from evaluation.catalogue import default_config_dir
    from evaluation.workspace import find

    ws = find()
    found = {"data": ws.data, "out": ws.reports, "ledger": ws.ledger,
             # the bundled catalogue stays "no --config", as before
             "config_dir": ws.config if ws.config and ws.config != default_config_dir().resolve() else None}
    for key in wanted:
        kwargs[key] = found[key]


def _friendly(command):
    """Wrap a command so a failure the user can fix ends as one sentence and its exit code."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            if command is not index:  # index's --data and --out are its own files, not the workspace's
                _from_workspace(kwargs)
            return command(*args, **kwargs)
        except (UserError, OSError) as exc:
            found = find_user_error(exc)
            if found is None:
                raise
            err.print(found.message, style="red")
            raise typer.Exit(int(found.code)) from None

    return wrapper


for _command in [*app.registered_commands, *users_app.registered_commands]:
    _command.callback = _friendly(_command.callback)
    _command.epilog = _command.epilog or exit_codes_help()
    # the command list shows the Chinese half of each summary, whole (click would cut the pair with "...")
    _command.short_help = _command.short_help or re.split(r"\s*/\s", (_command.callback.__doc__ or "").strip().split("\n")[0])[0]


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM. A BaseException of our own, so that nothing on the way (click turns a
    KeyboardInterrupt into "Aborted!" and exit 1) swallows it before the children are stopped."""


def _on_signal(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def _watch_signals() -> None:
    """Whoever's handler receives Ctrl-C or SIGTERM (ours, or the one Prefect installs while a flow runs,
    which may turn it into a crash we never see), the process ends within INTERRUPT_GRACE seconds:
    the C-level handler writes every signal to the wake-up pipe, and this thread starts the clock."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    stops = {int(signal.SIGINT), int(signal.SIGTERM)}

    def watch() -> None:
        while not stops.intersection(os.read(read, 64)):
            pass
        timer = threading.Timer(INTERRUPT_GRACE, _give_up)
        timer.daemon = True
        timer.start()

    threading.Thread(target=watch, name="twomountains-signals", daemon=True).start()


_WATCH = None  # the ChildWatch of this command, for the signal handler
INTERRUPTED_ZH = "已中断：已停止本次运行启动的进程；已出具的版本不受影响，未完成的版本会在下次运行时清除 / interrupted"
INTERRUPT_GRACE = 5.0  # seconds the code on the stack gets to unwind after Ctrl-C or SIGTERM


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(int(code))


def _give_up() -> None:
    """Unwinding after an interruption takes too long (a task still running): stop everything and leave."""
    if _WATCH is not None:
        _WATCH.stop_children()
    err.print(INTERRUPTED_ZH)
    _exit_now(ExitCode.INTERRUPTED)


def main() -> None:  # pragma: no cover - console-script entry (tests run it as a real process)
    from flows.processes import ChildWatch, reap_orphans

    stopped = reap_orphans()
    if stopped:
        err.print(f"已停止上次被强行终止的运行遗留的 {len(stopped)} 个进程（{'、'.join(map(str, stopped))}）。")
    global _WATCH
    watch = _WATCH = ChildWatch().start()
    threading.excepthook = _thread_failed  # a failing background thread: its traceback goes to the log file
    atexit.register(watch.stop_children)  # registered before Prefect's: runs after its own shutdown
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    _watch_signals()
    code = ExitCode.OK
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Interrupted:
        # Stop what this run started (render workers, Prefect's temporary server) and leave at once:
        # Prefect's exit handlers would wait on the server that has just been stopped.
        watch.stop_children()
        err.print(INTERRUPTED_ZH)
        _exit_now(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a sentence on screen, the traceback in the log file
        found = find_user_error(exc)
        if found is not None:
            err.print(found.message, style="red")
            code = found.code
        else:
            code = _unexpected(exc)
    # Leave as soon as the exit handlers (Prefect's last events and logs, the server's stop) have run:
    # the interpreter's own teardown of pandas, Prefect and friends took another 2 s.
    _drain_prefect()
    atexit._run_exitfuncs()
    _exit_now(code)


def _drain_prefect(timeout: float = 5.0) -> None:
    """Send Prefect's last logs and events before the exit handlers stop the temporary server. Prefect drains
    them from threading's exit hooks, which a process leaving through os._exit never runs; its log worker then
    raced the server's stop and printed "--- Error logging to API ---" after a clean run."""
    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=timeout)
    except Exception:  # noqa: BLE001 - leaving anyway; what was not sent is in the log file
        pass


def _thread_failed(args) -> None:
    import logging

    from flows.logs import file_handler

    handler = file_handler()
    if handler is not None and args.exc_value is not None:
        logger = logging.getLogger("twomountains")
        if handler not in logger.handlers:
            logger.addHandler(handler)
        logger.error("uncaught in thread %s", getattr(args.thread, "name", "?"),
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def _unexpected(exc: BaseException) -> int:
    """A failure nobody foresaw: one sentence here, the traceback in the log file for the maintainers."""
    import logging

    from flows.logs import file_handler, log_file

    handler = file_handler()
    if handler is not None:
        logger = logging.getLogger("twomountains")
        logger.addHandler(handler)
        logger.error("unexpected failure", exc_info=exc)
        handler.flush()
    where = f"详细信息已写入 {log_file()}，请把该文件发给系统维护人员" if handler is not None else "无法写入日志文件"
    err.print(f"运行出错（{type(exc).__name__}：{str(exc)[:200]}）。{where}。已出具的版本不受影响。", style="red")
    return int(ExitCode.REJECTED)


if __name__ == "__main__":  # pragma: no cover
    main()

"""The `twomountains` command line. 两山转化绩效评价命令行工具。"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="“两山”转化绩效评价 / Two-mountains conversion performance evaluation.",
)
console = Console()
err = Console(stderr=True)

REPO = Path(__file__).resolve().parent.parent


def _load_catalogue(config_dir: Optional[Path]):
    from evaluation.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue(config_dir)
    except CatalogueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def run(
    year: int = typer.Option(..., "--year", help="评价年度 / evaluation year"),
    data: Path = typer.Option(REPO / "data" / "sample", "--data", help="数据目录（含 <年度>/ 子目录）/ data folder"),
    out: Path = typer.Option(REPO / "reports", "--out", help="报告输出目录 / output folder"),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete",
                                          help="数据不完整时仍出具临时报告 / issue provisional reports"),
    run_date: Optional[str] = typer.Option(None, "--run-date", help="报告日期 YYYY-MM-DD（默认今天）/ report date"),
    config_dir: Optional[Path] = typer.Option(None, "--config", help="配置目录 / config folder"),
) -> None:
    """运行年度评价并出具评价报告 / Run the annual evaluation and issue scorecards."""
    if not (1990 <= year <= 2100):
        err.print(f"[red]年度 {year} 不在有效范围（1990–2100）内。[/red]")
        raise typer.Exit(2)
    if run_date is not None:
        try:
            dt.date.fromisoformat(run_date)
        except ValueError:
            err.print(f"[red]--run-date 必须是 YYYY-MM-DD 格式，收到：{run_date}[/red]")
            raise typer.Exit(2) from None
    if not data.is_dir():
        err.print(f"[red]数据目录不存在：{data}[/red]")
        raise typer.Exit(2)
    _load_catalogue(config_dir)  # fail fast, with a clear message, before Prefect starts

    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with console.status("正在启动 Prefect（本地临时模式）…"):
        from flows.annual import annual_evaluation
    state = annual_evaluation(
        year=year, data_dir=str(data), out_dir=str(out), run_date=run_date,
        allow_incomplete=allow_incomplete, config_dir=str(config_dir) if config_dir else None,
        return_state=True,
    )
    outcome = _state_data(state)
    status = outcome.get("status")
    if status == "refused":
        err.print("[red]数据不完整，未出具评价报告：[/red]")
        for line in outcome.get("problems", []):
            err.print(f"  - {line}")
        err.print("如确需先出具临时报告，请加 --allow-incomplete（报告将标注“未完整（临时）”）。")
        raise typer.Exit(1)
    if status not in ("issued", "unchanged"):
        err.print(f"[red]评价运行失败：{state.message}[/red]")
        raise typer.Exit(1)
    folder = Path(outcome["folder"])
    if status == "unchanged":
        console.print(f"没有变化：输入数据、配置和程序均未变化，沿用第 {outcome['version']} 版。")
    else:
        _print_scores(outcome.get("scores", []), config_dir)
        if outcome.get("incomplete"):
            console.print("[yellow]注意：数据不完整，报告已标注“未完整（临时）”。[/yellow]")
    console.print(f"报告目录 / reports: [bold]{folder}[/bold] （{len(outcome['files'])} 个 PDF + manifest.json）")


def _state_data(state) -> dict:
    data = getattr(state, "data", None)
    try:
        value = state.result(raise_on_failure=False)
    except Exception:  # a failed state may hold an exception instead of data
        value = data
    if isinstance(value, dict):
        return value
    return {"status": "failed"}


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


def main() -> None:  # pragma: no cover - console-script entry
    try:
        app()
    except KeyboardInterrupt:
        err.print("已中断 / interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()

"""Faults a user can cause, met with real processes, mounts and signals: each ends in one Chinese sentence
and its exit code, never a traceback, and nothing is left running or half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from evaluation.ingest import Received
from evaluation.ledger import Ledger
from tests.conftest import REPO, SAMPLE, prefect_home


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A Prefect home for the CLI processes of this module (its database copied when `make setup` made one)."""
    return prefect_home(tmp_path_factory.mktemp("prefect-home"))


def _env(home: Path, api_url: str | None = None) -> dict:
    """Each CLI starts its temporary server, unless `api_url` names a running one."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "200",
            **({"PREFECT_API_URL": api_url} if api_url else {})}


def _cli(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=_env(home), timeout=timeout)


def _invoke(*args: str):
    """The CLI in this process (for commands that start no Prefect): its result, exception checked."""
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def _popen(*args: str, home: Path, log: Path, api_url: str | None = None) -> subprocess.Popen:
    """A CLI process writing to `log` (a pipe nobody reads would fill up and stall it)."""
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=REPO, env=_env(home, api_url), start_new_session=True)


def _output(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


# 2021: the sample's first year, so a run has no earlier years to take into the ledger first (quicker)
YEAR = "2021"


def _run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--year", YEAR, "--data", str(SAMPLE), "--out", str(out), "--run-date", "2022-03-01", *extra]


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and "Error:" not in text.replace("ERROR", ""), text[-3000:]


def _mount(*args: str) -> None:
    try:
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"this machine does not allow mounting ({exc}); the test needs a real tmpfs or bind mount")


# -- concurrent runs ---------------------------------------------------------------


def test_two_runs_at_once_on_a_fresh_folder(prefect_harness, home, tmp_path):
    """Defect: two `run`s at once on a fresh folder ended in an IntegrityError traceback (in the ledger). Both
    report to the session's Prefect server, as two analysts' runs would to a deployed one."""
    from prefect.settings import PREFECT_API_URL

    sys.path.insert(0, str(REPO / "benchmarks"))
    import national

    # three synthetic counties: the race is over the ledger and the version, not over how much there is to render
    config, data = national.make(tmp_path / "synthetic", 3)
    out = tmp_path / "reports"
    args = ["run", "--year", YEAR, "--data", str(data), "--config", str(config), "--out", str(out),
            "--run-date", "2022-03-01"]
    logs = [tmp_path / f"run{i}.log" for i in range(2)]
    procs = [_popen(*args, home=home, log=log, api_url=PREFECT_API_URL.value()) for log in logs]
    for p in procs:
        p.wait(timeout=400)
    outputs = [_output(log) for log in logs]
    codes = sorted(p.returncode for p in procs)
    for text in outputs:
        assert "Traceback" not in text and "IntegrityError" not in text, text[-3000:]
    assert codes in ([0, 0], [0, 3]), outputs
    if codes == [0, 3]:
        refused = outputs[[p.returncode for p in procs].index(3)]
        assert f"{YEAR} 年度正被进程" in refused and "请等它结束后再试" in refused
    assert sorted(p.name for p in (out / YEAR).iterdir() if p.name.startswith("v")) == ["v1"]
    with Ledger.at(out) as ledger:
        assert ledger.verify() == []


# -- the reports folder ------------------------------------------------------------


def test_a_read_only_reports_folder_is_refused_in_words(home, tmp_path):
    """Defect: a read-only reports folder ended in an OSError traceback."""
    source, target = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    _mount("--bind", "-o", "ro", str(source), str(target))
    try:
        proc = _cli(*_run_args(target / "reports"), home=home, timeout=120)
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, timeout=30)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "文件系统是只读的" in proc.stderr and "--out" in proc.stderr
    _no_traceback(proc.stdout + proc.stderr)


def test_a_nearly_full_disk_is_refused_before_anything_runs(home, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount))
    try:
        started = time.monotonic()
        proc = _cli(*_run_args(mount / "reports"), home=home, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, timeout=30)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "磁盘空间不足" in proc.stderr and "约需" in proc.stderr
    assert elapsed < 30  # refused before Prefect starts
    _no_traceback(proc.stdout + proc.stderr)


def test_a_disk_that_fills_up_mid_run_ends_in_a_sentence(prefect_harness, tmp_path):
    """The flow itself (no preflight) on a 3 MB tmpfs: whichever write fails first, the run ends as a
    refusal with exit code 5, and no version folder appears."""
    from tests.flowtools import run_flow

    mount = tmp_path / "tiny"
    mount.mkdir()
    _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount))
    try:
        state, result = run_flow(year=int(YEAR), data_dir=str(SAMPLE), out_dir=str(mount / "reports"))
        versions_made = sorted(p.name for p in (mount / "reports" / YEAR).glob("v*"))
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, timeout=30)
    assert not state.is_completed()
    assert result["status"] == "error" and result["code"] == 5, result
    assert "磁盘空间不足" in result["message"]
    assert versions_made == []


def test_stray_version_folders(prefect_harness, tmp_path):
    """Defect: an empty stray `v1/` blocked every later run with FileExistsError. Now an empty one is
    removed; one with content is left alone and named in the refusal (exit code 6)."""
    from tests.flowtools import run_flow

    out = tmp_path / "reports"
    (out / YEAR / "v1").mkdir(parents=True)
    state, result = run_flow(year=int(YEAR), data_dir=str(SAMPLE), out_dir=str(out))
    assert state.is_completed(), state.message
    assert result["status"] == "issued" and result["version"] == 1
    assert (out / YEAR / "v1" / "manifest.json").is_file()

    stray = out / YEAR / "v2"
    stray.mkdir()
    (stray / "草稿.txt").write_text("某人的草稿", encoding="utf-8")
    state, result = run_flow(year=int(YEAR), data_dir=str(SAMPLE), out_dir=str(out))
    assert result["status"] == "error" and result["code"] == 6, result
    assert str(stray) in result["message"] and "不会删除它" in result["message"]
    assert (stray / "草稿.txt").read_text(encoding="utf-8") == "某人的草稿"


# -- processes ---------------------------------------------------------------------


def _record(home: Path, pid: int) -> dict:
    path = home / "twomountains-run" / f"{pid}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _alive(entry: dict) -> bool:
    try:
        return abs(psutil.Process(entry["pid"]).create_time() - entry["created"]) < 0.01
    except psutil.Error:
        return False


def _wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_kill_9_leaves_no_orphans_and_nothing_writes_after_it(home, tmp_path):
    """Defect: after `kill -9` of a run, Prefect's temporary server and the render workers (about 900 MB)
    kept running, and the workers went on writing into the staging folder."""
    out = tmp_path / "reports"
    proc = _popen(*_run_args(out), home=home, log=tmp_path / "run.log")
    staging = out / YEAR / ".v1.partial"
    try:
        assert _wait_for(lambda: any(staging.glob("*.pdf")) if staging.is_dir() else False, 240), "no rendering seen"
        children = _record(home, proc.pid).get("children", [])
        assert len(children) >= 3  # the temporary server and at least two render workers
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    workers = [c for c in children if "uvicorn" not in " ".join(_cmdline(c))]
    assert _wait_for(lambda: not any(_alive(c) for c in workers), 10), "render workers outlived their run"
    before = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
    time.sleep(2)
    after = sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
    assert before == after  # nothing writes into the staging folder after its run died

    nxt = _cli("history", "--year", YEAR, "--out", str(out), home=home, timeout=120)
    assert nxt.returncode == 0, nxt.stderr
    assert "已停止上次被强行终止的运行遗留的" in nxt.stderr
    assert not any(_alive(c) for c in children)


def _cmdline(entry: dict) -> list[str]:
    try:
        return psutil.Process(entry["pid"]).cmdline()
    except psutil.Error:
        return []


def test_an_interrupted_run_stops_its_server_and_workers(home, tmp_path):
    """SIGTERM and Ctrl-C (SIGINT), each to a run of its own, at the same time: both stop their temporary
    server and render workers, forget their pid record and exit 130 with a sentence. Ctrl-C goes to the
    whole process group, as a terminal sends it: no worker or server prints a traceback of its own."""
    procs = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        log = tmp_path / f"{signum.name}.log"
        procs[signum] = (_popen(*_run_args(tmp_path / signum.name), home=home, log=log), log)
    try:
        for signum, (proc, _) in procs.items():
            assert _wait_for(lambda: len(_record(home, proc.pid).get("children", [])) >= 3, 240), "no workers seen"
        children = {signum: _record(home, proc.pid)["children"] for signum, (proc, _) in procs.items()}
        started = time.monotonic()
        procs[signal.SIGTERM][0].send_signal(signal.SIGTERM)
        os.killpg(procs[signal.SIGINT][0].pid, signal.SIGINT)  # the terminal's Ctrl-C
        for proc, _ in procs.values():
            proc.wait(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
    for signum, (proc, log) in procs.items():
        text = _output(log)
        assert proc.returncode == 130, (signum, text[-3000:])
        assert "已中断" in text and "Traceback" not in text, text[-3000:]
        assert _wait_for(lambda: not any(_alive(c) for c in children[signum]), 10), signum
        assert not (home / "twomountains-run" / f"{proc.pid}.json").exists()
    assert elapsed < 30


# -- text from bureaus and config --------------------------------------------------


def test_console_markup_in_bureau_text_is_printed_as_written(catalogue, tmp_path):
    """Defect: rich console markup in a bureau's text ("[/]") crashed the CLI."""
    out = tmp_path / "reports"
    data = (SAMPLE / "2023" / "统计局_2023年主要经济指标.xlsx").read_bytes()
    received = Received("stats", 2023, "folder", "x", "统计局[/]_2023年[bold].xlsx", data, "xlsx")
    from evaluation.ingest import parse

    sub = parse(received, catalogue.sources["stats"], catalogue)
    sub.sheet = "主要[/red]指标"
    with Ledger.at(out) as ledger:
        ledger.record(received, status="accepted", received_at="2024-02-01T00:00:00+00:00",
                      facts=sub.facts(catalogue).assign(sheet="主要[/red]指标"))
    result = _invoke("history", "--year", "2023", "--county", "621202", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "统计局[/]_2023年[bold].xlsx" in result.stdout and "主要[/red]指标" in result.stdout
    _no_traceback(result.output)


def test_history_takes_a_county_by_name_as_well_as_by_code(tmp_path):
    out = tmp_path / "reports"
    for spelling in ("621202", "武都区", "武都"):
        result = _invoke("history", "--year", "2023", "--county", spelling, "--out", str(out))
        assert result.exit_code == 0, result.output
        assert "武都区（621202）2023 年度" in result.stdout
    result = _invoke("history", "--year", "2023", "--county", "朝阳区", "--out", str(out))
    assert result.exit_code == 2 and "未知县区：朝阳区" in result.output
    _no_traceback(result.output)


def _config_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    text = (config / name).read_text(encoding="utf-8")
    assert old in text, old
    (config / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return config


BROKEN_CONFIGS = [
    ("zones.yaml", "eco_priority: {A: 0.35", "eco_priority: {A: .inf",
     "zones.yaml weight_sets.eco_priority.A: 必须是有限的数值（不能是 .inf、.nan）"),
    ("indicators.yaml", "goalposts: [40, 80]", "goalposts: [40, .inf]",
     "indicators.yaml indicators.0.goalposts.1: 必须是有限的数值"),
    ("zones.yaml", "  agri_priority:", "  eco_priority: {A: 0.2, B: 0.2, C: 0.2, D: 0.2, E: 0.2}\n  agri_priority:",
     "found duplicate key 'eco_priority'"),
    ("zones.yaml", "eco_priority: {A: 0.35, B: 0.30", "eco_priority: {A: 1.35, B: -0.70",
     "zones.yaml weight_sets.eco_priority.A: 超过允许的上限"),
    ("indicators.yaml", "goalposts: [40, 80]", "goalposts: [40, 800]",
     "indicator eqi: goalposts [40.0, 800.0] lie outside the plausible range [0.0, 100.0] of variable eqi"),
    ("zones.yaml", "name: 武都区", "name: ../../武都区", "zones.yaml counties.0.name: 含有不允许的字符"),
    ("zones.yaml", "name: 武都区", "name: '$\\frac{武都$'", "zones.yaml counties.0.name: 含有不允许的字符"),
    ("zones.yaml", "weight_set: eco_priority", "weight_set: '[/]'", "（值：[/]）"),
    ("sources.yaml", 'pattern: "统计局_{year}年主要经济指标.xlsx"', "pattern: '{year.__class__}.xlsx'",
     "sources.yaml sources.stats.pattern: 含有不允许的字符"),
    ("method.yaml", "years_back: 2", "years_back: 40", "method.yaml method.years_back: 超过允许的上限（不超过 10）"),
]


@pytest.mark.parametrize("name,old,new,message", BROKEN_CONFIGS,
                         ids=["inf-weight", "inf-goalpost", "duplicate-key", "weight-range", "goalposts-range",
                              "path-in-name", "mathtext-name", "markup-in-config", "format-in-pattern",
                              "years-back-range"])
def test_nonsense_config_is_refused_with_a_sentence(tmp_path, name, old, new, message):
    """Defect: `weight: .inf` or goalposts `[40, .inf]` were accepted (and printed 第-9223372036854775808名),
    a duplicate YAML key silently replaced a weight set, and a county name with `../` wrote a PDF outside
    the version folder."""
    config = _config_with(tmp_path, name, old, new)
    result = _invoke(*_run_args(tmp_path / "reports", "--config", str(config)))
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    _no_traceback(result.stdout + result.stderr)
    assert not (tmp_path / "reports" / YEAR).exists()


def test_report_names_never_leave_their_folder(catalogue, tmp_path):
    from evaluation.fsutil import child
    from evaluation.pipeline import PlannedReport, render_one

    for bad in ("../621202_x.pdf", "sub/621202.pdf", ".621202.pdf", "621202_\n.pdf"):
        with pytest.raises(ValueError):
            child(tmp_path, bad)
    report = PlannedReport("../621202_武都区.pdf", "621202", {"kind": "county"})
    with pytest.raises(ValueError):
        render_one(report, tmp_path / "v1")
    assert list(tmp_path.iterdir()) == []


def test_labels_from_data_are_never_mathtext():
    """Defect: a county name with `$…$` crashed matplotlib's mathtext while drawing charts."""
    from evaluation.reporting import charts

    labels = ["武都$区", "$\\frac{x$", "礼县"]
    svg = charts.bar_svg({"labels": labels, "scores": [50.0, 60.0, 70.0], "zones": ["重点生态功能区"] * 3})
    assert "武都$区" in svg.decode("utf-8") and "$\\frac{x$" in svg.decode("utf-8")
    charts.distribution_svg({"labels": labels, "scores": [50.0, 60.0, 70.0], "zones": ["重点生态功能区"] * 3})


def test_validate_html_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    """Defect: `validate --html` wrote through an existing symlink at the report's path."""
    table = tmp_path / "水务局_2023年水资源公报摘要.csv"
    shutil.copy(SAMPLE / "2023" / table.name, table)
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("不能被改写", encoding="utf-8")
    link = tmp_path / (table.name + ".校验报告.html")
    link.symlink_to(victim)
    result = _invoke("validate", str(table), "--department", "water", "--year", "2023", "--html",
                     "--out", str(tmp_path / "reports"))
    assert result.exit_code == 0, result.output
    assert victim.read_text(encoding="utf-8") == "不能被改写"
    assert not link.is_symlink() and "通过" in link.read_text(encoding="utf-8")

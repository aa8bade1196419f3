"""Scaling out (issue 10): the annual flow on a Dask cluster, and `make bench` at a tiny scale."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import prefect_home
from tests.flowtools import task_states
from tests.pdftools import pdf_text

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster(prefect_harness):
    """A real two-process Dask cluster whose workers report to the session's Prefect server (stopped after
    its test: idle, its workers and nannies would still take CPU and memory from the tests after it)."""
    import dask
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    env = {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": os.environ["PREFECT_HOME"],
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "False"}
    # without the workers' statistical profiler (Dask's own diagnostics for its dashboard, which this cluster
    # does not have): it samples every worker's threads every 10 ms, taking CPU from the tasks on a 2-core box
    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=env) as local:
        yield local


def _executed(cluster) -> int:
    from distributed import Client

    with Client(cluster) as client:
        return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


def _issued_here(config: Path, data: Path, out: Path, renders):
    """2023 issued by the operations in this process, as the annual flow issues it (past years taken into the
    ledger, their accepted values as history): the reference the Dask run is held to."""
    from evaluation import operations, pipeline
    from evaluation.catalogue import load_catalogue
    from evaluation.resources import open_ledger
    from evaluation.versions import code_hash

    catalogue = load_catalogue(config)
    with open_ledger(out) as ledger:
        for year in (2021, 2022):
            operations.record(ledger, operations.check_folder(catalogue, data, year), catalogue, "2024-03-01T00:00:00+00:00")
        history = {year: pipeline.year_values(ledger, catalogue, year) for year in (2021, 2022)}
        intakes = operations.check_folder(catalogue, data, 2023, previous=history[2022])
        operations.record(ledger, intakes, catalogue, "2024-03-01T00:00:00+00:00")
        return operations.issue(catalogue, intakes, ledger, out, 2023, run_date="2024-03-01", history=history,
                                sample=True, code=code_hash(), renders=renders,
                                workers=2)


def test_dask_cluster_issues_the_same_reports_as_local_processes(cluster, tmp_path):
    """The flow on a Dask cluster issues what the same operations issue in one process (the in-process path the
    web app takes: one set of operations behind every front door): the same PDFs, content keys and scores.
    Three synthetic counties (8 bureaus, 3 years): every kind of work, a third of the Longnan sample's rendering."""
    from evaluation.reporting.rendercache import RenderCache
    from evaluation.versions import code_hash
    from flows.annual import annual_evaluation
    from flows.runners import task_runner

    sys.path.insert(0, str(REPO / "benchmarks"))
    import national

    config, data = national.make(tmp_path / "synthetic", 3)
    before = _executed(cluster)
    on_dask = annual_evaluation.with_options(task_runner=task_runner(cluster.scheduler_address))
    state = on_dask(year=2023, data_dir=str(data), out_dir=str(tmp_path / "dask"), config_dir=str(config),
                    run_date="2024-03-01", return_state=True)
    result = state.result()
    assert state.is_completed() and result["status"] == "issued" and len(result["files"]) == 4, state.message

    # The cluster's workers did the checking (3 years x 8 tables) and the rendering (4 chunks of 1 report).
    tasks = task_states(state)
    assert [n for t, n in tasks if t == "check"] == ["Completed"] * 24
    assert [n for t, n in tasks if t == "render_chunk"] == ["Completed"] * 4
    assert not any(t in ("render", "render_batch") for t, _ in tasks)
    assert _executed(cluster) - before >= 28

    # What this process issues from the same data: the same content, so every PDF is the cluster's own (rendering
    # twice gives the same bytes: tests/test_pdf.py), and the same outputs, content keys and scores.
    renders = RenderCache(tmp_path / "dask" / ".cache" / "prefect" / "rendered", code_hash())
    here = _issued_here(config, data, tmp_path / "here", renders)
    # the 4 reports and the methodology report, all taken from what the cluster's run kept
    assert here.status == "issued" and here.version == 1 and renders.restored == 5
    on_cluster = json.loads((Path(result["folder"]) / "manifest.json").read_text(encoding="utf-8"))
    assert on_cluster["outputs"] == here.manifest["outputs"]
    assert on_cluster["content_keys"] == here.manifest["content_keys"]
    assert on_cluster["scores"] == here.manifest["scores"]
    first = Path(result["folder"]) / sorted(result["files"])[0]
    assert "示例数据" in pdf_text(first) and (tmp_path / "dask" / "2023" / "datadocs" / "index.html").is_file()


def test_cli_refuses_an_unreachable_dask_cluster_in_words(tmp_path):
    from tests.smtptools import free_port

    command = [str(Path(sys.executable).parent / "twomountains"), "run", "--year", "2023",
               "--out", str(tmp_path / "reports"), "--dask-address", f"tcp://127.0.0.1:{free_port()}"]
    # both at once: the first spends its 5 s waiting for a scheduler that is not there
    unreachable = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        bad = subprocess.run(command[:-1] + ["127.0.0.1:8786"], capture_output=True, text=True, timeout=60)
        out, err = unreachable.communicate(timeout=120)
    finally:
        if unreachable.poll() is None:
            unreachable.kill()
            unreachable.wait()
    assert unreachable.returncode == 7  # a server that does not answer
    assert "无法连接 Dask 集群" in err and "Traceback" not in out + err
    assert not (tmp_path / "reports").exists()
    assert bad.returncode == 2 and "tcp://主机:端口" in bad.stderr


def test_bench_at_a_tiny_scale_reports_every_goal(tmp_path):
    """`make bench` runs the full national pipeline; CI runs it at 3 synthetic counties."""
    out = tmp_path / "results.json"
    env = {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect"))}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--scale", "3", "--only", "national",
                           "--floor-sample", "2", "--speedup-reports", "2", "--out", str(out),
                           "--profile", str(tmp_path / "profiles")],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    national = results["national"]
    assert national["counties"] == 3 and national["reports"] == 4 and national["tables"] == 24
    assert national["delivered"] == {"delivered": 4, "skipped": 0, "failed": 0, "uncertain": 0, "not_attempted": 0}
    stages = national["seconds"]
    for stage in ("ingest", "validate", "score", "monte_carlo", "contexts", "render", "distribute_outbox"):
        assert stages[stage] > 0, stage
    assert stages["render"] < stages["full_run"]
    correction = national["correction"]
    assert correction["rendered"] >= 1 and correction["rendered"] + correction["carried"] == 4
    floor = national["render_floor"]
    assert floor["scorecards_measured"] == 2 and floor["summaries_measured"] == 1
    assert floor["floor_seconds"] >= max(floor["bare_seconds_per_summary"])
    before = floor["before_issue_22"]  # the same scorecards drawn with the template as it was before issue 22
    assert before["bare_seconds_per_scorecard"] > 0 and before["ratio"] == pytest.approx(
        floor["bare_seconds_per_scorecard"] / before["bare_seconds_per_scorecard"], abs=1e-3)
    memory = national["peak_memory_mib"]
    assert memory["process_tree_pss"] == pytest.approx(sum(memory["pss_at_peak"].values()), abs=0.5)
    assert memory["pss_at_peak"]["flow"] > 50 and memory["pss_at_peak"]["prefect_server"] > 50
    assert memory["process_tree_rss_sum_at_peak"] >= memory["process_tree_pss"]
    for key in ("P1_full_run_over_floor", "P3_correction_over_full_run", "P4_parallel_speedup",
                "P5_peak_memory_gib", "P6_validate_plus_score_seconds", "S1_summary_with_map_seconds"):
        assert national[key]["value"] > 0 and national[key]["goal"], key
    summary = national["S1_summary_with_map_seconds"]  # the summary as the run draws it, map included
    assert summary["map_areas"] == 3 and summary["missing_boundaries"] == "" and summary["pages"] >= 2
    assert set(results["goals_met"]) == {"P1", "P3", "P4", "P5", "P6", "S1", "floor_per_scorecard_over_before"}
    assert results["machine"]["cpus"] == os.cpu_count()
    for run in ("full_run", "correction"):  # --profile: where each run's time went, by call
        assert "annual_evaluation" in (tmp_path / "profiles" / f"{run}.txt").read_text(encoding="utf-8"), run


def test_a_national_summary_lists_the_first_and_last_counties_and_attaches_the_full_ranking(tmp_path):
    """Above 60 counties the summary lists the first and last 30 (2,844 rows made 152 pages);
    the full ranking travels as a formula-safe CSV attachment."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import national

    from evaluation import operations
    from evaluation.catalogue import load_catalogue
    from tests.pdftools import pdf_pages

    config, data = national.make(tmp_path, 70)
    catalogue = load_catalogue(config)
    intakes = operations.check_folder(catalogue, data, 2023)
    assert all(i.accepted for i in intakes)
    year = operations.evaluate(catalogue, intakes, 2023, run_date="2024-03-01", sample=True, analyse=False)
    summary = year.report(catalogue.city.code)
    ranks = [r["rank"] for r in summary.context["ranking"]]
    assert ranks == list(range(1, 31)) + list(range(41, 71)) and summary.context["ranking_omitted"] == 10
    assert len(summary.context["distribution"]["scores"]) == 70
    assert sum(bool(n) for n in summary.context["distribution"]["labels"]) == 60
    names = [a[0] for a in summary.attachments]
    assert names == ["900000_2023_数据.csv", "900000_2023_排名.csv"]
    ranking = summary.attachments[1][1].decode("utf-8").splitlines()
    assert ranking[0].startswith("县区代码,县区,主体功能区,综合得分,等级,排名") and len(ranking) == 71
    from evaluation.reporting import charts

    for svg in (charts.bar_svg(summary.context["bar"]), charts.heatmap_svg(summary.context["heat"])):
        height = float(re.search(rb'<svg[^>]* height="([\d.]+)pt"', svg).group(1))  # 60 rows fit one page
        assert height <= charts.CHART_MAX_IN * 72 + 1
    operations.render([summary], tmp_path)
    pdf = tmp_path / summary.file_name
    pages = pdf_pages(pdf)
    # read back page by page up to the one that says so (its last pages, the map's, take seconds to read)
    assert pages < 12 and any("第 31 至 40 名共 10 个县区从略" in pdf_text(pdf, page).replace("\n", "")
                              for page in range(1, pages + 1))

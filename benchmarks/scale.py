"""The national-scale benchmark of `make bench` (issue 10): the real annual flow on N synthetic
counties (default 2,844, China's county-level units), 3 years x 8 bureaus.

What it measures, all in one process on this machine (compare ratios within one run):

- the full flow, with each stage's wall time read back from the Prefect task runs (ingest,
  validate, score, Monte Carlo, report contexts, render), then distribution to the outbox;
- peak memory of the whole process tree (the flow, Prefect's temporary server, render workers),
  as PSS, sampled every 0.5 s;
- the render floor: bare WeasyPrint on the same HTML, spread over the same cores;
- a one-county correction, and the render pool's speed-up from 1 to all cores.
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import statistics
import threading
import time
from pathlib import Path

STAGES = {  # stage -> task names (the part before Prefect's "-<suffix>")
    "ingest": ("receive", "fetch", "current", "backfill_needed", "history", "record"),
    "validate": ("check",),
    "score": ("score",),
    "monte_carlo": ("analyse",),
    "contexts": ("plan",),
    "render": ("render", "render_batch", "render_chunk"),
    "publish": ("publish_validation", "revise", "publish_run"),
}


class TreeMemory:
    """Peak memory of this process and all its descendants, sampled in a thread.

    The total is the sum of each process's PSS (proportional set size: shared pages, such as the
    Python libraries and the CJK font that every render worker maps, are split between the
    processes sharing them), which is what the tree really occupies; a sum of RSS would count
    those pages once per process. The RSS sum at the same moment is kept for comparison."""

    # Reading PSS (/proc/<pid>/smaps_rollup) walks every page table of the tree: reading it every
    # 0.5 s cost the bench process about 8 % of a core, taken from the render workers it measures.
    # RSS (/proc/<pid>/statm) is cheap and bounds PSS from above, so PSS is read only when the RSS
    # sum says a new peak is possible, and then at most every PSS_EVERY seconds unless RSS has grown
    # by more than PSS_GROWTH since the last reading.
    PSS_EVERY = 2.0
    PSS_GROWTH = 32 * 2**20

    def __init__(self, interval: float = 0.5):
        import psutil

        self._me = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.rss_at_peak = 0
        self.readings = 0  # PSS readings taken
        self._kinds: dict[int, str] = {}
        self._last = (float("-inf"), 0)  # (time, RSS sum) of the last PSS reading
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kind(self, proc) -> str:
        kind = self._kinds.get(proc.pid)
        if kind is None:
            command = " ".join(proc.cmdline())
            kind = ("flow" if proc.pid == self._me.pid else "prefect_server" if "uvicorn" in command
                    else "render_worker" if "multiprocessing" in command else "other")
            self._kinds[proc.pid] = kind
        return kind

    def _sample(self) -> tuple[dict[str, int], int] | None:
        """PSS per kind of process and the plain RSS sum, or None when no new peak is possible."""
        import psutil

        procs = []
        rss = 0
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                rss += proc.memory_info().rss
                procs.append((proc, self._kind(proc)))
            except psutil.Error:
                continue
        last_time, last_rss = self._last
        if rss <= self.peak or (time.monotonic() - last_time < self.PSS_EVERY and rss <= last_rss + self.PSS_GROWTH):
            return None
        sizes: dict[str, int] = {}
        for proc, kind in procs:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            sizes[kind] = sizes.get(kind, 0) + getattr(info, "pss", info.rss)
        self._last = (time.monotonic(), rss)
        self.readings += 1
        return sizes, rss

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self._sample()
            if sample is not None and sum(sample[0].values()) > self.peak:
                self.peak, self.at_peak, self.rss_at_peak = sum(sample[0].values()), *sample
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Wall time covered by possibly overlapping intervals (tasks submitted together overlap)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def stage_seconds(flow_run_id) -> dict[str, float]:
    """Each stage's wall time in one flow run, from its task runs' start and end times."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:  # task states arrive as events, shortly after the flow returns
            runs = []
            while True:  # the API pages at 200
                page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                             limit=200, offset=len(runs))
                runs += page
                if len(page) < 200:
                    break
            if all(r.end_time is not None for r in runs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    by_stage: dict[str, list[tuple[float, float]]] = {stage: [] for stage in STAGES}
    for run in runs:
        if run.start_time is None or run.end_time is None:
            continue
        name = run.name.rsplit("-", 1)[0]
        for stage, names in STAGES.items():
            if name in names:
                by_stage[stage].append((run.start_time.timestamp(), run.end_time.timestamp()))
    return {stage: round(_union_seconds(spans), 3) for stage, spans in by_stage.items()}


def settle(timeout: float = 600.0) -> float:
    """Wait until Prefect's temporary server answers promptly again; returns the seconds waited.

    After a national run and its distribution (thousands of task runs and events), the server's SQLite database
    stays busy for a while; a flow started then was refused with 503 Service Unavailable when it asked for its
    flow run (the client's own retries gave up). The correction is timed from when the server is ready."""
    from prefect.client.orchestration import get_client

    start = time.monotonic()
    with get_client(sync_client=True) as client:
        while time.monotonic() - start < timeout:
            asked = time.monotonic()
            try:
                client.read_flow_runs(limit=1)
                if time.monotonic() - asked < 1.0:
                    break
            except Exception:  # noqa: BLE001 - a busy server answers 503 or times out: ask again
                pass
            time.sleep(2.0)
    return time.monotonic() - start


def run_flow(profile: Path | None = None, **kwargs):
    """Run the annual flow; returns (result dict, wall seconds, stage seconds). With `profile`, a pyinstrument
    profile of the flow's process (its main thread, where the flow and its tasks' calls run) is written there."""
    from flows.annual import annual_evaluation

    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01, async_mode="disabled")
        profiler.start()
    start = time.perf_counter()
    state = annual_evaluation(**kwargs, return_state=True)
    seconds = time.perf_counter() - start
    if profiler is not None:
        profiler.stop()
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
    result = state.result()
    return result, seconds, stage_seconds(state.state_details.flow_run_id)


# -- the render floor and the speed-up -----------------------------------------------------------


def _bare(context: dict) -> float:
    """Seconds bare WeasyPrint takes on this report's HTML and stylesheets (both made untimed: the
    stylesheets are parsed once per process, as the renderer parses them)."""
    import weasyprint

    from evaluation.reporting.pdf import TEMPLATES_DIR, font_config, render_html, stylesheets

    html = render_html(context)
    sheets = stylesheets(context["kind"])
    start = time.perf_counter()
    weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR) + "/").write_pdf(stylesheets=sheets, font_config=font_config())
    return time.perf_counter() - start


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "scorecard_2026_11"


def _bare_before(context: dict) -> float:
    """Seconds bare WeasyPrint takes on a scorecard drawn with the template as it was before issue 22
    (benchmarks/fixtures/scorecard_2026_11: its stylesheet linked from the HTML, as it was then)."""
    import weasyprint

    from evaluation.reporting.pdf import _charts_for, _environment

    html = _environment(FIXTURE).get_template("scorecard.html").render({**context, "charts": _charts_for(context)})
    start = time.perf_counter()
    weasyprint.HTML(string=html, base_url=str(FIXTURE) + "/").write_pdf()
    return time.perf_counter() - start


def _bare_both(context: dict) -> tuple[float, float | None]:
    """Bare seconds of a report as drawn now and, for a scorecard, as drawn before issue 22, one right after the
    other in the same worker (so both meet the same load on the machine)."""
    return _bare(context), (_bare_before(context) if context.get("kind") == "county" else None)


def render_floor(reports: list, total: int, workers: int) -> dict:
    """The physical floor of rendering the run's `total` reports on `workers` cores.

    `reports` are the run's summaries plus a sample of its scorecards. Bare WeasyPrint is timed
    on each (in `workers` processes at once, so the cores are as busy as in the real run); the
    floor is the bare seconds of every report (scorecards: the sample's mean times their number)
    spread perfectly over the cores, and never less than the longest single report.

    Each scorecard of the sample is also drawn with the template as it was before issue 22, in the same
    worker right after, so that the leaner template's saving is a ratio taken in one run under one load."""
    from evaluation.reporting.parallel import RenderPool

    with RenderPool(workers) as pool:
        pool.wait_ready()  # every worker warm before timing starts
        timed = pool.map(_bare_both, [r.context for r in reports])
    seconds = [now for now, _ in timed]
    before = [then for _, then in timed if then is not None]
    summaries = [t for r, t in zip(reports, seconds) if r.context.get("kind") == "summary"]
    cards = [t for r, t in zip(reports, seconds) if r.context.get("kind") != "summary"]
    per_card = statistics.fmean(cards) if cards else 0.0
    per_card_before = statistics.fmean(before) if before else 0.0
    bare_total = per_card * (total - len(summaries)) + sum(summaries)
    floor = max(bare_total / workers, max(seconds))
    return {"scorecards_measured": len(cards), "bare_seconds_per_scorecard": round(per_card, 4),
            "summaries_measured": len(summaries), "bare_seconds_per_summary": [round(t, 2) for t in summaries],
            "floor_seconds": round(floor, 2), "workers": workers,
            "before_issue_22": {"bare_seconds_per_scorecard": round(per_card_before, 4),
                                "ratio": round(per_card / per_card_before, 3) if per_card_before else None,
                                "goal_ratio": "<= 0.6"}}


def summary_render(report, target: Path) -> dict:
    """The city summary rendered as the run renders it (its map drawn from the boundary cache the run
    warmed, charts, WeasyPrint), in this process after a warm-up: wall seconds and what it drew."""
    import subprocess

    from evaluation.reporting import pdf

    pdf.warm_up()
    start = time.perf_counter()
    pdf.render_pdf(report.context, target, attachments=list(report.attachments))
    seconds = time.perf_counter() - start
    info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True).stdout
    pages = next((int(line.split()[-1]) for line in info.splitlines() if line.startswith("Pages:")), None)
    drawn = report.context.get("map") or {}
    return {"seconds": round(seconds, 2), "map_areas": len(drawn.get("areas", [])),
            "missing_boundaries": drawn.get("missing") or "", "pages": pages}


def speedup(reports: list, folder: Path) -> dict:
    """The render pool's speed-up from 1 worker to every core, on the same reports, workers warm."""
    from evaluation.reporting.parallel import RenderPool, default_workers

    times = {}
    for workers in sorted({1, default_workers()}):
        with RenderPool(workers) as pool:
            pool.wait_ready()
            target = folder / f"w{workers}"
            target.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            pool.render(reports, target)
            times[workers] = time.perf_counter() - start
    most = max(times)
    return {"reports": len(reports), "seconds_by_workers": {str(k): round(v, 2) for k, v in times.items()},
            "speedup": round(times[1] / times[most], 3), "workers": most}


# -- the benchmark -------------------------------------------------------------------------------


def national(n: int, work: Path, *, floor_sample: int = 300, speedup_reports: int = 48,
             profile_dir: Path | None = None) -> dict:
    """Generate n synthetic counties, run and measure everything; returns the JSON section (profile_dir: also
    write pyinstrument profiles of the full run and of the correction there)."""
    where = (lambda name: Path(profile_dir) / f"{name}.txt") if profile_dir else (lambda name: None)  # noqa: E731
    import national as synthetic

    from evaluation import operations
    from evaluation.catalogue import load_catalogue
    from evaluation.reporting.parallel import default_workers
    from flows.distribute import distribute_scorecards

    start = time.perf_counter()
    config, data = synthetic.make(work, n)
    generate = time.perf_counter() - start
    out = work / "reports"
    kwargs = dict(year=2023, data_dir=str(data), out_dir=str(out), config_dir=str(config))
    print(f"[bench] national: {n} counties generated in {generate:.1f} s; running the annual flow", flush=True)
    with TreeMemory() as memory:
        first, full, stages = run_flow(where("full_run"), **kwargs, run_date="2024-03-01")
        print(f"[bench] full run {full:.1f} s: {stages}", flush=True)
        start = time.perf_counter()
        sent = distribute_scorecards(year=2023, out_dir=str(out), config_dir=str(config),
                                     recipients=str(config / "recipients.yaml"))
        distribute = time.perf_counter() - start
    assert first["status"] == "issued" and sent["status"] == "sent", (first.get("status"), sent.get("status"))
    print(f"[bench] distributed {sent['counts']} in {distribute:.1f} s; one-county correction next", flush=True)

    # P3: one county's EQI corrected by the ecology-environment bureau.
    eco = data / "2023" / "生态环境局_2023年生态环境质量.csv"
    lines = eco.read_text(encoding="utf-8").split("\n")
    cells = lines[1].split(",")
    cells[1] = f"{float(cells[1]) - 0.61:.2f}"
    lines[1] = ",".join(cells)
    eco.write_text("\n".join(lines), encoding="utf-8")
    settled = settle()  # the temporary server may still be digesting the run's and the distribution's events
    fixed, correction, correction_stages = run_flow(where("correction"), **kwargs, run_date="2024-03-15")
    assert fixed["status"] == "issued", fixed.get("status")
    print(f"[bench] correction {correction:.1f} s: {len(fixed['rendered'])} rendered, "
          f"{len(fixed['carried'])} carried", flush=True)

    # The floor and the speed-up, on reports planned exactly as in the run (the same operations, untimed):
    # with the past years from the run's ledger and the Monte Carlo, so each scorecard has its trend,
    # year-on-year changes and rank intervals, as the run's have (without them a scorecard is lighter
    # to lay out, and the floor would be too low).
    from evaluation import pipeline
    from evaluation.ledger import Ledger

    catalogue = load_catalogue(config)
    with Ledger.at(out) as ledger:
        past = {y: pipeline.year_values(ledger, catalogue, y) for y in (2021, 2022)}
    intakes = operations.check_folder(catalogue, data, 2023, previous=past[2022])
    plan = operations.evaluate(catalogue, intakes, 2023, run_date="2024-03-01", sample=True, history=past).plan
    rng = random.Random(10)
    workers = default_workers()
    summaries = [r for r in plan if r.context.get("kind") == "summary"]
    cards = [r for r in plan if r.context.get("kind") != "summary"]
    sample = summaries + (cards if len(cards) <= floor_sample else rng.sample(cards, floor_sample))
    print(f"[bench] render floor on {len(sample)} reports", flush=True)
    floor = render_floor(sample, len(plan), workers)
    print(f"[bench] render floor {floor}; speed-up on {speedup_reports} reports", flush=True)
    summary = summary_render(summaries[0], work / "summary.pdf")
    print(f"[bench] the city summary with its {summary['map_areas']}-county map: {summary['seconds']} s", flush=True)
    spare = work / "speedup"
    speed = speedup(rng.sample(cards, min(speedup_reports, len(cards))), spare)
    shutil.rmtree(spare, ignore_errors=True)

    validate_score = stages["validate"] + stages["score"]
    rss_mib = memory.peak / 2**20
    return {
        "counties": n, "years": 3, "bureaus": len(catalogue.sources), "tables": 3 * len(catalogue.sources),
        "reports": len(first["files"]), "workers": workers,
        "seconds": {"generate": round(generate, 2), "full_run": round(full, 2), **stages,
                    "other_flow_steps": round(full - sum(stages.values()), 2),
                    "distribute_outbox": round(distribute, 2)},
        "delivered": sent["counts"],
        "render_floor": floor,
        "correction": {"seconds": round(correction, 2), "server_settle_seconds": round(settled, 1),
                       "rendered": len(fixed["rendered"]),
                       "carried": len(fixed["carried"]), "stages": correction_stages},
        "parallel_render": speed,
        "peak_memory_mib": {"process_tree_pss": round(rss_mib, 1),
                            "pss_at_peak": {k: round(v / 2**20, 1) for k, v in sorted(memory.at_peak.items())},
                            "process_tree_rss_sum_at_peak": round(memory.rss_at_peak / 2**20, 1),
                            "pss_readings": memory.readings,
                            "bench_process_max_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
        "P1_full_run_over_floor": {"value": round(full / floor["floor_seconds"], 3), "goal": "<= 1.2"},
        "P3_correction_over_full_run": {"value": round(correction / full, 4), "goal": "<= 0.03"},
        "P4_parallel_speedup": {"value": speed["speedup"], "goal": ">= 1.7", "cores": workers},
        "P5_peak_memory_gib": {"value": round(rss_mib / 1024, 3), "goal": "<= 1.5", "measure": "PSS of the process tree"},
        "P6_validate_plus_score_seconds": {"value": round(validate_score, 2), "goal": "<= 15"},
        "S1_summary_with_map_seconds": {"value": summary.pop("seconds"), "goal": "< 10", **summary},
    }


def met(section: dict, demo_seconds: float | None) -> dict[str, bool]:
    """Which goals the figures meet."""
    out = {
        "P1": section["P1_full_run_over_floor"]["value"] <= 1.2,
        "P3": section["P3_correction_over_full_run"]["value"] <= 0.03,
        "P4": section["P4_parallel_speedup"]["value"] >= 1.7,
        "P5": section["P5_peak_memory_gib"]["value"] <= 1.5,
        "P6": section["P6_validate_plus_score_seconds"]["value"] <= 15,
        "S1": section["S1_summary_with_map_seconds"]["value"] < 10,
        "floor_per_scorecard_over_before": (section["render_floor"]["before_issue_22"]["ratio"] or 9) <= 0.6,
    }
    if demo_seconds is not None:
        out["P2"] = demo_seconds <= 20
    return dict(sorted(out.items()))


def save(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

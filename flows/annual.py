"""The annual evaluation flow: ingest -> validate -> score -> render -> manifest.

Orchestration only: every task wraps one call into `evaluation`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.context import FlowRunContext
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote

from evaluation import operations, pipeline, versions
from evaluation.catalogue import Catalogue, load_catalogue
from evaluation.errors import UserError, storage_error
from evaluation.ingest import Expected, TransientSourceError, discover
from evaluation.resources import open_ledger, today, utc_now
from evaluation.reporting.rendercache import RenderCache
from evaluation.validation import Gate
from flows.retrying import retry_on
from flows.runners import on_dask, task_runner

# Large parameters (the score result, the analysis, thousands of planned reports with their contexts) are
# passed as quote(...): Prefect walks every parameter's contents, several times per task call, looking for
# futures and states to resolve; at national scale the reports' contexts are millions of nodes.
# Tasks are cached on content keys, never on DataFrames: a submission's sha256, last year's
# values, the config hash and the code hash (which covers the GX suites and templates).
# Results are pickled to the run's cache folder (default <out_dir>/.cache/prefect).
# Tasks without a key run every time.
_task = task(cache_policy=NO_CACHE, persist_result=False)
CODE = versions.code_hash()
LINK_ARTIFACTS_MAX = 50  # above this many PDFs, one markdown artifact lists them all


@_task
def receive(expected: list[Expected], catalogue: Catalogue, year: int, data_dir: str) -> list[pipeline.Intake]:
    """Read the bureaus' files from the drop folder (local disk: no retries). One task for the folder,
    not one per file: each task run costs the Prefect server about 60 ms of CPU."""
    intakes = []
    for e in expected:
        intake = pipeline.receive_one(e, catalogue, year, data_dir)
        get_run_logger().info("receive %s %d: %s (%s)", e.department, year, intake.status, intake.file)
        intakes.append(intake)
    return intakes


@_task
def from_ledger(expected: list[Expected], catalogue: Catalogue, year: int, out_dir: str,
                ledger_url: str | None) -> list[pipeline.Intake]:
    """The portal's tables: each bureau's current accepted submission for the year, from the ledger."""
    with open_ledger(out_dir, ledger_url) as ledger:
        intakes = [pipeline.receive_from_ledger(ledger, e, catalogue, year) for e in expected]
    for intake in intakes:
        get_run_logger().info("portal %s %d: %s (%s)", intake.department, year, intake.status, intake.file)
    return intakes


@task(cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=exponential_backoff(1),
      retry_jitter_factor=0.2, retry_condition_fn=retry_on(TransientSourceError))
def fetch(expected: Expected, catalogue: Catalogue, year: int, data_dir: str) -> pipeline.Intake:
    """Fetch a bureau's table over HTTP or SQL; transient failures are retried with backoff."""
    intake = pipeline.receive_one(expected, catalogue, year, data_dir, retries=0)
    get_run_logger().info("fetch %s %d: %s (%s)", expected.department, year, intake.status, intake.file)
    return intake


def _check_key(context, parameters) -> str | None:
    return pipeline.check_key(parameters["intake"], parameters["catalogue"], parameters["previous"], parameters["code"])


@task(cache_key_fn=_check_key, persist_result=True)
def check(intake: pipeline.Intake, catalogue: Catalogue, previous, gate: Gate, code: str) -> pipeline.Intake:
    """Parse and validate one received table (cached on its bytes, last year's values, config and code)."""
    checked = pipeline.check_one(intake, catalogue, previous=previous, gate=gate)
    errors = len(checked.report.errors) if checked.report else 0
    warnings = len(checked.report.warnings) if checked.report else 0
    get_run_logger().info("check %s: %s, %d errors, %d warnings", intake.department, checked.status, errors, warnings)
    return checked


def _intakes(catalogue: Catalogue, expected: list[Expected], year: int, data_dir: str, previous, gate: Gate,
             check_task, out_dir: str, ledger_url: str | None) -> list[pipeline.Intake]:
    """Receive (or fetch) and check each expected table; a source down after its retries counts as missing."""
    folder = [e for e in expected if e.kind == "folder"]
    from_folder = iter(receive(folder, catalogue, year, data_dir) if folder else [])
    received = []
    portal = [e for e in expected if e.kind == "portal"]
    from_portal = iter(from_ledger(portal, catalogue, year, out_dir, ledger_url) if portal else [])
    for e in expected:
        if e.kind == "folder":
            received.append(next(from_folder))
            continue
        if e.kind == "portal":
            received.append(next(from_portal))
            continue
        state = fetch(e, catalogue, year, data_dir, return_state=True)
        if state.is_failed():
            intake = pipeline.unreachable(e, catalogue, state.result(raise_on_failure=False))
            get_run_logger().error("fetch %s %d failed after retries: %s", e.department, year, intake.message)
            received.append(intake)
        else:
            received.append(state.result())
    received = current(received, catalogue, out_dir, ledger_url)
    # submitted together: threads here (GX itself runs one table at a time), workers on a Dask cluster
    futures = [check_task.submit(intake, catalogue, previous, gate, CODE) for intake in received]
    return [future.result() for future in futures]


@_task
def current(intakes: list[pipeline.Intake], catalogue: Catalogue, out_dir: str,
            ledger_url: str | None) -> list[pipeline.Intake]:
    """Swap in a bureau's correction when the file received is one it has since superseded, and note
    a file whose bytes were already sent for another year or bureau."""
    out = []
    with open_ledger(out_dir, ledger_url) as ledger:
        for intake in intakes:
            used, superseded = pipeline.current_for(ledger, pipeline.same_bytes_notice(ledger, intake, catalogue))
            if superseded:
                get_run_logger().info("%s: %s was superseded; using the correction %s (%s)", intake.department,
                                      superseded[:12], used.received.submission_id[:12], used.file)
            out.append(used)
    return out


@_task
def backfill_needed(catalogue: Catalogue, year: int, data_dir: str, out_dir: str, ledger_url: str | None) -> list[Expected]:
    with open_ledger(out_dir, ledger_url) as ledger:
        return pipeline.backfill_needed(ledger, catalogue, year, data_dir)


@_task
def history(catalogue: Catalogue, years: list[int], out_dir: str, ledger_url: str | None) -> dict:
    """Past years' accepted values from the ledger (county x variable)."""
    with open_ledger(out_dir, ledger_url) as ledger:
        return {y: pipeline.year_values(ledger, catalogue, y) for y in years}


@_task
def record(intakes: list[pipeline.Intake], catalogue: Catalogue, out_dir: str, ledger_url: str | None,
           received_at: str) -> list[str]:
    with open_ledger(out_dir, ledger_url) as ledger:
        outcomes = [pipeline.record_one(ledger, i, catalogue, received_at) for i in intakes]
    new = [r.submission_id for r in outcomes if r is not None and r.new]
    get_run_logger().info("ledger %s: %d new submissions, %d already known", ledger.url, len(new),
                          sum(1 for r in outcomes if r is not None and not r.new))
    return new


@_task
def publish_validation(intakes: list[pipeline.Intake], gate: Gate) -> None:
    """Data Docs (written once, after the last validation) and the validation summary (rejections
    first) as Prefect artifacts."""
    index = gate.build_docs()
    if index is not None:
        create_link_artifact(key="data-docs", link=index.as_uri(), link_text="GX Data Docs",
                             description="Great Expectations Data Docs for this run's submissions")
    rows = []
    for i in sorted(intakes, key=lambda i: (i.accepted, i.department)):
        errors = len(i.report.errors) if i.report else 0
        warnings = len(i.report.warnings) if i.report else 0
        first = (i.report.errors[0].describe() if i.report and i.report.errors else i.message.split("\n")[0])
        rows.append(f"| {i.department_name} | {i.file} | {pipeline.STATUS_LABEL.get(i.status, '已采用')} | {errors} | {warnings} | {first} |")
    create_markdown_artifact(
        key="validation-summary",
        markdown="# 数据校验结果\n\n| 部门 | 文件 | 状态 | 错误 | 警告 | 首个问题 |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
        description="Validation summary (rejected submissions first)",
    )


def portal_url() -> str:
    """The workbench's address, for links in artifacts (TWOMOUNTAINS_PORTAL_URL; `make serve` sets it)."""
    return os.environ.get("TWOMOUNTAINS_PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")


@_task
def publish_run(catalogue: Catalogue, manifest: dict, folder: Path) -> None:
    """A table artifact of scores and ranks with county names, and a link artifact per PDF (one list above
    LINK_ARTIFACTS_MAX). Links go to the analysts' workbench (TWOMOUNTAINS_PORTAL_URL), which serves each
    PDF to a signed-in analyst, not to paths on the server's disk."""
    year, version = manifest["year"], manifest["version"]
    base = portal_url()
    create_table_artifact(
        key=f"scores-{year}",
        table=[{"排名": s["rank"], "县区代码": s["county_code"], "县区": catalogue.county(s["county_code"]).name,
                "主体功能区": catalogue.zone_types[s["zone"]].name, "综合得分": round(s["overall"], 1),
                "等级": s["grade"], "功能区内排名": s["zone_rank"],
                "评价卡": f"{base}/analyst/{year}/county/{s['county_code']}?v={version}"} for s in manifest["scores"]],
        description=f"{year} v{version} scores and ranks",
    )
    names = sorted(manifest["outputs"])

    def pdf(name: str) -> str:
        return f"{base}/analyst/{year}/v/{version}/report/{name.split('_', 1)[0]}"

    if len(names) > LINK_ARTIFACTS_MAX:  # one artifact per PDF would cost minutes of API calls at national scale
        create_markdown_artifact(
            key=f"pdfs-{year}", description=f"{year} v{version}: {len(names)} PDFs",
            markdown=f"# {year} v{version}\n\n" + "\n".join(f"- [{n}]({pdf(n)})" for n in names))
        return
    for name in names:
        code = name.split("_", 1)[0]
        create_link_artifact(key=f"pdf-{year}-{code}", link=pdf(name), link_text=name, description=f"{year} v{version}")


def _score_key(context, parameters) -> str:
    return pipeline.values_key(parameters["values"], parameters["catalogue"], parameters["code"], "score")


@task(cache_key_fn=_score_key, persist_result=True)
def score(values, catalogue: Catalogue, code: str):
    """Score the counties (cached on the values, config and code)."""
    return pipeline.score(values, catalogue)


def _analyse_key(context, parameters) -> str:
    past = [(y, pipeline.frame_digest(v)) for y, v in sorted(parameters["history"].items())]
    return pipeline.values_key(parameters["values"], parameters["catalogue"], parameters["code"], "analyse",
                               parameters["year"], past)


@task(cache_key_fn=_analyse_key, persist_result=True)
def analyse(result, values, catalogue: Catalogue, year: int, history: dict, code: str):
    """Monte Carlo rank intervals, readiness, progress and trends (cached on this and past years' values)."""
    for y, past in sorted(history.items()):
        if pipeline.complete_previous(past, catalogue) is None:
            get_run_logger().info("%d left out of progress and trends: its accepted data is incomplete", y)
    return pipeline.analyse(result, catalogue, year, history)


@_task
def revise(previous: tuple[int, dict] | None, intakes, result, catalogue: Catalogue, out_dir: str,
           ledger_url: str | None, version: int, run_date: str, codes: set[str],
           past_changed: bool = False) -> pipeline.Revisions:
    """The 修订说明 against the previous version (none for a first version)."""
    if previous is None:
        return pipeline.Revisions()
    with open_ledger(out_dir, ledger_url) as ledger:
        return operations.revision_notes(ledger, previous, intakes, result, catalogue, version=version,
                                         run_date=run_date, codes=codes, past_changed=past_changed)


@_task
def render_batch(reports: list[pipeline.PlannedReport], folder: Path, renders: RenderCache | None = None,
                 pool=None) -> dict[str, str]:
    """Render many reports on every core (in `pool` if one was started early), logging progress every tenth."""
    from evaluation.reporting.parallel import RenderPool, default_workers

    logger = get_run_logger()
    own = pool is None
    pool = pool or RenderPool(min(default_workers(), len(reports)))
    logger.info("rendering %d reports in %d worker processes", len(reports), pool.workers)

    def progress(name: str, done: int, total: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            logger.info("rendered %d/%d (%s)", done, total, name)

    try:
        return pool.render(reports, folder, progress, renders)
    finally:
        if own:
            pool.close()


@_task
def render_chunk(reports: list[pipeline.PlannedReport], folder: Path, renders: RenderCache | None = None) -> dict[str, str]:
    """Render a few reports in this worker (a Dask worker keeps WeasyPrint warm between chunks)."""
    return {report.file_name: pipeline.render_one(report, folder, renders) for report in reports}


def _render_on_dask(reports: list[pipeline.PlannedReport], folder: Path, renders: RenderCache | None) -> dict[str, str]:
    """Fan the reports out over the Dask cluster in up to 64 chunks; the folder must be shared."""
    from evaluation.reporting.parallel import longest_first

    reports = longest_first(reports)
    size = max(1, math.ceil(len(reports) / 64))
    futures = [render_chunk.submit(reports[i:i + size], folder, renders) for i in range(0, len(reports), size)]
    out: dict[str, str] = {}
    for done, future in enumerate(futures, 1):
        out.update(future.result())
        if done == len(futures) or done % max(1, len(futures) // 10) == 0:
            get_run_logger().info("rendered %d/%d on the Dask cluster", len(out), len(reports))
    return out


@_task
def reuse_rendered(reports: list[pipeline.PlannedReport], folder: Path,
                   renders: RenderCache | None) -> tuple[dict[str, str], list[pipeline.PlannedReport]]:
    """PDFs already rendered from exactly these contexts (an interrupted or repeated run), and the rest."""
    if renders is None:
        return {}, list(reports)
    reused, fresh = pipeline.reuse_rendered(reports, folder, renders)
    if reused:
        get_run_logger().info("took %d PDFs rendered earlier from the same contexts; %d to render", len(reused), len(fresh))
    return reused, fresh


@_task
def plan(result, catalogue: Catalogue, info, analysis, intakes, code: str, gep=None) -> list[pipeline.PlannedReport]:
    """Every report's context, facts and content key."""
    return pipeline.report_plan(result, catalogue, info, analysis, intakes, code=code, gep=gep)


@_task
def render(report: pipeline.PlannedReport, folder: Path, renders: RenderCache | None = None) -> str:
    digest = pipeline.render_one(report, folder, renders)
    get_run_logger().info("rendered %s", report.file_name)
    return digest


@flow(name="annual-evaluation", task_runner=task_runner())
def annual_evaluation(
    year: int | None = None,
    data_dir: str = "data/sample",
    out_dir: str = "reports",
    run_date: str | None = None,
    allow_incomplete: bool = False,
    config_dir: str | None = None,
    ledger_url: str | None = None,
    cache_dir: str | None = None,
    refresh_cache: bool = False,
    render_parallel_from: int = 4,
    lock_wait: float = 0.0,
):
    """Score every county for `year` and issue a new report version when anything changed.

    year: None (scheduled runs) means the previous calendar year, resolved when the run starts.

    cache_dir: where cached task results are kept (default <out_dir>/.cache/prefect).
    refresh_cache: recompute every cached step (the cache is then rewritten).
    render_parallel_from: with at least this many reports to render, they render in a pool of
        worker processes (one per core, or TWOMOUNTAINS_RENDER_WORKERS); fewer render here.
        A pool costs about 3 s to start, and rendering in this process slows down as the run's
        data grows (at 300 counties, 3 s a report instead of 1), so the pool pays from about 4.
        On a Dask cluster (see flows.runners) they are rendered by its workers instead.
    lock_wait: seconds to wait for the year when another run holds it (then refused, in words).

    Returns a dict: status ("issued", "unchanged", "refused" for incomplete data, or "error" with the
    exit code and the sentence of a failure the user can fix: a held year, a full disk, a stray folder),
    version, folder, files.
    """
    now = today()
    year = int(year) if year is not None else now.year - 1
    run_date = run_date or now.isoformat()
    catalogue = load_catalogue(config_dir)
    out = Path(out_dir)
    sample = pipeline.is_sample(data_dir)
    cache = Path(cache_dir) if cache_dir else out / ".cache" / "prefect"
    cached = {"result_storage": cache.resolve(), "refresh_cache": refresh_cache}

    received_at = utc_now()
    gate = Gate(docs_dir=versions.year_dir(out, year) / "datadocs")
    pool = None
    try:
        # The whole run holds the year: a second run (or a correction being recorded) is refused in words.
        with versions.year_lock(out, year, wait=lock_wait, what=_who()):
            logger = get_run_logger()
            for leftover in versions.clean_partials(out, year):
                logger.warning("removed %s, left behind by an interrupted run", leftover)
            for stray in versions.clear_strays(out, year):
                logger.warning("removed the empty folder %s (not an issued version)", stray)
            if versions.latest(out, year) is None and not on_dask() and RenderCache(cache / "rendered", CODE).empty():
                # A year's first version renders every report: warm the render workers up while the tables are
                # checked (unless PDFs were kept from an earlier, interrupted run: a pool may not be needed then).
                from evaluation.reporting.parallel import RenderPool, default_workers

                pool = RenderPool(default_workers())
            return _evaluate(catalogue, year, data_dir, out_dir, run_date, allow_incomplete, ledger_url, cached,
                             render_parallel_from, sample, received_at, gate, pool)
    except UserError as exc:
        return _refused(exc)
    except OSError as exc:
        found = storage_error(exc)
        if found is None:
            raise
        return _refused(found)
    finally:
        if pool is not None:
            pool.close()


def _who() -> str:
    """What holds the year's lock, for the message another run gets."""
    context = FlowRunContext.get()
    return f"annual-evaluation {context.flow_run.name}" if context and context.flow_run else "annual-evaluation"


def _refused(exc: UserError):
    """A failure the user can fix: one sentence in the log and in the state, no traceback."""
    get_run_logger().error("%s", exc.message)
    return Failed(message=exc.message, data={"status": "error", "code": int(exc.code), "message": exc.message})


def _evaluate(catalogue: Catalogue, year: int, data_dir: str, out_dir: str, run_date: str, allow_incomplete: bool,
              ledger_url: str | None, cached: dict, render_parallel_from: int, sample: bool, received_at: str,
              gate: Gate, pool):
    """Receive and check the tables (past years the ledger lacks first), record them, then issue."""
    check_task = check.with_options(**cached)
    past = pipeline.past_years(catalogue, year)
    for y in past:  # a past year the ledger does not know yet is taken from the sources once
        needed = backfill_needed(catalogue, y, data_dir, out_dir, ledger_url)
        if needed:
            record(_intakes(catalogue, needed, y, data_dir, None, gate, check_task, out_dir, ledger_url), catalogue,
                   out_dir, ledger_url, received_at)
    before = history(catalogue, past, out_dir, ledger_url)
    intakes = _intakes(catalogue, discover(data_dir, year, catalogue), year, data_dir, before.get(year - 1), gate,
                       check_task, out_dir, ledger_url)
    record(intakes, catalogue, out_dir, ledger_url, received_at)
    # the Data Docs are written in a thread while the counties are scored (about 1.5 s for Longnan's 24 tables)
    docs = publish_validation.submit(intakes, gate)
    try:
        return _issue(catalogue, year, out_dir, run_date, allow_incomplete, ledger_url, cached, render_parallel_from,
                      sample, pool, intakes, before)
    finally:
        docs.wait()


def _issue(catalogue: Catalogue, year: int, out_dir: str, run_date: str, allow_incomplete: bool, ledger_url: str | None,
           cached: dict, render_parallel_from: int, sample: bool, pool, intakes: list[pipeline.Intake], before: dict):
    """Score, plan, render and publish a new version from the year's checked tables (or find it unchanged)."""
    logger = get_run_logger()
    out = Path(out_dir)
    score_task, analyse_task = (t.with_options(**cached) for t in (score, analyse))
    problems = pipeline.completeness(intakes)
    if problems and not allow_incomplete:
        message = (f"{year}年度数据不完整，未出具评价报告。以下部门的数据需要补齐或更正"
                   f"（如确需先出具临时报告，请使用 --allow-incomplete）：\n" + "\n".join(problems))
        logger.error(message, extra={"console": False})  # the command line prints the list itself
        return Failed(message=f"{year}年度数据不完整（{len(problems)} 个部门），未出具评价报告",
                      data={"status": "refused", "problems": problems})

    fingerprint = pipeline.input_fingerprint(intakes, catalogue, CODE, allow_incomplete=allow_incomplete, history=before)
    with versions.year_lock(out, year):  # held since the run started (re-entrant): the version is decided here
        version, previous = operations.next_version(out, year, fingerprint)
        if version is None:
            return _unchanged(out, year, previous, "inputs, configuration and code are unchanged")

        def call(step: operations.Step, known: dict):
            """The evaluation's steps (operations.EVALUATE); the costly ones as cached tasks."""
            if step.name == "score":
                return score_task(known["values"], catalogue, CODE)
            if step.name == "analyse":
                return analyse_task(known["result"], known["values"], catalogue, year, known["history"], CODE)
            if step.name == "plan":
                return plan(*(quote(known[name]) for name in step.inputs))
            return step.fn(**{name: known[name] for name in step.inputs})

        made = operations.run_steps(operations.EVALUATE, call=call, intakes=intakes, catalogue=catalogue, year=year,
                                    history=before, version=version, run_date=run_date, sample=sample,
                                    incomplete=bool(problems), code=CODE)
        evaluation = operations.Evaluation.of(made)
        to_render, carried = pipeline.split_plan(evaluation.plan, previous[1] if previous else None)
        if previous and not to_render:
            return _unchanged(out, year, previous, "the inputs changed but no report's content did")
        revisions = revise(quote(previous), quote(intakes), quote(evaluation.result), quote(catalogue), out_dir,
                           ledger_url, version, run_date,
                           {r.county_code for r in to_render}, operations.past_changed(previous, fingerprint))
        staged = operations.stage(out, year, version, to_render, carried, previous, run_date=run_date,
                                  revisions=revisions)
        if carried:
            logger.info("carried over unchanged from v%d: %d reports", previous[0], len(carried))
        # PDFs rendered earlier from the same contexts (a run that was interrupted) are taken, not rendered again
        renders = RenderCache(cached["result_storage"] / "rendered", CODE)
        rendered, fresh = reuse_rendered(quote(staged.reports), staged.folder,
                                         None if cached["refresh_cache"] else renders)
        # The analysts' workbook is built in a thread while the reports render (at national scale it takes minutes
        # of one core; the flow's own thread only waits for the render workers meanwhile).
        books = ThreadPoolExecutor(1, thread_name_prefix="workbook")
        book = books.submit(evaluation.workbook) if evaluation.catalogue is not None else None
        books.shutdown(wait=False)
        method = None
        if fresh and on_dask():
            rendered.update(_render_on_dask(fresh, staged.folder, renders))
        elif len(fresh) >= render_parallel_from or (fresh and pool is not None):
            # the methodology report too, first, beside the scorecards (in publish it would render after them)
            extra = [evaluation.methodology(version, run_date)] if evaluation.analysis is not None else []
            # (quoted: Prefect would walk every report's context, three times, looking for futures to resolve)
            rendered.update(render_batch(quote(fresh + extra), staged.folder, renders, pool))  # a new pool: ~3 s
            method = (extra[0], rendered.pop(extra[0].file_name)) if extra else None
        else:
            rendered.update({report.file_name: render(report, staged.folder, renders) for report in fresh})
        folder, manifest = operations.publish(staged, rendered, fingerprint, evaluation, run_date=run_date,
                                              sample=sample, incomplete=bool(problems),
                                              renders=None if cached["refresh_cache"] else renders,
                                              methodology=method, workbook=book.result() if book else None)
    logger.info("issued %s: %d PDFs rendered, %d carried over", folder, len(to_render), len(carried))

    publish_run(catalogue, manifest, folder)
    base = portal_url()
    rows = "\n".join(f"| {s['rank']} | [{catalogue.county(s['county_code']).name}]({base}/analyst/{year}/county/"
                     f"{s['county_code']}?v={version}) {s['county_code']} | {s['overall']:.1f} | {s['grade']} | {s['zone_rank']} |"
                     for s in manifest["scores"])
    create_markdown_artifact(
        key=f"annual-{year}",
        markdown=f"# {year} v{version}\n\n[评价工作台]({base}/analyst/{year}) · {folder}\n\n"
                 f"| 排名 | 县区 | 综合得分 | 等级 | 功能区内排名 |\n|---|---|---|---|---|\n{rows}\n",
        description="Annual evaluation summary",
    )
    return Completed(message=f"issued v{version}", data={
        "status": "issued", "version": version, "folder": str(folder), "files": sorted(manifest["outputs"]),
        "rendered": sorted(r.file_name for r in to_render), "carried": sorted(carried),
        "incomplete": bool(problems), "scores": manifest["scores"], "revisions": manifest["revisions"]})


def _unchanged(out: Path, year: int, previous: tuple[int, dict], why: str) -> dict:
    folder = versions.year_dir(out, year) / f"v{previous[0]}"
    get_run_logger().info("没有变化: %s since v%d (%s)", why, previous[0], folder)
    return {"status": "unchanged", "version": previous[0], "folder": str(folder), "files": sorted(previous[1]["outputs"])}

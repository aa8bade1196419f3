"""The operations every front door calls: the CLI, the Prefect flows, the tests, the benchmarks and
the web app. Each is a plain function over plain data and resources handed in (a ledger, a GX gate,
a render cache); none imports Prefect, reads the clock or picks a folder on its own.

    check_folder   receive and check every table a year expects (drop folder, HTTP, SQL, portal)
    check_file     check one table handed in (`twomountains validate`, a web upload)
    record         keep checked tables in the ledger, byte for byte
    correct        check a bureau's corrected table and record it as superseding the old one
    evaluate       accepted values -> scores -> analysis -> report plan, by the steps of EVALUATE
    render         planned reports -> PDFs (taking those a render cache already holds)
    next_version, revision_notes, stage, publish
                   issue a version: decide its number, write the 修订说明, carry unchanged reports over,
                   then (after render) write the manifest and rename the staged folder into place
    issue          all of the above in this process (the annual flow runs the same operations as tasks)
    annual         the annual evaluation in this process: receive, check, record, then issue (the web
                   workbench's run button when no Prefect server is configured)
    history        submissions, versions, deliveries and provenance of a year (`twomountains history`)
    distribute     distribute a version (evaluation.distribution.runs: plan_distribution, send_planned): plan its deliveries over a channel, send them with the `send` handed
                   in (deliver_one, or the flow's retried task), and say what became of each

The evaluation's shape is data (`EVALUATE`): named steps with the names of what each takes and
makes. `evaluate` runs them in order in this process; flows/annual.py runs the same functions as
Prefect tasks (cached, retried, on Dask) in the same order, and a test holds the two together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd

from evaluation import pipeline, versions
from evaluation.catalogue import Catalogue
from evaluation.fsutil import atomic_write, child
from evaluation.ingest import IngestError, discover, receive_file
from evaluation.reporting import pages
from evaluation.reporting.rendercache import RenderCache
from evaluation.validation import Gate

if TYPE_CHECKING:  # the ledger's SQLAlchemy (half a second to import) is loaded by whoever opens a ledger
    from evaluation.distribution.runs import Distribution
    from evaluation.ledger import Ledger, Recorded


# -- intake ---------------------------------------------------------------------------------------


def check_folder(catalogue: Catalogue, data_dir: Path | str, year: int, *, previous: pd.DataFrame | None = None,
                 gate: Gate | None = None, departments: set[str] | None = None,
                 ledger: Ledger | None = None) -> list[pipeline.Intake]:
    """Every table `year` expects (or those of `departments`), received from its source and checked;
    a table that is not there is an Intake with status "missing". Portal sources are read from
    `ledger` (missing without one)."""
    def receive(e):
        if e.kind == "portal":
            return (pipeline.receive_from_ledger(ledger, e, catalogue, year) if ledger is not None else
                    pipeline.Intake(e.department, catalogue.departments[e.department].name, e.path.name, "missing",
                                    message="报送门户的数据需从报送台账读取"))
        return pipeline.receive_one(e, catalogue, year, data_dir)

    return [pipeline.check_one(receive(e), catalogue, previous=previous, gate=gate)
            for e in discover(data_dir, year, catalogue) if departments is None or e.department in departments]


def check_file(catalogue: Catalogue, department: str, year: int, path: Path, *, ledger: Ledger | None = None,
               gate: Gate | None = None) -> pipeline.Intake:
    """One table handed in for `department` and `year`, checked against last year's accepted values
    (from `ledger`, when there is one). An unreadable file is an Intake with status "unreadable"."""
    name = catalogue.departments[department].name
    try:
        received = receive_file(path, catalogue.sources[department], year)
    except IngestError as exc:
        return pipeline.Intake(department, name, Path(path).name, "unreadable", message=str(exc))
    intake = pipeline.Intake(department, name, received.original_name, "pending", received=received)
    previous = None
    if ledger is not None:
        intake = pipeline.same_bytes_notice(ledger, intake, catalogue)
        previous = pipeline.year_values(ledger, catalogue, year - 1)
    return pipeline.check_one(intake, catalogue, previous=previous, gate=gate)


def record(ledger: Ledger, intakes: list[pipeline.Intake], catalogue: Catalogue, received_at: str,
           reason: str = "") -> list[Recorded | None]:
    """Keep each received table in the ledger (None for a table that never arrived)."""
    return [pipeline.record_one(ledger, i, catalogue, received_at, reason=reason) for i in intakes]


def correct(ledger: Ledger, catalogue: Catalogue, department: str, year: int, path: Path, reason: str,
            received_at: str, *, gate: Gate | None = None) -> tuple[pipeline.Intake, Recorded | None]:
    """A bureau's corrected table: checked, then recorded (accepted: superseding the table in force;
    rejected: kept, changing nothing). Re-issuing is `evaluate` (or the annual flow) afterwards."""
    checked = check_file(catalogue, department, year, path, ledger=ledger, gate=gate)
    if checked.received is None:
        return checked, None
    return checked, pipeline.record_one(ledger, checked, catalogue, received_at, reason=reason)


# -- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the evaluation: `fn(**{name: value for name in inputs})` makes `output`."""

    name: str
    fn: Callable
    inputs: tuple[str, ...]
    output: str


def _info(catalogue, intakes, year, version, run_date, sample, incomplete):
    return pipeline.run_info(catalogue, intakes, year=year, version=version, run_date=run_date, sample=sample,
                             incomplete=incomplete)


def _plan(result, catalogue, info, analysis, intakes, code, gep):
    return pipeline.report_plan(result, catalogue, info, analysis, intakes, code=code, gep=gep)


EVALUATE: tuple[Step, ...] = (
    Step("values", pipeline.assemble_values, ("intakes", "catalogue", "year", "history"), "values"),
    Step("gep", pipeline.gep_account, ("values", "catalogue", "year", "history"), "gep"),
    Step("score", pipeline.score, ("values", "catalogue"), "result"),
    Step("analyse", pipeline.analyse, ("result", "catalogue", "year", "history"), "analysis"),
    Step("info", _info, ("catalogue", "intakes", "year", "version", "run_date", "sample", "incomplete"), "info"),
    Step("plan", _plan, ("result", "catalogue", "info", "analysis", "intakes", "code", "gep"), "plan"),
)


def run_steps(steps: tuple[Step, ...], *, call: Callable[[Step, dict], object] | None = None, **given) -> dict:
    """Run `steps` in order on what is given; returns everything given and made, by name.

    call(step, known) runs one step (default: step.fn on its inputs); the annual flow passes one that
    runs some steps as cached Prefect tasks.
    """
    known = dict(given)
    for step in steps:
        missing = [name for name in step.inputs if name not in known]
        if missing:
            raise ValueError(f"step {step.name} needs {', '.join(missing)}, which nothing before it makes")
        known[step.output] = call(step, known) if call else step.fn(**{name: known[name] for name in step.inputs})
    return known


@dataclass
class Evaluation:
    """A year scored and planned: every report's context, attachments and content key."""

    intakes: list[pipeline.Intake]
    values: pd.DataFrame
    result: object  # ScoreResult
    analysis: object  # Analysis
    info: object  # RunInfo
    plan: list[pipeline.PlannedReport] = field(default_factory=list)
    catalogue: Catalogue | None = None
    gep: object = None  # the GEP account (evaluation.gep.Account), when the catalogue has GEP accounting

    @classmethod
    def of(cls, made: dict) -> "Evaluation":
        """From what `run_steps` gave and made running EVALUATE."""
        return cls(made["intakes"], made["values"], made["result"], made["analysis"], made["info"], made["plan"],
                   made.get("catalogue"), made.get("gep"))

    def workbook(self) -> tuple[str, bytes]:
        """The analysts' workbook of this evaluation: (file name, bytes)."""
        from evaluation.reporting import workbook

        facts = pipeline.report_facts(self.intakes, self.catalogue)
        return (workbook.file_name(self.catalogue.city.name, self.info.year),
                workbook.build(self.result, self.catalogue, self.info, self.analysis, facts, gep=self.gep))

    def methodology(self, version: int | None = None, run_date: str | None = None) -> pipeline.PlannedReport:
        """The methodology report (技术报告) of this evaluation as a report to render (for analysts and
        reviewers: never in a version's `outputs`, never sent)."""
        from evaluation.reporting import methodology
        from evaluation.reporting.context import fmt_date

        city = self.catalogue.city
        context = methodology.context(self.result, self.catalogue, self.info, self.analysis)
        if version is not None:
            context.update(version=version, run_date=run_date, run_date_text=fmt_date(run_date))
        return pipeline.PlannedReport(methodology.file_name(city.code, city.name, self.info.year), city.code, context)

    def report(self, code: str) -> pipeline.PlannedReport:
        """The planned report of a county (or the city, for the summary)."""
        return next(r for r in self.plan if r.county_code == code)


def evaluate(catalogue: Catalogue, intakes: list[pipeline.Intake], year: int, *, run_date: str, version: int = 1,
             history: dict[int, pd.DataFrame] | None = None, sample: bool = False, code: str = "",
             analyse: bool = True) -> Evaluation:
    """Score `year` from its checked tables and plan every report (EVALUATE's steps, in this process).

    history: past years' accepted values (county x variable) for progress and trends;
    analyse=False leaves out the Monte Carlo, readiness and trends (the reports then go without them).
    """
    steps = EVALUATE if analyse else tuple(s for s in EVALUATE if s.name != "analyse")
    made = run_steps(steps, intakes=intakes, catalogue=catalogue, year=year, history=history or {},
                     version=version, run_date=run_date, sample=sample,
                     incomplete=bool(pipeline.completeness(intakes)), code=code,
                     **({} if analyse else {"analysis": None}))
    return Evaluation.of(made)


def render(reports: list[pipeline.PlannedReport], folder: Path, *, renders: RenderCache | None = None,
           workers: int = 1) -> dict[str, str]:
    """Render planned reports into `folder` ({file: sha256}): those `renders` holds are taken from it,
    the rest rendered here (workers=1) or in a pool of worker processes."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    done, fresh = pipeline.reuse_rendered(reports, folder, renders) if renders is not None else ({}, list(reports))
    if workers > 1 and len(fresh) > 1:
        from evaluation.reporting.parallel import RenderPool

        with RenderPool(min(workers, len(fresh))) as pool:
            done.update(pool.render(fresh, folder, renders=renders))
    else:
        done.update({r.file_name: pipeline.render_one(r, folder, renders) for r in fresh})
    return done


# -- issuing a version ----------------------------------------------------------------------------


def next_version(out_dir: Path | str, year: int, fingerprint: dict) -> tuple[int | None, tuple[int, dict] | None]:
    """The version an evaluation with `fingerprint` issues (None: the latest was made from exactly
    these inputs, configuration and code) and the latest issued version (number, manifest), if any."""
    previous = versions.latest(Path(out_dir), year)
    if previous and all(previous[1].get(k) == v for k, v in fingerprint.items()):
        return None, previous
    return (previous[0] + 1 if previous else 1), previous


def past_changed(previous: tuple[int, dict] | None, fingerprint: dict) -> bool:
    """Whether the past years' accepted values differ from those the previous version read (a correction to an
    earlier year); a version written before they were fingerprinted counts as unchanged."""
    return previous is not None and "history" in previous[1] and previous[1]["history"] != fingerprint.get("history")


def revision_notes(ledger: Ledger, previous: tuple[int, dict] | None, intakes: list[pipeline.Intake], result,
                   catalogue: Catalogue, *, version: int, run_date: str, codes: set[str],
                   past_changed: bool = False) -> pipeline.Revisions:
    """The 修订说明 of the reports `codes` re-issues, against the previous version (none for a first);
    `past_changed`: an earlier year's accepted data was corrected since."""
    if previous is None:
        return pipeline.Revisions()
    old_ids = {sid for sid in pipeline.manifest_inputs(previous[1]).values() if sid}
    year = int(previous[1]["year"])
    old_facts = ledger.facts(year, current_only=False)
    old_facts = old_facts[old_facts["submission_id"].isin(old_ids)]
    reasons = {s["id"]: s["reason"] for s in ledger.submissions(year) if s["reason"]}
    return pipeline.revisions(previous[1], intakes, result, old_facts, catalogue, version=version,
                              run_date=run_date, reasons=reasons, codes=codes, past_changed=past_changed)


@dataclass
class Staged:
    """A version being built in its staging folder: the reports still to render into it (as issued in
    this version, with their 修订说明) and the reports carried over byte for byte from an earlier one."""

    out_dir: Path
    year: int
    version: int
    folder: Path
    reports: list[pipeline.PlannedReport]
    carried: dict[str, int]  # file -> the version whose bytes it keeps
    outputs: dict[str, str]  # file -> sha256, of the carried reports so far
    revisions: dict[str, tuple[str, ...]]


def stage(out_dir: Path | str, year: int, version: int, to_render: list[pipeline.PlannedReport],
          carried: dict[str, int], previous: tuple[int, dict] | None, *, run_date: str,
          revisions: pipeline.Revisions) -> Staged:
    """Start version `version`: a fresh staging folder holding the carried-over reports (checked against
    the sha256 their manifest recorded); `to_render` as this version issues them. Call under the year's lock."""
    out = Path(out_dir)
    folder = versions.stage(out, year, version)
    outputs = {name: versions.carry(out, year, previous[0], name, folder, previous[1]["outputs"][name])
               for name in carried} if previous else {}
    issued = [pipeline.with_edition(r, version=version, run_date=run_date, revision=revisions.lines.get(r.county_code, ()),
                                    corrected=revisions.corrected.get(r.county_code, ())) for r in to_render]
    return Staged(out, year, version, folder, issued, dict(carried), outputs, revisions.lines)


def publish(staged: Staged, rendered: dict[str, str], fingerprint: dict, evaluation: "Evaluation", *,
            run_date: str, sample: bool, incomplete: bool, renders: RenderCache | None = None,
            methodology: tuple[pipeline.PlannedReport, str] | None = None,
            workbook: tuple[str, bytes] | None = None) -> tuple[Path, dict]:
    """Write the manifest and make the staged version the issued one (an atomic rename): (folder, manifest).
    The methodology report is rendered here (or taken from `renders`, keyed on its whole context), unless
    `methodology` gives it already rendered into the staged folder, with its digest (the flow renders it
    in the render pool, beside the scorecards). `workbook` is the analysts' workbook when it was built already
    (the flow builds it while the reports render)."""
    missing = {r.file_name for r in staged.reports} - set(rendered)
    if missing:
        raise ValueError(f"not rendered: {', '.join(sorted(missing))}")
    findings = {i.department: i.report.findings for i in evaluation.intakes if i.report is not None}
    manifest = pipeline.build_manifest(
        fingerprint, year=staged.year, version=staged.version, run_date=run_date, sample=sample,
        incomplete=incomplete, outputs={**staged.outputs, **rendered}, result=evaluation.result, findings=findings,
        revisions=staged.revisions, content_keys={r.file_name: r.content_key for r in evaluation.plan},
        editions={**staged.carried, **{r.file_name: staged.version for r in staged.reports}})
    if staged.reports:  # the contexts this version rendered, for the web workbench (evaluation.reporting.pages)
        data = pages.archive({r.county_code: r.context for r in staged.reports})
        atomic_write(child(staged.folder, pages.FILE), data, make_parents=False)
        manifest["contexts"] = {"file": pages.FILE, "sha256": pages.digest(data)}
    if evaluation.catalogue is not None:  # every version carries the analysts' workbook beside its PDFs
        name, data = workbook or evaluation.workbook()  # (listed on its own: `outputs` are the documents that are sent)
        atomic_write(child(staged.folder, name), data, make_parents=False)
        manifest["workbook"] = {"file": name, "sha256": hashlib.sha256(data).hexdigest()}
        if methodology is not None:  # the methodology report, for analysts and reviewers (never sent)
            report, sha = methodology
            manifest["methodology"] = {"file": report.file_name, "sha256": sha}
        elif evaluation.analysis is not None:
            report = evaluation.methodology(staged.version, run_date)
            digest, _ = pipeline.reuse_rendered([report], staged.folder, renders) if renders is not None else ({}, [])
            manifest["methodology"] = {"file": report.file_name,
                                       "sha256": digest.get(report.file_name)
                                       or pipeline.render_one(report, staged.folder, renders)}
    return versions.publish(staged.folder, staged.out_dir, staged.year, staged.version, manifest), manifest


@dataclass
class Issued:
    """What `issue` did: the version it issued (or found unchanged) and its manifest."""

    status: str  # "issued" or "unchanged"
    version: int
    folder: Path
    manifest: dict
    rendered: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()


def issue(catalogue: Catalogue, intakes: list[pipeline.Intake], ledger: Ledger, out_dir: Path | str, year: int, *,
          run_date: str, history: dict[int, pd.DataFrame] | None = None, sample: bool = False,
          allow_incomplete: bool = False, code: str = "", renders: RenderCache | None = None,
          workers: int = 1) -> Issued:
    """Evaluate `year` from its checked tables and issue a new version under `out_dir` when anything
    changed (in this process: the annual flow runs the same operations as tasks). Re-issued reports
    carry a 修订说明; unchanged ones are carried over byte for byte."""
    from evaluation.errors import ExitCode, UserError

    problems = pipeline.completeness(intakes)
    if problems and not allow_incomplete:
        raise UserError(f"{year}年度数据不完整，未出具评价报告：" + "；".join(problems), ExitCode.REJECTED)
    out = Path(out_dir)
    fingerprint = pipeline.input_fingerprint(intakes, catalogue, code, allow_incomplete=allow_incomplete,
                                             history=history)
    with versions.year_lock(out, year):
        version, previous = next_version(out, year, fingerprint)
        if version is None:
            return _as_issued("unchanged", out, year, previous)
        made = evaluate(catalogue, intakes, year, run_date=run_date, version=version, history=history,
                        sample=sample, code=code)
        to_render, carried = pipeline.split_plan(made.plan, previous[1] if previous else None)
        if previous and not to_render:
            return _as_issued("unchanged", out, year, previous)
        notes = revision_notes(ledger, previous, intakes, made.result, catalogue, version=version, run_date=run_date,
                               codes={r.county_code for r in to_render}, past_changed=past_changed(previous, fingerprint))
        staged = stage(out, year, version, to_render, carried, previous, run_date=run_date, revisions=notes)
        rendered = render(staged.reports, staged.folder, renders=renders, workers=workers)
        folder, manifest = publish(staged, rendered, fingerprint, made, run_date=run_date, sample=sample,
                                   incomplete=bool(problems), renders=renders)
    return Issued("issued", version, folder, manifest, tuple(sorted(r.file_name for r in to_render)),
                  tuple(sorted(carried)))


def annual(catalogue: Catalogue, data_dir: Path | str, out_dir: Path | str, year: int, *, ledger: Ledger,
           run_date: str, received_at: str, gate: Gate | None = None, allow_incomplete: bool = False,
           code: str = "", workers: int = 1, say: Callable[[str], None] = lambda line: None,
           checking=None) -> Issued:
    """The annual evaluation in this process, step for step as the annual flow runs it as tasks (the web
    workbench's run button without a Prefect server): past years the ledger lacks are taken from the
    sources once; every table is received (portal tables from the ledger), a correction since recorded
    replaces the file it superseded, each is checked and recorded; then `issue`. Holds the year's lock
    throughout (a second run is refused in words). `say` hears each stage, in Chinese; `checking`: a lock
    held while tables are checked (a GX context shared with other threads)."""
    import contextlib

    out = Path(out_dir)
    with versions.year_lock(out, year, what="评价工作台的年度评价"):
        versions.clean_partials(out, year)
        versions.clear_strays(out, year)
        past = pipeline.past_years(catalogue, year)
        for y in past:
            needed = pipeline.backfill_needed(ledger, catalogue, y, data_dir)
            if needed:
                say(f"补录 {y} 年度数据（{len(needed)} 个表）")
                with checking or contextlib.nullcontext():
                    checked = [pipeline.check_one(pipeline.receive_one(e, catalogue, y, data_dir), catalogue, gate=gate)
                               for e in needed]
                record(ledger, checked, catalogue, received_at)
        before = {y: pipeline.year_values(ledger, catalogue, y) for y in past}
        intakes = []
        with checking or contextlib.nullcontext():
            for e in discover(data_dir, year, catalogue):
                intake = (pipeline.receive_from_ledger(ledger, e, catalogue, year) if e.kind == "portal"
                          else pipeline.receive_one(e, catalogue, year, data_dir))
                intake, _ = pipeline.current_for(ledger, pipeline.same_bytes_notice(ledger, intake, catalogue))
                say(f"校验{intake.department_name}：{intake.file}")
                intakes.append(pipeline.check_one(intake, catalogue, previous=before.get(year - 1), gate=gate))
        record(ledger, intakes, catalogue, received_at)
        accepted = sum(1 for i in intakes if i.accepted)
        say(f"{len(intakes)} 个表中 {accepted} 个通过校验并已登记；正在评分并出具报告")
        done = issue(catalogue, intakes, ledger, out, year, run_date=run_date, history=before,
                     sample=pipeline.is_sample(data_dir), allow_incomplete=allow_incomplete, code=code, workers=workers)
    if done.status == "unchanged":
        say(f"没有变化：各报告内容均未变化，沿用第 {done.version} 版。")
    else:
        say(f"已出具第 {done.version} 版：新出具 {len(done.rendered)} 份报告" +
            (f"，{len(done.carried)} 份内容未变、沿用原文件。" if done.carried else "。"))
    return done


def _as_issued(status: str, out: Path, year: int, previous: tuple[int, dict]) -> Issued:
    return Issued(status, previous[0], versions.year_dir(out, year) / f"v{previous[0]}", previous[1])


# -- history --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionEntry:
    """One issued version of a year: what it re-issued, which bureaus' data changed, what was delivered."""

    version: int
    run_date: str
    renewed: int  # reports rendered in this version
    carried: int  # reports whose bytes are an earlier version's
    changed: tuple[str, ...]  # departments whose submission differs from the version before
    first: bool
    delivered: int  # reports of this version delivered at least once
    reports: int


@dataclass(frozen=True)
class ReportEntry:
    """A county's report as it stands in one version."""

    version: int
    file: str
    edition: int  # the version whose bytes it is
    sha256: str
    deliveries: tuple[dict, ...]  # delivered rows of the delivery ledger
    revision: tuple[str, ...]  # its 修订说明, when this version re-issued it


@dataclass
class History:
    year: int
    submissions: list[dict]
    versions: list[VersionEntry]
    reports: list[ReportEntry]  # of the county asked about
    facts: pd.DataFrame | None  # the county's figures with their provenance (file, sheet, row, sha256)


def history(ledger: Ledger, deliveries, out_dir: Path, year: int, county: str | None = None) -> History:
    """Submissions, issued versions and deliveries of `year` (`deliveries`: the delivery ledger, or None
    when there is none yet); with `county`, its report in each version and where each figure came from."""
    delivered: dict[str, list[dict]] = {}
    for row in deliveries.rows(year=year) if deliveries is not None else ():
        if row["status"] == "delivered":
            delivered.setdefault(row["report_sha256"], []).append(row)
    entries, reports, before = [], [], {}
    for n in versions.versions(out_dir, year):
        m = versions.read_manifest(versions.year_dir(out_dir, year) / f"v{n}")
        editions = m.get("editions", {})
        renewed = sum(1 for f in m["outputs"] if int(editions.get(f, n)) == n)
        inputs = {i["department"]: i.get("submission_id") for i in m.get("inputs", [])}
        changed = tuple(d for d, sid in inputs.items() if before and before.get(d) != sid)
        sent = sum(1 for digest in m["outputs"].values() if digest in delivered)
        entries.append(VersionEntry(n, m.get("run_date", ""), renewed, len(m["outputs"]) - renewed, changed,
                                    not before, sent, len(m["outputs"])))
        before = inputs
        for f in (f for f in m["outputs"] if county and f.startswith(county + "_")):
            edition = int(editions.get(f, n))
            revision = tuple(m.get("revisions", {}).get(county, [])) if edition == n else ()
            reports.append(ReportEntry(n, f, edition, m["outputs"][f], tuple(delivered.get(m["outputs"][f], [])),
                                       revision))
    return History(year, ledger.submissions(year), entries, reports, ledger.facts(year, county) if county else None)


# -- distribution ---------------------------------------------------------------------------------


def distribute(deliveries, out_dir: Path | str, year: int, version: int, recipients, catalogue: Catalogue,
               channel: str, *, now: Callable[[], str], outbox_dir: Path | None = None, smtp=None,
               resend_uncertain: bool = False, send: Callable | None = None) -> Distribution:
    """Send version `version` of `year` over `channel` in this process, each report to each recipient
    at most once: under the version's distribution lock, plan (`plan_distribution`) and send
    (`send_planned`; default `send`: deliver_one once, no retries). `now` gives the time to record."""
    # imported here: `twomountains validate` imports this module and should not pay for the mail stack
    from evaluation.distribution import deliver_one
    from evaluation.distribution.runs import lock_path, plan_distribution, send_planned
    from evaluation.locks import file_lock

    out = Path(out_dir)
    folder = versions.year_dir(out, year) / f"v{version}"
    manifest = versions.read_manifest(folder)
    outbox = outbox_dir or out / "outbox"
    with file_lock(lock_path(out, year, version), what="distribute"):
        planned = plan_distribution(deliveries, manifest, recipients, channel, catalogue, now=now(),
                                             resend_uncertain=resend_uncertain)
        send = send or (lambda d: deliver_one(d, folder, deliveries, now=now, outbox_dir=outbox, smtp=smtp,
                                              resend_uncertain=resend_uncertain))
        return send_planned(planned, deliveries, send, year=year, version=version, channel=channel)

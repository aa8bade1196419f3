"""The annual evaluation's steps as plain functions; flows/ wires them together.

ingest_one -> validate_one -> completeness -> assemble_values -> score ->
report_plan -> render_one -> build_manifest. Each step takes and returns plain data
so a Prefect task can wrap it in two lines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import __version__
from evaluation.catalogue import Catalogue
from evaluation.index.scoring import ScoreResult, score_catalogue
from evaluation.ingest import FACT_COLUMNS, Expected, clip, IngestError, Received, Submission, TransientSourceError, discover, parse, receive
from evaluation.ledger import Ledger, Recorded
from evaluation.index.explain import dimension_progress
from evaluation.index.readiness import assess, city_view
from evaluation.index.scoring import IndexSpec
from evaluation.index.uncertainty import monte_carlo
from evaluation.reporting.context import Analysis, RunInfo, county_context, summary_context
from evaluation.validation import Finding, Gate, ValidationReport, validate_submission

SAMPLE_MARKER = "SAMPLE.yaml"
REASON_CAP = 120  # characters of a correction's reason printed in a 修订说明
NAME_CAP = 60  # characters of a bureau's file name printed in a document
STATUS_LABEL = {"missing": "缺少数据", "unreadable": "无法读取", "rejected": "校验未通过"}


@dataclass
class Intake:
    """What happened to one bureau's file for the year."""

    department: str
    department_name: str
    file: str
    status: str  # "accepted", "rejected", "unreadable", "missing"
    submission: Submission | None = None
    report: ValidationReport | None = None
    message: str = ""
    received: Received | None = None
    # about the delivery, not the figures (e.g. a second file for the bureau in the drop folder);
    # parse_one hands them to the submission, whose validation report carries them as warnings
    notices: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def is_sample(data_dir: Path | str) -> bool:
    """Sample data carries a marker file; every report made from it is stamped 示例数据."""
    return (Path(data_dir) / SAMPLE_MARKER).is_file()


def receive_one(expected: Expected, catalogue: Catalogue, year: int, data_dir: Path | str | None = None, *,
                retries: int | None = None) -> Intake:
    """Receive a bureau's table from its source ("pending" with the bytes, "missing", or
    "unreadable" for a file that is there but cannot be used: an .xls, a symlink, too large).

    retries=0 leaves retrying to the caller: a transient remote failure then raises
    `TransientSourceError` instead of becoming "missing".
    """
    from evaluation.ingest import MissingFileError, clip_list, others_notice

    name = catalogue.departments[expected.department].name
    others = expected.others
    notice = others_notice(expected, name, year)
    notices = (notice,) if notice else ()
    if expected.problem:
        return Intake(expected.department, name, expected.path.name, "unreadable", message=expected.problem,
                      notices=notices)
    if not expected.present:
        message = f"未收到文件 {expected.path.name}"
        if others:
            message += (f"；文件夹中有 {clip_list(others, '个文件')}，如是本部门 {year} 年的数据，"
                        f"请改名为 {expected.path.name}")
        return Intake(expected.department, name, expected.path.name, "missing", message=message)
    try:
        received = receive(catalogue.sources[expected.department], year, data_dir, retries=retries)
    except TransientSourceError:
        if retries == 0:
            raise
        return Intake(expected.department, name, expected.path.name, "missing", message="数据源暂时无法访问")
    except IngestError as exc:
        present = expected.kind == "folder" and not isinstance(exc, MissingFileError)
        return Intake(expected.department, name, expected.path.name, "unreadable" if present else "missing",
                      message=str(exc), notices=notices)
    return Intake(expected.department, name, received.original_name, "pending", received=received, notices=notices)


def unreachable(expected: Expected, catalogue: Catalogue, error: BaseException) -> Intake:
    """The intake of a source that still failed after every retry."""
    message = str(error) if isinstance(error, IngestError) else f"数据源访问失败：{type(error).__name__}"
    return Intake(expected.department, catalogue.departments[expected.department].name, expected.path.name,
                  "missing", message=message)


def parse_one(intake: Intake, catalogue: Catalogue) -> Intake:
    """Read received bytes as the bureau's table ("pending" with a submission, or "unreadable")."""
    if intake.received is None or intake.submission is not None:
        return intake
    notices = intake.notices
    try:
        sub = parse(intake.received, catalogue.sources[intake.department], catalogue)
    except IngestError as exc:
        return Intake(intake.department, intake.department_name, intake.file, "unreadable", message=str(exc),
                      received=intake.received, notices=notices)
    sub.notices = list(notices)
    return Intake(intake.department, intake.department_name, intake.file, "pending", submission=sub,
                  received=intake.received, notices=notices)


def ingest_one(expected: Expected, catalogue: Catalogue, year: int, data_dir: Path | str | None = None) -> Intake:
    """Receive and read a bureau's table; problems become a status, not an exception."""
    return parse_one(receive_one(expected, catalogue, year, data_dir), catalogue)


def validate_one(intake: Intake, catalogue: Catalogue, *, previous: pd.DataFrame | None = None,
                 gate: Gate | None = None) -> Intake:
    """Run the bureau's GX suite; `previous` (last year's accepted values) feeds the jump check."""
    if intake.submission is None:
        return intake
    report = validate_submission(intake.submission, catalogue, previous=previous, gate=gate)
    status = "accepted" if report.accepted else "rejected"
    message = "" if report.accepted else report.summary_zh()
    return replace(intake, status=status, report=report, message=message)


def check_one(intake: Intake, catalogue: Catalogue, *, previous: pd.DataFrame | None = None,
              gate: Gate | None = None) -> Intake:
    """Parse and validate received bytes: the pure, cacheable part of the intake."""
    return validate_one(parse_one(intake, catalogue), catalogue, previous=previous, gate=gate)


# -- content keys (what a cached step's result depends on) ----------------------


def frame_digest(frame: pd.DataFrame | None) -> str:
    """A stable hash of a table's labels and values."""
    if frame is None:
        return "none"
    digest = hashlib.sha256()
    digest.update(repr((list(map(str, frame.index)), list(map(str, frame.columns)), [str(t) for t in frame.dtypes])).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def hash_key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()


def check_key(intake: Intake, catalogue: Catalogue, previous: pd.DataFrame | None, code: str) -> str | None:
    """The cache key of `check_one`: the submission's bytes, last year's values of the
    bureau's variables (the jump check), the configuration and the code (suites included).
    None (do not cache) when nothing was received."""
    if intake.received is None:
        return None
    columns = [v.id for v in catalogue.department_variables(intake.department)]
    mine = previous.reindex(columns=columns) if previous is not None else None
    return hash_key("check", intake.department, intake.received.year, intake.received.submission_id,
                    intake.received.original_name, frame_digest(mine), catalogue.config_hash, code, intake.notices)


def values_key(values: pd.DataFrame, catalogue: Catalogue, code: str, *extra: object) -> str:
    return hash_key("values", frame_digest(values), catalogue.config_hash, code, *extra)


def current_for(ledger: Ledger, intake: Intake) -> tuple[Intake, str | None]:
    """The bureau's current submission when the received bytes were since superseded.

    A correction recorded with `twomountains correct` supersedes the file still lying in the
    drop folder; that old file must not undo it. Returns the intake to use and, when it
    was swapped, the id of the superseded bytes that were received.
    """
    if intake.received is None:
        return intake, None
    known = ledger.submission(intake.received.submission_id)
    if known is None or not known["superseded_by"]:
        return intake, None
    current = ledger.current(intake.department, intake.received.year)
    if current is None:
        return intake, None
    received = ledger.received(current["id"])
    return Intake(intake.department, intake.department_name, received.original_name, "pending",
                  received=received, notices=intake.notices), intake.received.submission_id


def same_bytes_notice(ledger: Ledger, intake: Intake, catalogue: Catalogue) -> Intake:
    """Add a notice when the bytes received equal a file sent for another year or bureau (e.g. last
    year's file sent again under this year's name). The figures themselves are checked by validation."""
    if intake.received is None:
        return intake
    earlier = ledger.same_bytes(intake.received)
    if not earlier:
        return intake
    first = earlier[0]
    whose = catalogue.departments[first["department"]].name if first["department"] in catalogue.departments \
        else first["department"]
    notice = (f"《{intake.file}》与{whose} {first['year']} 年报送的《{first['original_name']}》内容完全相同（逐字节一致），"
              f"请确认没有把其他年度或部门的文件当作本年度数据报送。")
    return replace(intake, notices=intake.notices + (notice,))


def record_one(ledger: Ledger, intake: Intake, catalogue: Catalogue, received_at: str, reason: str = "") -> Recorded | None:
    """Keep what was received in the ledger (bytes, outcome, and facts when accepted)."""
    if intake.received is None:
        return None
    findings = [
        {"severity": f.severity, "rule": f.rule, "column": f.column, "rows": f.rows, "found": f.found}
        for f in (intake.report.findings if intake.report else [])
    ]
    if intake.status == "unreadable":
        findings = [{"severity": "error", "rule": intake.message, "column": "", "rows": [], "found": []}]
    facts = intake.submission.facts(catalogue) if intake.accepted and intake.submission else None
    return ledger.record(intake.received, status=intake.status, received_at=received_at, facts=facts,
                         findings=findings, reason=reason)


def accepted_values(ledger: Ledger, department: str, year: int) -> pd.DataFrame | None:
    """A bureau's current accepted values for a year (county x variable), or None."""
    facts = ledger.facts(year)
    facts = facts[facts["department"] == department]
    if facts.empty:
        return None
    return facts.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")


def backfill_needed(ledger: Ledger, catalogue: Catalogue, year: int, data_dir: Path | str | None) -> list[Expected]:
    """A past year's tables that the ledger has nothing accepted for but the sources may have."""
    known = set(ledger.facts(year)["department"])  # one query for every bureau
    return [e for e in discover(data_dir or ".", year, catalogue) if e.present and e.department not in known]


def year_values(ledger: Ledger, catalogue: Catalogue, year: int) -> pd.DataFrame:
    """A year's current accepted values from the ledger (county x variable; NaN where unknown)."""
    codes = sorted(c.code for c in catalogue.counties)
    facts = ledger.facts(year)
    if facts.empty:
        return pd.DataFrame(index=codes, columns=list(catalogue.variables), dtype="float64")
    wide = facts.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")
    return wide.reindex(index=codes, columns=list(catalogue.variables)).astype("float64")


def completeness(intakes: list[Intake]) -> list[str]:
    """Chinese lines naming every bureau whose data cannot be scored."""
    return [
        f"{i.department_name}：{STATUS_LABEL[i.status]}（{i.file}）"
        + ("" if i.message == f"未收到文件 {i.file}" else "\n    " + i.message.replace("\n", "\n    "))
        + "".join("\n    " + n for n in i.notices if n not in i.message)
        for i in intakes if not i.accepted
    ]


def assemble_values(intakes: list[Intake], catalogue: Catalogue) -> pd.DataFrame:
    """County x variable table from the accepted submissions only."""
    facts = [i.submission.facts(catalogue) for i in intakes if i.accepted and i.submission is not None]
    facts = [f for f in facts if not f.empty]
    codes = sorted(c.code for c in catalogue.counties)
    if not facts:
        return pd.DataFrame(index=pd.Index(codes, name="county_code"), columns=list(catalogue.variables), dtype="float64")
    long = pd.concat(facts, ignore_index=True)
    wide = long.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")
    return wide.reindex(index=codes, columns=list(catalogue.variables)).astype("float64")


def score(values: pd.DataFrame, catalogue: Catalogue) -> ScoreResult:
    return score_catalogue(values, catalogue)


def complete_previous(previous: pd.DataFrame | None, catalogue: Catalogue) -> pd.DataFrame | None:
    """Last year's values when every bureau's are there (otherwise progress would compare unlike things)."""
    if previous is None or previous.empty or previous.isna().all().any():
        return None
    return previous


def analyse(result: ScoreResult, catalogue: Catalogue, year: int,
            history: dict[int, pd.DataFrame] | None = None) -> Analysis:
    """Rank stability (Monte Carlo), '两山' base readiness, progress on last year and the trend.

    history: past years' values (county x variable); years with incomplete data are left out.
    """
    uncertainty = monte_carlo(result.raw, result.zones, IndexSpec.from_catalogue(catalogue), catalogue.method.uncertainty)
    readiness = assess(result.raw, catalogue)
    past = {y: score_catalogue(v, catalogue) for y, v in sorted((history or {}).items())
            if complete_previous(v, catalogue) is not None}
    before = past.get(year - 1)
    series = {**past, year: result}
    trend = pd.concat(
        {y: r.dimension_scores.assign(overall=r.overall) for y, r in series.items()}, names=["year", "county_code"]
    )
    return Analysis(uncertainty=uncertainty, readiness=readiness, city_readiness=city_view(readiness, catalogue, year),
                    progress=dimension_progress(result, before),
                    previous_raw=before.raw if before is not None else None, trend=trend)


def revisions(previous: dict, intakes: list[Intake], result: ScoreResult, old_facts: pd.DataFrame,
              catalogue: Catalogue, *, version: int, run_date: str, reasons: dict[str, str] | None = None,
              codes: set[str] | None = None) -> dict[str, tuple[str, ...]]:
    """The 修订说明 of each county (and of the city summary, under the city code) against the previous version.

    previous: the previous version's manifest; old_facts: the facts of the submissions it was made from.
    codes: only these counties / the city (the reports re-issued in this version); default all.
    A report carried over unchanged in earlier versions revises the edition it last had.
    """
    reasons = reasons or {}
    editions = {name.split("_", 1)[0]: int(v) for name, v in previous.get("editions", {}).items()}
    names = {v.id: v.name for v in catalogue.variables.values()}
    units = {v.id: v.unit for v in catalogue.variables.values()}
    dept_name = {k: d.name for k, d in catalogue.departments.items()}
    before_ids = manifest_inputs(previous)
    changed = {i.department: i for i in intakes if i.received and before_ids.get(i.department) != i.received.submission_id}
    def head(code: str) -> str:
        return f"本报告为第{version}版（{run_date}），修订第{editions.get(code, version - 1)}版。"

    general = []
    for dept, intake in sorted(changed.items()):
        old = (before_ids.get(dept) or "无")[:12]
        why = clip(reasons.get(intake.received.submission_id, ""), REASON_CAP)  # text from people: bounded
        general.append(f"{dept_name[dept]}更正了数据：《{clip(intake.file, NAME_CAP)}》"
                       f"（提交编号 {old} → {intake.received.submission_id[:12]}）"
                       + (f"，更正原因：{why}" if why else "") + "。")
    if not changed:
        general.append("输入数据未变，本版因评价配置或程序更新而重新出具。")
    new_facts = pd.concat([i.submission.facts(catalogue).assign(original_name=i.file)
                           for d, i in changed.items() if i.submission is not None and i.accepted], ignore_index=True) \
        if any(i.submission is not None and i.accepted for i in changed.values()) else pd.DataFrame()
    old_scores = {s["county_code"]: s for s in previous.get("scores", [])}
    out: dict[str, tuple[str, ...]] = {}
    for county in catalogue.counties:
        if codes is not None and county.code not in codes:
            continue
        lines = [head(county.code)] + general
        if not new_facts.empty:
            mine = new_facts[new_facts["county_code"] == county.code]
            for f in mine.itertuples():
                prior = old_facts[(old_facts["county_code"] == county.code) & (old_facts["variable_id"] == f.variable_id)]
                old_value = prior["value"].iloc[0] if not prior.empty else None
                if old_value is not None and pd.notna(old_value) and pd.notna(f.value) and abs(old_value - f.value) < 1e-12:
                    continue
                shown_old = "—" if old_value is None or pd.isna(old_value) else f"{old_value:g}"
                shown_new = "—" if pd.isna(f.value) else f"{f.value:g}"
                lines.append(f"{names[f.variable_id]}：{shown_old} → {shown_new} {units[f.variable_id]}"
                             f"（来源：《{clip(f.original_name, NAME_CAP)}》第 {f.row} 行）")
        old = old_scores.get(county.code)
        if old is not None:
            new_score, new_rank = float(result.overall[county.code]), int(result.rank[county.code])
            new_zone = int(result.zone_rank[county.code])
            lines.append(f"综合得分 {old['overall']:.1f} → {new_score:.1f}；全市排名 {old['rank']} → {new_rank}；"
                         f"同类功能区排名 {old['zone_rank']} → {new_zone}。")
        out[county.code] = tuple(lines)
    if codes is None or catalogue.city.code in codes:
        out[catalogue.city.code] = tuple([head(catalogue.city.code)] + general)
    return out


def report_facts(intakes: list[Intake], catalogue: Catalogue, county: str | None = None) -> pd.DataFrame:
    """The accepted facts behind a report, with provenance and the indicator's name."""
    frames = [i.submission.facts(catalogue).assign(original_name=i.file)
              for i in intakes if i.accepted and i.submission is not None]
    facts = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FACT_COLUMNS + ["original_name"])
    if county is not None:
        facts = facts[facts["county_code"] == county]
    names = {v.id: v.name for v in catalogue.variables.values()}
    facts.insert(3, "name", facts["variable_id"].map(names))
    return facts.sort_values(["county_code", "department", "variable_id"]).reset_index(drop=True)


def warning_notes(intakes: list[Intake]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Validation warnings about the figures, as run-wide notes and per-county notes for the scorecards
    (an ignored column or a second file in the drop folder stays in the validation report only)."""
    from evaluation.validation import NOT_FOR_DOCUMENTS

    general: list[str] = []
    per_county: dict[str, list[str]] = {}
    for intake in intakes:
        if intake.report is None or intake.submission is None:
            continue
        table = intake.submission.table.set_index("_row")
        for finding in intake.report.warnings:
            if finding.expectation in NOT_FOR_DOCUMENTS:
                continue
            text = f"{intake.department_name}数据提示：“{finding.column}”{finding.rule}"
            if not finding.rows:
                general.append(text)
            for i, row in enumerate(finding.rows):
                if row not in table.index:
                    continue
                found = f"（{finding.found[i]}）" if i < len(finding.found) else ""
                per_county.setdefault(str(table.at[row, "county_code"]), []).append(text + found)
    return tuple(general), {k: tuple(v) for k, v in per_county.items()}


# Context keys that say which edition a report is; they are left out of its content key.
EDITION_KEYS = ("version", "run_date", "revision")
# Fact columns a reader sees; provenance (submission id, sheet, row) is left out of the content key,
# so a bureau re-sending its whole table re-issues only the counties whose figures changed.
CONTENT_FACT_COLUMNS = ["county_code", "year", "variable_id", "value", "unit", "department"]


@dataclass(frozen=True)
class PlannedReport:
    file_name: str
    county_code: str  # the city code for the summary
    context: dict = field(hash=False)
    attachments: tuple[tuple[str, bytes, str], ...] = ()
    content_key: str = ""  # what the reader sees, apart from its edition (see EDITION_KEYS)


def facts_digests(facts: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per fact row over its content columns (not its provenance)."""
    content = facts[CONTENT_FACT_COLUMNS]
    return pd.util.hash_pandas_object(content, index=False).to_numpy()


def content_key(context: dict, fact_hashes: np.ndarray, code: str) -> str:
    """A report's content: its context without the edition keys, the figures behind it (their
    `facts_digests`, in order) and the code."""
    import json

    visible = {k: v for k, v in context.items() if k not in EDITION_KEYS}
    digest = hashlib.sha256(json.dumps(visible, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                                       default=str).encode("utf-8"))
    digest.update(repr(CONTENT_FACT_COLUMNS).encode())
    digest.update(np.ascontiguousarray(fact_hashes, dtype=np.uint64).tobytes())
    digest.update(code.encode())
    return digest.hexdigest()


def report_plan(result: ScoreResult, catalogue: Catalogue, info: RunInfo,
                analysis: Analysis | None = None, intakes: list[Intake] | None = None,
                code: str = "") -> list[PlannedReport]:
    """One scorecard per county plus the city summary; file names come from validated config only.

    Contexts carry `info`'s edition (version, date, 修订说明); `content_key` does not depend on it.
    """
    from evaluation.exports import safe_frame

    plan = []
    entries = [(county.code, county.name, f"{county.code}_{county.name}_{info.year}年度两山转化绩效评价.pdf",
                county_context(result, catalogue, county.code, info, analysis), county.code,
                f"{county.name}{info.year}年度评价所用数据（含来源文件、工作表和行号）")
               for county in sorted(catalogue.counties, key=lambda c: c.code)]
    city = catalogue.city
    entries.append((city.code, city.name, f"{city.code}_{city.name}_{info.year}年度两山转化绩效评价汇总.pdf",
                    summary_context(result, catalogue, info, analysis), None,
                    f"{city.name}{info.year}年度评价所用全部数据（含来源文件、工作表和行号）"))
    every = report_facts(intakes or [], catalogue)  # once: per report it would cost O(counties²)
    safe = safe_frame(every)  # formula-safe CSV cells, row for row
    hashes = facts_digests(every)
    by_county = {code: rows for code, rows in every.groupby("county_code", sort=False).indices.items()}
    for unit, _name, file_name, context, county, description in entries:
        rows = np.arange(len(every)) if county is None else by_county.get(county, np.arange(0))
        csv = safe.iloc[rows].to_csv(index=False, lineterminator="\n").encode("utf-8")
        attachments = [(f"{unit}_{info.year}_数据.csv", csv, description)]
        if context.get("ranking_omitted"):  # the summary lists only the first and last counties
            attachments.append((f"{unit}_{info.year}_排名.csv", ranking_csv(result, catalogue),
                                f"{city.name}{info.year}年度全部县区综合排名"))
        plan.append(PlannedReport(file_name, unit, context, tuple(attachments),
                                  content_key(context, hashes[rows], code)))
    return plan


def ranking_csv(result: ScoreResult, catalogue: Catalogue) -> bytes:
    """Every county's rank, scores and grade, as formula-safe UTF-8 CSV (Chinese headers)."""
    from evaluation.exports import safe_frame

    table = result.summary().reset_index()
    dims = {d.id: d.name for d in catalogue.dimensions}
    table.insert(1, "county_name", [catalogue.county(str(c)).name for c in table["county_code"]])
    table["zone"] = [catalogue.zone_types[z].name for z in table["zone"]]
    table = table.rename(columns={"county_code": "县区代码", "county_name": "县区", "zone": "主体功能区",
                                  "overall": "综合得分", "grade": "等级", "rank": "排名", "zone_rank": "功能区内排名",
                                  "zone_size": "同类县区数", **dims}).round(2)
    return safe_frame(table).to_csv(index=False, lineterminator="\n").encode("utf-8")


def with_edition(report: PlannedReport, *, version: int, run_date: str, revision: tuple[str, ...] = ()) -> PlannedReport:
    """The report as issued in `version` (its content key is unchanged)."""
    context = {**report.context, "version": version, "run_date": run_date, "revision": list(revision)}
    return PlannedReport(report.file_name, report.county_code, context, report.attachments, report.content_key)


def split_plan(plan: list[PlannedReport], previous: dict | None) -> tuple[list[PlannedReport], dict[str, int]]:
    """Reports to render, and files to carry over unchanged from the previous version
    (file -> the version whose bytes they are)."""
    if previous is None:
        return list(plan), {}
    keys = previous.get("content_keys", {})
    editions = previous.get("editions", {})
    render, carry = [], {}
    for report in plan:
        if keys.get(report.file_name) == report.content_key and report.file_name in previous.get("outputs", {}):
            carry[report.file_name] = int(editions.get(report.file_name, previous["version"]))
        else:
            render.append(report)
    return render, carry


def render_one(report: PlannedReport, folder: Path) -> str:
    """Render one PDF into the (staged) version folder; returns its sha256."""
    from evaluation.reporting.pdf import render_pdf

    from evaluation.fsutil import child

    # the staging folder must exist: one cleared after its run died is never recreated by a stray worker
    data = render_pdf(report.context, child(folder, report.file_name), attachments=list(report.attachments),
                      make_parents=False)
    return hashlib.sha256(data).hexdigest()


def run_info(catalogue: Catalogue, intakes: list[Intake], *, year: int, version: int, run_date: str,
             sample: bool, incomplete: bool, revisions: dict[str, tuple[str, ...]] | None = None) -> RunInfo:
    sources = {v.id: catalogue.departments[v.department].name for v in catalogue.variables.values()}
    notes, county_notes = warning_notes(intakes)
    missing = [f"{i.department_name}：{STATUS_LABEL[i.status]}，相关指标按缺失处理。" for i in intakes if not i.accepted]
    return RunInfo(year=year, version=version, run_date=run_date, sample=sample, incomplete=incomplete,
                   generator=f"twomountains {__version__}", sources=sources,
                   notes=tuple(missing) + notes, county_notes=county_notes, revisions=revisions or {})


def input_fingerprint(intakes: list[Intake], catalogue: Catalogue, code_hash: str, *, allow_incomplete: bool) -> dict:
    """What a version was made from; equal fingerprints mean an identical version."""
    return {
        "config_hash": catalogue.config_hash,
        "code_hash": code_hash,
        "code_version": __version__,
        "allow_incomplete": allow_incomplete,
        "inputs": [
            {"department": i.department, "file": i.file, "status": i.status,
             "submission_id": i.received.submission_id if i.received else None,
             "sha256": i.received.sha256 if i.received else None}
            for i in sorted(intakes, key=lambda i: i.department)
        ],
    }


def manifest_inputs(manifest: dict) -> dict[str, str | None]:
    """{department: submission id} of a version's inputs. Manifests written before submissions
    were identified by bureau, year and bytes hold the bare sha256; it is converted."""
    from evaluation.ingest import submission_id

    year = manifest.get("year")
    out = {}
    for i in manifest.get("inputs", []):
        sid = i.get("submission_id")
        if sid and "sha256" not in i and year is not None:
            sid = submission_id(i["department"], int(year), sid)
        out[i["department"]] = sid
    return out


def build_manifest(fingerprint: dict, *, year: int, version: int, run_date: str, sample: bool,
                   incomplete: bool, outputs: dict[str, str], result: ScoreResult,
                   findings: dict[str, list[Finding]], revisions: dict[str, tuple[str, ...]] | None = None,
                   content_keys: dict[str, str] | None = None, editions: dict[str, int] | None = None) -> dict:
    """What a version is: inputs, scores, outputs (sha256), and per file its content key and the
    version whose rendering it is (`editions`: lower than `version` for a carried-over file)."""
    summary = result.summary()
    return {
        **fingerprint,
        "year": year,
        "version": version,
        "run_date": run_date,
        "sample_data": sample,
        "incomplete": incomplete,
        "outputs": dict(sorted(outputs.items())),
        "content_keys": dict(sorted((content_keys or {}).items())),
        "editions": {name: int((editions or {}).get(name, version)) for name in sorted(outputs)},
        "scores": [
            {"county_code": str(code), "overall": round(float(row["overall"]), 4), "grade": row["grade"],
             "rank": int(row["rank"]), "zone": row["zone"], "zone_rank": int(row["zone_rank"])}
            for code, row in summary.iterrows()
        ],
        "revisions": {code: list(lines) for code, lines in sorted((revisions or {}).items())},
        "validation": {
            dept: [{"severity": f.severity, "rule": f.rule, "column": f.column, "rows": f.rows} for f in fs]
            for dept, fs in sorted(findings.items())
        },
    }

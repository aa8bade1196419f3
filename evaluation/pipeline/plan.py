"""From accepted values to planned reports: scoring, analysis, report contexts, content keys and rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import __version__, gep
from evaluation.catalogue import Catalogue
from evaluation.index.explain import dimension_progress
from evaluation.index.audit import index_audit
from evaluation.index.paths import all_paths
from evaluation.index.readiness import assess, city_view
from evaluation.index.sensitivity import index_sobol
from evaluation.index.scoring import IndexSpec, score_catalogue, ScoreResult
from evaluation.index.uncertainty import monte_carlo
from evaluation.ingest import FACT_COLUMNS
from evaluation.pipeline.intake import STATUS_LABEL, Intake, warning_notes
from evaluation.pipeline.keys import content_key, facts_digests
from evaluation.reporting.context import Analysis, county_context, fmt_date, RunInfo, summary_context, trend_table
from evaluation.reporting.planned import PlannedReport
from evaluation.reporting.rendercache import RenderCache


def assemble_values(intakes: list[Intake], catalogue: Catalogue, year: int | None = None,
                    history: dict[int, pd.DataFrame] | None = None) -> pd.DataFrame:
    """County x variable table from the accepted submissions only, with the computed variables (GEP, its growth
    at constant prices, the conversion rate) accounted from them; `history[year - 1]` (last year's values)
    gives the growth."""
    facts = [i.submission.facts(catalogue) for i in intakes if i.accepted and i.submission is not None]
    facts = [f for f in facts if not f.empty]
    codes = sorted(c.code for c in catalogue.counties)
    if not facts:
        wide = pd.DataFrame(index=pd.Index(codes, name="county_code"), columns=list(catalogue.variables), dtype="float64")
    else:
        long = pd.concat(facts, ignore_index=True)
        wide = long.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")
        wide = wide.reindex(index=codes, columns=list(catalogue.variables)).astype("float64")
    previous = (history or {}).get(year - 1) if year is not None else None
    return gep.derive(wide, catalogue, previous)


def gep_account(values: pd.DataFrame, catalogue: Catalogue, year: int,
                history: dict[int, pd.DataFrame] | None = None) -> gep.Account | None:
    """The year's GEP account of every county (items, classes, the change on last year), for the reports."""
    return gep.account(values, catalogue, (history or {}).get(year - 1))


def score(values: pd.DataFrame, catalogue: Catalogue) -> ScoreResult:
    return score_catalogue(values, catalogue)


def complete_previous(previous: pd.DataFrame | None, catalogue: Catalogue) -> pd.DataFrame | None:
    """Last year's values when every bureau's are there (otherwise progress would compare unlike things):
    every required reported variable has a value somewhere. Computed and optional ones may be blank, and so may
    the GEP accounts' inputs (a year before accounting began has none: its typed GEP stands, see gep.derive)."""
    if previous is None or previous.empty:
        return None
    accounts = set(catalogue.gep.inputs()) - {r.var for r in catalogue.gep.realised} if catalogue.gep else set()
    wanted = [v.id for v in catalogue.variables.values() if not v.computed and not v.optional and v.id not in accounts]
    if any(v not in previous.columns for v in wanted) or previous[wanted].isna().all().any():
        return None
    return previous


def analyse(result: ScoreResult, catalogue: Catalogue, year: int,
            history: dict[int, pd.DataFrame] | None = None) -> Analysis:
    """Rank stability (Monte Carlo), '两山' base readiness, progress on last year and the trend; the statistical
    audit, the Sobol indices and each county's shortest path to the next grade and to every readiness signal.

    history: past years' values (county x variable); years with incomplete data are left out.
    """
    spec = IndexSpec.from_catalogue(catalogue)
    uncertainty = monte_carlo(result.raw, result.zones, spec, catalogue.method.uncertainty)
    readiness = assess(result.raw, catalogue)
    past = {y: score_catalogue(v, catalogue) for y, v in sorted((history or {}).items())
            if complete_previous(v, catalogue) is not None}
    sobol = index_sobol(result.raw, result.zones, spec, catalogue.method.uncertainty, catalogue.method.sensitivity,
                        {z: t.name for z, t in catalogue.zone_types.items()})
    ways = all_paths(result, catalogue, readiness, {y: r.raw for y, r in past.items() if y < year})
    before = past.get(year - 1)
    series = {**past, year: result}
    trend = pd.concat(
        {y: r.dimension_scores.assign(overall=r.overall) for y, r in series.items()}, names=["year", "county_code"]
    )
    # a value that was missing (scored at the floor) is no point of a trend: e.g. GEP growth in the first year accounted
    indicator_trend = pd.concat({y: r.normalised.mask(r.imputed.astype(bool)) for y, r in series.items()},
                                names=["year", "county_code"])
    return Analysis(uncertainty=uncertainty, readiness=readiness, city_readiness=city_view(readiness, catalogue, year),
                    progress=dimension_progress(result, before),
                    previous_raw=before.raw if before is not None else None, trend=trend,
                    indicator_trend=indicator_trend, audit=index_audit(result, catalogue), sensitivity=sobol,
                    paths=ways)


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


def report_plan(result: ScoreResult, catalogue: Catalogue, info: RunInfo,
                analysis: Analysis | None = None, intakes: list[Intake] | None = None,
                code: str = "", gep: "gep.Account | None" = None) -> list[PlannedReport]:
    """One scorecard per county plus the city summary; file names come from validated config only.

    Contexts carry `info`'s edition (version, date, 修订说明); `content_key` does not depend on it.
    """
    from evaluation.exports import safe_frame

    plan = []
    trends = trend_table(analysis, result, info.year)
    entries = [(county.code, county.name, f"{county.code}_{county.name}_{info.year}年度两山转化绩效评价.pdf",
                county_context(result, catalogue, county.code, info, analysis, trends, gep), county.code,
                f"{county.name}{info.year}年度评价所用数据（含来源文件、工作表和行号）")
               for county in sorted(catalogue.counties, key=lambda c: c.code)]
    city = catalogue.city
    entries.append((city.code, city.name, f"{city.code}_{city.name}_{info.year}年度两山转化绩效评价汇总.pdf",
                    summary_context(result, catalogue, info, analysis, gep), None,
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


def with_edition(report: PlannedReport, *, version: int, run_date: str, revision: tuple[str, ...] = (),
                 corrected: tuple[str, ...] = ()) -> PlannedReport:
    """The report as issued in `version` (its content key is unchanged): its 修订说明 and the
    indicators whose figures this version corrected."""
    context = {**report.context, "version": version, "run_date": run_date, "run_date_text": fmt_date(run_date),
               "revision": list(revision), "corrected": list(corrected)}
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


def reuse_rendered(reports: list[PlannedReport], folder: Path,
                   renders: RenderCache) -> tuple[dict[str, str], list[PlannedReport]]:
    """Reports whose PDFs `renders` already holds go into `folder` ({file: sha256}); the rest are returned to render."""
    reused, fresh = {}, []
    for report in reports:
        digest = renders.restore(report, folder)
        if digest is None:
            fresh.append(report)
        else:
            reused[report.file_name] = digest
    return reused, fresh


def run_info(catalogue: Catalogue, intakes: list[Intake], *, year: int, version: int, run_date: str,
             sample: bool, incomplete: bool, revisions: dict[str, tuple[str, ...]] | None = None) -> RunInfo:
    sources = {v.id: "GEP核算" if v.computed else catalogue.departments[v.department].label
               for v in catalogue.variables.values()}
    notes, county_notes = warning_notes(intakes)
    missing = [f"{i.department_name}：{STATUS_LABEL[i.status]}，相关指标按缺失处理。" for i in intakes if not i.accepted]
    return RunInfo(year=year, version=version, run_date=run_date, sample=sample, incomplete=incomplete,
                   generator=f"twomountains {__version__}", sources=sources,
                   notes=tuple(missing) + notes, county_notes=county_notes, revisions=revisions or {})

"""Checking one submission at the boundary: the GX suite plus what GX cannot say (cells that are not
numbers, another year stated, last year's file sent again), as findings in plain Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import gep
from evaluation.catalogue import Catalogue
from evaluation.ingest import Submission, clip, clip_list, stated_year
from evaluation.validation.gate import Gate, default_gate
from evaluation.validation.report import Finding, ValidationReport
from evaluation.validation.suites import CHANGE, COLUMNS_CHECK, COUNTY_COLUMNS, KNOWN, LISTED, PREVIOUS, SUITES_DIR, suite_for

SAME_AS_PREVIOUS = "全部数值与上年已采用数据完全相同，疑似误报上年数据"


def _fmt(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "（空）"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def with_changes(table: pd.DataFrame, catalogue: Catalogue, department: str,
                 previous: pd.DataFrame | None) -> pd.DataFrame:
    """Add, per variable, last year's accepted value and the change on it in % (NaN when unknown)."""
    frame = table.drop(columns=["_county_raw"]).copy()
    for var in catalogue.department_variables(department):
        if var.max_change is None:
            continue
        prev = pd.Series(np.nan, index=frame.index)
        if previous is not None and var.id in previous.columns and var.id in frame.columns:
            prev = frame["county_code"].astype(object).map(previous[var.id].to_dict()).astype("float64")
        current = frame[var.id] if var.id in frame.columns else pd.Series(np.nan, index=frame.index)
        base = prev.where(prev != 0)
        frame[var.id + PREVIOUS] = prev
        frame[var.id + CHANGE] = ((current - base) / base.abs() * 100).astype("float64")
    return frame


def with_county_checks(frame: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Add the derived county columns the suites check (KNOWN, LISTED)."""
    frame = frame.copy()
    known = frame["county_code"].isin({c.code for c in catalogue.counties})
    frame[KNOWN] = known.astype(bool)
    frame[LISTED] = frame["county_code"].where(known).astype(object)
    return frame


_NAME_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def name_year(file_name: str) -> int | None:
    """The year a file name states (统计局_2023年….xlsx -> 2023), if exactly one is stated."""
    years = set(_NAME_YEAR.findall(file_name))
    return int(years.pop()) if len(years) == 1 else None


def validate_submission(sub: Submission, catalogue: Catalogue, *, previous: pd.DataFrame | None = None,
                        gate: Gate | None = None, suites_dir: Path = SUITES_DIR) -> ValidationReport:
    """Check one submission at the boundary; bad data becomes findings, never an exception.

    Besides the GX suite: cells that are not numbers in one meaning, a year column stating another
    year, last year's figures sent again (every value of the variables with a year-on-year check
    equal to `previous`: an error, see `_same_as_previous`), ignored columns and delivery notices
    (warnings that stay out of documents: `NOT_FOR_DOCUMENTS`). Bureau text is clipped.

    previous: last year's accepted values (county code x variable id) for the jump check.
    """
    gate = gate or default_gate()
    source = catalogue.sources[sub.department]
    # the headers of the layout the table was read with (a filled form has the form's own)
    headers = {k: v for k, v in sub.headers.items() if k != "_county"} or {m.var: h for h, m in source.columns.items()}
    for column in COUNTY_COLUMNS:
        headers[column] = sub.headers.get("_county", source.county_column)
    for var in catalogue.department_variables(sub.department):
        headers[var.id + CHANGE] = headers.get(var.id, var.name)
    suite = suite_for(catalogue, sub.department, suites_dir)
    frame = with_county_checks(with_changes(sub.table, catalogue, sub.department, previous), catalogue)
    frame, derived = gep.boundary_columns(frame, catalogue, sub.department, sub.year)
    headers.update(derived)
    findings: list[Finding] = []
    for row, header, raw, reason in sub.unparsed:
        findings.append(Finding("error", reason, header, [row], [clip(raw)], "parse_cell", "数值"))
    if sub.extra_columns:
        findings.append(Finding("warning", "表中有未配置的列，已忽略", clip_list(sub.extra_columns, "列"), [], [],
                                "extra_column"))
    for notice in sub.notices:
        findings.append(Finding("warning", notice, "", [], [], "other_file"))
    stated = sub.stated_years
    other_years = [(row, text) for row, text in stated if stated_year(text) != sub.year] if sub.year else []
    if other_years:
        findings.append(Finding("error", f"表中的年度与报送年度 {sub.year} 年不符", sub.year_column,
                                [r for r, _ in other_years], [clip(t) for _, t in other_years], "year_column",
                                str(sub.year)))
    if previous is not None and _same_as_previous(frame, catalogue, sub.department):
        findings.append(Finding("error", SAME_AS_PREVIOUS, "", [], [], "same_as_previous",
                                f"{sub.year} 年的数据" if sub.year else "本年度的数据"))
    # a column the table lacks is reported once, by the check of the table's columns, not by every rule on it
    absent = {v.id for v in catalogue.department_variables(sub.department) if v.id not in sub.table.columns}
    for outcome in gate.run(frame, suite):
        if outcome["success"]:
            continue
        if outcome["type"] == COLUMNS_CHECK:  # one finding per missing column, named by its header
            severity = "warning" if outcome["severity"] in ("warning", "info") else "error"
            for column in [v.id for v in catalogue.department_variables(sub.department) if v.id in outcome["missing"]]:
                header = headers.get(column, column)
                findings.append(Finding(severity, f"必须有“{header}”列", header, [], [], COLUMNS_CHECK, f"列“{header}”"))
            continue
        kwargs = outcome["kwargs"]
        column = kwargs.get("column") or kwargs.get("column_A", "")
        involved = {str(kwargs.get(k, "")).removesuffix(CHANGE) for k in ("column", "column_A", "column_B")}
        if involved & absent:
            continue
        rows: list[int] = []
        found: list[str] = []
        for idx in outcome["index"]:
            if not (isinstance(idx, (int, np.integer)) and 0 <= idx < len(sub.table)):
                continue
            rows.append(int(sub.table["_row"].iloc[idx]))
            if column in COUNTY_COLUMNS:
                found.append(clip(_fmt(sub.table["_county_raw"].iloc[idx])))
            elif column.endswith(gep.BASE_YEAR_LAG):  # show the year as written, not its lag
                found.append(_fmt(frame[column.removesuffix(gep.BASE_YEAR_LAG)].iloc[idx]))
            elif column.endswith(CHANGE):
                var = column.removesuffix(CHANGE)
                found.append(f"{_fmt(frame[var].iloc[idx])}（上年 {_fmt(frame[var + PREVIOUS].iloc[idx])}，"
                             f"{frame[column].iloc[idx]:+.0f}%）")
            elif "column_B" in kwargs:
                found.append(f"{_fmt(frame[column].iloc[idx])} 与 {_fmt(frame[kwargs['column_B']].iloc[idx])}")
            else:
                found.append(_fmt(frame[column].iloc[idx]) if column in frame.columns else "")
        if column == LISTED:
            present = set(frame["county_code"].dropna())
            names = [c.name for c in catalogue.counties if c.code not in present]
            found = [f"缺少：{'、'.join(names)}"]
        if outcome["type"] == "expect_column_values_to_not_be_null" and column in catalogue.variables:
            # a cell that failed to parse is already reported with its raw text
            unparsed_rows = {r for r, h, _, _ in sub.unparsed if h == headers.get(column)}
            keep = [(r, v) for r, v in zip(rows, found) if r not in unparsed_rows]
            if rows and not keep:
                continue
            rows, found = [r for r, _ in keep], [v for _, v in keep]
        if outcome["exception"] and column not in frame.columns:
            continue  # the missing column is reported once, by the check of the table's columns
        severity = "warning" if outcome["severity"] in ("warning", "info") else "error"
        header = headers.get(column, column)
        if "column_B" in kwargs:
            header = f"{header}、{headers.get(kwargs['column_B'], kwargs['column_B'])}"
        findings.append(Finding(severity, outcome["meta"].get("rule_zh", outcome["type"]), header, rows, found,
                                outcome["type"], outcome["meta"].get("expected_zh", "")))
    stated = name_year(sub.path.name)
    if sub.year and stated is not None and stated != sub.year:
        findings.append(Finding("error", f"文件名显示为 {stated} 年数据，与报送年度 {sub.year} 年不符", "（文件名）",
                                [], [sub.path.name], "year", f"{sub.year} 年的数据"))
    findings.sort(key=lambda f: (f.severity != "error", f.rows[:1] or [0], f.column))
    county_of = _row_counties(sub, catalogue)
    for f in findings:
        f.counties = [county_of.get(r, "") for r in f.rows]
    return ValidationReport(
        department=sub.department,
        department_name=catalogue.departments[sub.department].name,
        file=sub.path.name,
        sheet=sub.sheet,
        submission_id=sub.submission_id,
        findings=findings,
        year=sub.year,
    )


def _row_counties(sub: Submission, catalogue: Catalogue) -> dict[int, str]:
    """Each table row's county: its catalogue name, or the cell as written when it names none."""
    names = {c.code: c.name for c in catalogue.counties}
    table = sub.table
    codes = table["county_code"] if "county_code" in table.columns else [None] * len(table)
    raws = table["_county_raw"] if "_county_raw" in table.columns else [""] * len(table)
    return {int(row): names.get(code) or clip(_fmt(raw)) for row, code, raw in zip(table["_row"], codes, raws)}


def _same_as_previous(frame: pd.DataFrame, catalogue: Catalogue, department: str) -> bool:
    """Whether every value of the variables with a year-on-year check (`max_change`) equals last
    year's accepted value for its county (at least two values compared): last year's file sent again."""
    compared = 0
    for var in catalogue.department_variables(department):
        if var.max_change is None or var.id not in frame.columns or var.id + PREVIOUS not in frame.columns:
            continue
        current, prev = frame[var.id], frame[var.id + PREVIOUS]
        mask = current.notna() & frame[KNOWN].astype(bool)
        if not mask.any():
            continue
        if prev[mask].isna().any():
            return False
        if not np.allclose(current[mask].to_numpy(float), prev[mask].to_numpy(float), rtol=1e-9, atol=0.0):
            return False
        compared += int(mask.sum())
    return compared >= 2

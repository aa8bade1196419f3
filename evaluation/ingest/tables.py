"""Parsing received bytes into a `Submission`: the bureau's table (xlsx, CSV, JSON) found, its columns
mapped, every number read only when it has one meaning, and each fact kept with its sheet and row."""

from __future__ import annotations

import re

from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue, Source
from evaluation.ingest.forms import FORM_KEYWORD, form_source
from evaluation.ingest.model import IngestError, Received, Submission
from evaluation.ingest.cells import (
    NOT_A_NUMBER, YEAR_HEADER, NumberFormError, Percent, cell_text, clip, clip_list, normalise_header, parse_cell,
)
from evaluation.ingest.text import csv_rows, encoding_note, json_rows
from evaluation.ingest.xlsx import CFB_MAGIC, DAMAGED, XlsxBook
from evaluation.ingest.files import receive_file


# -- parsing -------------------------------------------------------------------


def parse(received: Received, source: Source, catalogue: Catalogue) -> Submission:
    """Read received bytes as the configured table, within the source's limits."""
    if re.fullmatch(rb"\s*", received.data):
        raise IngestError(f"{received.original_name} 是空文件。")
    limits = source.limits
    uncached: dict[tuple[int, int], str] = {}
    note = ""
    if received.format == "xlsx":
        source, (sheet, rows, uncached) = _xlsx_table(received, source, catalogue)
    elif received.format == "json":
        sheet, rows = "", json_rows(received.data, limits)
    else:
        if received.data[:2] == b"PK" and received.data[2:4] in (b"\x03\x04", b"\x05\x06"):
            raise IngestError(f"{received.original_name} 实际是 Excel 文件，请另存为 CSV 或按 xlsx 提交。")
        if received.data[:8] == CFB_MAGIC:
            raise IngestError(f"{received.original_name} 实际是旧版 Excel（.xls）文件，请另存为 CSV 或 Excel 工作簿（.xlsx）后提交。")
        rows, encoding = csv_rows(received.data, limits, [source.county_column, *source.columns])
        sheet, note = "", encoding_note(encoding)
    try:
        return table_from_rows(rows, source, catalogue, received.year, path=Path(received.original_name),
                               sheet=sheet, submission_id=received.submission_id, uncached=uncached)
    except IngestError as exc:
        if not note:
            raise
        raise IngestError(f"{exc}{note}") from None


def _xlsx_table(received: Received, source: Source, catalogue: Catalogue):
    """(source used, (sheet, rows, uncached)): a filled form is read with the form's layout."""
    try:
        book = XlsxBook(received.data, source.limits)
        marker = book.keywords()
        if marker.startswith(FORM_KEYWORD):

            source = form_source(catalogue, received.department).model_copy(update={"limits": source.limits})
            _check_form(marker, received, catalogue)
        return source, book.table(source)
    except IngestError:
        raise
    except Exception:  # noqa: BLE001 - a damaged file can make the zip or XML layer raise anything
        raise IngestError(DAMAGED) from None


def _check_form(marker: str, received: Received, catalogue: Catalogue) -> None:
    parts = marker.split(":")
    if len(parts) == 3:
        _, dept, year = (clip(p) for p in parts)  # workbook properties are the bureau's text
        if dept != received.department:
            names = {k: d.name for k, d in catalogue.departments.items()}
            whose = names.get(dept, f"“{dept}”部门")
            raise IngestError(f"这是{whose}的填报表，不是{names.get(received.department, received.department)}的；"
                              f"请下载并填写本部门的填报表。")
        if received.year and year != str(received.year):
            raise IngestError(f"填报表的年度是 {year} 年，与报送年度 {received.year} 年不符。")


def read_submission(path: Path | str, source: Source, catalogue: Catalogue, year: int) -> Submission:
    """Read one bureau file according to its source configuration."""
    return parse(receive_file(path, source, year), source, catalogue)


def table_from_rows(rows: list[list[object]], source: Source, catalogue: Catalogue, year: int, *,
                    path: Path, sheet: str, submission_id: str,
                    uncached: dict[tuple[int, int], str] | None = None) -> Submission:
    uncached = uncached or {}
    hi = source.header_row - 1
    if len(rows) <= hi:
        raise IngestError(f"文件只有 {len(rows)} 行，找不到第 {source.header_row} 行的表头。")
    headers = [normalise_header(h) for h in rows[hi]]
    wanted = {normalise_header(h): (h, m) for h, m in source.columns.items()}
    county_header = normalise_header(source.county_column)
    if county_header not in headers:
        shown = clip_list([c for c in rows[hi] if cell_text(c)], "列") or "（空）"
        raise IngestError(f"第 {source.header_row} 行找不到县区列“{source.county_column}”。该行的列名为：{shown}"
                          + _header_hint(rows, hi, county_header, source))
    duplicated = sorted({h for h in headers if h and headers.count(h) > 1 and (h in wanted or h == county_header)})
    if duplicated:
        shown = clip_list([rows[hi][headers.index(h)] for h in duplicated], "列")
        raise IngestError(f"表头中有重复的列：{shown}（请检查是否重复填写或合并了表头单元格）")
    county_idx = headers.index(county_header)
    positions = {key: headers.index(key) for key in wanted if key in headers}
    missing = [wanted[k][0] for k in wanted if k not in positions]
    year_idx = next((i for i, h in enumerate(headers)
                     if YEAR_HEADER.fullmatch(h) and h not in wanted and h != county_header), None)
    ignored = {normalise_header(h) for h in source.ignore_columns} | {county_header}
    extra = [clip(rows[hi][i]) for i, h in enumerate(headers)
             if h and h not in wanted and h not in ignored and i != year_idx]
    lookup = {normalise_header(k): v for k, v in catalogue.county_lookup().items()}
    factors = {m.var: m.factor(catalogue.variables[m.var].unit) for m in source.columns.values()}
    skip = set(source.skip_rows)

    records: list[dict[str, object]] = []
    unparsed: list[tuple[int, str, str, str]] = []
    stated: list[tuple[int, str]] = []
    for r_idx in range(hi + 1, len(rows)):
        number = r_idx + 1  # 1-based row number as the bureau sees it
        if number in skip:
            continue
        cells = list(rows[r_idx]) + [None] * (len(headers) - len(rows[r_idx]))
        if all(c is None or str(c).strip() == "" for c in cells) and not any((r_idx, c) in uncached for c in range(len(cells))):
            continue
        county_text = cell_text(cells[county_idx])
        record: dict[str, object] = {
            "_row": number,
            "_county_raw": county_text,
            "county_code": lookup.get(normalise_header(county_text), county_text),
        }
        if year_idx is not None and cell_text(cells[year_idx]):
            stated.append((number, clip(cell_text(cells[year_idx]))))
        for key, idx in positions.items():
            header, mapping = wanted[key]
            value = None
            if (r_idx, idx) in uncached:
                unparsed.append((number, header, clip(uncached[(r_idx, idx)]), "公式没有计算结果，请在 Excel 中重新计算并保存后再提交"))
            else:
                try:
                    value, percent = parse_cell(cells[idx])
                    if percent and catalogue.variables[mapping.var].unit != "%":
                        unparsed.append((number, header, clip(_shown(cells[idx])), "该列不是百分比，不能带“%”"))
                        value = None
                except ValueError as exc:
                    reason = exc.reason if isinstance(exc, NumberFormError) else NOT_A_NUMBER
                    unparsed.append((number, header, clip(_shown(cells[idx])), reason))
            record[mapping.var] = None if value is None else value * factors[mapping.var]
        records.append(record)

    columns = ["_row", "_county_raw", "county_code"] + [wanted[k][1].var for k in positions]
    table = pd.DataFrame.from_records(records, columns=columns)
    for col in columns[3:]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("float64")
    table["county_code"] = table["county_code"].astype("string")
    return Submission(
        department=source.department, year=year, path=path, submission_id=submission_id, sheet=sheet,
        table=table, missing_columns=missing, extra_columns=extra, unparsed=unparsed,
        year_column=clip(rows[hi][year_idx]) if year_idx is not None else "", stated_years=stated,
        headers={**{m.var: h for h, m in source.columns.items()}, COUNTY_HEADER: source.county_column},
    )


COUNTY_HEADER = "_county"  # the key of the county column's header in Submission.headers


def _shown(raw: object) -> str:
    """A cell as quoted back to the bureau (a percent-formatted xlsx number as the percentage it shows)."""
    if isinstance(raw, Percent):
        return f"{float(raw) * 100:g}%"
    return str(raw)


def _header_hint(rows: list[list[object]], hi: int, county_header: str, source: Source) -> str:
    """Where the county header is, when it is near but not on the configured header row."""
    for r in range(max(0, hi - 5), min(len(rows), hi + 10)):
        if r != hi and county_header in [normalise_header(c) for c in rows[r]]:
            return (f"（县区列“{source.county_column}”似乎在第 {r + 1} 行；表头应在第 {source.header_row} 行，"
                    "请检查表格上方的标题行）")
    return ""

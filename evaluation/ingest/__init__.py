"""Read a bureau's yearly table into a wide frame and a long fact table with provenance.

Two steps, so that what was received can be kept byte for byte:

- `receive` gets the bytes from the configured source (a file in the drop folder,
  an HTTP endpoint, or a SQL query whose result is serialised as canonical CSV);
- `parse` turns those bytes into a `Submission`.

A submission's id is the sha256 of the received bytes, so the same file sent twice is
the same submission, and every fact keeps the sheet and the spreadsheet row it came from.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue, Source

FACT_COLUMNS = ["county_code", "year", "indicator_id", "value", "unit", "department", "submission_id", "sheet", "row"]
MAX_BYTES = 50 * 1024 * 1024  # a bureau table is kilobytes; anything this large is refused unread
MAX_XLSX_UNPACKED = 200 * 1024 * 1024  # zip-bomb guard for xlsx
FORM_KEYWORD = "twomountains-form"

# Cells that mean "no value" in bureau tables.
_BLANKS = {"", "-", "—", "–", "--", "/", "无", "空", "n/a", "na", "nan", "none", "null", "…", "..."}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class IngestError(Exception):
    """Bytes that cannot be read as the configured table. The message is for the bureau (Chinese)."""


class TransientSourceError(IngestError):
    """A remote source failed in a way worth retrying (network error, timeout, 5xx, lost connection)."""


@dataclass(frozen=True)
class Received:
    """Exactly what a source delivered, before any parsing."""

    department: str
    year: int
    kind: str  # folder, http, sql
    location: str  # path, URL or SQL source description (no credentials)
    original_name: str
    data: bytes
    format: str  # xlsx, csv, json

    @property
    def submission_id(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Submission:
    """One received table, read into the catalogue's variables."""

    department: str
    year: int
    path: Path  # the original name (a file name for folder sources)
    submission_id: str
    sheet: str
    table: pd.DataFrame  # one row per data row: _row, _county_raw, county_code, <variable ids...>
    missing_columns: list[str] = field(default_factory=list)  # configured headers not found
    extra_columns: list[str] = field(default_factory=list)  # headers found but not configured
    unparsed: list[tuple[int, str, str, str]] = field(default_factory=list)  # (row, header, raw text, reason)

    def facts(self, catalogue: Catalogue) -> pd.DataFrame:
        """The long fact table: one row per county and variable, with provenance."""
        var_cols = [c for c in self.table.columns if c in catalogue.variables]
        if self.table.empty or not var_cols:
            return pd.DataFrame(columns=FACT_COLUMNS)
        long = self.table.melt(id_vars=["county_code", "_row"], value_vars=var_cols,
                               var_name="indicator_id", value_name="value")
        long = long.rename(columns={"_row": "row"})
        long["year"] = self.year
        long["unit"] = long["indicator_id"].map({v: catalogue.variables[v].unit for v in var_cols})
        long["department"] = self.department
        long["submission_id"] = self.submission_id
        long["sheet"] = self.sheet
        return long[FACT_COLUMNS].sort_values(["county_code", "indicator_id"]).reset_index(drop=True)


# -- cells ---------------------------------------------------------------------


def normalise_header(text: object) -> str:
    """Make headers comparable: NFKC folds full-width brackets, then spaces and line breaks go."""
    if text is None:
        return ""
    folded = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"\s+", "", folded)


def parse_cell(raw: object) -> tuple[float | None, bool]:
    """Parse a bureau cell into (value, written_as_percent). None when blank; ValueError when not a number.

    Accepts 1234, "1,234", "12.5%", full-width digits ("１２．５"); refuses text, booleans and infinities.
    """
    if raw is None:
        return None, False
    if isinstance(raw, bool):
        raise ValueError(str(raw))
    if isinstance(raw, (int, float)):
        value = float(raw)
        if math.isnan(value):
            return None, False
        if math.isinf(value):
            raise ValueError(str(raw))
        return value, False
    text = unicodedata.normalize("NFKC", str(raw)).strip().replace(",", "").replace(" ", "")
    if text.lower() in _BLANKS:
        return None, False
    percent = text.endswith("%")
    if percent:
        text = text[:-1]
    if not _NUMBER.match(text):
        raise ValueError(str(raw))
    return float(text), percent


def parse_number(raw: object) -> float | None:
    return parse_cell(raw)[0]


def decode_csv(data: bytes) -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM), then GB18030 (a superset of GBK), then sniff."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV 文件。")
    return str(best)


# -- formats -------------------------------------------------------------------


def _csv_rows(data: bytes) -> list[list[object]]:
    if b"\x00" in data:
        raise IngestError("文件含有二进制内容，不是 CSV 文本文件。")
    text = decode_csv(data)
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise IngestError(f"CSV 格式有误：{exc}") from None


def _json_rows(data: bytes) -> list[list[object]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(f"返回内容不是有效的 JSON：{exc}") from None
    records = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise IngestError("JSON 应为记录列表（[{列名: 值, ...}, ...]）或 {\"data\": [...]}。")
    headers: list[str] = []
    for record in records:
        for key in record:
            if key not in headers:
                headers.append(str(key))
    return [headers] + [[record.get(h) for h in headers] for record in records]


def _check_zip(data: bytes) -> None:
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise IngestError("无法作为 Excel（xlsx）文件打开：文件已损坏或不是 xlsx 格式（旧版 .xls 请另存为 .xlsx）。") from None
    if unpacked > MAX_XLSX_UNPACKED:
        raise IngestError("Excel 文件解压后超过 200 MB，拒绝读取（可能是压缩炸弹）。")


def _xlsx_workbook(data: bytes, data_only: bool):
    from openpyxl import load_workbook

    try:
        return load_workbook(io.BytesIO(data), data_only=data_only, read_only=False)
    except Exception:  # openpyxl raises many types for a damaged file
        raise IngestError("无法作为 Excel（xlsx）文件打开：文件已损坏或不是 xlsx 格式。") from None


def _xlsx_rows(data: bytes, sheet: str | None) -> tuple[str, list[list[object]], dict[tuple[int, int], str]]:
    """(sheet title, rows with merged cells filled, {(row, col): formula} for formulas without a cached value)."""
    wb = _xlsx_workbook(data, data_only=True)
    visible = [ws for ws in wb.worksheets if ws.sheet_state == "visible"]
    if sheet is not None:
        matches = [ws for ws in visible if ws.title.strip() == sheet]
        if not matches:
            names = "、".join(ws.title for ws in visible) or "（无）"
            raise IngestError(f"找不到工作表“{sheet}”。文件中的可见工作表：{names}")
        ws = matches[0]
    elif visible:
        ws = visible[0]
    else:
        raise IngestError("文件中没有可见的工作表。")
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    # A merged cell holds its value only in the top-left cell: fill it across the range.
    for rng in ws.merged_cells.ranges:
        if rng.min_row - 1 >= len(rows):
            continue
        top = rows[rng.min_row - 1][rng.min_col - 1]
        for r in range(rng.min_row - 1, min(rng.max_row, len(rows))):
            for c in range(rng.min_col - 1, min(rng.max_col, len(rows[r]))):
                if rows[r][c] is None:
                    rows[r][c] = top
    # Formula cells are read as their cached values; a formula never calculated has none.
    uncached: dict[tuple[int, int], str] = {}
    if any(cell is None for row in rows for cell in row):
        formulas = _xlsx_workbook(data, data_only=False)[ws.title]
        for r, row in enumerate(formulas.iter_rows(values_only=True)):
            for c, value in enumerate(row):
                if isinstance(value, str) and value.startswith("=") and r < len(rows) and rows[r][c] is None:
                    uncached[(r, c)] = value
    return ws.title, rows, uncached


def _form_marker(data: bytes) -> str | None:
    """The keywords of a submission form made by `twomountains template`, if this is one."""
    wb = _xlsx_workbook(data, data_only=True)
    keywords = wb.properties.keywords or ""
    return keywords if keywords.startswith(FORM_KEYWORD) else None


# -- receiving -----------------------------------------------------------------


def receive(source: Source, year: int, data_dir: Path | str | None = None, *, retries: int | None = None) -> Received:
    """Fetch a bureau's table for the year from its configured source (no parsing).

    retries: for remote sources, how often to retry a transient failure here (default: the
    source's `retries`). An orchestrator that retries by itself passes 0 and gets a
    `TransientSourceError` to act on.
    """
    if source.kind == "folder":
        path = Path(data_dir or ".") / str(int(year)) / source.file_name(year)
        return receive_file(path, source, year)
    if source.kind == "http":
        from evaluation.ingest.remote import fetch_http

        return fetch_http(source, year, retries=retries)
    from evaluation.ingest.remote import fetch_sql

    return fetch_sql(source, year, retries=retries)


def receive_file(path: Path | str, source: Source, year: int) -> Received:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise IngestError(f"文件 {path.name} 有 {size / 2**20:.0f} MB，超过 {MAX_BYTES // 2**20} MB 上限，请只提交本部门的填报表。")
        data = path.read_bytes()
    except FileNotFoundError:
        raise IngestError(f"找不到文件 {path.name}。") from None
    except IsADirectoryError:
        raise IngestError(f"{path.name} 是文件夹，不是文件。") from None
    except OSError as exc:
        raise IngestError(f"无法读取文件 {path.name}：{exc.strerror}") from None
    fmt = source.format
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        fmt = "xlsx"
    elif path.suffix.lower() == ".csv":
        fmt = "csv"
    return Received(source.department, int(year), "folder", str(path), path.name, data, fmt)


# -- parsing -------------------------------------------------------------------


def parse(received: Received, source: Source, catalogue: Catalogue) -> Submission:
    """Read received bytes as the configured table."""
    if not received.data.strip():
        raise IngestError(f"{received.original_name} 是空文件。")
    uncached: dict[tuple[int, int], str] = {}
    if received.format == "xlsx":
        _check_zip(received.data)
        marker = _form_marker(received.data)
        if marker:
            from evaluation.forms import form_source

            source = form_source(catalogue, received.department)
            _check_form(marker, received)
        sheet, rows, uncached = _xlsx_rows(received.data, source.sheet)
    elif received.format == "json":
        sheet, rows = "", _json_rows(received.data)
    else:
        if received.data[:2] == b"PK" and received.data[2:4] in (b"\x03\x04", b"\x05\x06"):
            raise IngestError(f"{received.original_name} 实际是 Excel 文件，请另存为 CSV 或按 xlsx 提交。")
        sheet, rows = "", _csv_rows(received.data)
    return table_from_rows(rows, source, catalogue, received.year, path=Path(received.original_name),
                           sheet=sheet, submission_id=received.submission_id, uncached=uncached)


def _check_form(marker: str, received: Received) -> None:
    parts = marker.split(":")
    if len(parts) == 3:
        _, dept, year = parts
        if dept != received.department:
            raise IngestError(f"这是“{dept}”部门的填报表，不是本部门（{received.department}）的。")
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
        shown = "、".join(h for h in headers if h) or "（空）"
        raise IngestError(f"第 {source.header_row} 行找不到县区列“{source.county_column}”。该行的列名为：{shown}")
    duplicated = sorted({h for h in headers if h and headers.count(h) > 1 and (h in wanted or h == county_header)})
    if duplicated:
        shown = "、".join(str(rows[hi][headers.index(h)]).strip() for h in duplicated)
        raise IngestError(f"表头中有重复的列：{shown}（请检查是否重复填写或合并了表头单元格）")
    county_idx = headers.index(county_header)
    positions = {key: headers.index(key) for key in wanted if key in headers}
    missing = [wanted[k][0] for k in wanted if k not in positions]
    ignored = {normalise_header(h) for h in source.ignore_columns} | {county_header}
    extra = [h for h in headers if h and h not in wanted and h not in ignored]
    lookup = {normalise_header(k): v for k, v in catalogue.county_lookup().items()}
    factors = {m.var: m.factor(catalogue.variables[m.var].unit) for m in source.columns.values()}
    skip = set(source.skip_rows)

    records: list[dict[str, object]] = []
    unparsed: list[tuple[int, str, str, str]] = []
    for r_idx in range(hi + 1, len(rows)):
        number = r_idx + 1  # 1-based row number as the bureau sees it
        if number in skip:
            continue
        cells = list(rows[r_idx]) + [None] * (len(headers) - len(rows[r_idx]))
        if all(c is None or str(c).strip() == "" for c in cells) and not any((r_idx, c) in uncached for c in range(len(cells))):
            continue
        raw_county = cells[county_idx]
        county_text = "" if raw_county is None else str(raw_county).strip()
        if isinstance(raw_county, float) and raw_county.is_integer():
            county_text = str(int(raw_county))
        record: dict[str, object] = {
            "_row": number,
            "_county_raw": county_text,
            "county_code": lookup.get(normalise_header(county_text), county_text),
        }
        for key, idx in positions.items():
            header, mapping = wanted[key]
            value = None
            if (r_idx, idx) in uncached:
                unparsed.append((number, header, uncached[(r_idx, idx)], "公式没有计算结果，请在 Excel 中重新计算并保存后再提交"))
            else:
                try:
                    value, percent = parse_cell(cells[idx])
                    if percent and catalogue.variables[mapping.var].unit != "%":
                        unparsed.append((number, header, str(cells[idx]), "该列不是百分比，不能带“%”"))
                        value = None
                except ValueError:
                    unparsed.append((number, header, str(cells[idx]), "必须是数值"))
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
    )


@dataclass(frozen=True)
class Expected:
    """A table the configuration expects from one bureau for one year."""

    department: str
    kind: str
    path: Path  # folder: the file; http/sql: a display name
    present: bool  # folder: the file exists; remote sources are assumed present until fetched


def discover(data_dir: Path | str, year: int, catalogue: Catalogue) -> list[Expected]:
    """List each configured bureau's table for the year, whether or not it is there."""
    ydir = Path(data_dir) / str(int(year))
    found = []
    for dept, source in sorted(catalogue.sources.items()):
        if source.kind == "folder":
            path = ydir / source.file_name(year)
            found.append(Expected(dept, "folder", path, path.is_file()))
        else:
            found.append(Expected(dept, source.kind, Path(f"{dept}_{year}.{source.format if source.kind == 'http' else 'csv'}"), True))
    return found

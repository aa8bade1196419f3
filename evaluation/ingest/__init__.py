"""Read a bureau's yearly table into a wide frame and a long fact table with provenance.

A *submission* is one file as received. Its id is the sha256 of its bytes, so the
same file sent twice is the same submission, and every fact keeps the file, the
sheet and the spreadsheet row it came from.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue, Source

FACT_COLUMNS = ["county_code", "year", "indicator_id", "value", "unit", "department", "submission_id", "sheet", "row"]

# Cells that mean "no value" in bureau tables.
_BLANKS = {"", "-", "—", "–", "--", "/", "无", "空", "n/a", "na", "nan", "none", "null", "…", "..."}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class IngestError(Exception):
    """A file that cannot be read as the configured table. The message is for the bureau (Chinese)."""


@dataclass
class Submission:
    """One received file, read into the catalogue's variables."""

    department: str
    year: int
    path: Path
    submission_id: str
    sheet: str
    table: pd.DataFrame  # one row per data row: _row, _county_raw, county_code, <variable ids...>
    missing_columns: list[str] = field(default_factory=list)  # configured headers not found
    extra_columns: list[str] = field(default_factory=list)  # headers found but not configured
    unparsed: list[tuple[int, str, str]] = field(default_factory=list)  # (row, header, raw text)

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


def normalise_header(text: object) -> str:
    """Make headers comparable: NFKC folds full-width brackets, then spaces and line breaks go."""
    if text is None:
        return ""
    folded = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"\s+", "", folded)


def parse_number(raw: object) -> float | None:
    """Parse a bureau cell: 1234, "1,234", "12.5%", "１２．５" (full-width). None when blank."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(str(raw))
    if isinstance(raw, (int, float)):
        if isinstance(raw, float) and math.isnan(raw):
            return None
        return float(raw)
    text = unicodedata.normalize("NFKC", str(raw)).strip().replace(",", "").replace(" ", "")
    if text.lower() in _BLANKS:
        return None
    if text.endswith("%"):
        text = text[:-1]
    if not _NUMBER.match(text):
        raise ValueError(str(raw))
    return float(text)


def decode_csv(data: bytes) -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM), then GB18030 (a superset of GBK)."""
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


def _read_csv_rows(data: bytes) -> list[list[object]]:
    text = decode_csv(data)
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise IngestError(f"CSV 格式有误：{exc}") from None


def _read_xlsx_rows(data: bytes, sheet: str | None) -> tuple[str, list[list[object]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), data_only=True, read_only=False)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise IngestError(f"无法作为 Excel（xlsx）文件打开：{type(exc).__name__}") from None
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
    # A merged header cell holds its text only in the top-left cell: fill it across.
    for rng in ws.merged_cells.ranges:
        top = rows[rng.min_row - 1][rng.min_col - 1] if rng.min_row - 1 < len(rows) else None
        for r in range(rng.min_row - 1, min(rng.max_row, len(rows))):
            for c in range(rng.min_col - 1, rng.max_col):
                if c < len(rows[r]) and rows[r][c] is None:
                    rows[r][c] = top
    return ws.title, rows


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_submission(path: Path | str, source: Source, catalogue: Catalogue, year: int) -> Submission:
    """Read one bureau file according to its source configuration."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"无法读取文件 {path.name}：{exc.strerror}") from None
    if not data.strip():
        raise IngestError(f"文件 {path.name} 是空文件。")
    if source.format == "xlsx":
        sheet, rows = _read_xlsx_rows(data, source.sheet)
    else:
        sheet, rows = "", _read_csv_rows(data)
    return table_from_rows(rows, source, catalogue, year, path=path, sheet=sheet, submission_id=sha256_bytes(data))


def table_from_rows(rows: list[list[object]], source: Source, catalogue: Catalogue, year: int, *,
                    path: Path, sheet: str, submission_id: str) -> Submission:
    hi = source.header_row - 1
    if len(rows) <= hi:
        raise IngestError(f"文件只有 {len(rows)} 行，找不到第 {source.header_row} 行的表头。")
    headers = [normalise_header(h) for h in rows[hi]]
    wanted = {normalise_header(h): (h, m) for h, m in source.columns.items()}
    county_header = normalise_header(source.county_column)
    if county_header not in headers:
        raise IngestError(
            f"第 {source.header_row} 行找不到县区列“{source.county_column}”。"
            f"该行的列名为：{'、'.join(h for h in headers if h) or '（空）'}"
        )
    county_idx = headers.index(county_header)
    positions = {key: headers.index(key) for key in wanted if key in headers}
    missing = [wanted[k][0] for k in wanted if k not in positions]
    ignored = {normalise_header(h) for h in source.ignore_columns} | {county_header}
    extra = [h for h in headers if h and h not in wanted and h not in ignored]
    lookup = {normalise_header(k): v for k, v in catalogue.county_lookup().items()}

    records: list[dict[str, object]] = []
    unparsed: list[tuple[int, str, str]] = []
    for offset, row in enumerate(rows[hi + 1:], start=hi + 2):
        cells = list(row) + [None] * (len(headers) - len(row))
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        raw_county = cells[county_idx]
        county_text = "" if raw_county is None else str(raw_county).strip()
        if isinstance(raw_county, float) and raw_county.is_integer():
            county_text = str(int(raw_county))
        record: dict[str, object] = {
            "_row": offset,
            "_county_raw": county_text,
            "county_code": lookup.get(normalise_header(county_text), county_text),
        }
        for key, idx in positions.items():
            header, mapping = wanted[key]
            try:
                value = parse_number(cells[idx])
            except ValueError:
                unparsed.append((offset, header, str(cells[idx])))
                value = None
            record[mapping.var] = None if value is None else value * mapping.scale
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
    """A file the configuration expects for one bureau and year."""

    department: str
    path: Path
    present: bool


def discover(data_dir: Path | str, year: int, catalogue: Catalogue) -> list[Expected]:
    """List each configured bureau's file for the year, whether or not it is there."""
    ydir = Path(data_dir) / str(int(year))
    return [
        Expected(dept, ydir / source.file_name(year), (ydir / source.file_name(year)).is_file())
        for dept, source in sorted(catalogue.sources.items())
    ]

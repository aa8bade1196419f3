"""Read a bureau's yearly table into a wide frame and a long fact table with provenance.

Two steps, so that what was received can be kept byte for byte:

- `receive` gets the bytes from the configured source (a file in the drop folder,
  an HTTP endpoint, or a SQL query whose result is serialised as canonical CSV);
- `parse` turns those bytes into a `Submission`.

Both are bounded by the source's `limits` (bytes; rows, columns and cells, checked while an
xlsx is streamed (`ingest.xlsx`) or a CSV is read (`ingest.text`)); only regular files are read
from the drop folder; a number is read only when it has one meaning (`ingest.cells`).

A submission is a bureau's bytes for a year: its id hashes the bureau, the year and the
sha256 of the bytes, so the same file sent twice is the same submission, the same file sent
for another year is another one, and every fact keeps the sheet and row it came from.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue, Source
from evaluation.ingest.forms import FORM_KEYWORD, form_source

from evaluation.ingest.model import (
    FACT_COLUMNS, IngestError, Received, Submission, TransientSourceError, submission_id,
)

# -- cells, text and xlsx: submodules, their public names importable from here -------------

from evaluation.ingest.cells import (  # noqa: E402
    NOT_A_NUMBER, YEAR_HEADER, NumberFormError, Percent, cell_text, clip, clip_list, normalise_header, parse_cell,
    parse_number, stated_year,
)
from evaluation.ingest.text import csv_rows, encoding_note, json_rows  # noqa: E402

__all__ = [
    "FACT_COLUMNS", "Expected", "IngestError", "MissingFileError", "NumberFormError", "Received", "Submission",
    "TransientSourceError", "clip", "clip_list", "discover", "normalise_header", "others_notice", "parse",
    "parse_cell", "parse_number", "read_submission", "receive", "receive_file", "stated_year", "submission_id",
    "table_from_rows",
]
from evaluation.ingest.xlsx import CFB_MAGIC, DAMAGED, XlsxBook  # noqa: E402


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


class MissingFileError(IngestError):
    """The configured file is not there: the table is missing, not unreadable."""


# Spreadsheet formats that are not xlsx: a bureau must save the table again.
LEGACY_FORMATS = {".xls": "旧版 Excel（.xls）", ".et": "WPS 表格（.et）", ".xlsb": "Excel 二进制工作簿（.xlsb）",
                  ".ods": "OpenDocument 表格（.ods）", ".numbers": "Numbers 表格（.numbers）"}
TABLE_SUFFIXES = {".xlsx", ".xlsm", ".csv", ".txt", ".json", *LEGACY_FORMATS}


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(n, 1) / 1024:.0f} KB"


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "文件夹"
    if stat.S_ISFIFO(mode):
        return "管道（FIFO）"
    if stat.S_ISSOCK(mode):
        return "套接字"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "设备文件"
    return "特殊文件"


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "没有读取权限"
    if exc.errno == errno.EISDIR:
        return "这是文件夹"
    return f"系统错误（{errno.errorcode.get(exc.errno or 0, exc.errno)}）"


def legacy_message(name: str) -> str | None:
    """What to say about a spreadsheet saved in a format other than xlsx (None for other files)."""
    suffix = Path(name).suffix.lower()
    if suffix not in LEGACY_FORMATS:
        return None
    return (f"{name} 是{LEGACY_FORMATS[suffix]}文件，无法读取；请在 Excel 或 WPS 中“另存为”"
            "Excel 工作簿（.xlsx）后再提交。")


def receive_file(path: Path | str, source: Source, year: int) -> Received:
    """Read a bureau's file: a regular file only (never a symlink, device or FIFO), at most `max_bytes`."""
    path = Path(path)
    name = path.name
    limit = source.limits.max_bytes
    link = f"{name} 是符号链接（快捷方式），不是普通文件，拒绝读取；请把数据文件本身放入文件夹。"
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            raise IngestError(link)
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{name} 不是普通文件（是{_kind_of(info.st_mode)}），拒绝读取。")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingFileError(f"找不到文件 {name}。") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IngestError(link) from None
        raise IngestError(f"无法读取文件 {name}：{_os_reason(exc)}") from None
    try:
        info = os.fstat(fd)  # what was opened, not what the name pointed to a moment ago
        if not stat.S_ISREG(info.st_mode):
            raise IngestError(f"{name} 不是普通文件（是{_kind_of(info.st_mode)}），拒绝读取。")
        too_big = f"文件 {name} 超过 {_size(limit)} 上限，请只提交本部门的填报表。"
        if info.st_size > limit:
            raise IngestError(f"文件 {name} 有 {_size(info.st_size)}，超过 {_size(limit)} 上限，请只提交本部门的填报表。")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise IngestError(too_big)
        data = b"".join(chunks)
    except OSError as exc:
        raise IngestError(f"无法读取文件 {name}：{_os_reason(exc)}") from None
    finally:
        os.close(fd)
    legacy = legacy_message(name)
    if legacy:
        raise IngestError(legacy)
    fmt = source.format
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        fmt = "xlsx"
    elif path.suffix.lower() == ".csv":
        fmt = "csv"
    return Received(source.department, int(year), "folder", str(path), path.name, data, fmt)


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
            _check_form(marker, received)
        return source, book.table(source)
    except IngestError:
        raise
    except Exception:  # noqa: BLE001 - a damaged file can make the zip or XML layer raise anything
        raise IngestError(DAMAGED) from None


def _check_form(marker: str, received: Received) -> None:
    parts = marker.split(":")
    if len(parts) == 3:
        _, dept, year = (clip(p) for p in parts)  # workbook properties are the bureau's text
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
    )


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


@dataclass(frozen=True)
class Expected:
    """A table the configuration expects from one bureau for one year."""

    department: str
    kind: str
    path: Path  # folder: the file (or a file in another format found instead); http/sql: a display name
    present: bool  # folder: something is there under the name (a symlink too); remote: assumed until fetched
    problem: str = ""  # folder: present but unusable (e.g. an .xls): why, for the bureau
    others: tuple[str, ...] = ()  # folder: other files that look like this bureau's table, not read


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder))
    except OSError:
        return []


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _alternative(listing: list[str], name: str) -> str | None:
    """A file with the configured name but another extension (an .xls first)."""
    stem = _fold(Path(name).stem)
    found = [n for n in listing if n != name and _fold(Path(n).stem) == stem and Path(n).suffix.lower() in TABLE_SUFFIXES]
    return min(found, key=lambda n: (Path(n).suffix.lower() != ".xls", n), default=None)


def _alternative_problem(alt: str, name: str) -> str:
    suffix = Path(alt).suffix.lower()
    target = "Excel 工作簿（.xlsx）" if Path(name).suffix.lower() in (".xlsx", ".xlsm") else "CSV（逗号分隔）"
    what = f"（{LEGACY_FORMATS[suffix]}文件，无法读取）" if suffix in LEGACY_FORMATS else ""
    return (f"文件夹中没有 {name}，只有 {alt}{what}。请打开它“另存为”{target}，文件名为 {name}，然后重新报送。")


def _same_bureau(file: str, source: Source, department_name: str) -> bool:
    """Whether a file in the year folder looks like this bureau's table: its name starts with the
    configured name's part before the year (统计局_), or, when that part is too short to tell,
    it contains the bureau's name. Lock files (~$…), hidden files and non-table files are not."""
    if file.startswith(("~$", ".")) or Path(file).suffix.lower() not in TABLE_SUFFIXES:
        return False
    prefix = (source.pattern or "").split("{year}", 1)[0]
    if len(prefix.strip(" _-.")) >= 2:
        return _fold(file).startswith(_fold(prefix))
    return _fold(department_name) in _fold(file)


def discover(data_dir: Path | str, year: int, catalogue: Catalogue) -> list[Expected]:
    """List each configured bureau's table for the year, whether or not it is there.

    A folder source's file counts as present when anything is there under its name (a symlink
    is present, and refused when read). When it is missing but the same name with another
    extension is there (an .xls), that file is present with a `problem`. Other files that look
    like the bureau's (see `_same_bureau`) are listed in `others`: they are never read.
    """
    ydir = Path(data_dir) / str(int(year))
    listing = _listing(ydir)
    configured = {s.file_name(year) for s in catalogue.sources.values() if s.kind == "folder"}
    found = []
    for dept, source in sorted(catalogue.sources.items()):
        if source.kind != "folder":
            found.append(Expected(dept, source.kind, Path(f"{dept}_{year}.{source.format if source.kind == 'http' else 'csv'}"), True))
            continue
        name = source.file_name(year)
        path, present, problem = ydir / name, _lexists(ydir / name), ""
        if not present and (alt := _alternative(listing, name)):
            path, present, problem = ydir / alt, True, _alternative_problem(alt, name)
        dept_name = catalogue.departments[dept].name if dept in catalogue.departments else dept
        others = tuple(n for n in listing if n not in configured and n != path.name and _same_bureau(n, source, dept_name))
        found.append(Expected(dept, "folder", path, present, problem, others))
    return found


def others_notice(expected: Expected, department_name: str, year: int) -> str:
    """What to tell a bureau whose year folder holds more files that look like its table."""
    if not expected.others:
        return ""
    return (f"文件夹中还有 {clip_list(expected.others, '个文件')}，看来也是{department_name} {year} 年的数据，但未读取："
            f"每个部门每年只读取 {expected.path.name}。如需更正已报送的数据，请用 twomountains correct "
            f"--department {expected.department} --year {year} --reason 更正原因 更正后的文件 报送。")

"""Excel (xlsx) tables read by streaming the sheet XML.

Nothing is loaded whole: the sheet is parsed element by element (`iterparse`, each row cleared
once read) and refused as soon as a cap is passed (a value below the row cap, right of the
column cap, more cells than the cell cap, or a sheet bloated with empty formatted cells).
The same pass collects formulas that have no cached value and the merged ranges
(`<mergeCell ref=…>`); shared strings are then read only for the cells kept. Workbook
properties (the form marker), hidden sheets and number formats (dates, percentages) come
from the small parts beside the sheet.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import zipfile
import zlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from evaluation.catalogue import Limits, Source
from evaluation.ingest.model import IngestError
from evaluation.ingest.cells import Percent, clip, clip_list, normalise_header

CFB_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # an OLE compound file: a legacy .xls or an encrypted xlsx
DAMAGED = "无法作为 Excel（xlsx）文件打开：文件已损坏或不是 xlsx 格式（旧版 .xls 请另存为 .xlsx）。"
SMALL_PART = 16 * 2**20  # workbook, relationships, properties: anything larger is not a bureau table
LOOKAHEAD = 20  # rows of another sheet looked at to see whether it holds the table
MAX_SHEETS_LOOKED_AT = 50  # other sheets looked at for the table
_REF = re.compile(r"([A-Z]{1,3})(\d+)")
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
# What a damaged or unsupported zip or XML raises (unsupported compression, encrypted members included).
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, ET.ParseError, KeyError, IndexError, ValueError, EOFError, OSError,
           zlib.error, NotImplementedError, RuntimeError)
_CELL_PARTS = {"v", "f", "is", "t", "r"}  # read when their cell ends: not cleared before
_BUILTIN_DATES = set(range(14, 23)) | {45, 46, 47}
_BUILTIN_PERCENT = {9, 10}


class _Shared:
    """A shared-string cell until the strings are read."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def column_letter(col: int) -> str:
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column_index(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - 64
    return index


def _cell_ref(ref: str) -> tuple[int, int]:
    match = _REF.fullmatch(ref.replace("$", "").upper())
    if not match:
        raise ValueError(ref)
    return int(match[2]), _column_index(match[1])


def _range(ref: str) -> tuple[int, int, int, int]:
    """(min_row, min_col, max_row, max_col) of "C5:C6" (or a single cell)."""
    first, _, last = ref.partition(":")
    r1, c1 = _cell_ref(first)
    r2, c2 = _cell_ref(last or first)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def _text(elem) -> str:
    """The text of a shared or inline string: its <t>, or its runs' <t>s (phonetic runs left out)."""
    parts = []
    for child in elem:
        name = _local(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    text = "".join(parts)
    return _ESCAPED.sub(lambda m: chr(int(m[1], 16)), text) if "_x" in text else text


@dataclass(frozen=True)
class Sheet:
    name: str
    state: str  # visible, hidden, veryHidden
    part: str  # the sheet's XML inside the zip


@dataclass
class Scan:
    """What one pass over a sheet found (row and column numbers 1-based)."""

    title: str
    cells: dict[int, dict[int, object]] = field(default_factory=dict)
    uncached: dict[tuple[int, int], str] = field(default_factory=dict)  # formulas without a cached value
    merges: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)

    def rows(self) -> list[list[object]]:
        """Dense rows down to the last one holding anything (the row cap bounds their number)."""
        last = max([*self.cells, *(r for r, _ in self.uncached)], default=0)
        rows: list[list[object]] = [[] for _ in range(last)]
        widths: dict[int, int] = {}
        for (r, c) in self.uncached:
            widths[r] = max(widths.get(r, 0), c)
        for r, cols in self.cells.items():
            widths[r] = max(widths.get(r, 0), max(cols))
        for r, width in widths.items():
            row = [None] * width
            for c, value in self.cells.get(r, {}).items():
                row[c - 1] = value
            rows[r - 1] = row
        return rows


class XlsxBook:
    """An xlsx opened for streaming; every failure is an `IngestError` in Chinese."""

    def __init__(self, data: bytes, limits: Limits):
        self.limits = limits
        if data[:8] == CFB_MAGIC:
            raise IngestError("这是旧版 Excel（.xls）文件或加了密码的 Excel 文件，"
                              "请在 Excel 中“另存为”不加密的 Excel 工作簿（.xlsx）后再提交。")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except _BROKEN:
            raise IngestError(DAMAGED) from None
        if sum(info.file_size for info in infos) > limits.max_unpacked_bytes:
            raise IngestError(f"Excel 文件解压后超过 {limits.max_unpacked_bytes // 2**20} MB，拒绝读取（可能是压缩炸弹）。")
        self.sizes = {info.filename: info.file_size for info in infos}
        try:
            self._read_workbook()
        except IngestError:
            raise
        except _BROKEN:
            raise IngestError(DAMAGED) from None

    # -- the small parts -----------------------------------------------------

    def _xml(self, part: str):
        if part not in self.sizes or self.sizes[part] > SMALL_PART:
            raise KeyError(part)
        return ET.fromstring(self.zip.read(part))

    def _rels(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id -> (type suffix, target part) of a part."""
        folder, name = posixpath.split(part)
        rels_part = posixpath.join(folder, "_rels", name + ".rels")
        if rels_part not in self.sizes:
            return {}
        out = {}
        for rel in self._xml(rels_part):
            target = rel.get("Target") or ""
            if rel.get("TargetMode") == "External":
                continue
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
            out[rel.get("Id") or ""] = ((rel.get("Type") or "").rpartition("/")[2], path)
        return out

    def _read_workbook(self) -> None:
        root = self._rels("")
        self.workbook = next((p for t, p in root.values() if t == "officeDocument"), "xl/workbook.xml")
        self.core = next((p for t, p in root.values() if t == "core-properties"), "docProps/core.xml")
        rels = self._rels(self.workbook)
        self.strings = next((p for t, p in rels.values() if t == "sharedStrings"), None)
        self.styles = next((p for t, p in rels.values() if t == "styles"), None)
        self.sheets: list[Sheet] = []
        self.date1904 = False
        for elem in self._xml(self.workbook).iter():
            name = _local(elem.tag)
            if name == "workbookPr":
                self.date1904 = (elem.get("date1904") or "").lower() in ("1", "true")
            elif name == "sheet":
                rid = next((v for k, v in elem.attrib.items() if k.startswith("{") and _local(k) == "id"), "")
                kind, part = rels.get(rid, ("", ""))
                if kind == "worksheet":  # chart sheets and dialog sheets hold no table
                    self.sheets.append(Sheet(elem.get("name") or "", elem.get("state") or "visible", part))
        self._formats: tuple[set[int], set[int]] | None = None

    def keywords(self) -> str:
        """The workbook's keywords (document properties); empty when there are none."""
        try:
            root = self._xml(self.core)
        except _BROKEN:
            return ""
        return next((e.text or "" for e in root.iter() if _local(e.tag) == "keywords"), "")

    def _number_formats(self) -> tuple[set[int], set[int]]:
        """(date style indices, percent style indices) from styles.xml."""
        if self._formats is not None:
            return self._formats
        from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format

        dates: set[int] = set()
        percents: set[int] = set()
        if self.styles and self.styles in self.sizes:
            codes: dict[int, str] = {}
            index = 0
            in_xfs = False
            with self.zip.open(self.styles) as fh:
                for event, elem in ET.iterparse(fh, events=("start", "end")):
                    name = _local(elem.tag)
                    if event == "start":
                        in_xfs = in_xfs or name == "cellXfs"
                        continue
                    if name == "numFmt":
                        codes[int(elem.get("numFmtId") or -1)] = elem.get("formatCode") or ""
                    elif name == "xf" and in_xfs:
                        fmt = int(elem.get("numFmtId") or 0)
                        code = codes.get(fmt, BUILTIN_FORMATS.get(fmt, "General"))
                        if fmt in _BUILTIN_DATES or (fmt not in _BUILTIN_PERCENT and is_date_format(code)):
                            dates.add(index)
                        elif fmt in _BUILTIN_PERCENT or "%" in re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code):
                            percents.add(index)
                        index += 1
                    elif name == "cellXfs":
                        in_xfs = False
                    elem.clear()
        self._formats = (dates, percents)
        return self._formats

    # -- sheets ----------------------------------------------------------------

    def scan(self, sheet: Sheet, *, up_to_row: int | None = None) -> Scan:
        """One streaming pass over a sheet; cells hold `_Shared` until `resolve`."""
        try:
            return self._scan(sheet, up_to_row)
        except IngestError:
            raise
        except _BROKEN:
            raise IngestError(DAMAGED) from None

    def _scan(self, sheet: Sheet, up_to_row: int | None) -> Scan:
        limits = self.limits
        title = clip(sheet.name)
        dates, percents = self._number_formats()
        epoch = dt.datetime(1904, 1, 1) if self.date1904 else None
        out = Scan(sheet.name)
        budget = limits.max_cells + 2 * limits.max_rows  # cells and rows, empty (formatted) ones included
        bloated = (f"工作表“{title}”含有大量空行、空白单元格或格式（超过 {budget} 个），拒绝读取；"
                   "请只把表格复制到新的工作簿后再提交。")
        elements = kept = row_no = col_no = total = 0
        pending = None  # the reference of the last empty cell, parsed only if a cell without one follows
        sheet_data = None
        names: dict[str, str] = {}
        with self.zip.open(sheet.part) as fh:
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                tag = elem.tag
                name = names.get(tag) or names.setdefault(tag, _local(tag))
                if event == "start":
                    if name == "row":
                        elements += 1
                        if elements > budget:
                            raise IngestError(bloated)
                        row_no = int(elem.get("r") or row_no + 1)
                        col_no, pending = 0, None
                        if up_to_row is not None and row_no > up_to_row:
                            break
                    elif name == "sheetData":
                        sheet_data = elem
                    continue
                total += 1
                if total > 4 * budget:  # any element: hyperlinks, formats, validations ...
                    raise IngestError(bloated)
                if name == "c":
                    elements += 1
                    if elements > budget:
                        raise IngestError(bloated)
                    ref = elem.get("r")
                    if not len(elem):  # an empty (formatted) cell: nothing to read
                        if ref:
                            pending = ref
                        else:
                            col_no = (_cell_ref(pending)[1] if pending else col_no) + 1
                            pending = None
                        continue
                    if ref:
                        row, col = _cell_ref(ref)
                    else:
                        if pending:
                            col_no = _cell_ref(pending)[1]
                        row, col = row_no, col_no + 1
                    col_no, pending = col, None
                    value, formula = self._cell(elem, dates, percents, epoch)
                    elem.clear()
                    if (value is None or value == "") and formula is None:
                        continue
                    if up_to_row is not None and row > up_to_row:
                        continue
                    if row > limits.max_rows:
                        raise IngestError(f"工作表“{title}”第 {row} 行有数据，超过每表 {limits.max_rows} 行的上限，"
                                          "拒绝读取；请删除表格下方多余的内容，只提交本部门的填报表。")
                    if col > limits.max_columns:
                        raise IngestError(f"工作表“{title}”第 {column_letter(col)} 列（第 {col} 列）有数据，"
                                          f"超过每表 {limits.max_columns} 列的上限，拒绝读取；请删除表格右侧多余的内容。")
                    kept += 1
                    if kept > limits.max_cells:
                        raise IngestError(f"工作表“{title}”超过每表 {limits.max_cells} 个单元格的上限，"
                                          "拒绝读取；请只提交本部门的填报表。")
                    if formula is not None:
                        out.uncached[(row, col)] = formula
                    else:
                        out.cells.setdefault(row, {})[col] = value
                elif name == "row":
                    elem.clear()
                    if sheet_data is not None:
                        sheet_data.clear()  # rows already read: keep memory flat
                elif name == "mergeCell":
                    elements += 1
                    if elements > budget:
                        raise IngestError(f"工作表“{title}”含有过多的合并单元格，拒绝读取。")
                    ref = elem.get("ref") or ""
                    out.merges.append((ref, _range(ref)))
                    elem.clear()
                elif name not in _CELL_PARTS:
                    elem.clear()
        return out

    @staticmethod
    def _cell(elem, dates: set[int], percents: set[int], epoch) -> tuple[object, str | None]:
        """(value, formula): formula is set (and value None) for a formula without a cached value."""
        kind = elem.get("t") or "n"
        v = formula = inline = None
        seen_v = False
        for child in elem:
            name = _local(child.tag)
            if name == "v" and not seen_v:  # the first, as Excel and openpyxl read it
                v, seen_v = child.text, True
            elif name == "f":
                formula = child
            elif name == "is":
                inline = _text(child)
        if kind == "inlineStr":
            return inline, None
        if formula is not None and (v is None or v == ""):
            return None, "=" + (formula.text or "（共享公式）")
        if v is None:
            return None, None
        if kind == "s":
            return _Shared(int(v)), None
        if kind in ("str", "e"):
            return v, None
        if kind == "b":
            return v.strip() in ("1", "true"), None
        if kind == "d":
            try:
                return dt.datetime.fromisoformat(v.strip().rstrip("Z")), None
            except ValueError:
                return v, None
        text = v.strip()
        try:
            number: float | int = int(text) if re.fullmatch(r"-?\d+", text) else float(text)
        except ValueError:
            return v, None
        style = int(elem.get("s") or 0)
        if style in dates:
            from openpyxl.utils.datetime import from_excel

            try:
                return from_excel(number, epoch) if epoch else from_excel(number), None
            except (ValueError, OverflowError, TypeError):
                return number, None
        if style in percents:
            return Percent(number), None
        return number, None

    def resolve(self, scans: list[Scan]) -> None:
        """Replace shared-string placeholders by their text, reading only the strings used."""
        needed = {v.index for s in scans for row in s.cells.values() for v in row.values() if isinstance(v, _Shared)}
        if not needed:
            return
        try:
            table = self._strings(needed)
        except _BROKEN:
            raise IngestError(DAMAGED) from None
        if len(table) < len(needed):
            raise IngestError(DAMAGED)
        for s in scans:
            for row in s.cells.values():
                for c, v in row.items():
                    if isinstance(v, _Shared):
                        row[c] = table[v.index]

    def _strings(self, needed: set[int]) -> dict[int, str]:
        if not self.strings or self.strings not in self.sizes:
            return {}
        table: dict[int, str] = {}
        last = max(needed)
        index = -1
        root = None
        with self.zip.open(self.strings) as fh:
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if root is None:
                        root = elem
                    continue
                if _local(elem.tag) != "si":
                    continue
                index += 1
                if index in needed:
                    table[index] = _text(elem)
                elem.clear()
                if root is not None:
                    root.clear()
                if index >= last:
                    break
        return table

    # -- the table -------------------------------------------------------------

    def visible(self) -> list[Sheet]:
        return [s for s in self.sheets if s.state == "visible"]

    def holder(self, sheets: list[Sheet], source: Source) -> Sheet | None:
        """The first of these sheets whose first rows hold the county header (None when none does)."""
        county = normalise_header(source.county_column)
        for sheet in sheets[:MAX_SHEETS_LOOKED_AT]:
            try:
                scan = self.scan(sheet, up_to_row=max(source.header_row + LOOKAHEAD, LOOKAHEAD))
                self.resolve([scan])
            except IngestError:
                continue
            if any(county in {normalise_header(v) for v in row.values()} for row in scan.cells.values()):
                return sheet
        return None

    def table(self, source: Source) -> tuple[str, list[list[object]], dict[tuple[int, int], str]]:
        """(sheet title, rows with header merges filled, {(row, col) 0-based: formula} without cached values)."""
        visible = self.visible()
        if source.sheet is not None:
            matches = [s for s in visible if s.name.strip() == source.sheet]
            if not matches:
                names = clip_list([s.name for s in visible], "个") or "（无）"
                message = f"找不到工作表“{source.sheet}”。文件中的可见工作表：{names}"
                if any(s.name.strip() == source.sheet for s in self.sheets if s.state != "visible"):
                    message += f"（工作表“{source.sheet}”被隐藏了，请取消隐藏）"
                found = self.holder(visible, source)
                if found is not None:
                    message += f"；表格似乎在工作表“{clip(found.name)}”中，请把该工作表改名为“{source.sheet}”"
                raise IngestError(message + "。")
            sheet = matches[0]
        elif visible:
            sheet = visible[0]
        else:
            raise IngestError("文件中没有可见的工作表。")
        scan = self.scan(sheet)
        self.resolve([scan])
        rows = scan.rows()
        self._merged(scan, rows, source, self.limits.max_columns)
        hi = source.header_row - 1
        county = normalise_header(source.county_column)
        if len(rows) <= hi or county not in [normalise_header(c) for c in rows[hi]]:
            found = self.holder([s for s in visible if s is not sheet], source)
            if found is not None:
                where = (f"请把表格放在工作表“{source.sheet}”中" if source.sheet
                         else "请把该工作表移到最前面（或删除前面的工作表）")
                raise IngestError(
                    f"工作表“{clip(sheet.name)}”中没有找到表格（第 {source.header_row} 行找不到县区列“{source.county_column}”）。"
                    f"文件中的工作表：{clip_list([s.name for s in visible], '个')}；"
                    f"表格似乎在工作表“{clip(found.name)}”中，{where}后再提交。")
        uncached = {(r - 1, c - 1): formula for (r, c), formula in scan.uncached.items()}
        return sheet.name, rows, uncached

    @staticmethod
    def _merged(scan: Scan, rows: list[list[object]], source: Source, max_columns: int) -> None:
        """Fill merged ranges in the header rows; refuse them in the data area (one figure, two rows)."""
        skip = set(source.skip_rows)
        in_data = []
        for ref, (min_row, min_col, max_row, max_col) in scan.merges:
            if max_row > source.header_row and not all(r in skip for r in range(max(min_row, source.header_row + 1), max_row + 1)):
                in_data.append(ref)
                continue
            if min_row - 1 >= len(rows) or not rows[min_row - 1] or min_col - 1 >= len(rows[min_row - 1]):
                continue
            top = rows[min_row - 1][min_col - 1]
            max_col = min(max_col, max_columns)
            for r in range(min_row - 1, min(max_row, len(rows))):
                if len(rows[r]) < max_col:
                    rows[r] = rows[r] + [None] * (max_col - len(rows[r]))
                for c in range(min_col - 1, max_col):
                    if rows[r][c] is None:
                        rows[r][c] = top
        if in_data:
            raise IngestError(f"工作表“{clip(scan.title)}”的数据区域有合并单元格 {clip_list(in_data, '处')}，"
                              "请取消合并后逐行填写（每个县区一行，每格一个数）。")

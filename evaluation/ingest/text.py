"""Text tables: CSV bytes decoded (the encoding the configured headers are found under) and read
row by row against the table caps; JSON records from an HTTP source, capped the same way."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable

from evaluation.catalogue import Limits
from evaluation.ingest.model import IngestError
from evaluation.ingest.cells import normalise_header

LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gb18030": "GBK（GB18030）", "big5": "Big5（繁体中文）",
          "utf-16": "UTF-16", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE", "utf-32": "UTF-32"}
USUAL = {"utf-8", "utf-8-sig", "gb18030"}  # a header mismatch under these needs no word on the encoding
SNIFF = 1 << 16  # bytes looked at to tell UTF-16 from binary, characters searched for the headers
BINARY = "文件含有二进制内容，不是 CSV 文本文件。"


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the zero bytes sit where ASCII text in UTF-16 puts them."""
    sample = data[:SNIFF]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0:2 * pairs:2].count(0), sample[1:2 * pairs:2].count(0)
    if odd >= 0.1 * pairs and even <= 0.01 * pairs:
        return "utf-16-le"
    if even >= 0.1 * pairs and odd <= 0.01 * pairs:
        return "utf-16-be"
    return None


def _has_headers(text: str, headers: list[str]) -> bool:
    head = normalise_header(text[:SNIFF])
    return bool(headers) and headers[0] in head


def _looks_big5(gbk_text: str) -> bool:
    """Big5 bytes read as GBK give mostly characters outside GB2312, which a bureau's GBK text seldom uses."""
    cjk = [ch for ch in gbk_text[:SNIFF] if ord(ch) > 0x2E7F]
    if not cjk:
        return False
    outside = 0
    for ch in cjk:
        try:
            ch.encode("gb2312")
        except UnicodeEncodeError:
            outside += 1
    return outside / len(cjk) > 0.3


def decode_text(data: bytes, headers: Iterable[str] = ()) -> tuple[str, str]:
    """(text, encoding) of CSV bytes.

    A BOM says the encoding (UTF-8, UTF-16, UTF-32). Without one, UTF-16 is recognised by its
    zero bytes, else UTF-8, GBK (GB18030) and Big5 are tried: the first under which the
    configured county header appears wins; when none shows it, UTF-8, then GBK unless the
    text looks like Big5.
    """
    wanted = [normalise_header(h) for h in headers if normalise_header(h)]
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                raise IngestError(f"文件开头标明是 {LABELS[encoding]} 编码，但内容不能按该编码读取，"
                                  "请另存为 UTF-8 或 GBK 编码的 CSV 文件。") from None
    if b"\x00" in data:
        candidates = [_utf16_without_bom(data)]
        if candidates[0] is None:
            raise IngestError(BINARY)
    else:
        candidates = ["utf-8", "gb18030", "big5"]
    decoded: dict[str, str] = {}
    for encoding in candidates:
        try:
            decoded[encoding] = data.decode(encoding)
        except UnicodeDecodeError:
            continue
    for encoding, text in decoded.items():
        if _has_headers(text, wanted):
            return text, encoding
    if "utf-8" in decoded:
        return decoded["utf-8"], "utf-8"
    if "gb18030" in decoded:
        if "big5" in decoded and _looks_big5(decoded["gb18030"]):
            return decoded["big5"], "big5"
        return decoded["gb18030"], "gb18030"
    if decoded:
        encoding = next(iter(decoded))
        return decoded[encoding], encoding
    if b"\x00" in data:
        raise IngestError(BINARY)
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 4 * SNIFF]).best()
    if best is None or not best.encoding:
        raise IngestError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV 文件。")
    try:
        return data.decode(best.encoding, errors="replace"), best.encoding
    except LookupError:
        raise IngestError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV 文件。") from None


def decode_csv(data: bytes) -> str:
    """Decode CSV bytes (see `decode_text`)."""
    return decode_text(data)[0]


def encoding_note(encoding: str) -> str:
    """Said after a header mismatch when the file was read in an unusual encoding."""
    if encoding in USUAL:
        return ""
    if encoding == "big5":
        return "（文件是 Big5（繁体中文）编码，请改用简体中文表头，另存为 UTF-8 或 GBK 编码的 CSV 文件）"
    return f"（文件按 {LABELS.get(encoding, encoding)} 编码读取；如表头显示为乱码，请另存为 UTF-8 或 GBK 编码的 CSV 文件）"


_CSV_REASONS = (
    ("field larger than field limit", "有单元格超过 {limit} 个字符，不是正常的数据表"),
    ("new-line character seen in unquoted field", "单元格中有未加引号的换行符"),
    ("line contains nul", "含有二进制内容（NUL 字符）"),
)


def _rows_capped(rows: Iterable[list], limits: Limits, where: str = "文件") -> list[list]:
    out: list[list] = []
    cells = 0
    for row in rows:
        if len(out) >= limits.max_rows:
            raise IngestError(f"{where}超过每表 {limits.max_rows} 行的上限，拒绝读取；请只提交本部门的填报表。")
        if len(row) > limits.max_columns:
            raise IngestError(f"{where}第 {len(out) + 1} 行有 {len(row)} 列，超过每表 {limits.max_columns} 列的上限，拒绝读取。")
        cells += len(row)
        if cells > limits.max_cells:
            raise IngestError(f"{where}超过每表 {limits.max_cells} 个单元格的上限，拒绝读取；请只提交本部门的填报表。")
        out.append(row)
    return out


def csv_rows(data: bytes, limits: Limits, headers: Iterable[str] = ()) -> tuple[list[list[object]], str]:
    """(rows, encoding): CSV bytes read row by row, refused as soon as a cap is passed."""
    text, encoding = decode_text(data, headers)
    first = text[:SNIFF].split("\n", 1)[0]
    delimiter = ","
    if "," not in first:  # Excel's "Unicode text" is tab-separated; some locales use ";"
        delimiter = "\t" if "\t" in first else ";" if ";" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _rows_capped(reader, limits), encoding
    except csv.Error as exc:
        detail = str(exc).lower()
        reason = next((zh for en, zh in _CSV_REASONS if en in detail), "引号或分隔符不配对")
        raise IngestError(f"CSV 格式有误（第 {reader.line_num} 行）：{reason.format(limit=csv.field_size_limit())}。") from None


def json_rows(data: bytes, limits: Limits) -> list[list[object]]:
    """Records from a JSON document ([{header: value}, ...] or {"data": [...]}) as rows."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"（第 {exc.lineno} 行第 {exc.colno} 列）" if isinstance(exc, json.JSONDecodeError) else "（不是 UTF-8 编码）"
        raise IngestError(f"返回内容不是有效的 JSON{where}。") from None
    except RecursionError:
        raise IngestError("返回内容不是有效的 JSON（嵌套过深）。") from None
    records = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise IngestError("JSON 应为记录列表（[{列名: 值, ...}, ...]）或 {\"data\": [...]}。")
    if len(records) >= limits.max_rows:
        raise IngestError(f"返回内容超过每表 {limits.max_rows} 行的上限，拒绝读取。")
    headers: list[str] = []
    seen: set[str] = set()
    for record in records:
        for key in record:
            if key not in seen:
                seen.add(key)
                headers.append(str(key))
                if len(headers) > limits.max_columns:
                    raise IngestError(f"返回内容超过每表 {limits.max_columns} 列的上限，拒绝读取。")
    return _rows_capped(([headers] + [[record.get(h) for h in headers] for record in records]), limits, "返回内容")

"""Exports that open safely in Excel/WPS: text cells that look like formulas are neutralised."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from evaluation.fsutil import atomic_write

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(formula_safe)
    out.columns = [formula_safe(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path | str) -> Path:
    """UTF-8 with BOM (so Excel reads Chinese), formula-safe, written atomically."""
    path = Path(path)
    atomic_write(path, safe_frame(frame).to_csv(index=False).encode("utf-8-sig"))
    return path


def reproducible_xlsx(data: bytes, stamp: datetime) -> bytes:
    """The same xlsx (a zip) with every entry and the document's "modified" time set to `stamp` (openpyxl
    stamps both with the clock), entries in the same order: the same bytes on every run."""
    modified = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            body = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + modified.encode("ascii"), body)
            target.writestr(info, body)
    return out.getvalue()

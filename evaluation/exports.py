"""Exports that open safely in Excel/WPS: text cells that look like formulas are neutralised."""

from __future__ import annotations

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

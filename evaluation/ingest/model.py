"""What ingest produces and raises: the received bytes, the parsed submission, the errors.

Kept apart from the package's functions so that its submodules (cells, text, xlsx, remote, forms)
import these names without importing the package that imports them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue, Limits

FACT_COLUMNS = ["county_code", "year", "variable_id", "value", "unit", "department", "submission_id", "sheet", "row"]
# Defaults of the per-source caps (`Source.limits`, `limits:` in sources.yaml).
MAX_BYTES = Limits().max_bytes  # a bureau table is kilobytes; anything this large is refused unread
MAX_XLSX_UNPACKED = Limits().max_unpacked_bytes  # zip-bomb guard for xlsx


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
    def sha256(self) -> str:
        """The hash of the bytes as received (what `sha256sum` of the file prints)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def submission_id(self) -> str:
        """A submission is its bureau, year and bytes: the same file sent for another year or
        bureau is another submission."""
        return submission_id(self.department, self.year, self.sha256)


def submission_id(department: str, year: int, sha256: str) -> str:
    """The id of the submission of these bytes (by their sha256) by a bureau for a year."""
    return hashlib.sha256(f"twomountains-submission\0{department}\0{int(year)}\0{sha256}".encode()).hexdigest()


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
    extra_columns: list[str] = field(default_factory=list)  # headers found but not configured (as written, clipped)
    unparsed: list[tuple[int, str, str, str]] = field(default_factory=list)  # (row, header, raw text, reason)
    year_column: str = ""  # a column stating the table's year (年度, 年份, 统计年度 ...), as headed
    stated_years: list[tuple[int, str]] = field(default_factory=list)  # (row, text) of its non-blank cells
    notices: list[str] = field(default_factory=list)  # about the delivery, not the figures (e.g. a second file)
    # variable id -> the header it was read from, in the layout used (a bureau's own, or the form's);
    # "_county" -> the county column's header
    headers: dict[str, str] = field(default_factory=dict)

    def facts(self, catalogue: Catalogue) -> pd.DataFrame:
        """The long fact table: one row per county and variable, with provenance."""
        var_cols = [c for c in self.table.columns if c in catalogue.variables]
        if self.table.empty or not var_cols:
            return pd.DataFrame(columns=FACT_COLUMNS)
        long = self.table.melt(id_vars=["county_code", "_row"], value_vars=var_cols,
                               var_name="variable_id", value_name="value")
        long = long.rename(columns={"_row": "row"})
        long["year"] = self.year
        long["unit"] = long["variable_id"].map({v: catalogue.variables[v].unit for v in var_cols})
        long["department"] = self.department
        long["submission_id"] = self.submission_id
        long["sheet"] = self.sheet
        return long[FACT_COLUMNS].sort_values(["county_code", "variable_id"]).reset_index(drop=True)

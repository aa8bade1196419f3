"""Content keys: what a cached step or an issued report depends on, hashed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.pipeline.intake import Intake


# Context keys that say which edition a report is; they are left out of its content key.
EDITION_KEYS = ("version", "run_date", "run_date_text", "revision", "corrected")
# Fact columns a reader sees; provenance (submission id, sheet, row) is left out of the content key,
# so a bureau re-sending its whole table re-issues only the counties whose figures changed.
CONTENT_FACT_COLUMNS = ["county_code", "year", "variable_id", "value", "unit", "department"]


def frame_digest(frame: pd.DataFrame | None) -> str:
    """A stable hash of a table's labels and values."""
    if frame is None:
        return "none"
    digest = hashlib.sha256()
    digest.update(repr((list(map(str, frame.index)), list(map(str, frame.columns)), [str(t) for t in frame.dtypes])).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def hash_key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()


def check_key(intake: Intake, catalogue: Catalogue, previous: pd.DataFrame | None, code: str) -> str | None:
    """The cache key of `check_one`: the submission's bytes, last year's values of the
    bureau's variables (the jump check), the configuration and the code (suites included).
    None (do not cache) when nothing was received."""
    if intake.received is None:
        return None
    columns = [v.id for v in catalogue.department_variables(intake.department)]
    mine = previous.reindex(columns=columns) if previous is not None else None
    return hash_key("check", intake.department, intake.received.year, intake.received.submission_id,
                    intake.received.original_name, frame_digest(mine), catalogue.config_hash, code, intake.notices)


def values_key(values: pd.DataFrame, catalogue: Catalogue, code: str, *extra: object) -> str:
    return hash_key("values", frame_digest(values), catalogue.config_hash, code, *extra)


def facts_digests(facts: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per fact row over its content columns (not its provenance)."""
    content = facts[CONTENT_FACT_COLUMNS]
    return pd.util.hash_pandas_object(content, index=False).to_numpy()


def content_key(context: dict, fact_hashes: np.ndarray, code: str) -> str:
    """A report's content: its context without the edition keys, the figures behind it (their
    `facts_digests`, in order) and the code."""
    import json

    visible = {k: v for k, v in context.items() if k not in EDITION_KEYS}
    digest = hashlib.sha256(json.dumps(visible, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                                       default=str).encode("utf-8"))
    digest.update(repr(CONTENT_FACT_COLUMNS).encode())
    digest.update(np.ascontiguousarray(fact_hashes, dtype=np.uint64).tobytes())
    digest.update(code.encode())
    return digest.hexdigest()

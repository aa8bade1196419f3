"""A bureau's self-check without Great Expectations: the same suite, read from the same JSON, evaluated in
pandas with GX's semantics, in milliseconds instead of seconds (importing GX and making its context take
about 4 s before the first row is looked at; a bureau checking a 9-row table should not wait for that).

Only `twomountains validate` (the self-check before sending) uses it. Every table that enters an evaluation,
a correction or the portal is still checked by GX at the boundary (`gate.Gate`). A test runs both on the
sample tables and the hostile corpus and requires the same outcome for every expectation, so the self-check
says what the boundary will say. A suite with an expectation type this module does not know is handed to GX.

Semantics followed (GX 1.x, pandas engine, result_format COMPLETE):
- column map expectations (between, in_set, unique, not_null) skip missing values, except not_null, which is
  about them; the unexpected rows are listed by the frame's index;
- unique flags every row of a repeated value;
- an expectation on a column the frame lacks fails, naming no row (GX's metric error is kept per metric, so
  `Gate.run` reports it without `exception`);
- match_set with exact_match false fails when a listed column is missing (`missing`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUPPORTED = frozenset({
    "expect_column_values_to_be_between", "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set", "expect_column_values_to_be_unique",
    "expect_column_unique_value_count_to_be_between", "expect_table_columns_to_match_set",
    "expect_column_pair_values_a_to_be_greater_than_b",
})


class Unsupported(Exception):
    """The suite has an expectation this module does not evaluate."""


def supports(suite: dict) -> bool:
    return all(e["type"] in SUPPORTED for e in suite["expectations"])


def _outcome(expectation: dict, success: bool, index=(), values=(), missing=(), exception=False) -> dict:
    return {
        "type": expectation["type"],
        "kwargs": dict(expectation["kwargs"]),
        "meta": dict(expectation.get("meta") or {}),
        "severity": str(expectation.get("severity") or "critical").lower(),
        "success": bool(success),
        "index": [int(i) if isinstance(i, (int, np.integer)) else i for i in index],
        "values": list(values),
        "missing": list(missing),
        "exception": exception,
    }


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _map_result(expectation: dict, column: pd.Series, unexpected: pd.Series) -> dict:
    """A column map expectation: `unexpected` is a boolean mask over the non-null rows considered."""
    rows = unexpected[unexpected].index
    return _outcome(expectation, len(rows) == 0, index=list(rows), values=[_plain(v) for v in column.loc[rows]])


def _between(value: pd.Series, low, high, strict_low=False, strict_high=False) -> pd.Series:
    numbers = value.astype(float)
    bad = pd.Series(False, index=value.index)
    if low is not None:
        bad |= (numbers <= low) if strict_low else (numbers < low)
    if high is not None:
        bad |= (numbers >= high) if strict_high else (numbers > high)
    return bad


def evaluate(frame: pd.DataFrame, expectation: dict) -> dict:
    kind, kw = expectation["type"], expectation["kwargs"]
    if kind == "expect_table_columns_to_match_set":
        wanted = list(kw["column_set"])
        missing = [c for c in wanted if c not in frame.columns]
        extra = [c for c in frame.columns if c not in wanted]
        success = not missing and not (kw.get("exact_match", True) and extra)
        return _outcome(expectation, success, missing=missing)
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        if kw["column_A"] not in frame.columns or kw["column_B"] not in frame.columns:
            return _outcome(expectation, False)  # GX: a failure naming no row, not an exception
        a, b = frame[kw["column_A"]], frame[kw["column_B"]]
        ignore = kw.get("ignore_row_if", "both_values_are_missing")
        if ignore == "either_value_is_missing":
            considered = a.notna() & b.notna()
        elif ignore == "both_values_are_missing":
            considered = a.notna() | b.notna()
        else:
            considered = pd.Series(True, index=frame.index)
        a, b = a[considered].astype(float), b[considered].astype(float)
        good = (a >= b) if kw.get("or_equal") else (a > b)
        unexpected = ~good.fillna(False)
        rows = unexpected[unexpected].index
        return _outcome(expectation, len(rows) == 0, index=list(rows),
                        values=[(_plain(x), _plain(y)) for x, y in zip(a.loc[rows], b.loc[rows])])
    column_name = kw["column"]
    if column_name not in frame.columns:
        return _outcome(expectation, False)  # as Gate reports GX's: failed, naming no row
    column = frame[column_name]
    if kind == "expect_column_values_to_not_be_null":
        unexpected = column.isna()
        rows = unexpected[unexpected].index
        return _outcome(expectation, len(rows) == 0, index=list(rows), values=[None] * len(rows))
    present = column[column.notna()]
    if kind == "expect_column_values_to_be_between":
        try:
            bad = _between(present, kw.get("min_value"), kw.get("max_value"),
                           kw.get("strict_min", False), kw.get("strict_max", False))
        except (TypeError, ValueError):
            return _outcome(expectation, False, exception=True)
        return _map_result(expectation, present, bad)
    if kind == "expect_column_values_to_be_in_set":
        return _map_result(expectation, present, ~present.isin(list(kw["value_set"])))
    if kind == "expect_column_values_to_be_unique":
        return _map_result(expectation, present, present.duplicated(keep=False))
    if kind == "expect_column_unique_value_count_to_be_between":
        count = present.nunique()
        low, high = kw.get("min_value"), kw.get("max_value")
        return _outcome(expectation, (low is None or count >= low) and (high is None or count <= high))
    raise Unsupported(kind)


class PrecheckGate:
    """Gate.run's interface: a suite's outcomes on a frame, computed in pandas (GX for a suite it cannot do)."""

    def __init__(self):
        self.validated = 0

    def run(self, frame: pd.DataFrame, suite: dict) -> list[dict]:
        if not supports(suite):
            from evaluation.validation.gate import default_gate

            return default_gate().run(frame, suite)
        self.validated += 1
        return [evaluate(frame, expectation) for expectation in suite["expectations"]]

"""Explanations a county can check: strongest and weakest indicators, and progress on last year."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.index.scoring import ScoreResult


def strengths_weaknesses(result: ScoreResult, code: str, n: int = 3) -> tuple[list[str], list[str]]:
    """The n best and n worst scored indicators of a county (applicable, with data; ties: more points first)."""
    usable = (result.applicable.loc[code] & ~result.imputed.loc[code]).to_numpy(bool)
    ids = result.normalised.columns.to_numpy(str)[usable]
    score = result.normalised.loc[code].to_numpy(float)[usable]
    points = result.contributions.loc[code].to_numpy(float)[usable]
    by_id = np.argsort(np.argsort(ids, kind="stable"), kind="stable")  # the id's position in sorted order
    best = np.lexsort((by_id, -points, -score))[:n]  # last key sorts first
    worst = np.lexsort((by_id, points, score))[:n]
    return ids[best].tolist(), ids[worst].tolist()


def dimension_progress(current: ScoreResult, previous: ScoreResult | None) -> pd.DataFrame:
    """Change of each dimension score (and the overall score) on the previous year; NaN when unknown."""
    now = current.dimension_scores.assign(overall=current.overall)
    if previous is None:
        return now * float("nan")
    before = previous.dimension_scores.assign(overall=previous.overall)
    return now - before.reindex(index=now.index, columns=now.columns)

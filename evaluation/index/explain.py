"""Explanations a county can check: strongest and weakest indicators, and progress on last year."""

from __future__ import annotations

import pandas as pd

from evaluation.index.scoring import ScoreResult


def strengths_weaknesses(result: ScoreResult, code: str, n: int = 3) -> tuple[list[str], list[str]]:
    """The n best and n worst scored indicators of a county (applicable, with data; ties: more points first)."""
    usable = result.applicable.loc[code] & ~result.imputed.loc[code]
    table = pd.DataFrame({"score": result.normalised.loc[code], "points": result.contributions.loc[code]})[usable]
    table = table.rename_axis("id").reset_index()
    best = table.sort_values(["score", "points", "id"], ascending=[False, False, True])["id"].head(n).tolist()
    worst = table.sort_values(["score", "points", "id"], ascending=[True, True, True])["id"].head(n).tolist()
    return best, worst


def dimension_progress(current: ScoreResult, previous: ScoreResult | None) -> pd.DataFrame:
    """Change of each dimension score (and the overall score) on the previous year; NaN when unknown."""
    now = current.dimension_scores.assign(overall=current.overall)
    if previous is None:
        return now * float("nan")
    before = previous.dimension_scores.assign(overall=previous.overall)
    return now - before.reindex(index=now.index, columns=now.columns)

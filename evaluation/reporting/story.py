"""What page 1 of a scorecard says in words: how the county did, what moved it, and where the points are.

Everything here is computed from the score result and the configuration; nothing is fixed text about a
county. "Where the points are" ranks the county's applicable indicators by the points of the composite
they could still add (their weight in the county's own zone weights x the distance of their normalised
score to 100), each with the value that would earn them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

UNBOUNDED = ("zscore", "rank")  # normalisations without a top: no value earns "all the points"


@dataclass(frozen=True)
class Gain:
    """Points of the composite an indicator could still add, and the value that earns them."""

    indicator: str
    name: str
    unit: str
    value: float  # this year's value (NaN: missing, scored the floor)
    score: float  # normalised, 0-100
    points: float  # composite points still available
    target: float | None  # the value that scores 100 (None: the method has no top)
    direction: int


def points_available(result, catalogue, code: str, n: int = 5) -> list[Gain]:
    """The n indicators of `code` with the most composite points still available (at least 0.05)."""
    method = catalogue.method.normalise
    # the county's rows as dicts: one lookup per frame, not one pandas lookup per cell
    raw, normalised, applicable, weights, dim_weights = (
        result.county_row(f, code) for f in ("raw", "normalised", "applicable", "weights", "dimension_weights"))
    gains = []
    for ind in catalogue.indicators:
        if not applicable[ind.id]:
            continue
        share = float(weights[ind.id] * dim_weights[ind.dimension])
        score = float(normalised[ind.id]) if pd.notna(normalised[ind.id]) else 0.0
        points = share * max(0.0, 100.0 - score)
        if points < 0.05:
            continue
        if method == "goalposts":
            target = float(ind.goalposts[1] if ind.direction > 0 else ind.goalposts[0])
        elif method in UNBOUNDED:
            target = None
        else:  # min-max and efficacy: this year's best county scores the top
            column = result.raw[ind.id][result.applicable[ind.id].astype(bool)].dropna()
            target = (float(column.max() if ind.direction > 0 else column.min())) if not column.empty else None
        gains.append(Gain(ind.id, ind.name, ind.unit, float(raw[ind.id]), score, points, target, ind.direction))
    gains.sort(key=lambda g: (-round(g.points, 6), g.indicator))
    return gains[:n]


def next_grade(score: float, catalogue) -> tuple[str, float] | None:
    """The next grade up and the points that separate the county from it (None: the top grade)."""
    from evaluation.index.paths import next_band

    band = next_band(score, catalogue)
    return None if band is None else (band[0], band[1] - score)


def _signed(value: float) -> str:
    return f"{'提高' if value > 0 else '下降'}{abs(value):.1f}分"


def sentences(result, catalogue, code: str, year: int, progress: dict | None) -> list[str]:
    """One to three plain Chinese sentences: the result, what moved it since last year, the next grade."""
    county = catalogue.county(code)
    zone = catalogue.zone_types[county.zone].name
    score = float(result.overall[code])
    out = [f"{year}年，{county.name}综合得分{score:.1f}分，等级为“{result.grade[code]}”，在全市"
           f"{len(result.overall)}个县区中排第{int(result.rank[code])}名，在{int(result.zone_size[code])}个"
           f"{zone}县区中排第{int(result.zone_rank[code])}名。"]
    change = None if progress is None else progress.get("overall")
    if change is None or pd.isna(change):
        out.append("暂无上年评价结果，本年度不作同比。")
    elif abs(change) < 0.05:
        out.append("综合得分与上年基本持平。")
    else:
        weights = result.dimension_weights.loc[code]
        moved = [(float(progress[d.id]) * float(weights[d.id]), d) for d in catalogue.dimensions
                 if pd.notna(progress.get(d.id))]
        same_way = [m for m in moved if m[0] * change > 0]
        text = f"与上年相比，综合得分{_signed(change)}"
        if same_way:
            points, dim = max(same_way, key=lambda m: (abs(m[0]), m[1].id))
            text += f"，主要来自“{dim.name}”维度得分{_signed(float(progress[dim.id]))}（折合综合得分{points:+.1f}分）"
        out.append(text + "。")
    gap = next_grade(score, catalogue)
    if gap is None:
        out.append("已处于最高等级。")
    else:
        out.append(f"距“{gap[0]}”等级还差{gap[1]:.1f}分。")
    return out

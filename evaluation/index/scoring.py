"""The zone-aware composite index: goalposts, weights per zone type, dimensions, overall.

Pure pandas. The result keeps every stage (raw -> normalised -> dimension scores ->
overall -> grade/rank -> contributions), so a scorecard can explain each point.

Rules (NBS 2016 green development index, DESIGN.md):
- an indicator that does not apply to a county's zone type is dropped, and its
  weight is spread over its siblings in the same dimension (renormalised);
- an applicable indicator whose value is missing keeps its weight and scores the
  floor (`missing_score`), and is flagged as imputed;
- counties are ranked overall and within their zone type.

The numbers come from the step engine of `twomountains index` (index/coin.py): `IndexSpec.steps`
and `IndexSpec.meta` say the rules above as its steps (mask, normalise, impute, weight by zone,
aggregate) and iMeta, and `score` keeps the run's steps and build log with its result, so a
version's manifest can hold everything needed to compute its index again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.index import coin as engine
from evaluation.index import methods

RANK_DECIMALS = 9  # scores equal to this many decimals tie
TOP = "composite"  # the composite's code in the engine's tree (dimensions are its children)
ZONE = "zone"  # the units' group column the zone rules are keyed on
FIXED_FLOOR = {"minmax": 0.0, "efficacy": 60.0}  # the worst possible normalised score, where it is fixed


@dataclass(frozen=True)
class IndexSpec:
    """Everything the scoring needs, as plain tables (so tests can build one by hand).

    indicators: index = indicator id; columns dimension, direction (+1/-1), low, high, weight
    applicable: index = zone type, columns = indicator ids, bool
    dimension_weights: index = zone type, columns = dimension ids, summing to 1 per row
    """

    indicators: pd.DataFrame
    applicable: pd.DataFrame
    dimension_weights: pd.DataFrame
    missing_score: float = 0.0
    grades: tuple[tuple[str, float], ...] = (("优秀", 75.0), ("良好", 60.0), ("合格", 45.0), ("待提升", 0.0))
    normalise: str = "goalposts"
    aggregate: str = "arithmetic_mean"

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> "IndexSpec":
        ind = pd.DataFrame(
            [
                {"id": i.id, "dimension": i.dimension, "direction": i.direction,
                 "low": i.goalposts[0], "high": i.goalposts[1], "weight": i.weight}
                for i in catalogue.indicators
            ]
        ).set_index("id")
        zones = list(catalogue.zone_types)
        applicable = pd.DataFrame(
            [[catalogue.applies(i, z) for i in catalogue.indicators] for z in zones],
            index=zones, columns=ind.index,
        )
        dims = [d.id for d in catalogue.dimensions]
        weights = pd.DataFrame([[catalogue.zone_weights(z)[d] for d in dims] for z in zones], index=zones, columns=dims)
        return cls(ind, applicable, weights, catalogue.missing_score, tuple((g.name, g.min) for g in catalogue.grades),
                   catalogue.method.normalise, catalogue.method.aggregate)

    def with_methods(self, normalise: str, aggregate: str) -> "IndexSpec":
        return IndexSpec(self.indicators, self.applicable, self.dimension_weights, self.missing_score, self.grades,
                         normalise, aggregate)

    def meta(self) -> pd.DataFrame:
        """The engine's iMeta: indicators (level 1) under dimensions (level 2) under the index (level 3)."""
        if "_meta" not in self.__dict__:  # made once per spec (a Monte Carlo run scores hundreds of times)
            self.__dict__["_meta"] = self._make_meta()
        return self.__dict__["_meta"].copy()

    def _make_meta(self) -> pd.DataFrame:
        ind = self.indicators
        rows = [{"iCode": code, "Level": 1, "Parent": row["dimension"], "Direction": float(row["direction"]),
                 "Weight": float(row["weight"]), "Type": "Indicator", "GoalLow": float(row["low"]),
                 "GoalHigh": float(row["high"])} for code, row in ind.iterrows()]
        rows += [{"iCode": dim, "Level": 2, "Parent": TOP, "Direction": 1.0, "Weight": 1.0, "Type": "Aggregate"}
                 for dim in self.dimension_weights.columns]
        rows.append({"iCode": TOP, "Level": 3, "Parent": None, "Direction": 1.0, "Weight": 1.0, "Type": "Aggregate"})
        return pd.DataFrame(rows, columns=["iCode", "Level", "Parent", "Direction", "Weight", "Type", "GoalLow",
                                           "GoalHigh"])

    def steps(self, *, until: str = "aggregate") -> list[dict]:
        """The zone rules as the engine's steps (plain data: they go into the manifest as they are)."""
        applies = {str(z): [c for c in self.applicable.columns if bool(self.applicable.loc[z, c])]
                   for z in self.applicable.index}
        if self.normalise == "goalposts":
            floor = {"method": "floor", "value": float(self.missing_score)}
        elif self.normalise in FIXED_FLOOR:
            floor = {"method": "floor", "value": FIXED_FLOOR[self.normalise]}
        else:
            floor = {"method": "column_min"}
        weights = {str(z): {d: float(w) for d, w in row.items()} for z, row in self.dimension_weights.iterrows()}
        steps = [{"mask": {"group": ZONE, "applies": applies}}, {"normalise": {"method": self.normalise}},
                 {"impute": floor}, {"weight": {"method": "by_group", "group": ZONE, "weights": weights}},
                 {"aggregate": {"method": self.aggregate}}]
        names = [next(iter(step)) for step in steps]
        return steps[: names.index(until) + 1]

    def coin(self, raw: pd.DataFrame, zones: pd.Series) -> engine.Coin:
        """The engine's tables for these counties: iData (indicators and each county's zone) and iMeta."""
        data = raw.reindex(columns=self.indicators.index).astype("float64")
        data.insert(0, ZONE, zones.reindex(raw.index).astype(str))
        return engine.load_coin(data.rename_axis("uCode").reset_index(), self.meta())


class RowCache:
    """Mixin for result objects that planning reads county by county: `_cached_rows(name, build)` keeps what
    `build()` returns (a frame turned into dicts, say) on the object, built once; the caches are never pickled,
    so a persisted or travelling result stays small and rebuilds them where needed."""

    def _cached_rows(self, name: str, build):
        key = "_rows_" + name
        rows = self.__dict__.get(key)
        if rows is None:
            rows = self.__dict__[key] = build()  # through __dict__: frozen dataclasses use this too
        return rows

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_rows_")}


@dataclass
class ScoreResult(RowCache):
    """Every stage of the index for one year; all frames are indexed by county code, sorted."""

    zones: pd.Series  # county -> zone type
    raw: pd.DataFrame  # county x indicator: value (NaN = missing or not applicable)
    applicable: pd.DataFrame  # bool
    imputed: pd.DataFrame  # bool: applicable but missing -> scored the floor
    normalised: pd.DataFrame  # 0..100, NaN where not applicable
    weights: pd.DataFrame  # effective weight within its dimension (0 where not applicable)
    dimension_scores: pd.DataFrame  # county x dimension, 0..100
    dimension_weights: pd.DataFrame  # county x dimension
    contributions: pd.DataFrame  # county x indicator: points added to the overall score
    overall: pd.Series
    grade: pd.Series
    rank: pd.Series
    zone_rank: pd.Series
    zone_size: pd.Series
    steps: list = field(default_factory=list)  # the engine's steps that made it (IndexSpec.steps)
    log: list = field(default_factory=list)  # the engine's build log
    meta: pd.DataFrame | None = None  # the engine's iMeta (IndexSpec.meta)

    def summary(self) -> pd.DataFrame:
        table = pd.DataFrame({
            "zone": self.zones, "overall": self.overall, "grade": self.grade,
            "rank": self.rank, "zone_rank": self.zone_rank, "zone_size": self.zone_size,
        })
        table = table.join(self.dimension_scores)
        return table.sort_values(["rank", "zone"]).rename_axis("county_code")

    def engine_record(self) -> dict:
        """Everything the engine took and said, as plain JSON data (kept in each version's manifest):
        `twomountains index --manifest` computes the same composite from it."""
        data = self.raw.astype(object).where(self.raw.notna(), None)
        data.insert(0, ZONE, self.zones.astype(str))
        meta = self.meta.astype(object).where(self.meta.notna(), None) if self.meta is not None else pd.DataFrame()
        return {"iData": data.rename_axis("uCode").reset_index().to_dict(orient="records"),
                "iMeta": meta.to_dict(orient="records"), "steps": self.steps, "log": self.log, "composite": TOP}

    def county_row(self, frame: str, code: str) -> dict:
        """One county's row of a frame ("raw", "normalised", ...) as a dict. Each frame is turned into dicts once:
        planning 2,844 scorecards looked rows up with pandas about 30,000 times (some seconds)."""
        return self._cached_rows(frame, lambda: getattr(self, frame).to_dict("index"))[code]

    def zone_means(self) -> pd.DataFrame:
        """Mean dimension scores per zone type (for "county vs its zone" charts; computed once)."""
        if "_zone_means" not in self.__dict__:
            self.__dict__["_zone_means"] = self.dimension_scores.groupby(self.zones).mean()
        return self.__dict__["_zone_means"]


def goalpost_normalise(raw: pd.DataFrame, low: pd.Series, high: pd.Series, direction: pd.Series) -> pd.DataFrame:
    """Map values onto 0..100 between fixed goalposts; negative indicators are reversed."""
    return methods.n_goalposts(raw, direction, low=low, high=high)


def normalise_scores(raw: pd.DataFrame, zones: pd.Series, spec: IndexSpec) -> pd.DataFrame:
    """Normalise with the spec's method over applicable values; a missing applicable value gets the
    floor (the engine's mask, normalise and impute steps). NaN where an indicator does not apply."""
    raw = raw.sort_index()
    stages = engine.run_stages(spec.coin(raw, zones), spec.steps(until="impute")).stages
    return stages["impute"].reindex(columns=spec.indicators.index)


def compute_raw(values: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Indicator values from reported variables (county x variable -> county x indicator)."""
    out = {}
    for ind in catalogue.indicators:
        if ind.var:
            col = values[ind.var] if ind.var in values else pd.Series(np.nan, index=values.index)
        else:
            num, den = ind.ratio  # type: ignore[misc]
            n = values[num] if num in values else pd.Series(np.nan, index=values.index)
            d = values[den] if den in values else pd.Series(np.nan, index=values.index)
            col = n / d.where(d != 0) * ind.factor
        out[ind.id] = col.astype("float64")
    return pd.DataFrame(out, index=values.index).replace([np.inf, -np.inf], np.nan)


def rank_desc(scores: pd.Series) -> pd.Series:
    return scores.round(RANK_DECIMALS).rank(ascending=False, method="min").astype("Int64")


def score(raw: pd.DataFrame, zones: pd.Series, spec: IndexSpec) -> ScoreResult:
    """Score counties. `raw`: county x indicator; `zones`: county -> zone type."""
    raw = raw.sort_index()
    zones = zones.reindex(raw.index)
    if zones.isna().any():
        missing = ", ".join(map(str, raw.index[zones.isna()]))
        raise ValueError(f"no zone type for counties: {missing}")
    unknown = sorted(set(zones) - set(spec.applicable.index))
    if unknown:
        raise ValueError(f"unknown zone types: {unknown}")
    ind = spec.indicators
    raw = raw.reindex(columns=ind.index)

    steps = spec.steps()
    built = engine.run_stages(spec.coin(raw, zones), steps)  # the ranking is done here, with ties and zones
    applicable = built.applicable.reindex(index=raw.index, columns=ind.index).astype(bool)
    imputed = applicable & raw.isna()
    normalised = built.stages["impute"].reindex(index=raw.index, columns=ind.index)
    dims = list(spec.dimension_weights.columns)
    aggregated = built.stages["aggregate"].reindex(raw.index)
    dim_scores = aggregated[dims].astype("float64")
    overall = aggregated[TOP].astype("float64").fillna(0.0)

    # The weights each point carried (for the scorecard's explanation): within its dimension, and the
    # dimension's within the composite, renormalised over what applies, as the engine aggregated them.
    base = pd.DataFrame(np.broadcast_to(ind["weight"].to_numpy(), raw.shape), index=raw.index, columns=ind.index)
    base = base.where(applicable, 0.0)
    dim_of = ind["dimension"]
    weights = pd.DataFrame(0.0, index=raw.index, columns=ind.index)
    for dim in dims:
        cols = dim_of.index[dim_of == dim]
        block = base[cols]
        weights[cols] = block.div(block.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    dim_weights = built.unit_weights.reindex(index=raw.index, columns=dims)  # the zone type's, per county
    # a dimension with no applicable indicator for a zone carries no weight there
    dim_weights = dim_weights.where(dim_scores.notna(), 0.0)
    dim_weights = dim_weights.div(dim_weights.sum(axis=1).replace(0, np.nan), axis=0)

    dim_weight_per_ind = dim_weights[dim_of.to_numpy()].set_axis(ind.index, axis=1)
    linear = (normalised.fillna(0.0) * weights * dim_weight_per_ind).where(applicable)
    if spec.aggregate == "arithmetic_mean":
        contributions = linear
    else:  # share the (non-additive) score out in proportion to the linear terms
        contributions = linear.mul(overall / linear.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0).where(applicable)

    grade = overall.map(lambda s: _grade(s, spec.grades))
    rank = rank_desc(overall)
    zone_rank = overall.groupby(zones).transform(rank_desc).astype("Int64")
    zone_size = zones.map(zones.value_counts()).astype("Int64")
    return ScoreResult(
        zones=zones, raw=raw, applicable=applicable, imputed=imputed, normalised=normalised,
        weights=weights, dimension_scores=dim_scores, dimension_weights=dim_weights,
        contributions=contributions, overall=overall, grade=grade, rank=rank, zone_rank=zone_rank,
        zone_size=zone_size, steps=steps, log=list(built.log), meta=spec.meta(),
    )


def _grade(value: float, bands: tuple[tuple[str, float], ...]) -> str:
    for name, minimum in bands:
        if value >= minimum:
            return name
    return bands[-1][0]


def score_catalogue(values: pd.DataFrame, catalogue: Catalogue) -> ScoreResult:
    """Score every configured county from its reported variables (county x variable)."""
    codes = [c.code for c in catalogue.counties]
    values = values.reindex(sorted(codes))
    zones = pd.Series({c.code: c.zone for c in catalogue.counties})
    return score(compute_raw(values, catalogue), zones, IndexSpec.from_catalogue(catalogue))

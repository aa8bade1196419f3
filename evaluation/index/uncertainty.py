"""How stable is each rank? A seeded Monte Carlo over the index's methodological choices.

Each draw perturbs every indicator weight and every zone type's dimension weights by a
uniform factor in [1 - p, 1 + p] (then renormalised where weights are renormalised
anyway), and picks the normalisation and the aggregation from the configured
alternatives. The zone rules (applicability, the floor for missing values) hold in
every draw. Output per county: median rank and 5-95 % interval, overall and within
its zone type, and the same for the score.

Vectorised: the normalised matrices are computed once per method; a draw is a few
matrix products, so thousands of counties and draws take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from evaluation.catalogue import Uncertainty
from evaluation.index.scoring import IndexSpec, normalise_scores

_TINY = 1e-12


def rank_desc(values: np.ndarray) -> np.ndarray:
    """Competition ranks ("1224") of each row, largest first: scipy's rankdata(-values, axis=1, method="min")
    in plain numpy (scipy.stats costs every process that imports the engine about a second)."""
    values = np.asarray(values)
    order = np.argsort(-values, axis=1)  # tied values get the same rank whatever their order
    ordered = np.take_along_axis(values, order, axis=1)
    columns = np.arange(values.shape[1])
    new = np.ones(ordered.shape, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(new, columns, 0), axis=1)  # where each tie group starts
    ranks = np.empty(values.shape, dtype=np.int64)
    np.put_along_axis(ranks, order, first + 1, axis=1)
    return ranks


def dimension_scores(x: np.ndarray, cell_w: np.ndarray, onehot: np.ndarray, geometric: bool) -> np.ndarray:
    """n x D dimension scores from n x k normalised scores (NaN: skipped, its weight spread), n x k cell weights
    (0 where an indicator does not apply) and the k x D indicator-to-dimension matrix; NaN where nothing applies."""
    present = ~np.isnan(x)
    cell_w = cell_w * present
    den = cell_w @ onehot
    filled = np.nan_to_num(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        if geometric:
            zero = ((filled <= 0) & (cell_w > 0)) @ onehot > 0
            out = np.exp((np.log(np.maximum(filled, _TINY)) * cell_w) @ onehot / den)
            out[zero] = 0.0
        else:
            out = (filled * cell_w) @ onehot / den
    out[den == 0] = np.nan
    return out


def composite(dim_scores: np.ndarray, dim_w: np.ndarray, geometric: bool) -> np.ndarray:
    """The composite of (..., n, D) dimension scores with (..., n, D) weights (renormalised over the dimensions
    that have a score), by the arithmetic or geometric mean."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dw = dim_w * ~np.isnan(dim_scores)
        dw = dw / dw.sum(axis=-1, keepdims=True)
        s = np.nan_to_num(dim_scores)
        if geometric:
            overall = np.exp((np.log(np.maximum(s, _TINY)) * dw).sum(axis=-1))
            overall[((s <= 0) & (dw > 0)).any(axis=-1)] = 0.0
        else:
            overall = (s * dw).sum(axis=-1)
    return overall


def monte_carlo(raw: pd.DataFrame, zones: pd.Series, spec: IndexSpec, config: Uncertainty) -> pd.DataFrame:
    raw = raw.sort_index().reindex(columns=spec.indicators.index)
    zones = zones.reindex(raw.index)
    ind = spec.indicators
    applicable = spec.applicable.loc[zones.values].set_axis(raw.index).astype(bool)
    dims = list(spec.dimension_weights.columns)
    onehot = np.stack([(ind["dimension"] == d).to_numpy(dtype=float) for d in dims], axis=1)  # k x D
    mask = applicable.to_numpy(dtype=float)  # n x k
    normalised = {
        m: normalise_scores(raw, zones, spec.with_methods(m, spec.aggregate)).to_numpy(dtype=float)
        for m in config.normalise_alternatives
    }
    zone_ids = list(spec.dimension_weights.index)
    zone_index = np.array([zone_ids.index(z) for z in zones])
    base_w = ind["weight"].to_numpy(dtype=float)
    base_dim = spec.dimension_weights.to_numpy(dtype=float)  # Z x D
    p = config.weight_perturbation
    rng = np.random.default_rng(config.seed)
    n, draws = len(raw), config.draws
    scores = np.empty((draws, n))
    for t in range(draws):
        x = normalised[config.normalise_alternatives[rng.integers(len(config.normalise_alternatives))]]
        geometric = config.aggregate_alternatives[rng.integers(len(config.aggregate_alternatives))] == "geometric_mean"
        w = base_w * rng.uniform(1 - p, 1 + p, size=base_w.shape)
        dim_w = base_dim * rng.uniform(1 - p, 1 + p, size=base_dim.shape)
        dim_scores = dimension_scores(x, mask * w, onehot, geometric)
        overall = composite(dim_scores, dim_w[zone_index], geometric)
        scores[t] = overall
    ranks = rank_desc(np.round(scores, 9))
    zone_ranks = np.empty_like(ranks)
    for z in np.unique(zone_index):
        members = zone_index == z
        zone_ranks[:, members] = rank_desc(np.round(scores[:, members], 9))
    q = [5, 50, 95]
    r, zr, sc = (np.percentile(a, q, axis=0, method="nearest") for a in (ranks, zone_ranks, scores))
    return pd.DataFrame({
        "rank_p05": r[0].astype(int), "rank_median": r[1].astype(int), "rank_p95": r[2].astype(int),
        "zone_rank_p05": zr[0].astype(int), "zone_rank_median": zr[1].astype(int), "zone_rank_p95": zr[2].astype(int),
        "score_p05": sc[0], "score_median": sc[1], "score_p95": sc[2],
    }, index=raw.index)

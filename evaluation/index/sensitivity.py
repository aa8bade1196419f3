"""Variance-based sensitivity analysis (COINr's `get_sensitivity`, the Handbook's step 7): first-order and
total Sobol indices of a model output with respect to each uncertain input, with SALib (Saltelli's
sampling on a Sobol sequence, Jansen/Saltelli estimators). Seeded and reproducible.

`sobol(model, names, samples, seed)` runs `model` on an (n, D) array of inputs in [0, 1) (vectorised: one
call for every run) and returns the indices per input. The estimator is trusted on the index only because
it reproduces the Ishigami function's analytic indices (tests/test_audit.py).

`index_sobol` applies it to the index: the uncertain inputs are each zone type's dimension weights (a group of
inputs: each weight times a uniform factor in [1 - p, 1 + p], then renormalised), the normalisation, the
aggregation and the missing-value rule (each an input in [0, 1) mapped onto its configured alternatives). The
outputs are every county's rank and the Spearman correlation of each run's ranking with the nominal one. SALib
samples and analyses the correlation; the indices of thousands of county ranks use the same estimators as SALib
(Saltelli 2010 first-order, Jansen total, on the output standardised as SALib does), vectorised over counties
(`estimate`), and are checked against SALib's column by column in tests/test_sensitivity_paths.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd


@dataclass
class Indices:
    """Sobol indices per input: first-order (S1) and total (ST), with SALib's 95 % bootstrap half-widths."""

    table: pd.DataFrame  # index = input name; columns S1, S1_conf, ST, ST_conf
    runs: int

    def driver(self) -> str:
        """The input with the largest total index (the choice that drives the output most)."""
        return str(self.table["ST"].idxmax())


def sobol(model: Callable[[np.ndarray], np.ndarray], names: list[str], samples: int, seed: int,
          bounds: list[tuple[float, float]] | None = None) -> Indices:
    """Sobol indices of `model` (inputs uniform on `bounds`, default [0, 1] each; `samples` a power of two)."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = {"num_vars": len(names), "names": list(names),
               "bounds": [list(b) for b in (bounds or [(0.0, 1.0)] * len(names))]}
    inputs = sample.sample(problem, samples, calc_second_order=False, seed=seed)
    outputs = np.asarray(model(inputs), dtype="float64")
    if outputs.shape != (len(inputs),):
        raise ValueError(f"the model gave {outputs.shape} outputs for {len(inputs)} runs")
    found = analyze.analyze(problem, outputs, calc_second_order=False, seed=seed, print_to_console=False)
    table = pd.DataFrame({"S1": found["S1"], "S1_conf": found["S1_conf"], "ST": found["ST"],
                          "ST_conf": found["ST_conf"]}, index=pd.Index(names, name="input"))
    return Indices(table, len(inputs))


def estimate(outputs: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """First-order and total indices of each column of `outputs` ((N * (groups + 2)) x m, in SALib's Saltelli
    order without second order): two (groups x m) arrays, NaN for a column that never varies."""
    y = np.asarray(outputs, dtype="float64")
    if y.ndim == 1:
        y = y[:, None]
    step = groups + 2
    with np.errstate(divide="ignore", invalid="ignore"):
        y = (y - y.mean(axis=0)) / y.std(axis=0)
        a, b = y[0::step], y[step - 1::step]
        variance = np.var(np.r_[a, b], axis=0)
        first = np.empty((groups, y.shape[1]))
        total = np.empty((groups, y.shape[1]))
        for j in range(groups):
            ab = y[j + 1::step]
            first[j] = np.mean(b * (ab - a), axis=0) / variance
            total[j] = 0.5 * np.mean((a - ab) ** 2, axis=0) / variance
    return first, total


@dataclass
class IndexSensitivity:
    """Sobol indices of the index's outputs with respect to its uncertain inputs."""

    inputs: list[str]  # the inputs (groups), in order
    labels: dict[str, str]  # input -> its Chinese name
    correlation: pd.DataFrame  # inputs x S1, S1_conf, ST, ST_conf: of the Spearman rho with the nominal ranking
    first: pd.DataFrame  # county x input: S1 of its rank (NaN: its rank never changes)
    total: pd.DataFrame  # county x input: ST of its rank
    runs: int
    rank_range: pd.DataFrame  # county -> rank_min, rank_max over the runs

    def mean_total(self) -> pd.Series:
        """Each input's total index averaged over the counties whose rank moves."""
        return self.total.mean(axis=0, skipna=True).reindex(self.inputs)

    def driver(self) -> str:
        """The input that drives the ranking most (largest total index of the rank correlation)."""
        return str(self.correlation["ST"].idxmax())

    def county_driver(self) -> pd.Series:
        """county -> the input with the largest total index of its rank ("" when its rank never moves)."""
        moving = self.total.notna().any(axis=1)
        out = pd.Series("", index=self.total.index, dtype=object)
        out[moving] = self.total[moving].fillna(-1.0).idxmax(axis=1)
        return out


def index_sobol(raw: pd.DataFrame, zones: pd.Series, spec, uncertainty, sensitivity,
                zone_names: dict[str, str] | None = None) -> IndexSensitivity:
    """Sobol indices of each county's rank and of the rank correlation (see the module's docstring).

    raw: county x indicator; spec: the IndexSpec; uncertainty / sensitivity: the method's settings (the weight
    perturbation and the normalisation and aggregation alternatives come from `uncertainty`)."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    from evaluation.index.scoring import FIXED_FLOOR, engine
    from evaluation.index.uncertainty import composite, dimension_scores, rank_desc

    raw = raw.sort_index().reindex(columns=spec.indicators.index)
    zones = zones.reindex(raw.index)
    zone_ids = list(spec.dimension_weights.index)
    present_zones = [z for z in zone_ids if (zones == z).any()]
    dims = list(spec.dimension_weights.columns)
    ind = spec.indicators
    onehot = np.stack([(ind["dimension"] == d).to_numpy(dtype=float) for d in dims], axis=1)
    cell_w = spec.applicable.loc[zones.values].to_numpy(dtype=float) * ind["weight"].to_numpy(dtype=float)
    zone_index = np.array([zone_ids.index(z) for z in zones])
    norms = list(uncertainty.normalise_alternatives)
    aggs = list(uncertainty.aggregate_alternatives)
    rules = list(sensitivity.missing_alternatives)
    # normalised scores per normalisation and missing-value rule (NaN where an indicator does not apply)
    matrices = {}
    applicable = spec.applicable.loc[zones.values].to_numpy(dtype=bool)
    for m in norms:
        method_spec = spec.with_methods(m, spec.aggregate)
        built = engine.run_stages(method_spec.coin(raw, zones), method_spec.steps(until="impute"))
        plain = built.stages["normalise"].reindex(index=raw.index, columns=ind.index).to_numpy(dtype=float)
        plain[~applicable] = np.nan
        floored = built.stages["impute"].reindex(index=raw.index, columns=ind.index).to_numpy(dtype=float)
        gaps = np.isnan(plain) & applicable
        for rule in rules:
            if rule == "floor":
                x = floored
            elif rule == "skip":
                x = plain
            else:  # the mean of the counties of the same zone type that report it
                x = plain.copy()
                for z in np.unique(zone_index):
                    rows = zone_index == z
                    members = plain[rows]
                    counts = (~np.isnan(members)).sum(axis=0)
                    means = np.where(counts > 0, np.nansum(members, axis=0) / np.maximum(counts, 1), np.nan)
                    fill = np.where(np.isnan(means), FIXED_FLOOR.get(m, spec.missing_score), means)
                    x[rows] = np.where(gaps[rows], fill, x[rows])
            matrices[(m, rule)] = x
    base_dim = spec.dimension_weights.to_numpy(dtype=float)
    p = uncertainty.weight_perturbation
    names, group_of, labels = [], [], {}
    for z in present_zones:
        for d in dims:
            names.append(f"w.{z}.{d}")
            group_of.append(f"weights.{z}")
        labels[f"weights.{z}"] = f"{(zone_names or {}).get(z, z)}的维度权重"
    for key, label, options in (("normalise", "标准化方法", norms), ("aggregate", "加总方法", aggs),
                                ("missing", "缺失值规则", rules)):
        names.append(key)
        group_of.append(key)
        labels[key] = label
    problem = {"num_vars": len(names), "names": names, "groups": group_of, "bounds": [[0.0, 1.0]] * len(names)}
    inputs = list(dict.fromkeys(group_of))
    x = sample.sample(problem, sensitivity.samples, calc_second_order=False, seed=sensitivity.seed)
    runs = len(x)
    nz = len(present_zones)
    factors = np.ones((runs,) + base_dim.shape)
    factors[:, [zone_ids.index(z) for z in present_zones], :] = (1 - p + 2 * p * x[:, : nz * len(dims)]).reshape(
        runs, nz, len(dims))
    pick = lambda u, options: np.minimum((u * len(options)).astype(int), len(options) - 1)  # noqa: E731
    choice = np.stack([pick(x[:, -3], norms), pick(x[:, -2], aggs), pick(x[:, -1], rules)], axis=1)
    scores = np.empty((runs, len(raw)))
    weights = base_dim[None] * factors  # runs x zones x dims
    for combo in np.unique(choice, axis=0):
        rows = np.flatnonzero((choice == combo).all(axis=1))
        geometric = aggs[combo[1]] == "geometric_mean"
        dim_scores = dimension_scores(matrices[(norms[combo[0]], rules[combo[2]])], cell_w, onehot, geometric)
        scores[np.ix_(rows, np.arange(len(raw)))] = _composites(dim_scores, weights[rows], zone_index, geometric).T
    ranks = rank_desc(np.round(scores, 9)).astype("float64")
    nominal = rank_desc(np.round(composite(dimension_scores(matrices[(norms[0], rules[0])], cell_w, onehot,
                                                                      aggs[0] == "geometric_mean"),
                                           base_dim[zone_index], aggs[0] == "geometric_mean")[None], 9))[0]
    rho = _spearman(ranks, nominal.astype("float64"))
    found = analyze.analyze(problem, rho, calc_second_order=False, seed=sensitivity.seed, print_to_console=False)
    correlation = pd.DataFrame({"S1": found["S1"], "S1_conf": found["S1_conf"], "ST": found["ST"],
                                "ST_conf": found["ST_conf"]}, index=pd.Index(inputs, name="input"))
    first, total = estimate(ranks, len(inputs))
    frame = lambda a: pd.DataFrame(a.T, index=raw.index, columns=inputs)  # noqa: E731
    rank_range = pd.DataFrame({"rank_min": ranks.min(axis=0).astype(int), "rank_max": ranks.max(axis=0).astype(int)},
                              index=raw.index)
    return IndexSensitivity(inputs, labels, correlation, frame(first), frame(total), runs, rank_range)


def _composites(dim_scores: np.ndarray, weights: np.ndarray, zone_index: np.ndarray, geometric: bool) -> np.ndarray:
    """n x runs composites of fixed n x D dimension scores under runs x zones x D weights: per zone type one
    matrix product (the weights renormalised over each county's scored dimensions, as `composite` does)."""
    valid = ~np.isnan(dim_scores)
    s = np.nan_to_num(dim_scores)
    out = np.empty((len(s), len(weights)))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log(np.maximum(s, 1e-12)) if geometric else s
        for z in np.unique(zone_index):
            rows = zone_index == z
            w = weights[:, z, :].T  # D x runs
            total = valid[rows].astype(float) @ w
            mean = (values[rows] * valid[rows]) @ w / total
            out[rows] = np.exp(mean) if geometric else mean
        if geometric:
            out[((s <= 0) & valid).any(axis=1)] = 0.0
    return out


def _spearman(ranks: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of `ranks` with `nominal` (ranks in, so Spearman's rho; ties as ranked)."""
    a = ranks - ranks.mean(axis=1, keepdims=True)
    b = nominal - nominal.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (a @ b) / np.sqrt((a * a).sum(axis=1) * (b @ b))
    return np.nan_to_num(rho, nan=1.0)


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """The Ishigami function on inputs in [-pi, pi]^3 (the usual test of a sensitivity estimator)."""
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_analytic(a: float = 7.0, b: float = 0.1) -> pd.DataFrame:
    """Its analytic first-order and total indices (Ishigami and Homma 1990; Sobol' 2001)."""
    v1 = 0.5 * (1 + b * np.pi ** 4 / 5) ** 2
    v2 = a ** 2 / 8
    v13 = b ** 2 * np.pi ** 8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    return pd.DataFrame({"S1": [v1 / total, v2 / total, 0.0], "ST": [(v1 + v13) / total, v2 / total, v13 / total]},
                        index=pd.Index(["x1", "x2", "x3"], name="input"))

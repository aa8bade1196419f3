"""Composite-indicator methods, each chosen by name (COINr / OECD-JRC Handbook / NBS 2016).

All functions are pure numpy/pandas. Frames are units (rows) x indicators (columns);
NaN means missing and stays missing unless a step says otherwise.

Names follow COINr where a COINr method exists (docs/coinr-notes.md records the exact
semantics this module reproduces):

- treat:      skew_kurt_winsorise (COINr Treat() default: winsorise, then log_CT)
- normalise:  goalposts, minmax, zscore, efficacy (NBS 60-100), rank, dist_to_target (COINr n_dist2targ)
- weight:     equal, ahp (with consistency ratio), entropy, critic (Diakoulaki et al. 1995), pca (first component)
- aggregate:  arithmetic_mean, geometric_mean, harmonic_mean, generalised_mean (power mean, parameter p)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class MethodError(ValueError):
    """A method was asked for something it cannot do; the message says what (Chinese + English)."""


# -- statistics (COINr skew()/kurt(): bias-adjusted sample G1 and excess G2) ------------


def skew(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 3:
        return math.nan
    d = x - x.mean()
    m2 = (d**2).sum()
    if m2 == 0:
        return 0.0
    g1 = math.sqrt(n) * (d**3).sum() / m2**1.5
    return g1 * math.sqrt(n * (n - 1)) / (n - 2)


def kurt(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 4:
        return math.nan
    d = x - x.mean()
    m2 = (d**2).sum()
    if m2 == 0:
        return 0.0
    r = n * (d**4).sum() / m2**2
    return ((n + 1) * (r - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))


def passes_skew_kurt(x: np.ndarray, skew_max: float = 2.0, kurt_max: float = 3.5) -> bool | None:
    """COINr check_SkewKurt: acceptable when |skew| < skew_max OR kurtosis < kurt_max. None if undefined."""
    s, k = skew(x), kurt(x)
    if math.isnan(s) or math.isnan(k):
        return None
    return bool(abs(s) < skew_max or k < kurt_max)


# -- treatment ------------------------------------------------------------------------


@dataclass
class Treatment:
    """What happened to one indicator."""

    method: str  # "none", "winsorised", "log_ct", "untreatable"
    winsorised: list[int] = field(default_factory=list)  # positions capped (last step per side)
    skew_before: float = math.nan
    kurt_before: float = math.nan
    skew_after: float = math.nan
    kurt_after: float = math.nan


def winsorise(x: np.ndarray, winmax: int = 5, skew_max: float = 2.0, kurt_max: float = 3.5) -> tuple[np.ndarray, list[int]]:
    """Cap the most extreme value(s) towards the next one in, on the side the skew points to,
    re-checking after each step, until the column passes or `winmax` points sit capped."""
    x = np.asarray(x, dtype=float).copy()
    imax: np.ndarray = np.array([], dtype=int)
    imin: np.ndarray = np.array([], dtype=int)
    nwin = 0
    ok = passes_skew_kurt(x, skew_max, kurt_max)
    while ok is False and nwin < winmax:
        valid = ~np.isnan(x)
        if skew(x) >= 0:
            top = np.nanmax(x)
            imax = np.flatnonzero(valid & (x == top))
            rest = x[valid & (x != top)]
            if rest.size == 0:
                break
            x[imax] = rest.max()
        else:
            bottom = np.nanmin(x)
            imin = np.flatnonzero(valid & (x == bottom))
            rest = x[valid & (x != bottom)]
            if rest.size == 0:
                break
            x[imin] = rest.min()
        nwin = imax.size + imin.size
        ok = passes_skew_kurt(x, skew_max, kurt_max)
    return x, sorted(set(imax.tolist()) | set(imin.tolist()))


def log_ct(x: np.ndarray) -> np.ndarray:
    """COINr log_CT: ln(x - min + 0.01 * range), on every value."""
    x = np.asarray(x, dtype=float)
    lo, hi = np.nanmin(x), np.nanmax(x)
    return np.log(x - lo + 0.01 * (hi - lo))


def treat_column(x: np.ndarray, winmax: int = 5, skew_max: float = 2.0, kurt_max: float = 3.5) -> tuple[np.ndarray, Treatment]:
    """COINr Treat() default for one indicator: pass -> unchanged; else winsorise; else log_CT of the original."""
    x = np.asarray(x, dtype=float)
    before = Treatment("none", skew_before=skew(x), kurt_before=kurt(x))
    ok = passes_skew_kurt(x, skew_max, kurt_max)
    if ok is None:
        before.method = "untreatable"
        return x, before
    if ok:
        before.skew_after, before.kurt_after = before.skew_before, before.kurt_before
        return x, before
    capped, positions = winsorise(x, winmax, skew_max, kurt_max)
    if passes_skew_kurt(capped, skew_max, kurt_max):
        before.method, before.winsorised = "winsorised", positions
        before.skew_after, before.kurt_after = skew(capped), kurt(capped)
        return capped, before
    logged = log_ct(x)
    before.method = "log_ct"
    before.skew_after, before.kurt_after = skew(logged), kurt(logged)
    return logged, before


def treat(frame: pd.DataFrame, winmax: int = 5, skew: float = 2.0, kurt: float = 3.5,
          fallback: str = "log_ct") -> tuple[pd.DataFrame, dict[str, Treatment]]:
    if fallback.lower().replace("_", "") not in ("logct",):
        raise MethodError(f"不支持的处理方法 / unsupported treatment fallback: {fallback}")
    out = frame.copy()
    log: dict[str, Treatment] = {}
    for col in frame.columns:
        values, record = treat_column(frame[col].to_numpy(dtype=float), winmax, skew, kurt)
        out[col] = values
        log[col] = record
    return out, log


# -- normalisation ----------------------------------------------------------------------


def _directed(frame: pd.DataFrame, direction: pd.Series) -> pd.DataFrame:
    return frame.mul(direction.reindex(frame.columns).fillna(1).to_numpy(), axis=1)


def n_minmax(frame: pd.DataFrame, direction: pd.Series, range: tuple[float, float] = (0, 100), **_) -> pd.DataFrame:
    """COINr n_minmax: multiply by direction, then scale each column onto [l, u] over the units."""
    x = _directed(frame, direction)
    lo, hi = x.min(), x.max()
    span = (hi - lo).replace(0, np.nan)
    l, u = range
    return (x - lo) / span * (u - l) + l


def n_efficacy(frame: pd.DataFrame, direction: pd.Series, **_) -> pd.DataFrame:
    """NBS 2016 efficacy coefficient: min-max onto 60-100 (the worst unit scores 60)."""
    return n_minmax(frame, direction, range=(60, 100))


def n_zscore(frame: pd.DataFrame, direction: pd.Series, mean: float = 0.0, sd: float = 1.0, **_) -> pd.DataFrame:
    """COINr n_zscore: (x - mean) / sd per column (sample sd), then onto the given mean and sd."""
    x = _directed(frame, direction)
    spread = x.std(ddof=1).replace(0, np.nan)
    return (x - x.mean()) / spread * sd + mean


def n_rank(frame: pd.DataFrame, direction: pd.Series, **_) -> pd.DataFrame:
    """Rank per column, higher = better (ties take the lower rank; NaN stays NaN)."""
    return _directed(frame, direction).rank(method="min", na_option="keep")


def n_goalposts(frame: pd.DataFrame, direction: pd.Series, low: pd.Series | None = None, high: pd.Series | None = None,
                range: tuple[float, float] = (0, 100), **_) -> pd.DataFrame:
    """Fixed goalposts (comparable across years): low -> l, high -> u, clipped; reversed for negative direction."""
    if low is None or high is None:
        raise MethodError("目标值标准化需要每个指标的上下限 / goalposts need low and high per indicator")
    low = low.reindex(frame.columns)
    span = (high.reindex(frame.columns) - low).replace(0, np.nan)
    share = frame.sub(low, axis=1).div(span, axis=1)
    positive = np.broadcast_to((direction.reindex(frame.columns).fillna(1) > 0).to_numpy(), frame.shape)
    share = share.where(positive, 1 - share).clip(0, 1)
    l, u = range
    return (share * (u - l) + l).astype("float64")


def n_dist_to_target(frame: pd.DataFrame, direction: pd.Series, targets: pd.Series | dict | None = None,
                     cap_max: bool = True, range: tuple[float, float] = (0, 100), **_) -> pd.DataFrame:
    """COINr n_dist2targ, per column: (x - min) / (target - min) for direction +1, (max - x) / (max - target)
    for -1, so the worst unit scores l and a unit at the target scores u. With `cap_max` (default here;
    COINr's default is FALSE) a unit beyond the target scores u, otherwise above u. Targets are one per
    indicator (a Series or a mapping); a target no better than the worst unit is refused."""
    if targets is None:
        raise MethodError("距目标值标准化需要每个指标的目标值 / dist_to_target needs a target per indicator")
    target = pd.to_numeric(pd.Series(targets, dtype=object).reindex(frame.columns), errors="coerce").astype(float)
    if target.isna().any():
        missing = ", ".join(map(str, target.index[target.isna()]))
        raise MethodError(f"以下指标缺少目标值 / no target for: {missing}")
    x = frame.astype(float)
    positive = direction.reindex(frame.columns).fillna(1) > 0
    lo, hi = x.min(), x.max()
    worst = lo.where(positive, hi)
    behind = (target - worst).where(positive, worst - target)  # > 0 when the target is better than the worst unit
    bad = behind.notna() & (behind <= 0)
    if bad.any():
        raise MethodError(f"目标值须优于最差的单位 / the target must be better than the worst unit: "
                          f"{', '.join(map(str, behind.index[bad]))}")
    share = x.sub(worst, axis=1).div(target - worst, axis=1)
    if cap_max:
        share = share.clip(upper=1)
    l, u = range
    return (share * (u - l) + l).astype("float64")


NORMALISERS = {
    "minmax": n_minmax,
    "zscore": n_zscore,
    "efficacy": n_efficacy,
    "rank": n_rank,
    "goalposts": n_goalposts,
    "dist_to_target": n_dist_to_target,
}


def normalise(frame: pd.DataFrame, direction: pd.Series, method: str = "minmax", **params) -> pd.DataFrame:
    try:
        fn = NORMALISERS[method]
    except KeyError:
        raise MethodError(f"未知的标准化方法 / unknown normalisation: {method} (choose {', '.join(NORMALISERS)})") from None
    if "range" in params:
        params["range"] = tuple(params["range"])
    return fn(frame, direction, **params)


# -- weights ----------------------------------------------------------------------------

# Saaty's random consistency index for n = 1..15
_RANDOM_INDEX = [0.0, 0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57, 1.59]


def w_equal(names: list[str]) -> pd.Series:
    return pd.Series(1.0 / len(names), index=names)


def ahp(matrix: np.ndarray | list[list[float]], names: list[str] | None = None, max_cr: float = 0.1) -> tuple[pd.Series, float]:
    """AHP weights from a pairwise comparison matrix (principal eigenvector) and its consistency ratio.

    Refuses a matrix that is not positive and reciprocal, or whose CR >= max_cr.
    """
    a = np.asarray(matrix, dtype=float)
    n = a.shape[0]
    if a.ndim != 2 or a.shape != (n, n) or n < 2:
        raise MethodError("AHP 判断矩阵必须是方阵 / the AHP matrix must be square")
    if (a <= 0).any() or not np.allclose(a * a.T, 1.0, rtol=1e-6):
        raise MethodError("AHP 判断矩阵必须为正互反矩阵（a_ij = 1/a_ji）/ the AHP matrix must be positive and reciprocal")
    values, vectors = np.linalg.eig(a)
    k = int(np.argmax(values.real))
    w = np.abs(vectors[:, k].real)
    w = w / w.sum()
    lam = float(values[k].real)
    ci = (lam - n) / (n - 1)
    ri = _RANDOM_INDEX[n] if n < len(_RANDOM_INDEX) else _RANDOM_INDEX[-1]
    cr = 0.0 if ri == 0 else ci / ri
    if cr >= max_cr:
        raise MethodError(
            f"AHP 判断矩阵一致性比率 CR = {cr:.3f} ≥ {max_cr:g}，判断不一致，请调整两两比较后重试 / "
            f"consistency ratio {cr:.3f} >= {max_cr:g}: revise the pairwise judgements"
        )
    return pd.Series(w, index=names or [f"w{i + 1}" for i in range(n)]), cr


def w_entropy(frame: pd.DataFrame) -> pd.Series:
    """Entropy weight method on non-negative (normalised) data: more dispersion -> more weight."""
    x = frame.astype(float)
    if (x < 0).any().any():
        raise MethodError("熵权法需要非负数据（请先标准化）/ entropy weights need non-negative data")
    n = x.notna().sum()
    p = x.div(x.sum().replace(0, np.nan), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = (p * np.log(p)).where(p > 0, 0.0)
    e = -plogp.sum() / np.log(n.where(n > 1))
    d = (1 - e).clip(lower=0).fillna(0)
    if d.sum() == 0:
        return w_equal(list(frame.columns))
    return d / d.sum()


def _complete(frame: pd.DataFrame, zh: str, en: str) -> np.ndarray:
    """The rows with every column present, as floats; at least 2 rows and 2 columns."""
    x = frame.astype(float).dropna(how="any")
    if frame.shape[1] < 2 or len(x) < 2:
        raise MethodError(f"{zh}需要至少 2 个指标和 2 个数据完整的单位 / {en} needs at least 2 indicators "
                          f"and 2 units with every indicator present")
    return x.to_numpy()


def w_critic(frame: pd.DataFrame) -> pd.Series:
    """CRITIC weights (Diakoulaki, Mavrotas & Papayannakis 1995) on normalised data: C_j = s_j * sum_k (1 - r_jk),
    with s_j the sample sd and r_jk Pearson's r, both over the complete rows; weights C_j / sum C.
    A constant column carries no information (C = 0) and its undefined r counts as 0 for the others;
    if every C is 0 the weights are equal."""
    x = _complete(frame, "CRITIC 赋权", "CRITIC weighting")
    sd = x.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(x, rowvar=False)
    r = np.where(np.isnan(r), 0.0, r)
    np.fill_diagonal(r, 1.0)
    c = sd * (1 - r).sum(axis=0)
    if c.sum() <= 0:
        return w_equal(list(frame.columns))
    return pd.Series(c / c.sum(), index=frame.columns)


def w_pca(frame: pd.DataFrame) -> pd.Series:
    """PCA weights from the first principal component of the standardised indicators (the correlation
    matrix over the complete rows): weight_j = v_j^2 for the unit eigenvector v of the largest eigenvalue,
    i.e. the squared loadings of the first component scaled to sum 1 (the OECD/JRC Handbook's squared-loading
    weights, kept to the first component; no rotation, no further components). Refuses a constant
    indicator and a first component that is not unique (a tie for the largest eigenvalue)."""
    x = _complete(frame, "主成分赋权", "PCA weighting")
    sd = x.std(axis=0, ddof=1)
    if (sd == 0).any():
        flat = ", ".join(map(str, frame.columns[sd == 0]))
        raise MethodError(f"主成分赋权：指标取值不变，无法标准化 / PCA weights: constant indicator: {flat}")
    values, vectors = np.linalg.eigh(np.corrcoef(x, rowvar=False))  # ascending eigenvalues
    if values[-1] - values[-2] <= 1e-9 * max(1.0, abs(values[-1])):
        raise MethodError("主成分赋权：第一主成分不唯一（最大特征值相同）/ PCA weights: the first principal "
                          "component is not unique (tied largest eigenvalue)")
    w = vectors[:, -1] ** 2
    return pd.Series(w / w.sum(), index=frame.columns)


# -- aggregation ------------------------------------------------------------------------


def _weights(children: pd.DataFrame, weights: pd.Series | pd.DataFrame) -> np.ndarray:
    """Weights per cell: a Series (one weight per child) is broadcast over the units; a frame
    (one weight per unit and child, e.g. zone-dependent) is used as is. NaN children weigh 0."""
    if isinstance(weights, pd.DataFrame):
        w = weights.reindex(index=children.index, columns=children.columns).to_numpy(dtype=float, copy=True)
    else:
        w = np.broadcast_to(weights.reindex(children.columns).to_numpy(dtype=float), children.shape).copy()
    w[children.isna().to_numpy()] = 0.0
    return w


def _weight_frame(children: pd.DataFrame, weights: pd.Series | pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(_weights(children, weights), index=children.index, columns=children.columns)


def a_amean(children: pd.DataFrame, weights: pd.Series | pd.DataFrame, **_) -> pd.Series:
    """Weighted arithmetic mean per unit; NaN children are skipped and the weights renormalised."""
    w = _weights(children, weights)
    x = np.nan_to_num(children.to_numpy(dtype=float), nan=0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (x * w).sum(axis=1) / np.where(total > 0, total, np.nan)
    return pd.Series(mean, index=children.index)


def a_gmean(children: pd.DataFrame, weights: pd.Series | pd.DataFrame, **_) -> pd.Series:
    """Weighted geometric mean per unit (NaN skipped, weights renormalised). A zero child gives 0;
    negative values are refused (normalise onto a positive scale first)."""
    if (children < 0).any().any():
        raise MethodError("几何平均要求数据非负（请改用 60–100 功效系数等正值标准化）/ geometric mean needs non-negative data")
    w = _weight_frame(children, weights)
    total = w.sum(axis=1)
    with np.errstate(divide="ignore"):
        logs = np.log(children.where(children > 0, np.nan))
    zero = ((children == 0) & (w > 0)).any(axis=1)
    value = np.exp((logs.fillna(0.0) * w).sum(axis=1) / total.where(total > 0))
    return value.where(~zero, 0.0).where(total > 0)


def a_hmean(children: pd.DataFrame, weights: pd.Series | pd.DataFrame, **_) -> pd.Series:
    """Weighted harmonic mean per unit, sum(w) / sum(w / x) (NaN skipped, weights renormalised).
    A zero child gives 0; negative values are refused."""
    if (children < 0).any().any():
        raise MethodError("调和平均要求数据非负（请改用 60–100 功效系数等正值标准化）/ harmonic mean needs non-negative data")
    w = _weight_frame(children, weights)
    total = w.sum(axis=1)
    inverse = (w / children.where(children > 0, np.nan)).fillna(0.0).sum(axis=1)
    zero = ((children == 0) & (w > 0)).any(axis=1)
    value = total / inverse.where(inverse > 0)
    return value.where(~zero, 0.0).where(total > 0)


def a_genmean(children: pd.DataFrame, weights: pd.Series | pd.DataFrame, p: float | None = None, **_) -> pd.Series:
    """Weighted generalised (power) mean per unit, (sum w x^p / sum w)^(1/p) (NaN skipped, weights
    renormalised): p = 1 arithmetic, p = -1 harmonic, p = 0 geometric (the limit). For p < 0 a zero
    child gives 0 (the limit). Negative values are refused."""
    if p is None:
        raise MethodError("广义平均需要参数 p / generalised_mean needs the parameter p")
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise MethodError(f"广义平均的参数 p 必须是数 / generalised_mean: p must be a number: {p!r}") from None
    if not math.isfinite(p):
        raise MethodError(f"广义平均的参数 p 必须是有限数 / generalised_mean: p must be finite: {p}")
    if (children < 0).any().any():
        raise MethodError("广义平均要求数据非负（请改用 60–100 功效系数等正值标准化）/ generalised mean needs non-negative data")
    if p == 0:
        return a_gmean(children, weights)
    w = _weight_frame(children, weights)
    total = w.sum(axis=1)
    positive = children.where(children > 0, np.nan)
    powered = (positive**p * w).fillna(0.0).sum(axis=1)  # zero children add 0 for p > 0
    value = (powered / total.where(total > 0)) ** (1 / p)
    if p < 0:
        zero = ((children == 0) & (w > 0)).any(axis=1)
        value = value.where(~zero, 0.0)
    return value.where(total > 0)


AGGREGATORS = {"arithmetic_mean": a_amean, "geometric_mean": a_gmean, "harmonic_mean": a_hmean,
               "generalised_mean": a_genmean}


def aggregator(method: str, **params):
    """The aggregation function by name; `params` (e.g. p for generalised_mean) are bound to it."""
    try:
        fn = AGGREGATORS[method]
    except KeyError:
        raise MethodError(f"未知的加总方法 / unknown aggregation: {method} (choose {', '.join(AGGREGATORS)})") from None
    if not params:
        return fn
    return functools.partial(fn, **params)

"""The shortest path to the next grade, and to every base-readiness signal: the smallest set of indicator
improvements, in the indicators' own units and each within a feasible yearly change, that lifts a county's
composite to the next grade band (or meets every signal).

Under fixed goalposts and the arithmetic mean the composite is linear in each indicator between its goalposts:
an improvement of x units of indicator j adds g_j * x points, g_j = 100 * (its weight in the county's zone) /
(goalpost span). So the path is a linear program (scipy's HiGHS):

    minimise   sum_j x_j / cap_j            (the share of each indicator's feasible yearly change used)
    subject to sum_j g_j * x_j >= gap       (the points to the next grade's lower bound)
               0 <= x_j <= min(cap_j, room_j)   (room: what is left before the top goalpost)

cap_j is the indicator's `feasible_change` (indicators.yaml) or `method.path.feasible_share` of its goalpost span,
raised to the county's own best yearly improvement over the years shown (`use_trend`). An indicator whose value is
missing, or beyond its bottom goalpost (no point is earned until it crosses it), takes no step; a count (unit 个) is
rounded up to a whole number. A county without a feasible path gets the highest score one year's caps can reach.

Under the geometric mean the composite is not linear: the program is solved on its linearisation at the county's
point (the gradient of the weighted geometric means) and the result re-scored exactly; while it falls short the gap
is raised by the shortfall and the program solved again (sequential linear programming, at most 8 rounds). Other
normalisations than goalposts make a county's score depend on the others', so no path is given for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaluation.catalogue import Catalogue

COUNT_UNITS = frozenset({"个", "项", "家", "处", "座"})
EPSILON = 1e-6  # points above the grade's lower bound a path aims at (ranks and grades round at 1e-9)
ROUNDS = 8


@dataclass(frozen=True)
class Step:
    indicator: str
    value: float
    target: float
    change: float  # in the indicator's unit, signed (negative for a lower-is-better indicator)
    points: float  # composite points it adds (arithmetic mean: exact)
    cap: float  # the feasible yearly change it was held to


@dataclass
class Path:
    county: str
    kind: str  # "grade" or "readiness"
    goal: str  # the next grade's name, or "全部创建信号"
    current: float  # the composite now
    target: float  # the composite the path aims at (grade: the band's lower bound)
    feasible: bool
    steps: list[Step] = field(default_factory=list)
    reachable: float = math.nan  # the highest composite one year's caps reach (when not feasible)
    effort: float = 0.0  # sum of the shares of each cap used
    note: str = ""

    @property
    def changes(self) -> dict[str, float]:
        return {s.indicator: s.target for s in self.steps}


def feasible_caps(result, catalogue: Catalogue, history: dict[int, pd.DataFrame] | None = None) -> pd.DataFrame:
    """county x indicator: the largest improvement a county can make in a year, in the indicator's unit (> 0).

    history: past years' indicator values (county x indicator), for the county's own best yearly improvement."""
    settings = catalogue.method.path
    base = {i.id: (i.feasible_change if i.feasible_change is not None
                   else settings.feasible_share * (i.goalposts[1] - i.goalposts[0])) for i in catalogue.indicators}
    caps = pd.DataFrame([base] * len(result.raw), index=result.raw.index).reindex(columns=result.raw.columns)
    if settings.use_trend and history:
        direction = pd.Series({i.id: i.direction for i in catalogue.indicators}).reindex(result.raw.columns)
        years = sorted(history)
        frames = [history[y].reindex(index=result.raw.index, columns=result.raw.columns) for y in years]
        best = pd.DataFrame(0.0, index=result.raw.index, columns=result.raw.columns)
        for before, after in zip(frames, frames[1:] + [result.raw]):
            gain = (after - before).mul(direction, axis=1)
            best = np.fmax(best, gain.fillna(0.0))
        fixed = [i.id for i in catalogue.indicators if i.feasible_change is not None]  # config wins where set
        best[fixed] = 0.0
        caps = np.fmax(caps, best)
    return caps.astype("float64")


def _arrays(result, catalogue: Catalogue) -> dict:
    """The result as plain arrays (made once per result: a national run asks for thousands of counties)."""
    if "_path_arrays" not in result.__dict__:
        ids = [i.id for i in catalogue.indicators]
        dims = [i.dimension for i in catalogue.indicators]
        weight = (result.weights.reindex(columns=ids).to_numpy(dtype=float)
                  * result.dimension_weights.reindex(columns=dims).to_numpy(dtype=float))
        result.__dict__["_path_arrays"] = {
            "row": {str(c): k for k, c in enumerate(result.raw.index)}, "ids": ids,
            "raw": result.raw.reindex(columns=ids).to_numpy(dtype=float),
            "applicable": result.applicable.reindex(columns=ids).to_numpy(dtype=bool), "weight": weight,
            "low": [float(i.goalposts[0]) for i in catalogue.indicators],
            "high": [float(i.goalposts[1]) for i in catalogue.indicators],
            "direction": [int(i.direction) for i in catalogue.indicators]}
    return result.__dict__["_path_arrays"]


def _linear_terms(result, catalogue: Catalogue, code: str):
    """Per applicable indicator of `code`: (id, value, low, high, direction, weight in the composite)."""
    a = _arrays(result, catalogue)
    k = a["row"][str(code)]
    raw, applicable, weight = a["raw"][k], a["applicable"][k], a["weight"][k]
    return [(j, float(raw[n]), a["low"][n], a["high"][n], a["direction"][n], float(weight[n]))
            for n, j in enumerate(a["ids"]) if applicable[n]]


def _solve(gain: np.ndarray, cost: np.ndarray, upper: np.ndarray, gap: float) -> np.ndarray | None:
    """The cheapest x in [0, upper] with gain . x >= gap (None: no such x)."""
    from scipy.optimize import linprog

    if gap <= 0:
        return np.zeros_like(upper)
    found = linprog(cost, A_ub=-gain[None, :], b_ub=[-gap], bounds=[(0.0, u) for u in upper], method="highs")
    return found.x if found.status == 0 else None


def next_band(score: float, catalogue: Catalogue) -> tuple[str, float] | None:
    """The next grade up and its lower bound (None: already the top grade)."""
    above = [g for g in catalogue.grades if g.min > score + 1e-9]
    if not above:
        return None
    g = min(above, key=lambda g: g.min)
    return g.name, float(g.min)


def _steps(terms, x: np.ndarray, gain: np.ndarray, upper_cap: np.ndarray, units: dict[str, str]) -> list[Step]:
    steps = []
    for (j, value, low, high, direction, _w), amount, g, cap in zip(terms, x, gain, upper_cap):
        if amount <= 1e-9:
            continue
        if units.get(j) in COUNT_UNITS:
            amount = float(math.ceil(amount - 1e-9))
        target = value + direction * amount
        steps.append(Step(j, value, target, direction * amount, g * amount, cap))
    steps.sort(key=lambda s: (-s.points, s.indicator))
    return steps


@dataclass
class _Problem:
    code: str
    current: float
    above: tuple[str, float]
    terms: list
    cap: np.ndarray
    upper: np.ndarray
    gain: np.ndarray
    cost: np.ndarray
    gap: float


def _problem(result, catalogue: Catalogue, code: str, caps: pd.Series) -> _Problem | Path:
    """The county's program (or its Path when there is nothing to solve)."""
    current = float(result.overall[code])
    above = next_band(current, catalogue)
    if above is None:
        return Path(code, "grade", "", current, current, True, note="已处于最高等级")
    if catalogue.method.normalise != "goalposts":
        return Path(code, "grade", above[0], current, above[1], False, note="非固定目标值标准化，不计算路径")
    usable = []
    for t in _linear_terms(result, catalogue, code):
        j, value, low, high, direction, w = t
        if math.isnan(value) or ((value < low) if direction > 0 else (value > high)):
            continue  # missing, or beyond the bottom goalpost: no point is earned within the year
        usable.append((t, max(0.0, (high - value) if direction > 0 else (value - low))))
    terms = [t for t, _ in usable]
    cap = np.array([float(caps[t[0]]) for t in terms])
    upper = np.minimum(cap, np.array([room for _, room in usable]))
    geometric = catalogue.method.aggregate == "geometric_mean"
    gain = (np.array([100.0 * t[5] / (t[3] - t[2]) for t in terms]) if not geometric
            else _geometric_gain(result, catalogue, code, terms))
    cost = 1.0 / np.where(cap > 0, cap, np.inf)
    return _Problem(code, current, above, terms, cap, upper, gain, cost, above[1] - current + EPSILON)


def _unreachable(pr: _Problem, reachable: float) -> Path:
    return Path(pr.code, "grade", pr.above[0], pr.current, pr.above[1], False, reachable=reachable,
                note="按每年可行改善幅度，一年内无法升至下一等级")


def _found(pr: _Problem, x: np.ndarray, units: dict[str, str], note: str = "") -> Path:
    return Path(pr.code, "grade", pr.above[0], pr.current, pr.above[1], True, _steps(pr.terms, x, pr.gain, pr.cap, units),
                effort=float(pr.cost @ x), note=note)


def grade_path(result, catalogue: Catalogue, code: str, caps: pd.Series, *, rescore=None) -> Path:
    """The shortest path of `code` to the next grade (see the module's docstring)."""
    pr = _problem(result, catalogue, code, caps)
    if isinstance(pr, Path):
        return pr
    units = {i.id: i.unit for i in catalogue.indicators}
    if catalogue.method.aggregate != "geometric_mean":
        x = _solve(pr.gain, pr.cost, pr.upper, pr.gap)
        return _unreachable(pr, pr.current + float(pr.gain @ pr.upper)) if x is None else _found(pr, x, units)
    target_gap = pr.gap
    for _ in range(ROUNDS):
        x = _solve(pr.gain, pr.cost, pr.upper, target_gap)
        if x is None:
            return _unreachable(pr, _rescored(rescore, result, code, pr.terms, pr.upper) if rescore else math.nan)
        reached = _rescored(rescore, result, code, pr.terms, x) if rescore else pr.current + float(pr.gain @ x)
        if reached >= pr.above[1]:
            return _found(pr, x, units, "几何平均：按线性化逐次求解并以完整算法复核")
        target_gap += (pr.above[1] - reached) + EPSILON
    return Path(code, "grade", pr.above[0], pr.current, pr.above[1], False, note="几何平均：逐次线性化未能收敛")


def _batch(problems: list[_Problem]) -> list[np.ndarray]:
    """Solve many counties' (arithmetic) programs as one block-diagonal linear program (one HiGHS call)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    sizes = [len(pr.terms) for pr in problems]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    gain = np.concatenate([pr.gain for pr in problems]) if problems else np.zeros(0)
    rows = np.repeat(np.arange(len(problems)), sizes)
    matrix = csr_matrix((-gain, (rows, np.arange(len(gain)))), shape=(len(problems), len(gain)))
    found = linprog(np.concatenate([pr.cost for pr in problems]), A_ub=matrix, b_ub=[-pr.gap for pr in problems],
                    bounds=np.stack([np.zeros(len(gain)), np.concatenate([pr.upper for pr in problems])], axis=1),
                    method="highs")
    if found.status != 0:
        raise RuntimeError(f"the batched path program failed: {found.message}")
    return [found.x[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _geometric_gain(result, catalogue, code, terms) -> np.ndarray:
    """d composite / d unit of each indicator at the county's point, under geometric means at both levels."""
    dims = result.dimension_scores.loc[code]
    overall = float(result.overall[code])
    dim_w = result.dimension_weights.loc[code]
    normalised = result.normalised.loc[code]
    ind = {i.id: i for i in catalogue.indicators}
    out = []
    for j, _value, low, high, _direction, _w in terms:
        d = ind[j].dimension
        n = max(float(normalised[j]), 1e-9)
        w_in = float(result.weights.at[code, j])
        dn_dx = 100.0 / (high - low)
        # composite = prod D_d^{W_d}; D_d = prod n_j^{w_j}: dC/dn_j = C * W_d * w_j / n_j
        out.append(overall * float(dim_w[d]) * w_in / n * dn_dx if dims[d] > 0 else 0.0)
    return np.array(out)


def _rescored(rescore, result, code, terms, x) -> float:
    values = {t[0]: t[1] + t[4] * amount for t, amount in zip(terms, x)}
    return float(rescore(code, values))


def readiness_path(result, catalogue: Catalogue, code: str, caps: pd.Series, checks) -> Path:
    """The smallest improvements that meet every readiness signal of `code` (each signal fixes a lower bound on
    its indicator; the same program with those bounds and no points asked)."""
    current = float(result.overall[code])
    direction = {i.id: i.direction for i in catalogue.indicators}
    units = {i.id: i.unit for i in catalogue.indicators}
    need: dict[str, float] = {}
    missing = []
    for c in checks:
        if c.met is True:
            continue
        if c.value is None or c.target is None:
            missing.append(c.name)
            continue
        sign = direction.get(c.indicator, 1)
        amount = (c.target - c.value) * sign
        if units.get(c.indicator) not in COUNT_UNITS and c.indicator in direction:
            amount += 1e-9 * max(1.0, abs(c.target))  # a strict signal (">") needs a hair more
        need[c.indicator] = max(need.get(c.indicator, 0.0), amount)
    if missing:
        return Path(code, "readiness", "全部创建信号", current, current, False, note="缺数据：" + "、".join(missing))
    if not need:
        return Path(code, "readiness", "全部创建信号", current, current, True, note="全部信号已达标")
    ids = sorted(need)
    lower = np.array([need[j] for j in ids])
    cap = np.array([float(caps.get(j, np.inf)) for j in ids])
    # the program (minimise sum x / cap subject to x >= lower, nothing else asked) has its optimum at x = lower
    x = lower
    terms = {t[0]: t for t in _linear_terms(result, catalogue, code)}
    steps = []
    for j, amount, c in zip(ids, x, cap):
        value = float(terms[j][1]) if j in terms else float(result.raw.at[code, j])
        t = terms.get(j)
        points = 0.0
        if t is not None and catalogue.method.normalise == "goalposts":
            low, high = t[2], t[3]
            share = lambda v: min(1.0, max(0.0, (v - low) / (high - low))) if t[4] > 0 else \
                min(1.0, max(0.0, (high - v) / (high - low)))  # noqa: E731
            points = 100.0 * t[5] * (share(value + direction[j] * amount) - share(value))
        if units.get(j) in COUNT_UNITS:
            amount = float(math.ceil(amount - 1e-9))
        steps.append(Step(j, value, value + direction[j] * amount, direction[j] * amount, points, c))
    feasible = bool(np.all(lower <= cap + 1e-12))
    note = "" if feasible else "部分信号所需改善超过一年可行幅度：" + "、".join(
        j for j, n, c in zip(ids, lower, cap) if n > c + 1e-12)
    steps.sort(key=lambda s: s.indicator)
    return Path(code, "readiness", "全部创建信号", current, current, feasible, steps,
                effort=float(np.sum(lower / np.where(cap > 0, cap, np.inf))), note=note)


def all_paths(result, catalogue: Catalogue, readiness: dict | None = None,
              history: dict[int, pd.DataFrame] | None = None, *, rescore=None) -> dict[str, dict[str, Path]]:
    """{county: {"grade": Path, "readiness": Path}} for every county of `result`."""
    caps = {str(c): row for c, row in feasible_caps(result, catalogue, history).to_dict(orient="index").items()}
    codes = [str(c) for c in result.raw.index]
    grade: dict[str, Path] = {}
    if catalogue.method.aggregate == "geometric_mean":
        grade = {code: grade_path(result, catalogue, code, caps[code], rescore=rescore) for code in codes}
    else:  # linear: every county's program at once
        units = {i.id: i.unit for i in catalogue.indicators}
        pending = []
        for code in codes:
            pr = _problem(result, catalogue, code, caps[code])
            if isinstance(pr, Path):
                grade[code] = pr
            elif pr.gain @ pr.upper < pr.gap:
                grade[code] = _unreachable(pr, pr.current + float(pr.gain @ pr.upper))
            else:
                pending.append(pr)
        for pr, x in zip(pending, _batch(pending) if pending else []):
            grade[pr.code] = _found(pr, x, units)
    out = {}
    for code in codes:
        out[code] = {"grade": grade[code]}
        if readiness is not None:
            out[code]["readiness"] = readiness_path(result, catalogue, code, caps[code], readiness.get(code, []))
    return out


def table(paths: dict[str, dict[str, Path]], catalogue: Catalogue) -> pd.DataFrame:
    """One row per step (and one per county without a step), for the workbook."""
    names = {i.id: (i.name, i.unit) for i in catalogue.indicators}
    rows = []
    for code, kinds in paths.items():
        for kind, p in kinds.items():
            base = {"county_code": code, "kind": kind, "goal": p.goal, "current": p.current, "target_score": p.target,
                    "feasible": p.feasible, "effort": p.effort, "reachable": p.reachable, "note": p.note}
            if not p.steps:
                rows.append({**base, "indicator": "", "name": "", "unit": "", "value": np.nan, "target": np.nan,
                             "change": np.nan, "points": np.nan, "cap": np.nan})
            for s in p.steps:
                rows.append({**base, "indicator": s.indicator, "name": names[s.indicator][0],
                             "unit": names[s.indicator][1], "value": s.value, "target": s.target,
                             "change": s.change, "points": s.points, "cap": s.cap})
    return pd.DataFrame(rows)

"""'两山' practice base readiness: each county against configurable signals, and the city against the seed's
targets (1-2 bases by 2025, 4-5 by 2030, all by 2035).

A signal is absolute (a value against a threshold) or relative (a rank within the county's city or province, read
off its GB/T 2260 code: the first 4 or 2 digits). The national base is named by competitive selection, so a signal
is a sign of readiness, never a verdict; `target_values` gives the value each signal asks of a county (for the
path to readiness in index/paths.py)."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.catalogue import Catalogue

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_SHOWN = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


_WITHIN = {"city": (4, "全市"), "province": (2, "全省")}


@dataclass(frozen=True)
class Check:
    name: str
    indicator: str
    value: float | None
    threshold: str
    met: bool | None  # None: no value to judge
    target: float | None = None  # the value that meets the signal (None: no value to judge)


def group_of(code: str, within: str) -> str:
    return str(code)[: _WITHIN[within][0]]


def target_values(raw: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """county x signal (by position): the indicator value that meets each signal. For an absolute signal its
    threshold; for a relative one the value of the county now `top`-th among the others of its city or province
    (ties share the better rank, so equalling it is enough; NaN when the group has `top` counties or fewer)."""
    direction = {i.id: i.direction for i in catalogue.indicators}
    out = {}
    for k, s in enumerate(catalogue.readiness.signals):
        if not s.relative:
            out[k] = pd.Series(float(s.value), index=raw.index)
            continue
        column = raw[s.indicator] if s.indicator in raw.columns else pd.Series(float("nan"), index=raw.index)
        sign = direction.get(s.indicator, 1)
        groups = pd.Series([group_of(c, s.within) for c in raw.index], index=raw.index)
        value = column * sign
        order = value.groupby(groups).rank(ascending=False, method="first")  # 1 = best; NaN for a missing value
        target = pd.Series(float("nan"), index=raw.index)
        for _, members in groups.groupby(groups).groups.items():
            ordered = value.reindex(members).dropna().sort_values(ascending=False).to_numpy()
            if len(ordered) < s.top:
                continue
            mine = order.reindex(members)
            # the county among the `top` best: the `top`-th of the others is one further down (if there is one)
            at = np.where(mine.notna() & (mine <= s.top), s.top, s.top - 1)
            ok = at < len(ordered)
            target.loc[members[ok]] = ordered[at[ok]] * sign
        out[k] = target
    return pd.DataFrame(out, index=raw.index)


def assess(raw: pd.DataFrame, catalogue: Catalogue) -> dict[str, list[Check]]:
    """Per county: every signal, its value and whether it is met (raw = county x indicator)."""
    units = {i.id: i.unit for i in catalogue.indicators}
    direction = {i.id: i.direction for i in catalogue.indicators}
    targets = target_values(raw, catalogue)
    out: dict[str, list[Check]] = {}
    for code in raw.index:
        checks = []
        for k, s in enumerate(catalogue.readiness.signals):
            value = raw.at[code, s.indicator] if s.indicator in raw.columns else float("nan")
            known = pd.notna(value)
            if s.relative:
                target = targets.at[code, k]
                threshold = f"{_WITHIN[s.within][1]}前{s.top}位"
                if pd.isna(target):  # the group is no larger than `top`: every county is in it
                    met = True if known else None
                else:
                    met = bool(value * direction.get(s.indicator, 1) >= target * direction.get(s.indicator, 1)) if known else None
            else:
                target = float(s.value)
                threshold = f"{_SHOWN[s.op]} {s.value:g} {units.get(s.indicator, '')}".strip()
                met = bool(_OPS[s.op](value, s.value)) if known else None
            checks.append(Check(s.name, s.indicator, float(value) if known else None, threshold, met,
                                None if pd.isna(target) else float(target)))
        out[str(code)] = checks
    return out


def is_ready(checks: list[Check]) -> bool:
    return bool(checks) and all(c.met is True for c in checks)


def city_view(assessment: dict[str, list[Check]], catalogue: Catalogue, year: int) -> dict:
    ready = sorted(code for code, checks in assessment.items() if is_ready(checks))
    targets = []
    for t in catalogue.readiness.city_targets:
        # bases are named by the ministry, not reached by a score: say how many show every provisional
        # signal against the target, never that a target is achieved
        if len(ready) >= t.min:
            status = f"全部暂定信号达标 {len(ready)} 个，已不少于目标数"
        elif year < t.year:
            status = f"全部暂定信号达标 {len(ready)} 个，尚差 {t.min - len(ready)} 个"
        else:
            status = f"全部暂定信号达标 {len(ready)} 个，未达目标数"
        targets.append({"year": t.year, "text": t.text, "min": t.min, "max": t.max, "status": status})
    named = [{"code": n.code, "level": n.level, "year": n.year} for n in catalogue.readiness.named
             if n.code in assessment]
    return {"ready": ready, "ready_count": len(ready), "total": len(assessment), "targets": targets,
            "verified": catalogue.readiness.verified, "named": named}

"""'两山' practice base readiness: each county against configurable creation thresholds,
and the city against the seed's targets (1-2 bases by 2025, 4-5 by 2030, all by 2035)."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import pandas as pd

from evaluation.catalogue import Catalogue

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_SHOWN = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


@dataclass(frozen=True)
class Check:
    name: str
    indicator: str
    value: float | None
    threshold: str
    met: bool | None  # None: no value to judge


def assess(raw: pd.DataFrame, catalogue: Catalogue) -> dict[str, list[Check]]:
    """Per county: every criterion, its value and whether it is met (raw = county x indicator)."""
    units = {i.id: i.unit for i in catalogue.indicators}
    out: dict[str, list[Check]] = {}
    for code in raw.index:
        checks = []
        for c in catalogue.readiness.criteria:
            value = raw.at[code, c.indicator] if c.indicator in raw.columns else float("nan")
            known = pd.notna(value)
            checks.append(Check(c.name, c.indicator, float(value) if known else None,
                                f"{_SHOWN[c.op]} {c.value:g} {units.get(c.indicator, '')}".strip(),
                                bool(_OPS[c.op](value, c.value)) if known else None))
        out[str(code)] = checks
    return out


def is_ready(checks: list[Check]) -> bool:
    return bool(checks) and all(c.met is True for c in checks)


def city_view(assessment: dict[str, list[Check]], catalogue: Catalogue, year: int) -> dict:
    ready = sorted(code for code, checks in assessment.items() if is_ready(checks))
    targets = []
    for t in catalogue.readiness.city_targets:
        # bases are named by the ministry, not reached by a score: say how many meet the provisional
        # criteria against the target, never that a target is achieved
        if len(ready) >= t.min:
            status = f"按暂定条件达标 {len(ready)} 个，已不少于目标数"
        elif year < t.year:
            status = f"按暂定条件达标 {len(ready)} 个，尚差 {t.min - len(ready)} 个"
        else:
            status = f"按暂定条件达标 {len(ready)} 个，未达目标数"
        targets.append({"year": t.year, "text": t.text, "min": t.min, "max": t.max, "status": status})
    return {"ready": ready, "ready_count": len(ready), "total": len(assessment), "targets": targets,
            "verified": catalogue.readiness.verified}

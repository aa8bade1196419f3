"""A county's GEP account as the scorecard, the workbook and the 技术报告 print it (formatted once, here)."""

from __future__ import annotations

import pandas as pd

from evaluation.gep import Account
from evaluation.gep.config import CLASSES


def _yi(value: float) -> str:
    """亿元 with two decimals and thousands separators ("—" when unknown)."""
    return "—" if value is None or pd.isna(value) else f"{float(value):,.2f}"


def _signed(value: float) -> str:
    """+1.23 / -0.45; a change that rounds to nothing is 0.00 (never -0.00)."""
    if value is None or pd.isna(value):
        return "—"
    return "0.00" if abs(float(value)) < 0.005 else f"{float(value):+,.2f}"


def _share(part: float, whole: float) -> str:
    if pd.isna(part) or pd.isna(whole) or whole == 0:
        return "—"
    return f"{part / whole * 100:.1f}%"


def _qty(value: float) -> str:
    """A physical quantity as the indicator table prints numbers (context.fmt_value's rule, without importing it)."""
    if value is None or pd.isna(value):
        return "—"
    value = float(value)
    if abs(value) >= 1000 or (value.is_integer() and abs(value) >= 100):
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"


def _price(value: float) -> str:
    if value is None or pd.isna(value):
        return "—"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"


def cross_check_note(account: Account, code: str) -> str | None:
    """The scorecard's warning when the bureau's typed GEP differs from the computed one beyond the tolerance."""
    check = account.config.cross_check
    if check is None or account.difference is None or not bool(account.flagged().get(code, False)):
        return None
    return (f"发改委填报的GEP（{_yi(account.reported[code])} 亿元）与按核算账户计算的GEP（{_yi(account.total[code])} 亿元）"
            f"相差 {account.difference[code] * 100:+.1f}%，超过 {check.tolerance * 100:g}% 的核对容差；"
            f"评价采用核算结果，请发改委核实。")


def county(account: Account | None, catalogue, code: str) -> dict | None:
    """The GEP account section of one county's scorecard (None without GEP accounting)."""
    if account is None or code not in account.total.index:
        return None
    total = account.total[code]
    has_previous = account.previous_value is not None and pd.notna(account.previous_total[code])
    table = account.by_county
    q_eff = table["quantity_effect"][code] if has_previous else None
    p_eff = table["price_effect"][code] if has_previous else None
    quantity, price, values, basis = (table[k][code] for k in ("quantity", "price", "value", "basis"))

    def effect(effects: dict | None, ids: list[str]) -> str:
        """The summed effect of items (unknown when any is: as a sum with skipna=False)."""
        return _signed(sum(effects[i] for i in ids)) if has_previous else "—"

    rows, groups = [], []
    for cls, cls_name in CLASSES.items():
        items = [i for i in account.items if i.cls == cls]
        if not items:
            continue
        cls_total = table["classes"][code][cls]
        groups.append({"name": cls_name, "value": _yi(cls_total), "share": _share(cls_total, total)})
        ids = [i.id for i in items]
        rows.append({"group": True, "name": cls_name, "value": _yi(cls_total), "share": _share(cls_total, total),
                     "quantity_effect": effect(q_eff, ids), "price_effect": effect(p_eff, ids)})
        for item in items:
            value = values[item.id]
            rows.append({
                "group": False, "id": item.id, "name": item.name, "quantity": _qty(quantity[item.id]),
                "unit": item.unit, "price": _price(price[item.id]), "price_unit": item.price_unit,
                "value": _yi(value), "share": _share(value, total),
                "basis": basis[item.id], "method": item.method_name,
                "formula": item.formula is not None,
                "quantity_effect": effect(q_eff, [item.id]), "price_effect": effect(p_eff, [item.id]),
            })
    reported = [r["name"] for r in rows if not r["group"] and r["formula"] and r["basis"] != "公式计算"]
    base_year = account.base_year[code] if account.base_year is not None else None
    previous_total = account.previous_total[code] if has_previous else None
    return {
        "total": _yi(total),
        "known": bool(pd.notna(total)),
        "rows": rows,
        "groups": groups,
        "per_capita": _yi(account.per_capita[code]) if account.per_capita is not None else "—",
        "gdp_ratio": ("—" if account.gdp_ratio is None or pd.isna(account.gdp_ratio[code])
                      else f"{account.gdp_ratio[code]:.2f}"),
        "previous_total": _yi(previous_total) if has_previous else None,
        "change": _signed(total - previous_total) if has_previous else None,
        "quantity_effect": effect(q_eff, list(q_eff)) if has_previous else None,
        "price_effect": effect(p_eff, list(p_eff)) if has_previous else None,
        "growth": "—" if pd.isna(account.growth[code]) else f"{account.growth[code]:+.2f}%",
        "realised": _yi(account.realised[code]),
        "conversion": "—" if pd.isna(account.conversion[code]) else f"{account.conversion[code]:.2f}%",
        "realised_parts": [
            {"name": part.name or catalogue.variables[part.var].name,
             "value": _yi(account.realised_parts.loc[code, part.var])} for part in account.config.realised],
        "base_year": "—" if base_year is None or pd.isna(base_year) else f"{int(base_year)}",
        "reported_items": reported,
        "cross_check": cross_check_note(account, code),
        "reported_gep": _yi(account.reported[code]) if account.reported is not None else None,
        "verified": account.config.verified,
    }


def city_totals(account: Account | None, catalogue) -> dict | None:
    """The city's GEP by class and the counties' totals, for the summary."""
    if account is None:
        return None
    total = account.total.sum(skipna=False)
    return {
        "total": _yi(total),
        "groups": [{"name": CLASSES[c], "value": _yi(account.classes[c].sum(skipna=False)),
                    "share": _share(account.classes[c].sum(skipna=False), total)} for c in account.classes.columns],
        "realised": _yi(account.realised.sum(skipna=False)),
        "conversion": _share(account.realised.sum(skipna=False), total),
        "flagged": [catalogue.county(c).name for c, flag in account.flagged().items() if flag],
    }

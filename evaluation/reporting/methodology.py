"""The methodology report (技术报告) of a version: for analysts and reviewers, not for counties.

Generated from the same run as the scorecards: the framework (dimensions, indicators, where each applies, its
goalposts, and where each of these comes from), the weights per zone type, the statistical audit, the Monte Carlo
rank intervals and the Sobol indices with their charts, the shortest paths to the next grade, every flag, and the
source of every configured default (a citation, or "proposed" where no published source backs it).
"""

from __future__ import annotations

import pandas as pd

from evaluation.index import audit as audit_module
from evaluation.reporting.context import _common, fmt_score, fmt_value, unit_text

INTERVAL_ROWS = 30  # counties drawn in the rank-interval chart (the widest intervals when there are more)
PATH_ROWS = 30  # counties listed with their path (the rest are in the workbook)
PROPOSED = "proposed"


def file_name(city_code: str, city: str, year: int) -> str:
    return f"{city_code}_{city}_{year}年度评价技术报告.pdf"


def _source(text: str) -> dict:
    text = text or "未注明来源"
    return {"text": text.removeprefix("proposed: ").removeprefix("proposed"), "proposed": text.startswith(PROPOSED)
            or text == "未注明来源"}


def _f(value, digits: int = 3) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def context(result, catalogue, info, analysis) -> dict:
    """The report's context (plain data; `templates/methodology.html` renders it)."""
    ind = {i.id: i for i in catalogue.indicators}
    dims = {d.id: d for d in catalogue.dimensions}
    zones = catalogue.zone_types
    names = {c.code: c.name for c in catalogue.counties}
    framework = [{"dimension": f"{i.dimension} {dims[i.dimension].name}", "name": i.name, "unit": unit_text(i.unit),
                  "direction": "正向" if i.direction > 0 else "逆向",
                  "zones": "全部" if i.zones == "all" else "、".join(zones[z].name for z in i.zones),
                  "goalposts": f"{fmt_value(i.goalposts[0])}–{fmt_value(i.goalposts[1])}",
                  "source": _source(i.source), "goalposts_source": _source(i.goalposts_source)}
                 for i in catalogue.indicators]
    weights = [{"zone": z.name, "weights": [f"{catalogue.zone_weights(k)[d]:.2f}" for d in dims],
                "source": _source(catalogue.weight_set_sources.get(z.weight_set, "")),
                "zone_source": _source(z.source), "count": sum(1 for c in catalogue.counties if c.zone == k)}
               for k, z in zones.items()]
    defaults = [{"item": "县区主体功能区类型", "value": f"{len(catalogue.counties)}个县区",
                 "source": _source(next((c.source for c in catalogue.counties if c.source), "")),
                 "verified": all(c.verified for c in catalogue.counties)},
                {"item": "等级划分", "value": "；".join(f"{g.name} ≥{g.min:g}" for g in catalogue.grades),
                 "source": _source(catalogue.grades[0].source), "verified": False},
                {"item": "缺失值规则", "value": f"按最低分（{catalogue.missing_score:g}分）计，保留权重",
                 "source": _source(catalogue.missing_score_source), "verified": True},
                {"item": "标准化与加总", "value": f"{catalogue.method.normalise} / {catalogue.method.aggregate}",
                 "source": _source(catalogue.method.source), "verified": True},
                {"item": "蒙特卡洛不确定性分析", "value": f"{catalogue.method.uncertainty.draws}次，权重±"
                 f"{catalogue.method.uncertainty.weight_perturbation:.0%}", "source": _source(catalogue.method.uncertainty.source),
                 "verified": False},
                {"item": "Sobol敏感性分析", "value": f"N={catalogue.method.sensitivity.samples}，种子"
                 f"{catalogue.method.sensitivity.seed}", "source": _source(catalogue.method.sensitivity.source),
                 "verified": True},
                {"item": "每年可行改善幅度", "value": f"目标值区间的{catalogue.method.path.feasible_share:.0%}或近年最大年度改善",
                 "source": _source(catalogue.method.path.source), "verified": catalogue.method.path.verified},
                {"item": "指标评级与趋势划分", "value": "、".join(b.name for b in catalogue.method.ratings.bands),
                 "source": _source(catalogue.method.ratings.source), "verified": catalogue.method.ratings.verified}]
    signals = [{"name": s.name, "kind": "相对" if s.relative else "绝对", "source": _source(s.source)}
               for s in catalogue.readiness.signals]
    out = {**_common(catalogue, info, f"{info.year}年度“两山”转化绩效评价技术报告", "methodology"),
           "counties": len(result.overall), "dimensions": [f"{d.id} {d.name}" for d in catalogue.dimensions],
           "framework": framework, "weights": weights, "defaults": defaults, "signals": signals,
           "readiness_source": catalogue.readiness.source or "未注明来源",
           "named": "、".join(f"{names.get(n.code, n.code)}（{n.year}年{n.level}）" for n in catalogue.readiness.named)}
    out["gep_method"] = _gep_method(catalogue)
    out.update(_audit(analysis, ind, dims))
    out.update(_uncertainty(result, analysis, names))
    out.update(_paths(result, analysis, names, ind))
    return out


FORMULA_ZH = {"water_balance": "水量平衡法：Σ 面积×（降水量－径流深－蒸散发量）", "rusle": "RUSLE：Σ 面积×R×K×LS×（1－C×P）",
              "nep_carbon": "Σ 面积×NEP×44/12"}


def _gep_method(catalogue) -> dict | None:
    """The GEP accounting's items, parameters and sources (config/gep.yaml), as the report prints them."""
    config = catalogue.gep
    if config is None:
        return None
    variables = catalogue.variables
    items = [{"class": item.class_name, "name": item.name, "unit": item.unit,
              "quantity": (variables[item.var].name if item.var else FORMULA_ZH[item.formula]
                           + (f"（或直接报送：{variables[item.reported].name}）" if item.reported else "")),
              "department": (catalogue.departments[variables[item.var].department].label if item.var else "按公式计算"),
              "price": f"{variables[item.price].name}（{item.price_unit}）", "method": item.method_name,
              "source": _source(item.source)} for item in config.items]
    ecosystems = [{"name": e.name, "c": "—" if e.c_factor is None else f"{e.c_factor:g}", "p": f"{e.p_factor:g}",
                   "source": _source(e.source)} for e in config.ecosystems.values()]
    realised = [{"name": r.name or variables[r.var].name, "source": _source(r.source)} for r in config.realised]
    check = config.cross_check
    return {"items": items, "ecosystems": ecosystems, "realised": realised, "source": _source(config.source),
            "formulas_source": _source(config.formulas.source), "realised_source": _source(config.realised_source),
            "tolerance": f"{check.tolerance:.0%}" if check else None,
            "check_source": _source(check.source) if check else None, "verified": config.verified}


def _audit(analysis, ind, dims) -> dict:
    audit = getattr(analysis, "audit", None)
    if audit is None:
        return {"audit": [], "flags": [], "spread": []}
    groups = [{"dimension": f"{g.group} {dims[g.group].name}" if g.group in dims else g.group,
               "indicators": "、".join(ind[c].name for c in g.children) or "—",
               "others": "、".join(ind[c].name for c in audit.zone_specific.get(g.group, [])) or "—",
               "units": g.units, "alpha": _f(g.cronbach_alpha), "pc1": _f(g.pc1_share)} for g in audit.groups]
    flags = [{"kind": audit_module.FLAG_ZH.get(f.kind, f.kind), "dimension": f.group,
              "indicator": audit_module.flag_label(f.indicator, ind),
              "value": _f(f.value, 2)} for f in audit.flags.itertuples(index=False)]
    spread = [{"name": ind[k].name, "counties": int(r["counties"]), "range": f"{r['min']:.1f}–{r['max']:.1f}",
               "sd": _f(r["sd"], 1), "top": f"{r['at_top']:.0%}", "bottom": f"{r['at_bottom']:.0%}",
               "bunched": bool(r["bunched"])} for k, r in audit.spread.iterrows()]
    return {"audit": groups, "flags": flags, "spread": spread}


def _uncertainty(result, analysis, names) -> dict:
    unc = getattr(analysis, "uncertainty", None)
    sens = getattr(analysis, "sensitivity", None)
    rows = []
    if unc is not None:
        table = unc.assign(rank=result.rank.astype(int), width=unc["rank_p95"] - unc["rank_p05"])
        shown = table.sort_values("rank") if len(table) <= INTERVAL_ROWS else \
            table.sort_values(["width", "rank"], ascending=[False, True]).head(INTERVAL_ROWS).sort_values("rank")
        rows = [{"label": names.get(str(c), str(c)), "rank": int(r["rank"]), "p05": int(r["rank_p05"]),
                 "median": int(r["rank_median"]), "p95": int(r["rank_p95"])} for c, r in shown.iterrows()]
    out = {"intervals": {"rows": rows, "of": len(result.overall)}, "intervals_widest": len(result.overall) > INTERVAL_ROWS}
    if sens is None:
        return {**out, "sobol": [], "sobol_chart": {"rows": []}, "sobol_driver": "", "sobol_runs": 0, "county_drivers": []}
    mean_total = sens.mean_total()
    sobol = [{"input": sens.labels.get(k, k), "s1": _f(r["S1"]), "s1_conf": _f(r["S1_conf"]), "st": _f(r["ST"]),
              "st_conf": _f(r["ST_conf"]), "county_st": _f(mean_total.get(k))} for k, r in sens.correlation.iterrows()]
    drivers = sens.county_driver()
    counts = drivers[drivers != ""].map(lambda k: sens.labels.get(k, k)).value_counts()
    return {**out, "sobol": sobol, "sobol_runs": sens.runs, "sobol_driver": sens.labels.get(sens.driver(), sens.driver()),
            "sobol_chart": {"rows": [{"label": sens.labels.get(k, k), "s1": float(max(r["S1"], 0.0)),
                                      "st": float(max(r["ST"], 0.0))} for k, r in sens.correlation.iterrows()]},
            "county_drivers": [{"input": k, "count": int(v)} for k, v in counts.items()],
            "stable": int((drivers == "").sum())}


def _paths(result, analysis, names, ind) -> dict:
    ways = getattr(analysis, "paths", None) or {}
    rows, feasible, infeasible, top = [], 0, 0, 0
    for code in result.rank.sort_values(kind="stable").index:
        p = (ways.get(str(code)) or {}).get("grade")
        if p is None:
            continue
        if not p.goal:
            top += 1
            continue
        feasible += p.feasible
        infeasible += not p.feasible
        if len(rows) < PATH_ROWS:
            steps = "；".join(f"{ind[s.indicator].name} {fmt_value(s.value, ind[s.indicator].unit)}→"
                             f"{fmt_value(s.target, ind[s.indicator].unit)}" for s in p.steps[:4])
            if len(p.steps) > 4:
                steps += f"等{len(p.steps)}项"
            rows.append({"county": names.get(str(code), str(code)), "score": fmt_score(p.current), "goal": p.goal,
                         "gap": f"{p.target - p.current:.1f}", "feasible": p.feasible,
                         "steps": steps if p.feasible else f"{p.note}（一年最多 {fmt_score(p.reachable)} 分）"})
    return {"paths": rows, "paths_feasible": feasible, "paths_infeasible": infeasible, "paths_top": top,
            "paths_more": max(0, feasible + infeasible - len(rows))}

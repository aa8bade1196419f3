"""Build the plain dicts the templates print. Templates compute nothing: every number
is formatted here, once, from the score result.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.index.explain import strengths_weaknesses
from evaluation.index.readiness import Check, is_ready
from evaluation.index.scoring import RowCache, ScoreResult

SAMPLE_LABEL = "示例数据"
INCOMPLETE_LABEL = "未完整（临时）"
SUMMARY_LISTED = 60  # above this many counties, the summary lists the first and last 30
NORMALISE_ZH = {
    "goalposts": "各指标按固定目标值（下限～上限）标准化为0–100分：正向指标达到上限得100分、低于下限得0分，逆向指标反之",
    "minmax": "各指标按当年参评县区的最小值～最大值标准化为0–100分：正向指标最大者得100分、最小者得0分，逆向指标反之",
    "efficacy": "各指标按功效系数法标准化为60–100分：正向指标最大者得100分、最小者得60分，逆向指标反之",
    "zscore": "各指标按标准分（与参评县区均值之差除以标准差）标准化，逆向指标取其相反数",
    "rank": "各指标按参评县区中的名次标准化，表现越好名次分越高",
}
AGGREGATE_ZH = {"arithmetic_mean": "加权算术平均", "geometric_mean": "加权几何平均"}


def missing_floor(catalogue: Catalogue) -> str:
    """What a missing applicable indicator scores, in words (the index engine's floor per method)."""
    return {"goalposts": f"按最低分（{catalogue.missing_score:g}分）", "minmax": "按最低分（0分）",
            "efficacy": "按最低分（60分）"}.get(catalogue.method.normalise, "按参评县区中的最低分")


def method_words(catalogue: Catalogue) -> dict[str, str]:
    """The method as the documents state it, generated from method.yaml and zones.yaml (never fixed text)."""
    method = catalogue.method
    aggregate = AGGREGATE_ZH[method.aggregate]
    floor = missing_floor(catalogue)
    text = (f"{NORMALISE_ZH[method.normalise]}。维度得分为维度内适用指标的{aggregate}；综合得分为各维度得分按本县区"
            f"主体功能区类型的权重{'加权求和' if method.aggregate == 'arithmetic_mean' else aggregate}。不适用于本类型功能区的指标不参与评价，其权重由同一维度内其他指标分摊；"
            f"适用但缺失的指标保留权重、{floor}计。排名分为全市排名与同类功能区内排名。")
    mc = method.uncertainty
    varied = {(True, True): "、标准化与加总方法随机组合", (True, False): "、标准化方法随机组合",
              (False, True): "、加总方法随机组合", (False, False): "随机扰动"}[
        (len(mc.normalise_alternatives) > 1, len(mc.aggregate_alternatives) > 1)]
    robust = f"稳健区间：权重±{mc.weight_perturbation * 100:g}%{varied}的蒙特卡洛模拟中，排名的5%–95%区间。"
    return {
        "method": text,
        "robust_note": robust,
        "missing_note": f"标注“缺失·{floor.split('（')[0]}”的指标未取得数据，{floor}计入并保留其权重。",
        "missing_flag": f"缺失·{floor.split('（')[0]}",
    }


@dataclass(frozen=True)
class RunInfo:
    """Facts about the run that are not in the score result."""

    year: int
    version: int
    run_date: str  # ISO date, passed in: library code never reads the clock
    sample: bool
    incomplete: bool = False
    generator: str = "twomountains"
    sources: dict[str, str] = field(default_factory=dict)  # variable id -> department name
    notes: tuple[str, ...] = ()  # run-wide data-quality notes
    county_notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    revisions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # 修订说明 per county / city code


@dataclass(frozen=True)
class Analysis(RowCache):
    """What the engine says beyond the scores: rank stability, readiness, progress."""

    uncertainty: pd.DataFrame | None = None  # county -> rank_p05, rank_median, rank_p95, zone_rank_*
    readiness: dict[str, list[Check]] | None = None
    city_readiness: dict | None = None
    progress: pd.DataFrame | None = None  # county x (dimensions + overall): change on last year
    previous_raw: pd.DataFrame | None = None  # county x indicator: last year's values
    trend: pd.DataFrame | None = None  # (year, county) x (dimensions + overall)
    indicator_trend: pd.DataFrame | None = None  # (year, county) x indicator: normalised scores
    audit: object | None = None  # index.audit.IndexAudit: coherence per dimension, flags, spread
    sensitivity: object | None = None  # index.sensitivity.IndexSensitivity: Sobol indices
    paths: dict | None = None  # county -> {"grade": Path, "readiness": Path} (index.paths)

    def county_row(self, frame: str, code: str) -> dict | None:
        """A county's row of `frame` ("progress", "previous_raw", "uncertainty") as a dict (None: no such frame or
        row). Each frame is turned into dicts once: planning looks every county up in each."""
        table = getattr(self, frame)
        if table is None:
            return None
        return self._cached_rows(frame, lambda: table.to_dict("index")).get(code)

    def indicator_history(self, code: str) -> tuple[list[int], dict[str, list]] | None:
        """The county's normalised score per indicator over the years: (years, {indicator: scores})."""
        if self.indicator_trend is None:
            return None
        return self._cached_rows("history", self._indicator_histories)[code]

    def _indicator_histories(self) -> dict:
        # from one array (a DataFrame per county cost about 2 ms each)
        table = self.indicator_trend
        years = [int(y) for y in table.index.get_level_values(0)]
        values = table.to_numpy(dtype=float)
        columns = list(table.columns)
        return {county: ([years[i] for i in rows], dict(zip(columns, values[rows].T.tolist())))
                for county, rows in table.groupby(level="county_code", sort=False).indices.items()}


COUNT_UNITS = frozenset({"个", "项", "家", "处", "座", "人", "人次"})
NO_UNIT = frozenset({"无量纲", ""})
TREND_WORDS = {"improving": ("↑", "显著改善"), "moderately_improving": ("↗", "温和改善"),
               "stagnating": ("→", "基本停滞"), "declining": ("↓", "下降"), None: ("", "—")}


def fmt_change(value: float) -> str:
    if pd.isna(value):
        return "—"
    if abs(value) < 0.05:
        return "→ 0.0"
    return f"{'↑' if value > 0 else '↓'} {abs(value):.1f}"


def change_words(value: float | None) -> tuple[str, str]:
    """The composite's change on last year in words, and a class for its colour."""
    if value is None or pd.isna(value):
        return "首次评价，暂无上年对比", "none"
    if abs(value) < 0.05:
        return "与上年持平", "flat"
    return (f"较上年提高 {value:.1f} 分", "up") if value > 0 else (f"较上年下降 {abs(value):.1f} 分", "down")


def fmt_interval(low: float, median: float, high: float) -> str:
    low, median, high = int(low), int(median), int(high)
    return f"第{low}名" if low == high else f"第{low}–{high}名（中位 {median}）"


def fmt_date(iso: str) -> str:
    """2026-11-30 -> 2026年11月30日 (other text is returned as it is)."""
    try:
        day = datetime.date.fromisoformat(str(iso)[:10])
    except ValueError:
        return str(iso)
    return f"{day.year}年{day.month}月{day.day}日"


def unit_text(unit: str) -> str:
    """The unit as printed ("无量纲" is not printed)."""
    return "" if unit in NO_UNIT else unit


def fmt_value(value: float, unit: str = "") -> str:
    """Thousands separators everywhere; counts as integers; two decimals below 100, one below 1,000."""
    if value is None or pd.isna(value):
        return "—"
    value = float(value)
    if unit in COUNT_UNITS or (value.is_integer() and abs(value) >= 100) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


PATH_SHOWN = 5  # steps of the path to the next grade a scorecard lists (the workbook has all)


def path_words(path, catalogue) -> dict | None:
    """The shortest path to the next grade, as a scorecard prints it (None: none to print)."""
    if path is None or not path.goal:
        return None
    ind = {i.id: i for i in catalogue.indicators}
    steps = [{"name": ind[s.indicator].name, "value": fmt_value(s.value, ind[s.indicator].unit),
              "target": fmt_value(s.target, ind[s.indicator].unit), "unit": unit_text(ind[s.indicator].unit),
              "points": f"{s.points:.1f}"} for s in path.steps]
    return {"goal": path.goal, "feasible": path.feasible, "steps": steps[:PATH_SHOWN], "count": len(steps),
            "more": len(steps) > PATH_SHOWN, "note": path.note,
            "reachable": fmt_score(path.reachable) if pd.notna(path.reachable) else "—"}


def fmt_score(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1f}"


def fmt_goalpost(value: float) -> str:
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def fmt_percent(value: float) -> str:
    return f"{value * 100:.0f}%"


# the map's fills, the same colours as the stylesheet's grade badges (.g1 = the top grade)
GRADE_FILLS = {"g1": "#0f5a3f", "g2": "#4f9a6f", "g3": "#b08d3c", "g4": "#b5523b", "g5": "#b5523b", "g6": "#b5523b"}


def grade_class(catalogue: Catalogue, grade: str) -> str:
    """g1 for the top grade, g2 the next...: each grade its own colour in the stylesheet."""
    names = [g.name for g in sorted(catalogue.grades, key=lambda g: -g.min)]
    return f"g{names.index(grade) + 1}" if grade in names else "g0"


def rating(catalogue: Catalogue, score: float) -> dict:
    """The four-colour rating of a normalised score (bands from method.yaml)."""
    if score is None or pd.isna(score):
        return {"name": "缺数据", "colour": "grey"}
    band = next(b for b in catalogue.method.ratings.bands if score >= b.min - 1e-9)
    return {"name": band.name, "colour": band.colour}


def trend_category(catalogue: Catalogue, years: list[int], scores: list[float]) -> str | None:
    """improving / moderately_improving / stagnating / declining from the least-squares slope of the
    normalised scores (points a year); None with fewer than two years."""
    points = [(float(y), float(s)) for y, s in zip(years, scores) if s is not None and not pd.isna(s)]
    if len(points) < 2:
        return None
    # the least-squares slope in closed form (np.polyfit on three points cost about 0.1 ms, per indicator and county)
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    # rounded, so that a slope exactly on a threshold (scores are given to a few decimals) is on it, not a rounding
    # error either side
    slope = round(sum((x - mean_x) * (y - mean_y) for x, y in points) / spread, 9)
    t = catalogue.method.ratings.trend
    if slope >= t.improving:
        return "improving"
    if slope >= t.moderately_improving:
        return "moderately_improving"
    if slope > t.declining:
        return "stagnating"
    return "declining"


def _common(catalogue: Catalogue, info: RunInfo, title: str, kind: str) -> dict:
    return {
        "kind": kind,
        "sample": info.sample,
        "sample_label": SAMPLE_LABEL,
        "incomplete": info.incomplete,
        "incomplete_label": INCOMPLETE_LABEL,
        "title": title,
        "year": info.year,
        "version": info.version,
        "run_date": info.run_date,
        "run_date_text": fmt_date(info.run_date),
        "city": catalogue.city.name,
        "issuer": catalogue.city.issuer or catalogue.city.name,
        "doc_number": catalogue.city.doc_number,
        "contact": catalogue.city.contact,
        "generator": info.generator,
        "grades": "；".join(
            f"{g.name} ≥{g.min:g}" if g.min > 0 else f"{g.name} <{catalogue.grades[i - 1].min:g}"
            for i, g in enumerate(catalogue.grades)
        ),
        **method_words(catalogue),
        "revision": [],
        "corrected": [],  # ids of the indicators whose figures this edition corrected (set when issued)
    }


def county_context(result: ScoreResult, catalogue: Catalogue, code: str, info: RunInfo,
                   analysis: Analysis | None = None, trends: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                   gep=None) -> dict:
    """A scorecard's context; `trends`: trend_table(analysis, result, year), given when planning many;
    `gep`: the year's GEP account (evaluation.gep.Account), printed as the county's GEP account."""
    from evaluation.reporting import gepview, story

    analysis = analysis or Analysis()
    county = catalogue.county(code)
    zone = catalogue.zone_types[county.zone]
    dims = catalogue.dimensions
    zone_avg = result.zone_means().loc[county.zone]
    # the county's row of each frame, read once (300 reports x 270 single-cell lookups took seconds)
    raw, normalised, contributions = (result.county_row(f, code) for f in ("raw", "normalised", "contributions"))
    applicable, imputed, weights = (result.county_row(f, code) for f in ("applicable", "imputed", "weights"))
    dim_scores, dim_weights = (result.county_row(f, code) for f in ("dimension_scores", "dimension_weights"))
    progress = analysis.county_row("progress", code)
    if analysis.progress is not None and progress is None:
        raise KeyError(code)
    previous = analysis.county_row("previous_raw", code)
    history = analysis.indicator_history(code)
    dim_rows = [
        {
            "id": d.id,
            "name": d.name,
            "weight": fmt_percent(dim_weights[d.id]),
            "score": fmt_score(dim_scores[d.id]),
            "zone_avg": fmt_score(zone_avg[d.id]),
            "points": fmt_score(dim_scores[d.id] * dim_weights[d.id]),
            "change": fmt_change(progress[d.id]) if progress is not None else "—",
        }
        for d in dims
    ]
    unc = analysis.county_row("uncertainty", code)
    if analysis.uncertainty is not None and unc is None:
        raise KeyError(code)
    checks = (analysis.readiness or {}).get(code, [])
    dim_name = {d.id: f"{d.id} {d.name}" for d in dims}
    rows, not_applicable, notes = [], [], list(info.notes)
    for ind in catalogue.indicators:
        if not applicable[ind.id]:
            not_applicable.append(ind.name)
            continue
        is_imputed = bool(imputed[ind.id])
        if is_imputed:
            notes.append(f"“{ind.name}”缺失，按规则计最低分（{catalogue.missing_score:g}分），保留其权重。")
        change, change_class = "—", "same"
        if previous is not None and ind.id in previous:
            before, now = previous[ind.id], raw[ind.id]
            if pd.notna(before) and pd.notna(now):
                delta = now - before
                if abs(delta) <= 1e-9 * max(1.0, abs(before)):
                    change = "→ 0"
                else:
                    change = f"{'↑' if delta > 0 else '↓'} {fmt_value(abs(delta), ind.unit)}"
                    change_class = "better" if delta * ind.direction > 0 else "worse"
        category = trend_category(catalogue, *((history[0], history[1].get(ind.id, [])) if history else ([], [])))
        symbol, trend_name = TREND_WORDS[category]
        rows.append({
            "id": ind.id,
            "change": change,
            "change_class": change_class,
            "dimension": dim_name[ind.dimension],
            "name": ind.name,
            "value": fmt_value(raw[ind.id], ind.unit),
            "unit": unit_text(ind.unit),
            "goalposts": f"{fmt_goalpost(ind.goalposts[0])}–{fmt_goalpost(ind.goalposts[1])}",
            "direction": "正向" if ind.direction > 0 else "逆向",
            "score": fmt_score(normalised[ind.id]),
            "rating": rating(catalogue, normalised[ind.id] if not is_imputed else float("nan")),
            "trend": {"symbol": symbol, "name": trend_name, "class": category or "none"},
            "points": f"{contributions[ind.id]:.2f}",
            "source": "、".join(dict.fromkeys(info.sources.get(v, "—") for v in ind.inputs)),
            "imputed": is_imputed,
        })
    if not county.verified:
        notes.insert(0, f"本县区主体功能区类型（{zone.name}）尚未经主管部门确认，按配置中的暂定类型评价。")
    notes.extend(info.county_notes.get(code, ()))
    gep_section = gepview.county(gep, catalogue, code)
    if gep_section and gep_section["cross_check"]:
        notes.append(gep_section["cross_check"])
    overall_change = progress["overall"] if progress is not None else None
    change_text, change_class = change_words(overall_change)
    gains = story.points_available(result, catalogue, code)
    gap = story.next_grade(float(result.overall[code]), catalogue)
    return {
        **_common(catalogue, info, f"{info.year}年度“两山”转化绩效评价报告", "county"),
        "revision": list(info.revisions.get(code, ())),
        "county": {"code": code, "name": county.name, "zone_name": zone.name, "zone_verified": county.verified},
        "overall": {
            "score": fmt_score(result.overall[code]),
            "grade": result.grade[code],
            "grade_class": grade_class(catalogue, result.grade[code]),
            "rank": int(result.rank[code]),
            "rank_of": len(result.overall),
            "zone_rank": int(result.zone_rank[code]),
            "zone_rank_of": int(result.zone_size[code]),
            "zone_name": zone.name,
            "change": change_text,
            "change_class": change_class,
            "rank_interval": fmt_interval(unc["rank_p05"], unc["rank_median"], unc["rank_p95"]) if unc is not None else "—",
            "zone_rank_interval": (fmt_interval(unc["zone_rank_p05"], unc["zone_rank_median"], unc["zone_rank_p95"])
                                   if unc is not None else "—"),
        },
        "story": story.sentences(result, catalogue, code, info.year, progress),
        "gains": [{"name": g.name, "value": fmt_value(g.value, g.unit), "unit": unit_text(g.unit),
                   "score": fmt_score(g.score), "points": f"{g.points:.1f}",
                   "target": "—" if g.target is None else fmt_goalpost(g.target),
                   "how": "提高到" if g.direction > 0 else "降低到"} for g in gains],
        "gains_total": f"{sum(g.points for g in gains):.1f}",
        "path": path_words(((analysis.paths or {}).get(code) or {}).get("grade"), catalogue),
        "next_grade": ({"name": gap[0], "gap": f"{gap[1]:.1f}"} if gap else None),
        "readiness": {
            "checks": [{"name": c.name, "value": "—" if c.value is None else fmt_value(c.value), "threshold": c.threshold,
                        "status": {True: "达标", False: "未达标", None: "缺数据"}[c.met],
                        "met": c.met is True} for c in checks],
            "ready": is_ready(checks),
            "verified": catalogue.readiness.verified,
            "named": "；".join(f"{n.year}年已命名为{n.level}“两山”实践创新基地" for n in catalogue.readiness.named
                              if n.code == code),
        },
        "ratings": {"bands": [{"name": b.name, "colour": b.colour,
                               "range": f"≥{b.min:g}分" if b.min > 0 else f"<{catalogue.method.ratings.bands[-2].min:g}分"
                               if len(catalogue.method.ratings.bands) > 1 else "全部"}
                              for b in catalogue.method.ratings.bands],
                    "verified": catalogue.method.ratings.verified,
                    "trend": [f"{TREND_WORDS[k][0]} {TREND_WORDS[k][1]}" for k in
                              ("improving", "moderately_improving", "stagnating", "declining")],
                    "thresholds": catalogue.method.ratings.trend.model_dump()},
        "dimensions": dim_rows,
        "radar": {
            "labels": [d.name for d in dims],
            "county": [round(float(dim_scores[d.id]), 1) for d in dims],
            "zone_avg": [round(float(zone_avg[d.id]), 1) for d in dims],
            "county_label": county.name,
            "zone_label": f"{zone.name}平均",
        },
        "indicators": rows,
        "trend": _trend(trends or trend_table(analysis, result, info.year), code, county.name, county.zone, zone.name),
        "appendix": [
            {"dimension": dim_name[d.id], "weight": fmt_percent(dim_weights[d.id]),
             "detail": "、".join(
                 f"{ind.name} {weights[ind.id] * dim_weights[d.id] * 100:.1f}%"
                 for ind in catalogue.indicators
                 if ind.dimension == d.id and applicable[ind.id])}
            for d in dims
        ],
        "not_applicable": not_applicable,
        "notes": notes,
        "gep": gep_section,
    }


def trend_table(analysis: Analysis | None, result: ScoreResult, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(year x county composite, year x zone type average) for the trend charts: made once per plan, as
    per county it would cost O(counties²) at national scale."""
    trend = analysis.trend if analysis is not None else None
    overall = result.overall.to_frame(year).T if trend is None else trend["overall"].unstack("county_code")
    zone_means = overall.T.groupby(result.zones.reindex(overall.columns)).mean().T
    return overall, zone_means


def _trend(table: tuple[pd.DataFrame, pd.DataFrame], code: str, name: str, zone: str, zone_name: str) -> dict:
    """The composite per year: the county and its zone type's average (two lines)."""
    overall, zone_means = table
    # no city average: a correction anywhere would then change every county's document (and re-issue it)
    series = [(name, overall[code]), (f"{zone_name}平均", zone_means[zone])]
    return {
        "years": [int(y) for y in overall.index],
        "series": [{"label": label, "values": [None if pd.isna(v) else round(float(v), 1) for v in values]}
                   for label, values in series],
        "unit": "综合得分（分）",
    }


def _listed(names: list[str], cap: int = 30) -> list[str]:
    """At most `cap` names, then one entry saying how many more (a national list stays a line)."""
    return names if len(names) <= cap else names[:cap] + [f"等共 {len(names)} 个县区"]


def summary_context(result: ScoreResult, catalogue: Catalogue, info: RunInfo,
                    analysis: Analysis | None = None, gep=None) -> dict:
    from evaluation.reporting import gepview, maps

    analysis = analysis or Analysis()
    dims = catalogue.dimensions
    table = result.summary()
    progress = analysis.progress
    ranking = []
    for code, row in table.iterrows():
        county = catalogue.county(str(code))
        change = progress.at[code, "overall"] if progress is not None and code in progress.index else None
        ranking.append({
            "change": fmt_change(change) if change is not None else "—",
            "grade_class": grade_class(catalogue, row["grade"]),
            "rank": int(row["rank"]),
            "code": str(code),
            "name": county.name,
            "zone_name": catalogue.zone_types[county.zone].name,
            "score": fmt_score(row["overall"]),
            "grade": row["grade"],
            "zone_rank": f"{int(row['zone_rank'])}/{int(row['zone_size'])}",
            "dims": [fmt_score(row[d.id]) for d in dims],
            "rank_interval": (f"{int(analysis.uncertainty.at[code, 'rank_p05'])}–{int(analysis.uncertainty.at[code, 'rank_p95'])}"
                              if analysis.uncertainty is not None else "—"),
            "ready": is_ready((analysis.readiness or {}).get(str(code), [])),
        })
    zones = []
    for zone_id, zone in catalogue.zone_types.items():
        members = table[table["zone"] == zone_id]
        if members.empty:
            continue
        weights = catalogue.zone_weights(zone_id)
        zones.append({
            "name": zone.name,
            "count": len(members),
            "mean": fmt_score(members["overall"].mean()),
            "best": catalogue.county(str(members.index[0])).name,
            "weights": " · ".join(f"{d.id} {fmt_percent(weights[d.id])}" for d in dims),
        })
    # A province's or a country's summary lists the first and last counties; the full ranking
    # travels as a CSV attachment (see pipeline.report_plan). 2,844 rows made a 152-page PDF.
    every = ranking
    if len(ranking) > SUMMARY_LISTED:
        half = SUMMARY_LISTED // 2
        ranking = ranking[:half] + ranking[-half:]
    listed = {r["code"] for r in ranking}
    notes = list(info.notes)
    unverified = [c.name for c in catalogue.counties if not c.verified]
    if unverified:
        shown = "、".join(unverified[:SUMMARY_LISTED])
        more = f"等 {len(unverified)} 个县区" if len(unverified) > SUMMARY_LISTED else ""
        notes.insert(0, f"以下县区的主体功能区类型尚未经主管部门确认：{shown}{more}。")
    city_gep = gepview.city_totals(gep, catalogue)
    if city_gep is not None:
        notes.append(f"GEP核算：全市生态系统生产总值 {city_gep['total']} 亿元（"
                     + "、".join(f"{g['name']} {g['share']}" for g in city_gep["groups"])
                     + f"），生态产品价值实现量 {city_gep['realised']} 亿元，价值实现率 {city_gep['conversion']}。")
        if city_gep["flagged"]:
            notes.append("以下县区发改委填报的GEP与核算结果相差超过核对容差，评价采用核算结果：" + "、".join(_listed(city_gep["flagged"])) + "。")
    grades_desc = sorted(catalogue.grades, key=lambda g: -g.min)
    city_change = (progress["overall"].mean() if progress is not None and progress["overall"].notna().any() else None)
    ready_n = len((analysis.city_readiness or {}).get("ready", []))
    return {
        **_common(catalogue, info, f"{info.year}年度{catalogue.city.name}“两山”转化绩效评价汇总报告", "summary"),
        "revision": list(info.revisions.get(catalogue.city.code, ())),
        "map": {
            "areas": [{"code": str(code), "name": catalogue.county(str(code)).name if len(table) <= 40 else "",
                       "fill": GRADE_FILLS.get(grade_class(catalogue, row["grade"]), "#6b7772")}
                      for code, row in table.sort_index().iterrows()],
            "legend": [[g.name, GRADE_FILLS.get(f"g{i + 1}", "#6b7772")] for i, g in enumerate(grades_desc)],
            "source": maps.data_version(),
            "missing": _listed([catalogue.county(str(c)).name for c in table.sort_index().index
                                if not maps.has_boundary(str(c))]),
            "disclaimer": maps.DISCLAIMER,
        },
        "city_average": {"score": fmt_score(table["overall"].mean()),
                         "change": fmt_change(city_change) if city_change is not None else "—",
                         "dims": [fmt_score(table[d.id].mean()) for d in dims]},
        "dimension_key": "、".join(f"{d.id} {d.name}" for d in dims),
        "base_progress": (f"全部暂定创建信号达标 {ready_n} 个县区（共 {len(catalogue.counties)} 个）。"
                          "达标不等于已创建：“两山”实践创新基地由生态环境部评选命名。"),
        "dimension_names": [d.name for d in dims],
        "ranking": ranking,
        "ranking_omitted": len(every) - len(ranking),
        "ranking_after": SUMMARY_LISTED // 2,
        "zones": zones,
        "heat": {
            "rows": [r["name"] for r in ranking],
            "columns": [d.name for d in dims],
            "values": [[round(float(table.at[r["code"], d.id]), 1) for d in dims] for r in ranking],
        },
        "distribution": {  # every county's dot; names only for the listed ones
            "labels": [r["name"] if r["code"] in listed else "" for r in every],
            "scores": [round(float(table.at[r["code"], "overall"]), 1) for r in every],
            "zones": [r["zone_name"] for r in every],
        },
        "bar": {
            "labels": [r["name"] for r in ranking],
            "scores": [round(float(table.at[r["code"], "overall"]), 1) for r in ranking],
            "zones": [r["zone_name"] for r in ranking],
        },
        "notes": notes,
        "readiness": {
            "ready": _listed([catalogue.county(c).name for c in (analysis.city_readiness or {}).get("ready", [])]),
            "total": len(catalogue.counties),
            "targets": (analysis.city_readiness or {}).get("targets", []),
            "verified": catalogue.readiness.verified,
            "named": "、".join(f"{catalogue.county(n['code']).name}（{n['year']}年{n['level']}）"
                              for n in (analysis.city_readiness or {}).get("named", [])),
        },
    }

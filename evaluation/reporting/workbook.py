"""The analysts' workbook: every figure of a version in one .xlsx, with where each input came from.

Sheets (Chinese headers, frozen header rows, number formats): 排名 (ranking, dimension scores, rank
intervals, change on last year), 指标明细 (each county's indicator values, normalised scores, weights
and points), 创建信号 (base readiness signals), 升级路径 (each county's shortest path to the next grade and to
every signal), 统计审计 (Cronbach's alpha, the first component's share, flags and each indicator's spread per
dimension), 敏感性分析 (Sobol indices of the rank correlation and of each county's rank), GEP汇总 and GEP核算账户
(each county's GEP account: items, classes, constant-price growth, conversion rate, the figures and rows each item
was computed from), 数据来源 (each input
figure's bureau, file, sheet, row and the sha256 of the submission it came from) and 说明. Every text cell is formula-safe (a leading = + - @ is
neutralised), and the bytes depend only on the figures: the zip entries and the document
properties carry the run date, so two runs give the same file. Written by `xlsx.Workbook`, which streams each
sheet into the zip (a national workbook has about five million cells).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from evaluation.reporting.xlsx import Workbook

SAMPLE_NOTE = "示例数据：本工作簿由示例数据生成，仅用于演示，不代表任何县区的真实情况。"


def file_name(city: str, year: int) -> str:
    return f"{city}_{year}_评价结果.xlsx"


def _sheet(book: Workbook, title: str, header: list[str], rows, formats: dict[int, str],
           widths: dict[int, float]) -> None:
    """A sheet with a frozen header row (and its first three columns, when it has more than three); rows may be a
    generator (the largest sheets are never held in memory whole)."""
    book.sheet(title, header, rows, formats, widths, freeze_columns=0 if len(header) < 4 else 3)


PATH_KIND = {"grade": "升至下一等级", "readiness": "达到全部创建信号"}
ZONE_INPUT = "weights."


def _analysis_sheets(wb, result, catalogue, analysis, names: dict[str, str]) -> None:
    """升级路径, 统计审计 and 敏感性分析 (empty tables when the run was not analysed)."""
    from evaluation.index import audit as audit_module
    from evaluation.index import paths as path_module

    ind = {i.id: i for i in catalogue.indicators}
    header = ["县区代码", "县区", "目标", "目标等级/信号", "当前综合得分", "目标综合得分", "一年内可行", "指标", "单位",
              "现值", "目标值", "改善量", "增加综合得分", "每年可行改善幅度", "说明"]
    rows = []
    if analysis is not None and analysis.paths:
        table = path_module.table(analysis.paths, catalogue)
        for r in table.itertuples(index=False):
            rows.append([r.county_code, names.get(r.county_code, r.county_code), PATH_KIND[r.kind], r.goal,
                         r.current, r.target_score if r.kind == "grade" else None, "是" if r.feasible else "否",
                         r.name, r.unit, r.value, r.target, r.change, r.points, r.cap,
                         r.note or (f"一年最多可达 {r.reachable:.1f} 分" if pd.notna(r.reachable) else None)])
    _sheet(wb, "升级路径", header, rows, {5: "0.00", 6: "0.00", 10: "#,##0.00", 11: "#,##0.00", 12: "+#,##0.00;-#,##0.00",
                                        13: "0.00", 14: "#,##0.00"}, {2: 10, 4: 14, 8: 24, 15: 40})

    dims = {d.id: d.name for d in catalogue.dimensions}
    header = ["类别", "维度", "指标/项目", "数值", "说明"]
    rows = []
    audit = analysis.audit if analysis is not None else None
    if audit is not None:
        for g in audit.groups:
            label = f"{g.group} {dims.get(g.group, '')}"
            common = "、".join(ind[c].name for c in g.children)
            rows.append(["一致性", label, "Cronbach's α", g.cronbach_alpha, f"{g.units}个县区；所有功能区均适用的指标：{common}"])
            rows.append(["一致性", label, "第一主成分方差占比", g.pc1_share, "标准化后相关矩阵最大特征值/指标数"])
            others = audit.zone_specific.get(g.group) or []
            if others:
                rows.append(["一致性", label, "仅部分功能区适用的指标", None, "、".join(ind[c].name for c in others)
                             + "（不计入α与主成分，仅作相关与离散检查）"])
        for f in audit.flags.itertuples(index=False):
            rows.append(["标记", f"{f.group} {dims.get(f.group, '')}", audit_module.flag_label(f.indicator, ind), f.value,
                         audit_module.FLAG_ZH.get(f.kind, f.kind)])
        for code, r in audit.spread.iterrows():
            rows.append(["离散度", f"{r['dimension']} {dims.get(r['dimension'], '')}", ind[code].name, r["sd"],
                         f"{int(r['counties'])}个县区；标准化得分 {r['min']:.1f}–{r['max']:.1f}；"
                         f"满分占 {r['at_top']:.0%}，零分占 {r['at_bottom']:.0%}"
                         + ("；区分度不足，建议复核目标值" if r["bunched"] else "")])
    _sheet(wb, "统计审计", header, rows, {4: "0.000"}, {2: 14, 3: 30, 5: 70})

    header = ["输出", "县区代码", "县区", "不确定输入", "一阶指数 S1", "S1 95%区间半宽", "总效应指数 ST", "ST 95%区间半宽",
              "排名范围"]
    rows = []
    sens = analysis.sensitivity if analysis is not None else None
    if sens is not None:
        for key, r in sens.correlation.iterrows():
            rows.append(["与基准排名的Spearman相关系数", None, None, sens.labels.get(key, key), r["S1"], r["S1_conf"],
                         r["ST"], r["ST_conf"], None])
        ranges = sens.rank_range
        for code in sens.total.index:
            span = f"{int(ranges.at[code, 'rank_min'])}–{int(ranges.at[code, 'rank_max'])}"
            for key in sens.inputs:
                rows.append(["县区排名", str(code), names.get(str(code), str(code)), sens.labels.get(key, key),
                             sens.first.at[code, key], None, sens.total.at[code, key], None, span])
    _sheet(wb, "敏感性分析", header, rows, {5: "0.000", 6: "0.000", 7: "0.000", 8: "0.000"}, {1: 26, 4: 24})


def _gep_sheets(wb, account, catalogue, facts: pd.DataFrame | None, names: dict[str, str]) -> None:
    """GEP汇总 (per county: GEP, classes, per capita, growth at constant prices, conversion rate, the cross-check)
    and GEP核算账户 (per county and item: quantity, price, value, the change split into quantity and price
    effects, and every reported figure it was computed from, with the bureau, file and row)."""
    if account is None:
        return
    from evaluation.gep.config import CLASSES

    where: dict[tuple[str, str], str] = {}
    dept = {k: d.label for k, d in catalogue.departments.items()}
    if facts is not None and not facts.empty:
        for f in facts.itertuples(index=False):
            var = catalogue.variables.get(f.variable_id)
            shown = "—" if pd.isna(f.value) else f"{f.value:g}"
            where[(f.county_code, f.variable_id)] = (
                f"{var.name if var else f.variable_id} {shown}（{dept.get(f.department, f.department)}"
                f"《{getattr(f, 'original_name', '') or ''}》第{int(f.row)}行）")
    classes = [c for c in CLASSES if c in account.classes.columns]
    check = account.config.cross_check
    header = (["县区代码", "县区", "GEP（亿元）"] + [f"{CLASSES[c]}（亿元）" for c in classes]
              + ["人均GEP（万元/人）", "GEP/GDP（倍）", "上年GEP（亿元）", "实物量变化（亿元）", "价格变化（亿元）",
                 "GEP增速（不变价，%）", "价值实现量（亿元）", "生态产品价值实现率（%）", "发改委填报GEP（亿元）",
                 "填报与核算之差（%）", "超出核对容差", "价格基准年"])
    q_eff, p_eff = account.quantity_effect, account.price_effect
    prev = account.previous_total
    rows = []
    for code in account.total.index:
        rows.append([code, names.get(code, code), account.total[code]]
                    + [account.classes.at[code, c] for c in classes]
                    + [account.per_capita[code] if account.per_capita is not None else None,
                       account.gdp_ratio[code] if account.gdp_ratio is not None else None,
                       prev[code] if prev is not None else None,
                       q_eff.loc[code].sum(skipna=False) if q_eff is not None else None,
                       p_eff.loc[code].sum(skipna=False) if p_eff is not None else None,
                       account.growth[code], account.realised[code], account.conversion[code],
                       account.reported[code] if account.reported is not None else None,
                       account.difference[code] * 100 if account.difference is not None else None,
                       ("是" if bool(account.flagged()[code]) else "否") if check is not None else None,
                       account.base_year[code] if account.base_year is not None else None])
    n = len(classes)
    _sheet(wb, "GEP汇总", header, rows,
           {3: "#,##0.00", **{4 + i: "#,##0.00" for i in range(n)}, 4 + n: "0.00", 5 + n: "0.00", 6 + n: "#,##0.00",
            7 + n: "+#,##0.00;-#,##0.00", 8 + n: "+#,##0.00;-#,##0.00", 9 + n: "+0.00;-0.00", 10 + n: "#,##0.00",
            11 + n: "0.00", 12 + n: "#,##0.00", 13 + n: "+0.0;-0.0", 15 + n: "0"}, {2: 10})
    header = ["县区代码", "县区", "类别", "核算项目", "核算方法", "实物量", "单位", "实物量口径", "价格", "价格单位",
              "价值（亿元）", "占GEP比重", "上年价值（亿元）", "实物量变化（亿元）", "价格变化（亿元）",
              "所用报送数据及来源", "依据"]
    rows = []
    for code in account.total.index:
        total = account.total[code]
        for item in account.items:
            value = account.value.at[code, item.id]
            used = "；".join(where.get((code, v), f"{catalogue.variables[v].name}（未报送）")
                            for v in account.config.item_inputs(item) if v in catalogue.variables)
            rows.append([code, names.get(code, code), item.class_name, item.name, item.method_name,
                         account.quantity.at[code, item.id], item.unit, account.basis.at[code, item.id],
                         account.price.at[code, item.id], item.price_unit, value,
                         value / total if pd.notna(total) and total else None,
                         account.previous_value.at[code, item.id] if account.previous_value is not None else None,
                         q_eff.at[code, item.id] if q_eff is not None else None,
                         p_eff.at[code, item.id] if p_eff is not None else None, used, item.source])
    _sheet(wb, "GEP核算账户", header, rows,
           {6: "#,##0.00", 9: "#,##0.####", 11: "#,##0.00", 12: "0.0%", 13: "#,##0.00", 14: "+#,##0.00;-#,##0.00",
            15: "+#,##0.00;-#,##0.00"}, {2: 10, 4: 16, 16: 120, 17: 50})


def build(result, catalogue, info, analysis, facts: pd.DataFrame, *, progress: pd.DataFrame | None = None,
          gep=None) -> bytes:
    """The workbook's bytes (`gep`: the year's GEP account, for the GEP sheets).

    result: ScoreResult; info: RunInfo (year, run date, sample); analysis: Analysis (uncertainty,
    readiness); facts: the accepted input facts with provenance (county_code, variable_id, value, unit,
    department, original_name, sheet, row, submission_id).
    """
    stamp = datetime.fromisoformat(str(info.run_date)[:10])
    about = [["评价年度", info.year], ["城市", catalogue.city.name], ["生成日期", info.run_date],
             ["评价配置", catalogue.config_hash[:16]], ["等级划分", "；".join(f"{g.name} ≥{g.min:g}" for g in catalogue.grades)]]
    if info.sample:
        about.insert(0, ["说明", SAMPLE_NOTE])
    wb = Workbook(stamp, title=f"{info.year}年度{catalogue.city.name}“两山”转化绩效评价结果", author=catalogue.city.name)
    _sheet(wb, "说明", ["项目", "内容"], about, {}, {1: 14, 2: 90})
    _sheets(wb, result, catalogue, analysis, facts, progress, gep)
    return wb.close()


def _sheets(wb: Workbook, result, catalogue, analysis, facts: pd.DataFrame, progress: pd.DataFrame | None, gep) -> None:
    dims = catalogue.dimensions
    names = {c.code: c.name for c in catalogue.counties}
    zone_name = {k: z.name for k, z in catalogue.zone_types.items()}
    unc = analysis.uncertainty if analysis is not None else None
    prog = progress if progress is not None else (analysis.progress if analysis is not None else None)

    table = result.summary()
    header = ["排名", "县区代码", "县区", "主体功能区", "综合得分", "等级", "功能区内排名", "同类县区数",
              "排名稳健区间（5%）", "排名稳健区间（95%）", "综合得分较上年"] + [f"{d.id} {d.name}" for d in dims]
    rows = []
    for code, r in table.iterrows():
        code = str(code)
        rows.append([int(r["rank"]), code, names.get(code, code), zone_name.get(r["zone"], r["zone"]),
                     float(r["overall"]), r["grade"], int(r["zone_rank"]), int(r["zone_size"]),
                     int(unc.at[code, "rank_p05"]) if unc is not None else None,
                     int(unc.at[code, "rank_p95"]) if unc is not None else None,
                     float(prog.at[code, "overall"]) if prog is not None and code in prog.index else None]
                    + [float(r[d.id]) for d in dims])
    score_cols = {5: "0.0", 11: "+0.0;-0.0;0.0"} | {12 + i: "0.0" for i in range(len(dims))}
    _sheet(wb, "排名", header, rows, score_cols, {3: 10, 4: 22})

    dim_name = {d.id: d.name for d in dims}
    header = ["县区代码", "县区", "维度", "指标", "单位", "方向", "目标值下限", "目标值上限", "数值",
              "标准化得分", "占综合得分权重", "加权得分", "缺失按最低分计", "适用"]
    def indicator_rows():
        frames = {name: getattr(result, name).to_dict(orient="index")
                  for name in ("applicable", "weights", "dimension_weights", "raw", "normalised", "contributions",
                               "imputed")}
        for code in result.raw.index:
            f = {name: frame[code] for name, frame in frames.items()}
            for ind in catalogue.indicators:
                applicable = bool(f["applicable"][ind.id])
                weight = float(f["weights"][ind.id] * f["dimension_weights"][ind.dimension])
                yield [code, names.get(code, code), dim_name[ind.dimension], ind.name, ind.unit,
                       "正向" if ind.direction > 0 else "逆向", ind.goalposts[0], ind.goalposts[1],
                       float(f["raw"][ind.id]) if applicable else None,
                       float(f["normalised"][ind.id]) if applicable else None,
                       weight if applicable else None,
                       float(f["contributions"][ind.id]) if applicable else None,
                       "是" if bool(f["imputed"][ind.id]) else "否", "是" if applicable else "否"]

    _sheet(wb, "指标明细", header, indicator_rows(),
           {7: "#,##0.##", 8: "#,##0.##", 9: "#,##0.00", 10: "0.0", 11: "0.00%", 12: "0.00"}, {2: 10, 3: 14, 4: 26})

    header = ["县区代码", "县区", "信号", "本县区", "要求", "达标所需值", "结果"]
    rows = []
    for code, checks in sorted(((analysis.readiness or {}) if analysis is not None else {}).items()):
        for c in checks:
            rows.append([code, names.get(code, code), c.name, c.value, c.threshold, c.target,
                         {True: "达标", False: "未达标", None: "缺数据"}[c.met]])
    _sheet(wb, "创建信号", header, rows, {4: "#,##0.00", 6: "#,##0.00"}, {3: 30, 5: 20})
    _analysis_sheets(wb, result, catalogue, analysis, names)
    _gep_sheets(wb, gep, catalogue, facts, names)

    variables = catalogue.variables
    dept = {k: d.name for k, d in catalogue.departments.items()}
    header = ["县区代码", "县区", "变量", "数值", "单位", "报送部门", "文件", "工作表", "行", "提交编号（SHA-256）"]
    def fact_rows():
        if facts is None or facts.empty:
            return
        for f in facts.sort_values(["county_code", "variable_id"]).itertuples(index=False):
            var = variables.get(f.variable_id)
            yield [f.county_code, names.get(f.county_code, f.county_code),
                   var.name if var is not None else f.variable_id, f.value, f.unit,
                   dept.get(f.department, f.department), getattr(f, "original_name", None),
                   f.sheet, int(f.row) if pd.notna(f.row) else None, f.submission_id]

    _sheet(wb, "数据来源", header, fact_rows(), {4: "#,##0.####"}, {3: 24, 6: 12, 7: 36, 10: 66})

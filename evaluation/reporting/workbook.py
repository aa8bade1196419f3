"""The analysts' workbook: every figure of a version in one .xlsx, with where each input came from.

Sheets (Chinese headers, frozen header rows, number formats): 排名 (ranking, dimension scores, rank
intervals, change on last year), 指标明细 (each county's indicator values, normalised scores, weights
and points), 创建条件 (base readiness), 数据来源 (each input figure's bureau, file, sheet, row and the
sha256 of the submission it came from) and 说明. Every text cell is formula-safe (a leading = + - @ is
neutralised), and the bytes depend only on the figures: the zip entries and the document
properties carry the run date, so two runs give the same file.
"""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd

from evaluation.exports import formula_safe, reproducible_xlsx

SAMPLE_NOTE = "示例数据：本工作簿由示例数据生成，仅用于演示，不代表任何县区的真实情况。"
_HEADER_FILL = "1F6F5C"


def file_name(city: str, year: int) -> str:
    return f"{city}_{year}_评价结果.xlsx"


def _cell(value):
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return formula_safe(value) if isinstance(value, str) else value


def _sheet(wb, title: str, header: list[str], rows: list[list], formats: dict[int, str], widths: dict[int, float]):
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title)
    ws.append([formula_safe(h) for h in header])
    for row in rows:
        ws.append([_cell(v) for v in row])
    bold = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor=_HEADER_FILL)
    for c in ws[1]:
        c.font, c.fill = bold, fill
        c.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for col, fmt in formats.items():
        for (c,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            c.number_format = fmt
    for i in range(1, len(header) + 1):
        ws.column_dimensions[get_column_letter(i)].width = widths.get(i, max(8.0, 2.2 * len(header[i - 1]) + 2))
    ws.freeze_panes = "A2" if len(header) < 4 else "D2"
    ws.auto_filter.ref = ws.dimensions
    return ws


def build(result, catalogue, info, analysis, facts: pd.DataFrame, *, progress: pd.DataFrame | None = None) -> bytes:
    """The workbook's bytes.

    result: ScoreResult; info: RunInfo (year, run date, sample); analysis: Analysis (uncertainty,
    readiness); facts: the accepted input facts with provenance (county_code, variable_id, value, unit,
    department, original_name, sheet, row, submission_id).
    """
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
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
    rows = []
    for code in result.raw.index:
        for ind in catalogue.indicators:
            applicable = bool(result.applicable.at[code, ind.id])
            weight = float(result.weights.at[code, ind.id] * result.dimension_weights.at[code, ind.dimension])
            rows.append([code, names.get(code, code), dim_name[ind.dimension], ind.name, ind.unit,
                         "正向" if ind.direction > 0 else "逆向", ind.goalposts[0], ind.goalposts[1],
                         float(result.raw.at[code, ind.id]) if applicable else None,
                         float(result.normalised.at[code, ind.id]) if applicable else None,
                         weight if applicable else None,
                         float(result.contributions.at[code, ind.id]) if applicable else None,
                         "是" if bool(result.imputed.at[code, ind.id]) else "否", "是" if applicable else "否"])
    _sheet(wb, "指标明细", header, rows,
           {7: "#,##0.##", 8: "#,##0.##", 9: "#,##0.00", 10: "0.0", 11: "0.00%", 12: "0.00"}, {2: 10, 3: 14, 4: 26})

    header = ["县区代码", "县区", "条件", "本县区", "要求", "结果"]
    rows = []
    for code, checks in sorted(((analysis.readiness or {}) if analysis is not None else {}).items()):
        for c in checks:
            rows.append([code, names.get(code, code), c.name, c.value, c.threshold,
                         {True: "达标", False: "未达标", None: "缺数据"}[c.met]])
    _sheet(wb, "创建条件", header, rows, {4: "#,##0.00"}, {3: 30, 5: 20})

    variables = catalogue.variables
    dept = {k: d.name for k, d in catalogue.departments.items()}
    header = ["县区代码", "县区", "变量", "数值", "单位", "报送部门", "文件", "工作表", "行", "提交编号（SHA-256）"]
    rows = []
    if facts is not None and not facts.empty:
        for f in facts.sort_values(["county_code", "variable_id"]).itertuples(index=False):
            var = variables.get(f.variable_id)
            rows.append([f.county_code, names.get(f.county_code, f.county_code),
                         var.name if var is not None else f.variable_id, f.value, f.unit,
                         dept.get(f.department, f.department), getattr(f, "original_name", None),
                         f.sheet, int(f.row) if pd.notna(f.row) else None, f.submission_id])
    _sheet(wb, "数据来源", header, rows, {4: "#,##0.####"}, {3: 24, 6: 12, 7: 36, 10: 66})

    about = [["评价年度", info.year], ["城市", catalogue.city.name], ["生成日期", info.run_date],
             ["评价配置", catalogue.config_hash[:16]], ["等级划分", "；".join(f"{g.name} ≥{g.min:g}" for g in catalogue.grades)]]
    if info.sample:
        about.insert(0, ["说明", SAMPLE_NOTE])
    ws = _sheet(wb, "说明", ["项目", "内容"], about, {}, {1: 14, 2: 90})
    wb.move_sheet(ws, offset=-(len(wb.sheetnames) - 1))

    stamp = datetime.fromisoformat(str(info.run_date)[:10])
    wb.properties.creator = catalogue.city.name
    wb.properties.created = wb.properties.modified = stamp
    wb.properties.title = f"{info.year}年度{catalogue.city.name}“两山”转化绩效评价结果"
    buffer = io.BytesIO()
    wb.save(buffer)
    return reproducible_xlsx(buffer.getvalue(), stamp)

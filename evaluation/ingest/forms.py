"""Submission forms: an xlsx per bureau and year, generated from the catalogue.

A filled form goes back through ingest unchanged: the workbook carries a marker
(`twomountains-form:<department>:<year>` in its keywords), and ingest reads it with
the fixed form layout below instead of the bureau's usual layout.
"""

from __future__ import annotations

import datetime as dt
import io

from evaluation.catalogue import Catalogue, Source

FORM_KEYWORD = "twomountains-form"  # in a form's document properties: twomountains-form:<department>:<year>

FORM_SHEET = "填报表"
GUIDE_SHEET = "填报说明"
HEADER_ROW = 2
UNIT_ROW = 3
FIRST_DATA_ROW = 4


def _header(name: str, unit: str) -> str:
    return f"{name}（{unit}）"


def form_source(catalogue: Catalogue, department: str) -> Source:
    """How a filled form is read: fixed layout, catalogue units, county codes."""
    return Source(
        department=department,
        kind="folder",
        pattern="form.xlsx",
        format="xlsx",
        sheet=FORM_SHEET,
        header_row=HEADER_ROW,
        skip_rows=[UNIT_ROW],
        county_column="区县代码",
        ignore_columns=["区县名称"],
        columns={_header(v.name, v.unit): {"var": v.id} for v in catalogue.department_variables(department)},
    )


def make_form(catalogue: Catalogue, department: str, year: int, *, created: dt.datetime | None = None) -> bytes:
    """The xlsx bytes of a blank submission form for one bureau and year."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.worksheet.datavalidation import DataValidation

    if department not in catalogue.departments:
        known = "、".join(f"{k}（{d.name}）" for k, d in catalogue.departments.items())
        raise KeyError(f"未知部门 {department!r}。可选：{known}")
    dept = catalogue.departments[department]
    variables = catalogue.department_variables(department)
    counties = sorted(catalogue.counties, key=lambda c: c.code)

    wb = Workbook()
    ws = wb.active
    ws.title = FORM_SHEET
    ncols = 2 + len(variables)
    title = f"{year}年{catalogue.city.name}各县区“两山”转化绩效评价数据填报表（{dept.name}）"
    ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)

    head_fill = PatternFill("solid", fgColor="DDEBE3")
    thin = Side(style="thin", color="999999")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    headers = ["区县代码", "区县名称"] + [_header(v.name, v.unit) for v in variables]
    units = ["单位", "—"] + [v.unit for v in variables]
    for j, (head, unit) in enumerate(zip(headers, units), start=1):
        h = ws.cell(row=HEADER_ROW, column=j, value=head)
        h.font, h.fill, h.border = Font(bold=True), head_fill, border
        h.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        u = ws.cell(row=UNIT_ROW, column=j, value=unit)
        u.font, u.border = Font(italic=True, color="555555"), border
        u.alignment = Alignment(horizontal="center")
        ws.column_dimensions[h.column_letter].width = 12 if j <= 2 else max(14, len(head) * 1.6)
    ws.row_dimensions[HEADER_ROW].height = 45
    last = FIRST_DATA_ROW + len(counties) - 1
    for i, county in enumerate(counties, start=FIRST_DATA_ROW):
        ws.cell(row=i, column=1, value=county.code).border = border
        ws.cell(row=i, column=2, value=county.name).border = border
        for j in range(3, ncols + 1):
            ws.cell(row=i, column=j).border = border
    for j, var in enumerate(variables, start=3):
        low, high = var.range
        letter = ws.cell(row=HEADER_ROW, column=j).column_letter
        rule = DataValidation(
            type="decimal", operator="between", formula1=f"{low:g}", formula2=f"{high:g}", allow_blank=True,
            showErrorMessage=True, errorTitle="数值超出范围",
            error=f"{var.name}应填写 {low:g} 至 {high:g} 之间的数值（单位：{var.unit}）。",
            showInputMessage=True, promptTitle=var.name, prompt=f"单位：{var.unit}；范围 {low:g}～{high:g}",
        )
        rule.add(f"{letter}{FIRST_DATA_ROW}:{letter}{last}")
        ws.add_data_validation(rule)
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=3)

    guide = wb.create_sheet(GUIDE_SHEET)
    lines = [
        f"{title}——填报说明",
        "1. 请在“填报表”工作表中填写数值，不要修改表头、单位行、区县代码和区县名称，也不要增删行列或重命名工作表。",
        "2. 数值按“单位”行所示单位填写；百分比指标直接填写百分数（如 12.5 表示 12.5%）。",
        "3. 暂无数据的请留空，并在报送时说明原因；不要填写“无”“—”“/”等文字。",
        f"4. 本表仅用于 {year} 年度数据；报送后如需更正，请提交更正后的完整表格并说明更正原因。",
        "5. 报送前可在报送门户上传本表预校验，门户逐行指出需要修改之处；通过后再正式报送。",
        "",
    ]
    for r, text in enumerate(lines, start=1):
        guide.cell(row=r, column=1, value=text).font = Font(bold=r == 1)
    start = len(lines) + 1
    for j, head in enumerate(["指标", "单位", "合理范围", "说明"], start=1):
        cell = guide.cell(row=start, column=j, value=head)
        cell.font, cell.fill, cell.border = Font(bold=True), head_fill, border
    for i, var in enumerate(variables, start=start + 1):
        note = ("选填：填写则采用所填数值，不填则按公式核算" if var.optional else
                var.blank_zh or "超出范围的数值将被退回核实")
        values = [var.name, var.unit, f"{var.range[0]:g} ～ {var.range[1]:g}", note]
        for j, value in enumerate(values, start=1):
            guide.cell(row=i, column=j, value=value).border = border
    guide.column_dimensions["A"].width = 40
    guide.column_dimensions["B"].width = 14
    guide.column_dimensions["C"].width = 18
    guide.column_dimensions["D"].width = 30

    wb.properties.title = title
    wb.properties.creator = "twomountains"
    wb.properties.keywords = f"{FORM_KEYWORD}:{department}:{int(year)}"
    stamp = created or dt.datetime(int(year) + 1, 1, 1)
    wb.properties.created = stamp
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()

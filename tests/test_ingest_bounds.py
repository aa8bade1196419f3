"""No ordinary bureau mistake reaches a scorecard (issue 15, ingest): numbers mean one thing, the
table's own year, merged data cells, last year's file sent again, row and cell caps while
streaming, bureau text capped in messages, notices kept out of documents, encodings, the sheet
that holds the table, the drop folder (.xls, a second file, symlinks), a missing column once.

File cases that `twomountains validate` checks are in the hostile corpus (tests/data/hostile);
these are the rest."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook, load_workbook

from evaluation import operations, pipeline
from evaluation.catalogue import CatalogueError, Source, load_catalogue
from evaluation.ingest import IngestError, Received, discover, parse, parse_cell, read_submission, receive_file
from evaluation.validation import validate_submission

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
STATS_2023 = SAMPLE / "2023" / "统计局_2023年主要经济指标.xlsx"
WATER_2023 = SAMPLE / "2023" / "水务局_2023年水资源公报摘要.csv"
NAMES = ["武都区", "成县", "文县", "宕昌县", "康县", "西和县", "礼县", "徽县", "两当县"]
CODES = ["621202", "621221", "621222", "621223", "621224", "621225", "621226", "621227", "621228"]
# the water bureau's columns: the two index figures, then the GEP physical accounts (config/gep.yaml)
WATER_HEAD = ["县区名称", "水土保持率（%）", "用水总量（万立方米）", "年降水量（毫米）", "森林地表径流深（毫米）",
              "草地地表径流深（毫米）", "湿地地表径流深（毫米）", "森林蒸散发量（毫米）", "草地蒸散发量（毫米）",
              "湿地蒸散发量（毫米）", "水源涵养量（直接报送，万立方米）", "降雨侵蚀力因子R", "土壤可蚀性因子K",
              "坡长坡度因子LS", "洪水调蓄量（万立方米）"]
WATER_GEP_ROW = [700, 150, 200, 250, 380, 400, 420, "", 2000, 0.03, 5, 1500]
CFB_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # an OLE compound file: a legacy .xls (or an encrypted xlsx)

# Runs the CLI in a child and reports its peak memory (the refusal must not need the whole table).
# VmHWM, the peak RSS of the process image since exec: getrusage's ru_maxrss survives execve, so it
# also counted the pytest worker the child was spawned from (606 MB once, for a 328 MB refusal).
_MEASURED_CLI = """
import atexit, runpy, sys
def _peak():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
atexit.register(lambda: sys.stderr.write("MAXRSS_KB %d\\n" % _peak()))
sys.argv = ["twomountains"] + sys.argv[1:]
runpy.run_module("flows.cli", run_name="__main__")
"""


def _water_csv(rows: list[list[object]], head: list[str] = WATER_HEAD, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(",".join(str(c) for c in r) for r in [head] + rows) + "\r\n").encode(encoding)


def _water_rows() -> list[list[object]]:
    return [[n, 60 + i, 5000 + 100 * i] + WATER_GEP_ROW for i, n in enumerate(NAMES)]


def _received(data: bytes, fmt: str, dept: str, name: str | None = None, year: int = 2023) -> Received:
    return Received(dept, year, "folder", "test", name or f"t_{year}.{fmt}", data, fmt)


def _validate_cli(path: Path, department: str, out: Path, *, timeout: float = 120) -> tuple[int, str, float]:
    """(exit code, output, peak memory in MB) of `twomountains validate` in a child process."""
    proc = subprocess.run([sys.executable, "-c", _MEASURED_CLI, "validate", str(path), "--department", department,
                           "--year", "2023", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})
    rss = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB ")]
    return proc.returncode, proc.stdout + proc.stderr, (rss[-1] / 1024 if rss else float("nan"))


# -- 1. numbers mean one thing ---------------------------------------------------------


@pytest.mark.parametrize("raw,expected", [
    ("1,234", 1234.0), ("1,234,567.5", 1234567.5), ("-1,234", -1234.0), ("１２．５", 12.5), ("１，２３４", 1234.0),
    ("12.5%", 12.5), ("１２．５％", 12.5), ("−5", -5.0), (" 7 ", 7.0), ("1e3", 1000.0), (".5", 0.5), (3, 3.0),
    ("—", None), ("", None),
])
def test_unambiguous_number_forms_are_read(raw, expected):
    assert parse_cell(raw)[0] == expected


@pytest.mark.parametrize("raw,reason", [
    ("0,29", "疑似用逗号作小数点，请写作 0.29"),
    ("1,23", "疑似用逗号作小数点，请写作 1.23"),
    ("12,5%", "疑似用逗号作小数点，请写作 12.5%"),
    ("0,290", "疑似用逗号作小数点，请写作 0.290"),
    ("1.234,5", "疑似用点作千位分隔、逗号作小数点，请写作 1234.5"),
    ("12 345", "数字中间有空格，无法确定写法，请去掉空格（如 12345）"),
    ("12,34,567", "逗号的位置不对"),
    ("1234,567", "逗号的位置不对"),
    ("1.234.567", "有多个小数点"),
    ("12。5", "疑似用句号作小数点，请写作 12.5"),
    ("1e400", "必须是数值"),
    ("١٢", "必须是数值"),
    ("很好", "必须是数值"),
])
def test_ambiguous_number_forms_are_refused_with_the_expected_form(raw, reason):
    with pytest.raises(ValueError) as info:
        parse_cell(raw)
    assert reason in str(info.value)


def test_xlsx_cells_are_read_as_the_bureau_sees_them(catalogue):
    """A cell formatted as a percentage shows 29.16% but holds 0.2916; a date cell is not a number."""
    import datetime as dt

    wb = Workbook()
    ws = wb.active
    ws.append(["县区", "森林覆盖率（%）", "自然保护地面积占国土面积比例（%）"])
    for i, name in enumerate(NAMES):
        ws.append([name, 0.4 + i / 100, 10 + i])
        ws.cell(row=i + 2, column=2).number_format = "0.00%"
    ws["C3"] = dt.datetime(2023, 1, 5)
    ws["C3"].number_format = "yyyy-mm-dd"
    buf = io.BytesIO()
    wb.save(buf)
    source = Source(department="forestry", kind="folder", pattern="f.xlsx", format="xlsx", county_column="县区",
                    columns={"森林覆盖率（%）": {"var": "forest_cover"},
                             "自然保护地面积占国土面积比例（%）": {"var": "protected_area_share"}})
    sub = parse(_received(buf.getvalue(), "xlsx", "forestry"), source, catalogue)
    assert sub.table["forest_cover"].tolist() == pytest.approx([40 + i for i in range(9)])
    ((row, header, _raw, reason),) = sub.unparsed
    assert (row, header) == (3, "自然保护地面积占国土面积比例（%）") and "日期" in reason


# -- 2. the table's own year ---------------------------------------------------------------


@pytest.mark.parametrize("header", ["年度", "年份", "统计年度", "数据年度"])
def test_a_year_column_must_state_the_year_submitted(catalogue, header):
    rows = [[2023] + r for r in _water_rows()]
    rows[4][0] = 2022
    rows[6][0] = "2021年"
    sub = parse(_received(_water_csv(rows, [header] + WATER_HEAD), "csv", "water"), catalogue.sources["water"], catalogue)
    report = validate_submission(sub, catalogue)
    assert not report.accepted
    (finding,) = [f for f in report.errors if f.column == header]
    assert finding.rows == [6, 8] and finding.found == ["2022", "2021年"]
    assert "表中的年度与报送年度 2023 年不符" in finding.rule
    assert not [f for f in report.warnings if header in f.column]  # not an "ignored column" any more

    same = [[2023] + r for r in _water_rows()]
    sub = parse(_received(_water_csv(same, [header] + WATER_HEAD), "csv", "water"), catalogue.sources["water"], catalogue)
    report = validate_submission(sub, catalogue)
    assert report.accepted and not report.findings, report.summary_zh()


# -- 4. last year's file sent again ---------------------------------------------------------


def test_last_years_figures_sent_again_are_an_error(catalogue):
    sub = read_submission(STATS_2023, catalogue.sources["stats"], catalogue, 2023)
    previous = sub.table.drop(columns=["_row", "_county_raw"]).set_index("county_code")
    report = validate_submission(sub, catalogue, previous=previous)
    assert not report.accepted
    (finding,) = [f for f in report.errors if "疑似误报上年数据" in f.rule]
    assert finding.rule == "全部数值与上年已采用数据完全相同，疑似误报上年数据"

    last = read_submission(SAMPLE / "2022" / "统计局_2022年主要经济指标.xlsx", catalogue.sources["stats"], catalogue, 2022)
    report = validate_submission(sub, catalogue, previous=last.table.drop(columns=["_row", "_county_raw"]).set_index("county_code"))
    assert "疑似误报上年数据" not in report.summary_zh()
    changed = previous.copy()
    changed.iloc[3, 0] += 0.01  # one figure that moved is enough
    assert "疑似误报上年数据" not in validate_submission(sub, catalogue, previous=changed).summary_zh()


def test_only_variables_with_a_year_on_year_check_are_compared(catalogue):
    sub = read_submission(SAMPLE / "2023" / "发改委_2023年生态产品价值实现.xlsx", catalogue.sources["ndrc"], catalogue, 2023)
    previous = sub.table.drop(columns=["_row", "_county_raw"]).set_index("county_code")
    previous["price_base_year"] += 1  # max_change: null (a year): not part of the comparison
    previous["eod_projects"] += 1
    report = validate_submission(sub, catalogue, previous=previous)
    assert any("疑似误报上年数据" in f.rule for f in report.errors)


# -- 5. caps while streaming -------------------------------------------------------------------


def _sheet_xlsx(path: Path, sheet_xml_rows, *, dimension: str) -> None:
    """A minimal xlsx written part by part (fast for a million rows): one sheet, inline strings."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                   '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                   '</Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
                   '</Relationships>')
        z.writestr("xl/workbook.xml",
                   '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                   'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
                   '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
                   '</Relationships>')
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                      f'<dimension ref="{dimension}"/><sheetData>').encode())
            for chunk in sheet_xml_rows:
                fh.write(chunk.encode())
            fh.write(b"</sheetData></worksheet>")


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


@pytest.fixture(scope="module")
def million_row_xlsx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "水务局_2023年水资源公报摘要.xlsx"

    def rows():
        yield '<row r="1">' + "".join(_inline(f"{col}1", h) for col, h in zip("ABC", WATER_HEAD)) + "</row>"
        batch = []
        for r in range(2, 1_048_577):
            batch.append(f'<row r="{r}"><c r="A{r}"><v>{CODES[r % 9]}</v></c><c r="B{r}"><v>{60 + r % 30}</v></c>'
                         f'<c r="C{r}"><v>{5000 + r % 977}</v></c></row>')
            if len(batch) == 20000:
                yield "".join(batch)
                batch = []
        yield "".join(batch)

    _sheet_xlsx(path, rows(), dimension="A1:C1048576")
    return path


def test_a_million_row_xlsx_is_refused_while_streaming(million_row_xlsx, tmp_path):
    assert million_row_xlsx.stat().st_size > 5 * 2**20
    code, output, peak_mb = _validate_cli(million_row_xlsx, "water", tmp_path)
    print(f"1,048,576-row xlsx ({million_row_xlsx.stat().st_size / 2**20:.1f} MB): exit {code}, peak {peak_mb:.0f} MB")
    assert code == 2, output
    assert "Traceback" not in output
    assert "超过每表 10000 行的上限" in output, output
    assert peak_mb < 600, peak_mb  # the whole table took 3.8 GB


def test_one_cell_at_the_last_row_is_refused_while_streaming(tmp_path):
    wb = Workbook()
    ws = wb.active
    for col, header in zip("ABC", WATER_HEAD):
        ws[f"{col}1"] = header
    ws["A1048576"] = "武都区"
    path = tmp_path / "水务局_2023年水资源公报摘要.xlsx"
    wb.save(path)
    assert path.stat().st_size < 20_000
    code, output, peak_mb = _validate_cli(path, "water", tmp_path)
    print(f"one cell at A1048576 ({path.stat().st_size} bytes): exit {code}, peak {peak_mb:.0f} MB")
    assert code == 2 and "Traceback" not in output, output
    assert "工作表“Sheet”第 1048576 行有数据，超过每表 10000 行的上限" in output, output
    assert peak_mb < 600, peak_mb


def test_sheets_bloated_with_empty_cells_are_refused_and_positions_are_kept(catalogue, tmp_path):
    head = '<row r="1">' + "".join(_inline(f"{col}1", h) for col, h in zip("ABC", WATER_HEAD)) + "</row>"
    # cells without a reference sit after the previous one; empty formatted cells cost nothing else
    rows = [f'<row r="{i + 2}"><c t="inlineStr"><is><t>{n}</t></is></c><c r="B{i + 2}" s="1"/><c><v>{5000 + i}</v></c></row>'
            for i, n in enumerate(NAMES)]
    path = tmp_path / "positions.xlsx"
    _sheet_xlsx(path, [head] + rows, dimension="A1:C10")
    sub = parse(_received(path.read_bytes(), "xlsx", "water"), catalogue.sources["water"], catalogue)
    assert list(sub.table["county_code"]) == CODES and sub.table["water_use"].tolist() == [5000 + i for i in range(9)]
    assert sub.table["soil_conservation_rate"].isna().all()
    bloated = tmp_path / "bloated.xlsx"
    _sheet_xlsx(bloated, [head, "".join(f'<row r="{r}"><c r="A{r}" s="1"/><c r="B{r}" s="1"/><c r="C{r}" s="1"/></row>'
                                        for r in range(2, 100_000))], dimension="A1:C100000")
    with pytest.raises(IngestError, match="含有大量空行、空白单元格或格式"):
        parse(_received(bloated.read_bytes(), "xlsx", "water"), catalogue.sources["water"], catalogue)


def test_a_million_row_csv_is_refused_while_streaming(tmp_path):
    path = tmp_path / "水务局_2023年水资源公报摘要.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(WATER_HEAD) + "\r\n")
        fh.write("".join(f"{NAMES[r % 9]},{60 + r % 30},{5000 + r}\r\n" for r in range(1_048_575)))
    code, output, peak_mb = _validate_cli(path, "water", tmp_path)
    assert code == 2 and "超过每表 10000 行的上限" in output, output
    assert peak_mb < 600, peak_mb


def test_caps_come_from_the_configuration(catalogue, tmp_path):
    rows = _water_rows()
    small = catalogue.sources["water"].model_copy(update={"limits": catalogue.sources["water"].limits.model_copy(
        update={"max_rows": 5})})
    with pytest.raises(IngestError, match="超过每表 5 行的上限"):
        parse(_received(_water_csv(rows), "csv", "water"), small, catalogue)
    few_cells = small.model_copy(update={"limits": small.limits.model_copy(update={"max_rows": 100, "max_cells": 12})})
    with pytest.raises(IngestError, match="超过每表 12 个单元格的上限"):
        parse(_received(_water_csv(rows), "csv", "water"), few_cells, catalogue)
    wb = load_workbook(STATS_2023)
    buf = io.BytesIO()
    wb.save(buf)
    stats = catalogue.sources["stats"]
    narrow = stats.model_copy(update={"limits": stats.limits.model_copy(update={"max_columns": 5})})
    with pytest.raises(IngestError, match=r"工作表“主要指标”第 F 列（第 6 列）有数据，超过每表 5 列的上限"):
        parse(_received(buf.getvalue(), "xlsx", "stats"), narrow, catalogue)

    from evaluation.ingest.text import json_rows

    with pytest.raises(IngestError, match="超过每表 5 行的上限"):
        json_rows(b'[' + b",".join(b'{"a": 1}' for _ in range(50)) + b']', small.limits)

    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    doc = yaml.safe_load((config / "sources.yaml").read_text(encoding="utf-8"))
    doc["limits"] = {"max_rows": 3000, "max_cells": 90000}
    doc["sources"]["stats"]["limits"] = {"max_rows": 500}
    (config / "sources.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    other = load_catalogue(config)
    assert other.sources["stats"].limits.max_rows == 500 and other.sources["stats"].limits.max_cells == 90000
    assert other.sources["water"].limits.max_rows == 3000
    for bad in ({"max_rows": -1}, {"max_rows": float("inf")}, {"max_rows": 10**9}, {"max_rowz": 10}):
        doc["limits"] = bad
        (config / "sources.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        with pytest.raises(CatalogueError, match="limits"):
            load_catalogue(config)


# -- 6. and 7. bureau text is capped; ignored columns stay out of documents ---------------------


def test_bureau_text_is_capped_and_summarised(catalogue):
    long = "很长的列名" * 20000  # 100,000 characters
    extra = [long] + [f"备注{i}" for i in range(11)]
    rows = [r + ["—"] * 12 for r in _water_rows()]
    rows[2][0] = "某" * 100000  # a county cell nobody can read
    sub = parse(_received(_water_csv(rows, WATER_HEAD + extra), "csv", "water"), catalogue.sources["water"], catalogue)
    report = validate_submission(sub, catalogue)
    text = report.summary_zh()
    assert len(text) < 3000, len(text)
    assert "等 12 列" in text and long[:40] + "…" in text and "某" * 40 + "…" in text
    assert len(report.html()) < 20000

    head = [long] + WATER_HEAD[1:]
    with pytest.raises(IngestError) as info:
        parse(_received(_water_csv(_water_rows(), head), "csv", "water"), catalogue.sources["water"], catalogue)
    assert len(str(info.value)) < 500 and long[:40] + "…" in str(info.value)


def test_ignored_columns_stay_in_the_report_but_out_of_documents(catalogue, tmp_path):
    path = tmp_path / "水务局_2023年水资源公报摘要.csv"
    path.write_bytes(_water_csv([r + ["说明"] for r in _water_rows()], WATER_HEAD + ["备注"]))
    checked = operations.check_file(catalogue, "water", 2023, path)
    assert checked.accepted and [f.rule for f in checked.report.warnings] == ["表中有未配置的列，已忽略"]
    assert pipeline.warning_notes([checked]) == ((), {})


# -- 8. encodings ---------------------------------------------------------------------------


def test_encodings_are_read_when_the_headers_say_which(catalogue):
    source = catalogue.sources["water"]
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "gb18030"):
        sub = parse(_received(_water_csv(_water_rows(), encoding=encoding), "csv", "water"), source, catalogue)
        assert list(sub.table["county_code"]) == CODES, encoding
    # Big5 is read when the configured headers are found under it (here a source with traditional headers)
    big5 = Source(department="forestry", kind="folder", pattern="f.csv", format="csv", county_column="縣區",
                  columns={"森林覆蓋率（%）": {"var": "forest_cover"}, "自然保護地面積占國土面積比例（%）": {"var": "protected_area_share"}})
    text = "縣區,森林覆蓋率（%）,自然保護地面積占國土面積比例（%）\r\n" + "".join(f"{c},{50 + i},{i}\r\n" for i, c in enumerate(CODES))
    sub = parse(_received(text.encode("big5"), "csv", "forestry"), big5, catalogue)
    assert sub.table["forest_cover"].tolist() == [50 + i for i in range(9)]


# -- 10., 11. and 13. the drop folder ---------------------------------------------------------------


def _expected(catalogue, data: Path, department: str):
    (found,) = [e for e in discover(data, 2023, catalogue) if e.department == department]
    return found


def test_an_xls_in_the_drop_folder_is_unreadable_not_missing(catalogue, sample_copy, tmp_path):
    year = sample_copy / "2023"
    (year / "统计局_2023年主要经济指标.xlsx").unlink()
    old = year / "统计局_2023年主要经济指标.xls"
    old.write_bytes(CFB_MAGIC + bytes(504))
    expected = _expected(catalogue, sample_copy, "stats")
    assert expected.present
    (intake,) = operations.check_folder(catalogue, sample_copy, 2023, departments={"stats"})
    assert intake.status == "unreadable", intake
    assert "统计局_2023年主要经济指标.xls" in intake.message and "另存为" in intake.message and ".xlsx" in intake.message
    (line,) = pipeline.completeness([intake])
    assert "无法读取" in line and "另存为" in line
    code, output, _ = _validate_cli(old, "stats", tmp_path)
    assert code == 2 and "是旧版 Excel（.xls）文件" in output, output


def test_a_second_file_for_the_same_bureau_is_reported(catalogue, sample_copy):
    year = sample_copy / "2023"
    shutil.copy(year / "统计局_2023年主要经济指标.xlsx", year / "统计局_2023年主要经济指标（更正）.xlsx")
    (year / "~$统计局_2023年主要经济指标.xlsx").write_bytes(b"lock")  # Excel's lock file is nobody's table
    (year / "统计局_2023年主要经济指标.xlsx.校验报告.html").write_text("<html/>", encoding="utf-8")
    (intake,) = operations.check_folder(catalogue, sample_copy, 2023, departments={"stats"})
    assert intake.accepted
    notices = [f for f in intake.report.warnings if "未读取" in f.rule]
    assert len(notices) == 1, intake.report.summary_zh()
    text = notices[0].rule
    assert "统计局_2023年主要经济指标（更正）.xlsx" in text and "统计局_2023年主要经济指标.xlsx" in text
    assert "twomountains correct" in text
    assert pipeline.warning_notes([intake]) == ((), {})  # not about the figures: not on the scorecards
    (eco,) = operations.check_folder(catalogue, sample_copy, 2023, departments={"eco"})
    assert eco.accepted and not eco.report.findings

    # the configured name is missing but a file that looks like the bureau's is there
    (year / "统计局_2023年主要经济指标.xlsx").unlink()
    (intake,) = operations.check_folder(catalogue, sample_copy, 2023, departments={"stats"})
    assert intake.status == "missing" and "统计局_2023年主要经济指标（更正）.xlsx" in intake.message
    (line,) = pipeline.completeness([intake])
    assert "统计局_2023年主要经济指标（更正）.xlsx" in line


def test_only_regular_files_are_read(catalogue, sample_copy, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("TOPSECRET-FIRST-LINE,1,2\n", encoding="utf-8")
    water = sample_copy / "2023" / "水务局_2023年水资源公报摘要.csv"
    water.unlink()
    water.symlink_to(secret)
    code, output, _ = _validate_cli(water, "water", tmp_path, timeout=60)
    assert code == 2 and "是符号链接" in output and "TOPSECRET" not in output, output
    expected = _expected(catalogue, sample_copy, "water")
    assert expected.present  # present, and refused
    (intake,) = operations.check_folder(catalogue, sample_copy, 2023, departments={"water"})
    assert intake.status == "unreadable" and "符号链接" in intake.message and "TOPSECRET" not in intake.message
    water.unlink()
    water.symlink_to(tmp_path / "nowhere.csv")  # a dangling link is present too
    assert _expected(catalogue, sample_copy, "water").present

    fifo = tmp_path / "水务局_2023年水资源公报摘要.csv"
    os.mkfifo(fifo)
    code, output, _ = _validate_cli(fifo, "water", tmp_path, timeout=60)  # reading a FIFO would block
    assert code == 2 and "不是普通文件" in output, output
    with pytest.raises(IngestError, match="不是普通文件"):
        receive_file("/dev/zero", catalogue.sources["water"], 2023)


# -- 12. a missing column, once ---------------------------------------------------------------------


@pytest.mark.parametrize("column", [4, 5, 6])
def test_a_missing_stats_column_is_reported_once(catalogue, column):
    wb = load_workbook(STATS_2023)
    ws = wb["主要指标"]
    header = ws.cell(row=2, column=column).value
    ws.delete_cols(column)
    buf = io.BytesIO()
    wb.save(buf)
    sub = parse(_received(buf.getvalue(), "xlsx", "stats"), catalogue.sources["stats"], catalogue)
    report = validate_submission(sub, catalogue)
    assert [f.rule for f in report.errors] == [f"必须有“{header}”列"], report.summary_zh()


def test_a_missing_water_column_is_reported_once(catalogue):
    text = WATER_2023.read_bytes().decode("gbk")
    lines = [",".join(f for i, f in enumerate(line.split(",")) if i != 2) for line in text.splitlines()]
    sub = parse(_received(("\r\n".join(lines) + "\r\n").encode("gbk"), "csv", "water"), catalogue.sources["water"], catalogue)
    report = validate_submission(sub, catalogue)
    assert [f.rule for f in report.errors] == ["必须有“用水总量（万立方米）”列"], report.summary_zh()

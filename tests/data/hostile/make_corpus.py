"""Write the hostile-input corpus: bureau tables that must be refused with a clear message.

    python tests/data/hostile/make_corpus.py [FILE ...]

Each file is listed in cases.yaml with the department and year it is checked as,
the exit code `twomountains validate` must give (1 rejected, 2 unreadable) and a
piece of the Chinese message it must print. The 200 MB file is not committed:
the test makes it (sparse) on the fly.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import yaml
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

NAMES = ["武都区", "成县", "文县", "宕昌县", "康县", "西和县", "礼县", "徽县", "两当县"]
CODES = ["621202", "621221", "621222", "621223", "621224", "621225", "621226", "621227", "621228"]
WATER_HEAD = ["县区名称", "水土保持率（%）", "用水总量（万立方米）"]
STATS_HEAD = ["区县代码", "区县名称", "常住人口（万人）", "地区生产总值（亿元）", "城镇居民人均可支配收入（元）",
              "农村居民人均可支配收入（元）", "生态产业增加值占GDP比重（%）"]


def water_rows() -> list[list[object]]:
    return [[n, 60 + i, 5000 + 100 * i] for i, n in enumerate(NAMES)]


def stats_rows() -> list[list[object]]:
    return [[c, n, 20 + i, 40 + i, 30000 + 100 * i, 11000 + 100 * i, 25 + i] for i, (c, n) in enumerate(zip(CODES, NAMES))]


def csv_bytes(header: list[str], rows: list[list[object]], encoding: str = "utf-8") -> bytes:
    def cell(v: object) -> str:
        text = str(v)
        return f'"{text}"' if "," in text else text

    lines = [",".join(header)] + [",".join(cell(v) for v in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(sheet: str, header: list[str], rows: list[list[object]], *, title: str | None = "示例标题",
               hidden: bool = False, extra_visible: str | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    if title is not None:
        ws.append([title])
    ws.append(header)
    for row in rows:
        ws.append(row)
    if extra_visible:
        wb.create_sheet(extra_visible)["A1"] = "其他内容"
    if hidden:
        ws.sheet_state = "hidden"
        if not extra_visible:
            wb.create_sheet("说明")["A1"] = "其他内容"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def merged_header_xlsx() -> bytes:
    """Two income headers merged into one cell: the second column loses its header."""
    wb = Workbook()
    ws = wb.active
    ws.title = "主要指标"
    ws.append(["示例标题"])
    header = list(STATS_HEAD)
    header[5] = None
    ws.append(header)
    ws.merge_cells("E2:F2")
    for row in stats_rows():
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def merged_data_xlsx() -> bytes:
    """A county's population merged down into the next county's row (C5:C6): one figure for two counties."""
    wb = Workbook()
    ws = wb.active
    ws.title = "主要指标"
    ws.append(["示例标题"])
    ws.append(STATS_HEAD)
    for row in stats_rows():
        ws.append(row)
    ws["C6"] = None
    ws.merge_cells("C5:C6")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def second_sheet_xlsx() -> bytes:
    """Forestry (no sheet configured: the first visible one is read) with the table on the second sheet."""
    wb = Workbook()
    notes = wb.active
    notes.title = "说明"
    notes["A1"] = "本表数据来自2023年森林资源年度监测。"
    ws = wb.create_sheet("林草资源")
    ws.append(["2023年林草资源"])
    ws.append(["单位：%"])
    ws.append(["单位", "森林覆盖率（%）", "自然保护地面积占国土面积比例（%）"])
    for i, name in enumerate(NAMES):
        ws.append([name, 40 + i, 10 + i])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """A small 'xlsx' that unpacks to about 300 MB of zeros."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                fh.write(chunk)
    return buf.getvalue()


def cases() -> list[tuple[str, bytes, str, int, int, str]]:
    """(file name, bytes, department, year, exit code, message fragment)."""
    w = water_rows
    out: list[tuple[str, bytes, str, int, int, str]] = []

    def water(name: str, data: bytes, code: int, msg: str, year: int = 2023) -> None:
        out.append((name, data, "water", year, code, msg))

    def stats(name: str, data: bytes, code: int, msg: str) -> None:
        out.append((name, data, "stats", 2023, code, msg))

    water("empty_2023.csv", b"", 2, "是空文件")
    water("whitespace_only_2023.csv", b" \r\n\t\r\n", 2, "是空文件")
    water("header_only_2023.csv", csv_bytes(WATER_HEAD, []), 1, "缺少：武都区、成县、文县")
    water("title_row_above_header_2023.csv", b"\xe6\xb0\xb4\xe5\x8a\xa1\r\n" + csv_bytes(WATER_HEAD, w()), 2,
          "第 1 行找不到县区列“县区名称”")
    water("missing_column_2023.csv", csv_bytes(WATER_HEAD[:2], [r[:2] for r in w()]), 1, "必须有“用水总量（万立方米）”列")
    water("only_county_column_2023.csv", csv_bytes(WATER_HEAD[:1], [r[:1] for r in w()]), 1, "必须有“水土保持率（%）”列")
    rows = w()
    rows[2][2] = -5
    water("extra_column_and_negative_2023.csv", csv_bytes(WATER_HEAD + ["备注"], [r + ["—"] for r in rows]), 1,
          "数值超出合理范围（100 至 200000 万立方米）；实际值：-5")
    water("duplicate_header_2023.csv", csv_bytes(WATER_HEAD + ["用水总量（万立方米）"], [r + [1] for r in w()]), 2,
          "表头中有重复的列：用水总量（万立方米）")
    rows = w()
    rows[3][0] = "某县"
    water("unknown_county_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "县区必须是陇南市所辖县区（代码、全称或简称）；实际值：某县")
    rows = w()
    rows[3][0] = "../../etc/passwd"
    water("path_traversal_county_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "实际值：../../etc/passwd")
    rows = w()
    rows[1][0] = "武都"  # a short name for 武都区, which is also on row 2: a duplicate
    water("duplicate_county_by_name_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "每个县区只能填报一行")
    water("missing_county_2023.csv", csv_bytes(WATER_HEAD, w()[:8]), 1, "必须包含全部县区；实际值：缺少：两当县")
    rows = w()
    rows[4][1] = "很好"
    water("text_in_number_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "第 6 行，列“水土保持率（%）”：必须是数值；实际值：很好")
    rows = w()
    rows[0][2] = "13834%"
    water("percent_not_allowed_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "该列不是百分比，不能带“%”")
    rows = w()
    rows[0][1] = "1,234"
    water("thousands_in_share_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "数值超出合理范围（0 至 100 %）；实际值：1234")
    rows = w()
    rows[5][1] = 120
    water("share_over_100_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "第 7 行，列“水土保持率（%）”：数值超出合理范围（0 至 100 %）")
    rows = w()
    rows[6][2] = "NaN"
    water("nan_text_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "第 8 行，列“用水总量（万立方米）”：必须填写数值")
    rows = w()
    rows[6][2] = "inf"
    water("inf_text_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "必须是数值；实际值：inf")
    rows = w()
    rows[7][2] = ""
    water("blank_cell_2023.csv", csv_bytes(WATER_HEAD, rows), 1, "第 9 行，列“用水总量（万立方米）”：必须填写数值")
    mojibake = csv_bytes(WATER_HEAD, w(), "gbk").decode("latin-1").encode("utf-8")
    water("gbk_mangled_as_latin1_2023.csv", mojibake, 2, "找不到县区列“县区名称”")
    rows = w()
    rows[0][1] = "七十"
    water("gbk_text_in_number_2023.csv", csv_bytes(WATER_HEAD, rows, "gbk"), 1, "必须是数值；实际值：七十")
    water("utf8_bom_wrong_header_2023.csv", b"\xef\xbb\xbf" + csv_bytes(["县 区"] + WATER_HEAD[1:], w()), 2,
          "找不到县区列“县区名称”")
    water("binary_garbage_2023.csv", bytes(range(256)) * 40, 2, "不是 CSV 文本文件")
    water("xlsx_disguised_as_csv_2023.csv", xlsx_bytes("Sheet", WATER_HEAD, w()), 2, "实际是 Excel 文件")
    water("水务局_2022年水资源公报摘要.csv", csv_bytes(WATER_HEAD, w()), 1, "文件名显示为 2022 年数据，与报送年度 2023 年不符")

    rows = w()
    rows[1][2] = "5100,5"  # a decimal comma: read as 51005 it would pass the range check
    water("decimal_comma_2023.csv", csv_bytes(WATER_HEAD, rows), 1,
          "第 3 行，列“用水总量（万立方米）”：疑似用逗号作小数点，请写作 5100.5")
    rows = w()
    rows[2][2] = "5.200,5"  # dot for thousands, comma for decimals
    water("european_number_2023.csv", csv_bytes(WATER_HEAD, rows), 1,
          "第 4 行，列“用水总量（万立方米）”：疑似用点作千位分隔、逗号作小数点，请写作 5200.5")
    rows = w()
    rows[3][2] = "5 300"  # a space inside a number: thousands separator or two numbers?
    water("spaced_number_2023.csv", csv_bytes(WATER_HEAD, rows), 1,
          "第 5 行，列“用水总量（万立方米）”：数字中间有空格，无法确定写法，请去掉空格（如 5300）")
    water("year_column_2022_2023.csv", csv_bytes(["年度"] + WATER_HEAD, [[2022] + r for r in w()]), 1,
          "列“年度”：表中的年度与报送年度 2023 年不符；实际值：2022")
    rows = w()
    rows[3][0] = "某县"
    water("utf16_bom_2023.csv", csv_bytes(WATER_HEAD, rows, "utf-16"), 1, "实际值：某县")
    water("utf16be_no_bom_2023.csv", csv_bytes(WATER_HEAD, rows, "utf-16-be"), 1, "实际值：某县")
    big5_head = ["縣區名稱", "水土保持率（%）", "用水總量（萬立方米）"]
    big5_names = ["武都區", "成縣", "文縣", "宕昌縣", "康縣", "西和縣", "禮縣", "徽縣", "兩當縣"]
    water("big5_2023.csv", csv_bytes(big5_head, [[n] + r[1:] for n, r in zip(big5_names, w())], "big5"), 2,
          "该行的列名为：縣區名稱、水土保持率（%）、用水總量（萬立方米）（文件是 Big5（繁体中文）编码")

    good_stats = xlsx_bytes("主要指标", STATS_HEAD, stats_rows())
    stats("stats_truncated_2023.xlsx", good_stats[: len(good_stats) // 2], 2, "文件已损坏")
    stats("stats_zip_bomb_2023.xlsx", zip_bomb(), 2, "解压后超过 200 MB")
    stats("stats_csv_renamed_2023.xlsx", csv_bytes(STATS_HEAD, stats_rows()), 2, "文件已损坏或不是 xlsx 格式")
    stats("stats_wrong_sheet_2023.xlsx", xlsx_bytes("Sheet1", STATS_HEAD, stats_rows()), 2,
          "找不到工作表“主要指标”。文件中的可见工作表：Sheet1")
    stats("stats_hidden_sheet_2023.xlsx", xlsx_bytes("主要指标", STATS_HEAD, stats_rows(), hidden=True), 2,
          "找不到工作表“主要指标”。文件中的可见工作表：说明")
    rows = stats_rows()
    rows[0][4] = 9000  # urban income below rural income
    stats("stats_urban_below_rural_2023.xlsx", xlsx_bytes("主要指标", STATS_HEAD, rows), 1,
          "城镇居民人均可支配收入应不低于农村居民人均可支配收入")
    rows = stats_rows()
    rows[2][2] = "=C3*2"  # a formula nobody calculated
    stats("stats_formula_uncached_2023.xlsx", xlsx_bytes("主要指标", STATS_HEAD, rows), 1, "公式没有计算结果")
    stats("stats_missing_title_row_2023.xlsx", xlsx_bytes("主要指标", STATS_HEAD, stats_rows(), title=None), 2,
          "第 2 行找不到县区列“区县代码”")
    stats("stats_merged_header_cells_2023.xlsx", merged_header_xlsx(), 2,
          "表头中有重复的列：城镇居民人均可支配收入（元）（请检查是否重复填写或合并了表头单元格）")
    rows = stats_rows()
    rows[1][0] = "621299"
    stats("stats_bad_code_2023.xlsx", xlsx_bytes("主要指标", STATS_HEAD, rows), 1, "实际值：621299")

    stats("stats_merged_data_cells_2023.xlsx", merged_data_xlsx(), 2,
          "工作表“主要指标”的数据区域有合并单元格 C5:C6，请取消合并后逐行填写")
    stats("stats_year_column_2022_2023.xlsx",
          xlsx_bytes("主要指标", STATS_HEAD + ["统计年度"], [r + ["2022年"] for r in stats_rows()]), 1,
          "列“统计年度”：表中的年度与报送年度 2023 年不符；实际值：2022年")
    out.append(("forestry_second_sheet_2023.xlsx", second_sheet_xlsx(), "forestry", 2023, 2,
                "工作表“说明”中没有找到表格（第 3 行找不到县区列“单位”）。文件中的工作表：说明、林草资源；"
                "表格似乎在工作表“林草资源”中"))

    from evaluation.catalogue import load_catalogue
    from evaluation.ingest.forms import make_form

    catalogue = load_catalogue()
    stats("stats_form_for_2022.xlsx", make_form(catalogue, "stats", 2022), 2, "填报表的年度是 2022 年，与报送年度 2023 年不符")
    stats("eco_form_sent_as_stats_2023.xlsx", make_form(catalogue, "eco", 2023), 2, "这是生态环境局的填报表，不是统计局的")
    stats("stats_blank_form_2023.xlsx", make_form(catalogue, "stats", 2023), 1, "必须填写数值")
    return out


def main(only: list[str]) -> None:
    """Write every file (or only the named ones: openpyxl stamps each xlsx with the time it was
    written, so rewriting an unchanged case changes its bytes) and the whole of cases.yaml."""
    listing = []
    for name, data, dept, year, code, msg in cases():
        if not only or name in only:
            (HERE / name).write_bytes(data)
        listing.append({"file": name, "department": dept, "year": year, "exit": code, "message": msg})
    listing.append({"file": "huge_200mb_2023.csv", "department": "water", "year": 2023, "exit": 2,
                    "message": "超过 50 MB 上限", "generated_by_test": True})
    header = "# The hostile corpus: written by make_corpus.py; each file, how it is checked, and what it must say.\n"
    (HERE / "cases.yaml").write_text(header + yaml.safe_dump(listing, allow_unicode=True, sort_keys=False), encoding="utf-8")
    print(f"{len(listing)} cases")


if __name__ == "__main__":
    main(sys.argv[1:])

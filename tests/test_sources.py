"""Every source kind read for real: xlsx quirks, CSV encodings, an HTTP server, SQLite; forms; the ledger."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from evaluation.catalogue import Source, unit_factor
from evaluation.ingest.forms import make_form
from evaluation.ingest import IngestError, Received, TransientSourceError, parse, read_submission, receive
from evaluation.ledger import Ledger

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
CODES = ["621202", "621221", "621222", "621223", "621224", "621225", "621226", "621227", "621228"]
NAMES = ["武都区", "成县", "文县", "宕昌县", "康县", "西和县", "礼县", "徽县", "两当县"]
FOREST = {"森林覆盖率（%）": {"var": "forest_cover"}, "自然保护地面积占国土面积比例（%）": {"var": "protected_area_share"}}


def forestry_source(**overrides) -> Source:
    spec = {"department": "forestry", "kind": "folder", "pattern": "f.xlsx", "format": "xlsx", "header_row": 1,
            "county_column": "县区", "columns": FOREST}
    spec.update(overrides)
    return Source(**spec)


def _xlsx(build) -> bytes:
    wb = Workbook()
    build(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _received(data: bytes, fmt: str = "xlsx", dept: str = "forestry", year: int = 2023) -> Received:
    return Received(dept, year, "folder", "test", f"t.{fmt}", data, fmt)


# -- xlsx ----------------------------------------------------------------------


def test_xlsx_merged_title_and_merged_header_cells(catalogue):
    def build(wb):
        ws = wb.active
        ws["A1"] = "2023年林草资源（示例）"
        ws.merge_cells("A1:C1")
        ws["A2"] = "县区"  # merged down over the two header rows
        ws.merge_cells("A2:A3")
        ws["B2"] = "覆盖指标"
        ws.merge_cells("B2:C2")
        ws["B3"], ws["C3"] = "森林覆盖率（%）", "自然保护地面积占国土面积比例（%）"
        for i, name in enumerate(NAMES, start=4):
            ws.cell(row=i, column=1, value=name)
            ws.cell(row=i, column=2, value=50 + i)
            ws.cell(row=i, column=3, value=f"{i}.5%")

    sub = parse(_received(_xlsx(build)), forestry_source(header_row=3), catalogue)
    table = sub.table.set_index("county_code")
    assert list(table.index) == CODES
    assert table.at["621202", "forest_cover"] == 54 and table.at["621202", "protected_area_share"] == 4.5
    assert table.at["621202", "_row"] == 4 and not sub.unparsed


def test_xlsx_hidden_sheets_are_ignored_and_formulas_read_as_values(catalogue):
    def build(wb):
        hidden = wb.active
        hidden.title = "旧表"
        hidden["A1"] = "不要读取"
        hidden.sheet_state = "hidden"
        ws = wb.create_sheet("数据")
        ws.append(["县区", "森林覆盖率（%）", "自然保护地面积占国土面积比例（%）"])
        for name in NAMES:
            ws.append([name, 40, "=B2/4"])

    data = _xlsx(build)
    # openpyxl writes formulas without a cached value; give them one, as Excel does when it saves
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet2.xml":
                body = re.sub(rb"(<f>B2/4</f>)(<v>\s*</v>|<v/>)?", rb"\1<v>10</v>", body)
            dst.writestr(info, body)
    sub = parse(_received(buf.getvalue()), forestry_source(), catalogue)
    assert sub.sheet == "数据"
    assert (sub.table["protected_area_share"] == 10).all() and not sub.unparsed

    # the same formulas never calculated: a clear finding per cell, not a silent blank
    sub = parse(_received(data), forestry_source(), catalogue)
    assert len(sub.unparsed) == 9
    row, header, raw, reason = sub.unparsed[0]
    assert (row, header, raw) == (2, "自然保护地面积占国土面积比例（%）", "=B2/4") and "公式没有计算结果" in reason


def test_xlsx_wrong_sheet_and_damaged_file_are_clear_errors(catalogue):
    data = (SAMPLE / "2023" / "统计局_2023年主要经济指标.xlsx").read_bytes()
    stats = catalogue.sources["stats"]
    with pytest.raises(IngestError, match="找不到工作表“汇总”。文件中的可见工作表：主要指标"):
        parse(_received(data, dept="stats"), stats.model_copy(update={"sheet": "汇总"}), catalogue)
    with pytest.raises(IngestError, match="文件已损坏"):
        parse(_received(data[: len(data) // 2], dept="stats"), stats, catalogue)


# -- csv encodings and unit forms --------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_are_sniffed(catalogue, encoding):
    text = "县区,森林覆盖率（%）,自然保护地面积占国土面积比例（%）\r\n" + "".join(
        f"{n},{50 + i}.5,{i}\r\n" for i, n in enumerate(NAMES))
    sub = parse(_received(text.encode(encoding), "csv"), forestry_source(format="csv"), catalogue)
    assert list(sub.table["county_code"]) == CODES
    assert sub.table["forest_cover"].tolist() == [50.5 + i for i in range(9)]


def test_unit_forms(catalogue):
    assert unit_factor("万元", "亿元") == pytest.approx(1e-4)
    assert unit_factor("人", "万人") == pytest.approx(1e-4)
    assert unit_factor("亿元", "万元") == pytest.approx(1e4)
    source = Source(department="stats", kind="folder", pattern="s.csv", format="csv", county_column="县区",
                    columns={"常住人口（人）": {"var": "population", "unit": "人"},
                             "地区生产总值（万元）": {"var": "gdp", "unit": "万元"},
                             "生态产业占比": {"var": "eco_industry_share"}})
    text = "县区,常住人口（人）,地区生产总值（万元）,生态产业占比\n武都,\"546,600\",\"1,372,700\",12.5%\n成县,１２３４５６,900000,—\n"
    sub = parse(_received(text.encode(), "csv", dept="stats"), source, catalogue)
    t = sub.table.set_index("county_code")
    assert t.at["621202", "population"] == pytest.approx(54.66)
    assert t.at["621202", "gdp"] == pytest.approx(137.27)
    assert t.at["621202", "eco_industry_share"] == 12.5
    assert t.at["621221", "population"] == pytest.approx(12.3456)
    assert pd.isna(t.at["621221", "eco_industry_share"])
    # a percent sign where the column is not a percentage is refused
    text = "县区,常住人口（人）,地区生产总值（万元）,生态产业占比\n武都,12%,1,3\n"
    sub = parse(_received(text.encode(), "csv", dept="stats"), source, catalogue)
    assert sub.unparsed == [(2, "常住人口（人）", "12%", "该列不是百分比，不能带“%”")]


def test_catalogue_refuses_unconvertible_units():
    with pytest.raises(ValueError):
        unit_factor("万元", "万人")


# -- HTTP ------------------------------------------------------------------------


class _Bureau(BaseHTTPRequestHandler):
    fail_first = 0
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).hits.append(self.path)
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_error(503, "busy")
            return
        if self.path == "/forestry/2023.json":
            body = json.dumps({"data": [{"县区": n, "森林覆盖率（%）": 60 + i, "自然保护地面积占国土面积比例（%）": "1.5%"}
                                        for i, n in enumerate(NAMES)]}, ensure_ascii=False).encode()
            ctype = "application/json"
        elif self.path == "/forestry/2023.csv":
            body = ("县区,森林覆盖率（%）,自然保护地面积占国土面积比例（%）\n"
                    + "".join(f"{c},{30 + i},{i}\n" for i, c in enumerate(CODES))).encode("gbk")
            ctype = "text/csv"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def bureau_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bureau)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Bureau.hits = []
    _Bureau.fail_first = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_json_and_csv_with_retries(catalogue, bureau_server):
    _Bureau.fail_first = 2  # two 503s, then the data
    src = forestry_source(kind="http", pattern=None, url=bureau_server + "/forestry/{year}.json", format="json",
                          retries=3, timeout=5)
    received = receive(src, 2023)
    assert len(_Bureau.hits) == 3 and received.kind == "http" and received.location.endswith("/forestry/2023.json")
    sub = parse(received, src, catalogue)
    assert sub.table["forest_cover"].tolist() == [60 + i for i in range(9)]
    assert (sub.table["protected_area_share"] == 1.5).all()
    assert sub.submission_id == received.submission_id and len(sub.submission_id) == 64

    src_csv = src.model_copy(update={"url": bureau_server + "/forestry/{year}.csv", "format": "csv"})
    sub = parse(receive(src_csv, 2023), src_csv, catalogue)
    assert list(sub.table["county_code"]) == CODES and sub.table["forest_cover"].iloc[-1] == 38


def test_http_failure_is_a_clear_error(bureau_server):
    src = forestry_source(kind="http", pattern=None, url=bureau_server + "/nothing/{year}.json", format="json", retries=2)
    with pytest.raises(IngestError, match=r"无法从 .*/nothing/2023.json 获取数据（尝试 3 次）：HTTP 404"):
        receive(src, 2023)
    assert len(_Bureau.hits) == 1  # a 404 is not retried


def test_transient_http_failures_are_told_apart_for_the_orchestrator(bureau_server):
    """With retries=0 (Prefect retries the task instead) a 503 raises TransientSourceError, a 404 does not."""
    src = forestry_source(kind="http", pattern=None, url=bureau_server + "/forestry/{year}.json", format="json", retries=3)
    _Bureau.fail_first = 1
    with pytest.raises(TransientSourceError, match="HTTP 503"):
        receive(src, 2023, retries=0)
    assert len(_Bureau.hits) == 1
    assert receive(src, 2023, retries=0).kind == "http"  # the next attempt succeeds
    missing = src.model_copy(update={"url": bureau_server + "/nothing/{year}.json"})
    with pytest.raises(IngestError) as info:
        receive(missing, 2023, retries=0)
    assert not isinstance(info.value, TransientSourceError)
    dead = src.model_copy(update={"url": "http://127.0.0.1:9/{year}.json", "timeout": 2})  # nothing listens on port 9
    with pytest.raises(TransientSourceError, match="尝试 1 次"):
        receive(dead, 2023, retries=0)


# -- SQL ---------------------------------------------------------------------------


def test_sqlite_source_through_sqlalchemy(catalogue, tmp_path):
    db = tmp_path / "bureau.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE forest (year INTEGER, county TEXT, cover REAL, protected REAL)')
        conn.executemany("INSERT INTO forest VALUES (?, ?, ?, ?)",
                         [(y, c, 40 + i + (y - 2022), i * 1.5) for y in (2022, 2023) for i, c in enumerate(CODES)])
    src = forestry_source(kind="sql", pattern=None, format="csv", url=f"sqlite:///{db}",
                          query='SELECT county AS "县区", cover AS "森林覆盖率（%）", protected AS "自然保护地面积占国土面积比例（%）" '
                                "FROM forest WHERE year = :year ORDER BY county")
    received = receive(src, 2023)
    assert received.kind == "sql" and received.original_name == "forestry_2023.csv"
    sub = parse(received, src, catalogue)
    assert sub.table["forest_cover"].tolist() == [41 + i for i in range(9)]
    assert sub.table["protected_area_share"].iloc[3] == 4.5
    assert receive(src, 2023).submission_id == received.submission_id  # canonical bytes: same data, same id
    bad = src.model_copy(update={"query": "SELECT * FROM nowhere"})
    with pytest.raises(IngestError, match="数据库查询失败") as info:
        receive(bad, 2023)
    assert not isinstance(info.value, TransientSourceError)  # a wrong query is not retried
    down = src.model_copy(update={"url": f"sqlite:///{tmp_path}/no/such/dir/db.sqlite"})
    with pytest.raises(TransientSourceError, match="无法连接数据库.*尝试 1 次"):
        receive(down, 2023, retries=0)


# -- forms -----------------------------------------------------------------------


def test_filled_form_round_trips_through_ingest(catalogue, tmp_path):
    out = tmp_path / "统计局填报表.xlsx"
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "template", "--department", "stats", "--year", "2024",
                           "-o", str(out)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    wb = load_workbook(out)
    ws = wb["填报表"]
    assert "填报说明" in wb.sheetnames
    assert ws["A2"].value == "区县代码" and ws["C3"].value == "万人"
    assert [ws.cell(row=r, column=1).value for r in range(4, 13)] == CODES
    assert [ws.cell(row=r, column=2).value for r in range(4, 13)] == NAMES
    rules = {str(dv.sqref): (dv.type, dv.formula1, dv.formula2) for dv in ws.data_validations.dataValidation}
    assert rules["C4:C12"] == ("decimal", "1", "300")  # 常住人口 range from the catalogue
    variables = catalogue.department_variables("stats")
    filled = {}
    for i, code in enumerate(CODES):
        for j, var in enumerate(variables):
            value = round(var.range[0] + (var.range[1] - var.range[0]) * (i + 1) / 20 + j, 2)
            ws.cell(row=4 + i, column=3 + j, value=value)
            filled[(code, var.id)] = value
    wb.save(out)
    sub = read_submission(out, catalogue.sources["stats"], catalogue, 2024)
    facts = sub.facts(catalogue)
    got = {(f.county_code, f.variable_id): f.value for f in facts.itertuples()}
    assert got == pytest.approx(filled)
    assert sub.sheet == "填报表" and facts["row"].min() == 4
    with pytest.raises(IngestError, match="填报表的年度是 2024 年，与报送年度 2023 年不符"):
        read_submission(out, catalogue.sources["stats"], catalogue, 2023)


def test_template_writes_the_name_the_drop_folder_expects(tmp_path):
    """Without -o the form is named as the drop folder expects; with another name the command says which to use."""
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "template", "--department", "stats", "--year", "2024"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["统计局_2024年主要经济指标.xlsx"]
    guide = load_workbook(tmp_path / "统计局_2024年主要经济指标.xlsx")["填报说明"]
    lines = [guide.cell(row=r, column=1).value or "" for r in range(1, 7)]
    assert not any("twomountains" in line for line in lines) and any("报送门户" in line for line in lines)
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "template", "--department", "stats", "--year", "2024",
                           "-o", str(tmp_path / "统计局2024.xlsx")], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0 and "文件名须为“统计局_2024年主要经济指标.xlsx”" in proc.stdout


def test_template_refuses_unknown_department(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "template", "--department", "police", "--year", "2024",
                           "-o", str(tmp_path / "x.xlsx")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "未知部门" in proc.stderr and "Traceback" not in proc.stderr


def test_form_is_department_specific(catalogue):
    data = make_form(catalogue, "eco", 2023)
    with pytest.raises(IngestError, match="这是生态环境局的填报表，不是统计局的"):
        parse(_received(data, dept="stats"), catalogue.sources["stats"], catalogue)


# -- ledger ------------------------------------------------------------------------


def test_ledger_dedupes_supersedes_and_keeps_everything(catalogue, tmp_path, sample_copy, ledger_url):
    ledger = Ledger.at(tmp_path / "reports", ledger_url)
    src = catalogue.sources["eco"]
    path = sample_copy / "2023" / "生态环境局_2023年生态环境质量.csv"
    first = read_submission(path, src, catalogue, 2023)
    received = receive(src, 2023, sample_copy)
    r1 = ledger.record(received, status="accepted", received_at="2024-02-01T00:00:00+00:00", facts=first.facts(catalogue))
    r1b = ledger.record(received, status="accepted", received_at="2024-02-02T00:00:00+00:00", facts=first.facts(catalogue))
    assert r1.new and not r1b.new and len(ledger.submissions(2023)) == 1

    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[1], "61.25", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    corrected = receive(src, 2023, sample_copy)
    second = parse(corrected, src, catalogue)
    r2 = ledger.record(corrected, status="accepted", received_at="2024-02-03T00:00:00+00:00",
                       facts=second.facts(catalogue), reason="更正武都区EQI")
    assert r2.new and r2.supersedes == r1.submission_id
    subs = {s["id"]: s for s in ledger.submissions(2023)}
    assert set(subs) == {r1.submission_id, r2.submission_id}
    assert subs[r1.submission_id]["superseded_by"] == r2.submission_id
    assert ledger.current("eco", 2023)["id"] == r2.submission_id
    current = ledger.facts(2023, "621202")
    eqi = current[current["variable_id"] == "eqi"]
    assert eqi["value"].tolist() == [61.25] and eqi["submission_id"].tolist() == [r2.submission_id]
    everything = ledger.facts(2023, "621202", current_only=False)
    assert sorted(everything[everything["variable_id"] == "eqi"]["value"]) == [61.25, pytest.approx(first.table.iloc[0]["eqi"])]
    assert ledger.raw_bytes(r1.submission_id) == received.data  # the original bytes, kept
    # a rejected submission is recorded, but brings no facts and supersedes nothing
    bad = Received("eco", 2023, "folder", "x", "bad.csv", b"county\n", "csv")
    ledger.record(bad, status="rejected", received_at="2024-02-04T00:00:00+00:00")
    assert ledger.current("eco", 2023)["id"] == r2.submission_id
    assert len(ledger.facts(2023, current_only=False)) == 2 * 9 * len(catalogue.department_variables("eco"))
    assert ledger.verify() == []
    ledger.close()


def test_history_shows_where_each_figure_came_from(catalogue, tmp_path):
    out = tmp_path / "reports"
    ledger = Ledger.at(out)
    src = catalogue.sources["stats"]
    received = receive(src, 2023, SAMPLE)
    sub = parse(received, src, catalogue)
    ledger.record(received, status="accepted", received_at="2024-02-01T00:00:00+00:00", facts=sub.facts(catalogue))
    ledger.close()
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "history", "--year", "2023", "--county", "621202",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert received.sha256 in text and received.submission_id[:12] in text
    assert "统计局_2023年主要经济指标.xlsx" in text and "工作表“主要指标”" in text
    assert re.search(r"常住人口\s+5\d\.\d+\s+万人\s+3\b", text)  # 武都区 is on row 3 of the sheet

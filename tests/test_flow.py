"""The annual evaluation flow end to end, on a Prefect test harness (one per session)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import versions
from tests import flowtools
from tests.conftest import prefect_home
from tests.flowtools import run_flow as _run, sha as _sha, task_states as _task_states
from tests.pdftools import pdf_fonts, pdf_pages, pdf_text
from tests.test_sensitivity_paths import check_version_carries_audit_sobol_and_paths

REPO = Path(__file__).resolve().parent.parent


def test_annual_flow_issues_versions_and_refuses_incomplete_data(prefect_harness, sample_copy, tmp_path):
    out = tmp_path / "reports"
    # this run's own task cache (<out>/.cache/prefect): the test follows what is computed and what is cached
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), cache_dir=None)
    assert state.is_completed(), state.message
    assert result["status"] == "issued" and result["version"] == 1
    v1 = out / "2023" / "v1"
    manifest = json.loads((v1 / "manifest.json").read_text(encoding="utf-8"))
    # the reports sent to the counties and the city, and beside them the methodology report (never sent)
    assert (v1 / manifest["methodology"]["file"]).name == "621200_陇南市_2023年度评价技术报告.pdf"
    pdfs = sorted(p for p in v1.glob("*.pdf") if p.name != manifest["methodology"]["file"])
    assert len(pdfs) == 10
    assert sum("汇总" in p.name for p in pdfs) == 1
    assert manifest["outputs"] == {p.name: _sha(p) for p in pdfs}
    received = {i["file"]: i["sha256"] for i in manifest["inputs"]}
    assert received == {p.name: _sha(p) for p in (sample_copy / "2023").iterdir()}
    assert manifest["config_hash"] and manifest["code_hash"] and manifest["sample_data"] is True
    assert [s["rank"] for s in manifest["scores"]] == sorted(s["rank"] for s in manifest["scores"])
    assert not list((out / "2023").glob(".*partial"))
    for pdf in pdfs:  # an embedded CJK font in every PDF
        assert any("NotoSansCJK" in f["name"].replace("-", "") and f["emb"] == "yes" for f in pdf_fonts(pdf)), pdf
    wudu_score = next(s for s in manifest["scores"] if s["county_code"] == "621202")
    wudu = next(p for p in pdfs if p.name.startswith("621202_"))
    text = re.sub(r"\s+", "", pdf_text(wudu))
    for expected in ("武都区", "综合得分", wudu_score["grade"], "重点生态功能区", "同类功能区排名",
                     f"第{wudu_score['zone_rank']}名/5", f"{wudu_score['overall']:.1f}", "示例数据"):
        assert expected in text, expected
    for page in range(1, pdf_pages(wudu) + 1):
        assert "示例数据" in pdf_text(wudu, page), f"page {page} lacks the 示例数据 mark"
    # issue 20: the version's workbook and methodology report carry the audit, the Sobol table and the paths
    from evaluation.catalogue import load_catalogue

    check_version_carries_audit_sobol_and_paths(v1, manifest, load_catalogue())

    first = _task_states(state)
    # a year's first version renders in the pool warmed up while the tables were checked: one render_batch
    assert ("check", "Completed") in first and ("score", "Completed") in first
    assert [n for t, n in first if t.startswith("render")] == ["Completed"] and ("render_batch", "Completed") in first
    assert not any(name == "Cached" for _, name in first)
    # What this first run checked and rendered from the sample is what the other tests' runs of it would
    # check and render again (same tables, config, code and report date): they find it in the worker's
    # shared cache, as a second run on one machine would. Each still checks and renders what it changes.
    flowtools.share(out / ".cache" / "prefect")

    # Same inputs again: nothing new is issued, and every check comes from the task cache.
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), cache_dir=None)
    assert result["status"] == "unchanged" and result["version"] == 1
    assert versions.versions(out, 2023) == [1]
    again = _task_states(state)
    assert [n for t, n in again if t == "check"] == ["Cached"] * 8
    assert not {"score", "analyse", "plan", "render", "render_batch"} & {t for t, _ in again}
    assert any((out / ".cache" / "prefect").iterdir())

    # A bureau corrects a figure: a new version appears, v1 is untouched.
    before = {p.name: _sha(p) for p in v1.iterdir()}
    eco = sample_copy / "2023" / "生态环境局_2023年生态环境质量.csv"
    lines = eco.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[1] = "55.5"  # 武都区 EQI
    lines[1] = ",".join(cells)
    eco.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), cache_dir=None)
    assert result["status"] == "issued" and result["version"] == 2
    checks = [n for t, n in _task_states(state) if t == "check"]
    assert sorted(checks) == ["Cached"] * 7 + ["Completed"]  # only the corrected table is checked again
    assert {p.name: _sha(p) for p in v1.iterdir()} == before
    v2 = out / "2023" / "v2"
    wudu_v2 = re.sub(r"\s+", "", pdf_text(next(v2.glob("621202_*.pdf"))))
    assert "修订说明" in wudu_v2 and "本报告为第2版" in wudu_v2 and "生态环境局更正了数据" in wudu_v2
    assert "生态质量指数（EQI）：76.11→55.5（生态环境局" in wudu_v2
    manifest_v2 = json.loads((v2 / "manifest.json").read_text(encoding="utf-8"))
    assert any("76.11 → 55.5" in line for line in manifest_v2["revisions"]["621202"])
    # Only the reports whose content changed were rendered; the others are v1's bytes.
    changed = {f for f in manifest_v2["outputs"] if manifest_v2["content_keys"][f] != manifest["content_keys"][f]}
    assert set(result["rendered"]) == changed and set(result["carried"]) == set(manifest_v2["outputs"]) - changed
    assert any(f.startswith("621202_") for f in changed) and any("汇总" in f for f in changed)
    assert any(f.startswith("621221_") for f in result["carried"])  # 成县 (another zone) did not change
    for name in result["carried"]:
        assert _sha(v2 / name) == _sha(v1 / name) and manifest_v2["editions"][name] == 1
        assert name.split("_")[0] not in manifest_v2["revisions"]
    for name in changed:
        assert manifest_v2["editions"][name] == 2 and "修订说明" in pdf_text(v2 / name)
    rendering = [(t, n) for t, n in _task_states(state) if t.startswith("render")]
    assert rendering == ([("render_batch", "Completed")] if len(changed) >= 4 else [("render", "Completed")] * len(changed))

    # A bureau's file is missing: refused by default, with the bureau named.
    eco.unlink()
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), cache_dir=None)
    assert state.is_failed()
    assert result["status"] == "refused"
    assert any("生态环境局" in line and "缺少数据" in line for line in result["problems"])
    assert versions.versions(out, 2023) == [1, 2]
    # (issued as provisional when asked: test_rejected_table_jump_warning_and_data_docs)


def test_cli_refuses_incomplete_data_without_a_traceback(prefect_harness, sample_copy, tmp_path):
    from prefect.settings import PREFECT_API_URL

    # 2021, the sample's first year: no past years to take into the ledger before the refusal
    (sample_copy / "2021" / "财政局_2021年生态补偿与绿色金融.csv").unlink()
    # the session's Prefect server (PREFECT_API_URL): no temporary server to start (test_faults.py runs those)
    env = {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "ph")), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    # the worker's task cache, which holds PDFs already (see the first test): a year's first run warms up a pool of
    # render workers only when its cache has none, and this one is refused before it renders anything
    cache = ["--cache-dir", str(flowtools.SHARED_CACHE)] if flowtools.SHARED_CACHE else []
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--year", "2021", "--data", str(sample_copy),
         "--out", str(tmp_path / "reports"), *cache],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "财政局" in proc.stderr and "--allow-incomplete" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert versions.versions(tmp_path / "reports", 2021) == []


def test_cli_rejects_bad_arguments_plainly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--year", "2023", "--data", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "数据目录不存在" in proc.stderr and "Traceback" not in proc.stderr


def test_flow_pulls_http_and_sql_sources(prefect_harness, sample_copy, tmp_path):
    """Tourism comes from an HTTP endpoint and forestry from a database; the rest from the folder."""
    import shutil
    import sqlite3
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import yaml

    from evaluation.catalogue import load_catalogue
    from evaluation.ingest import read_submission
    from evaluation.ledger import Ledger

    catalogue = load_catalogue()
    tourism_bytes = (sample_copy / "2023" / "文旅局_2023年旅游统计.xlsx").read_bytes()
    forestry = read_submission(sample_copy / "2023" / "林草局_2023年林草资源.xlsx", catalogue.sources["forestry"],
                               catalogue, 2023).table
    for name in ("文旅局_2023年旅游统计.xlsx", "林草局_2023年林草资源.xlsx"):
        (sample_copy / "2023" / name).unlink()  # only the remote sources have them now
    db = tmp_path / "forestry.sqlite"
    headers = {m.var: h for h, m in catalogue.sources["forestry"].columns.items()}  # with the GEP accounts' columns
    names = list(headers)
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TABLE t (yr INTEGER, code TEXT, {', '.join(f'{v} REAL' for v in names)})")
        conn.executemany(f"INSERT INTO t VALUES (2023, ?, {', '.join('?' for _ in names)})",
                         forestry[["county_code", *names]].itertuples(index=False))

    requests: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests[self.path] = requests.get(self.path, 0) + 1
            if self.path != "/tourism/2023":
                self.send_error(404)
                return
            if requests[self.path] <= 2:  # the endpoint is briefly down: two 503s, then the table
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(tourism_bytes)))
            self.end_headers()
            self.wfile.write(tourism_bytes)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "config"
        shutil.copytree(REPO / "config", config)
        sources = yaml.safe_load((config / "sources.yaml").read_text(encoding="utf-8"))
        sources["sources"]["tourism"].update(kind="http", url=f"http://127.0.0.1:{server.server_address[1]}/tourism/{{year}}")
        del sources["sources"]["tourism"]["pattern"]
        sources["sources"]["forestry"] = {
            "kind": "sql", "url": f"sqlite:///{db}", "format": "csv", "county_column": "区县代码",
            "query": 'SELECT code AS "区县代码", ' + ", ".join(f'{v} AS "{headers[v]}"' for v in names)
                     + " FROM t WHERE yr = :year",
            "columns": {headers[v]: {"var": v} for v in names},
        }
        (config / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
        out = tmp_path / "reports"
        state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), config_dir=str(config))
    finally:
        server.shutdown()
        server.server_close()
    assert result["status"] == "issued", state.message
    # Prefect retried the fetch task (the reader itself does not retry inside a flow); a 404 is not retried.
    assert requests == {"/tourism/2021": 1, "/tourism/2022": 1, "/tourism/2023": 3}
    fetches = [n for t, n in _task_states(state) if t == "fetch"]
    assert fetches == ["Completed"] * 6  # forestry (SQL) and tourism (HTTP), 2021-2023
    manifest = json.loads((out / "2023" / "v1" / "manifest.json").read_text(encoding="utf-8"))
    kinds = {s["department"]: s["kind"] for s in Ledger.at(out).submissions(2023)}
    assert kinds["tourism"] == "http" and kinds["forestry"] == "sql" and kinds["stats"] == "folder"
    assert all(i["status"] == "accepted" for i in manifest["inputs"])
    # the same figures as from the folder alone, so the same scores
    from evaluation import operations

    intakes = operations.check_folder(catalogue, REPO / "data" / "sample", 2023)
    folder_scores = operations.evaluate(catalogue, intakes, 2023, run_date="2024-03-01", analyse=False).result.overall
    assert {s["county_code"]: s["overall"] for s in manifest["scores"]} == pytest.approx(folder_scores.round(4).to_dict())


def test_rejected_table_jump_warning_and_data_docs(prefect_harness, sample_copy, tmp_path):
    out = tmp_path / "reports"
    # 水务局: 武都区's water use jumps 70 % on its 2022 accepted value -> a warning on its scorecard
    def water_rows(year):
        path = sample_copy / str(year) / f"水务局_{year}年水资源公报摘要.csv"
        return path, path.read_bytes().decode("gbk").splitlines()

    _, rows_2022 = water_rows(2022)
    wudu_2022 = float(rows_2022[1].split(",")[2])
    path, rows = water_rows(2023)
    cells = rows[1].split(",")
    cells[2] = str(round(wudu_2022 * 1.7))
    rows[1] = ",".join(cells)
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
    # 财政局: text in a number cell -> the whole table is rejected
    fin = sample_copy / "2023" / "财政局_2023年生态补偿与绿色金融.csv"
    rows = fin.read_bytes().decode("gbk").splitlines()
    rows[3] = rows[3].split(",")[0] + ",待核实," + ",".join(rows[3].split(",")[2:])
    fin.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))

    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out))
    assert state.is_failed() and result["status"] == "refused"
    assert any("财政局：校验未通过" in p and "待核实" in p for p in result["problems"]), result["problems"]
    assert not (out / "2023" / "v1").exists()

    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), allow_incomplete=True)
    assert result["status"] == "issued" and result["incomplete"]
    wudu = next((out / "2023" / "v1").glob("621202_*.pdf"))
    text = re.sub(r"\s+", "", pdf_text(wudu))
    assert "未完整（临时）" in text and "财政局：校验未通过，相关指标按缺失处理" in text
    assert "水务局数据提示：“用水总量（万立方米）”较上年已采用数据变化超过50%，请核实" in text
    assert "+70%" in text
    chengxian = re.sub(r"\s+", "", pdf_text(next((out / "2023" / "v1").glob("621221_*.pdf"))))
    assert "较上年已采用数据变化超过" not in chengxian  # the warning belongs to 武都区 only

    docs = out / "2023" / "datadocs" / "index.html"
    assert docs.is_file()
    validations = list((out / "2023" / "datadocs" / "validations").rglob("*.html"))
    assert any("water_submission" in str(p) for p in validations)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        links = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["data-docs"])))
        summaries = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["validation-summary"])))
    assert any(docs.as_uri() in str(a.data) for a in links)
    assert any("财政局" in str(a.data) and "校验未通过" in str(a.data) for a in summaries)


def test_annual_flow_with_the_ledger_on_postgresql(prefect_harness, postgres, sample_copy, tmp_path):
    """The whole run against a real PostgreSQL ledger (back-fill, record, rerun, history), with the
    PDFs rendered in worker processes."""
    from evaluation.ledger import Ledger

    url = postgres.create()
    out = tmp_path / "reports"
    # render_parallel_from=1: this run renders its 10 PDFs in the pool of worker processes (a report
    # date of its own: the PDFs other tests rendered for 2024-03-01 are in the shared render cache)
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), ledger_url=url,
                         render_parallel_from=1, run_date="2024-03-02")
    assert result["status"] == "issued", state.message
    assert ("render_batch", "Completed") in _task_states(state)
    manifest = versions.read_manifest(out / "2023" / "v1")
    assert sorted(manifest["outputs"]) == sorted(result["rendered"])
    assert manifest["outputs"] == {p.name: _sha(p) for p in (out / "2023" / "v1").glob("*.pdf")
                                   if "技术报告" not in p.name}
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), ledger_url=url)
    assert result["status"] == "unchanged"
    ledger = Ledger.at(out, url)
    try:
        assert ledger.url.startswith("postgresql") and ledger.verify() == []
        assert {y: len(ledger.submissions(y)) for y in (2021, 2022, 2023)} == {2021: 8, 2022: 8, 2023: 8}
    finally:
        ledger.close()
    assert not (out / "ledger" / "ledger.sqlite").exists()
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "history", "--year", "2023", "--out", str(out),
                           "--ledger", url], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "统计局_2023年主要经济指标.xlsx" in proc.stdout and "v1" in proc.stdout


def test_what_can_change_a_report_issues_a_new_version_and_nothing_else_does(prefect_harness, sample_copy, tmp_path):
    """Issue 16: the version fingerprint covers everything that can change a report. `years_back` in
    method.yaml (how many past years the trends show) issues v2; an unchanged rerun issues nothing;
    a template or a method word lives in the code hash every manifest carries."""
    import shutil

    # the Longnan sample with a copy of the repo's config: v1 is made from the checks and PDFs the worker's cache
    # holds already (the first test's), and v2, from the changed config, is checked and rendered here
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    out = tmp_path / "reports"
    kwargs = dict(year=2023, data_dir=str(sample_copy), out_dir=str(out), config_dir=str(config))
    state, result = _run(**kwargs)
    assert result["status"] == "issued" and result["version"] == 1, state.message
    state, result = _run(**kwargs)
    assert result["status"] == "unchanged" and versions.versions(out, 2023) == [1]

    method = config / "method.yaml"
    text = method.read_text(encoding="utf-8")
    assert "years_back: 2" in text
    method.write_text(text.replace("years_back: 2", "years_back: 1"), encoding="utf-8")
    state, result = _run(**kwargs)
    assert result["status"] == "issued" and result["version"] == 2, state.message
    v1, v2 = (versions.read_manifest(out / "2023" / f"v{n}") for n in (1, 2))
    assert v1["config_hash"] != v2["config_hash"] and result["rendered"]
    state, result = _run(**kwargs)
    assert result["status"] == "unchanged" and versions.versions(out, 2023) == [1, 2]

    # templates and the code that writes the method text are in the code hash (the flow computes it once)
    code = tmp_path / "code"
    for part in ("evaluation", "templates", "expectations"):
        shutil.copytree(REPO / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    before = versions.code_hash(code)
    assert before == v2["code_hash"]
    page = code / "templates" / "scorecard.html"
    page.write_text(page.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert versions.code_hash(code) != before
    page.write_text(page.read_text(encoding="utf-8")[:-1], encoding="utf-8")
    words = code / "evaluation" / "reporting" / "context.py"
    words.write_text(words.read_text(encoding="utf-8").replace("加权算术平均", "算术加权平均", 1), encoding="utf-8")
    assert versions.code_hash(code) != before

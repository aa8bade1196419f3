"""The annual evaluation flow end to end, on a Prefect test harness (one per session)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pdftools import pdf_fonts, pdf_pages, pdf_text

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _run(**kwargs):
    from flows.annual import annual_evaluation

    state = annual_evaluation(return_state=True, run_date="2024-03-01", **kwargs)
    return state, state.result(raise_on_failure=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_annual_flow_issues_versions_and_refuses_incomplete_data(prefect_harness, sample_copy, tmp_path):
    out = tmp_path / "reports"
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out))
    assert state.is_completed(), state.message
    assert result["status"] == "issued" and result["version"] == 1
    v1 = out / "2023" / "v1"
    pdfs = sorted(v1.glob("*.pdf"))
    assert len(pdfs) == 10
    assert sum("汇总" in p.name for p in pdfs) == 1
    manifest = json.loads((v1 / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["outputs"] == {p.name: _sha(p) for p in pdfs}
    received = {i["file"]: i["submission_id"] for i in manifest["inputs"]}
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
                     f"{wudu_score['zone_rank']}/5", f"{wudu_score['overall']:.1f}", "示例数据"):
        assert expected in text, expected
    for page in range(1, pdf_pages(wudu) + 1):
        assert "示例数据" in pdf_text(wudu, page), f"page {page} lacks the 示例数据 mark"

    # Same inputs again: nothing new is issued.
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out))
    assert result["status"] == "unchanged" and result["version"] == 1
    assert sorted(p.name for p in (out / "2023").iterdir()) == ["v1"]

    # A bureau corrects a figure: a new version appears, v1 is untouched.
    before = {p.name: _sha(p) for p in v1.iterdir()}
    eco = sample_copy / "2023" / "生态环境局_2023年生态环境质量.csv"
    lines = eco.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    cells[1] = "55.5"  # 武都区 EQI
    lines[1] = ",".join(cells)
    eco.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out))
    assert result["status"] == "issued" and result["version"] == 2
    assert {p.name: _sha(p) for p in v1.iterdir()} == before

    # A bureau's file is missing: refused by default, with the bureau named.
    eco.unlink()
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out))
    assert state.is_failed()
    assert result["status"] == "refused"
    assert any("生态环境局" in line and "缺少数据" in line for line in result["problems"])
    assert sorted(p.name for p in (out / "2023").iterdir()) == ["v1", "v2"]

    # ... or issued as provisional when asked.
    state, result = _run(year=2023, data_dir=str(sample_copy), out_dir=str(out), allow_incomplete=True)
    assert result["status"] == "issued" and result["version"] == 3 and result["incomplete"]
    wudu = next((out / "2023" / "v3").glob("621202_*.pdf"))
    text = pdf_text(wudu)
    assert "未完整（临时）" in text and "生态环境局" in text


def test_cli_refuses_incomplete_data_without_a_traceback(sample_copy, tmp_path):
    (sample_copy / "2023" / "财政局_2023年生态补偿与绿色金融.csv").unlink()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "ph"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--year", "2023", "--data", str(sample_copy),
         "--out", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "财政局" in proc.stderr and "--allow-incomplete" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "reports" / "2023").exists() or not any((tmp_path / "reports" / "2023").iterdir())


def test_cli_rejects_bad_arguments_plainly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--year", "2023", "--data", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "数据目录不存在" in proc.stderr and "Traceback" not in proc.stderr

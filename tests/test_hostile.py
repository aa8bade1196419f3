"""The hostile-input corpus: every file gets its clear Chinese message, exit 1 or 2, no traceback,
and brings no accepted facts into the ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from evaluation import operations
from evaluation.ledger import Ledger
from flows.cli import app

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
CASES = yaml.safe_load((HOSTILE / "cases.yaml").read_text(encoding="utf-8"))


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    for case in CASES:
        assert case.get("generated_by_test") or (HOSTILE / case["file"]).is_file(), case["file"]


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge_200mb_2023.csv"
    with open(path, "wb") as fh:
        fh.write("县区名称,水土保持率（%）,用水总量（万立方米）\n".encode())
        fh.truncate(200 * 1024 * 1024)  # sparse: 200 MB on paper, no disk used
    return path


def _path(case: dict, huge: Path) -> Path:
    return huge if case.get("generated_by_test") else HOSTILE / case["file"]


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_validate_gives_the_expected_message(case, huge_file, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(_path(case, huge_file)), "--department", case["department"],
                                 "--year", str(case["year"]), "--out", str(tmp_path)])
    output = result.output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == case["exit"], output
    flat = re.sub(r"\s+", "", output)
    assert re.sub(r"\s+", "", case["message"]) in flat, output


def test_ledger_gains_no_accepted_facts_from_the_corpus(catalogue, huge_file, tmp_path):
    ledger = Ledger.at(tmp_path / "reports")
    statuses = []
    for case in CASES:
        path = _path(case, huge_file)
        # the file handed in as the bureau's table for the year, as `twomountains validate` or an upload would
        intake = operations.check_file(catalogue, case["department"], case["year"], path)
        operations.record(ledger, [intake], catalogue, "2024-02-01T00:00:00+00:00")
        statuses.append(intake.status)
    assert "accepted" not in statuses
    assert ledger.facts(2023, current_only=False).empty
    assert all(s["status"] != "accepted" for s in ledger.submissions())
    ledger.close()


def test_html_report_is_written_next_to_the_file(tmp_path):
    target = tmp_path / "unknown_county_2023.csv"
    target.write_bytes((HOSTILE / "unknown_county_2023.csv").read_bytes())
    result = CliRunner().invoke(app, ["validate", str(target), "--department", "water", "--html", "--out", str(tmp_path)])
    assert result.exit_code == 1
    html = (tmp_path / "unknown_county_2023.csv.校验报告.html").read_text(encoding="utf-8")
    assert "未通过（整表退回）" in html and "某县" in html and "陇南市所辖 9 个县区之一" in html


def test_escaping_in_the_html_report(tmp_path):
    target = tmp_path / "x_2023.csv"
    target.write_text("县区名称,水土保持率（%）,用水总量（万立方米）\n<script>alert(1)</script>,1,200\n", encoding="utf-8")
    CliRunner().invoke(app, ["validate", str(target), "--department", "water", "--html", "--out", str(tmp_path)])
    html = (tmp_path / "x_2023.csv.校验报告.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_path_outside_the_project_is_only_read_never_trusted(tmp_path):
    result = CliRunner().invoke(app, ["validate", "/etc/passwd", "--department", "water", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "找不到县区列" in result.output and "Traceback" not in result.output

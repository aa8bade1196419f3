"""The README's commands, as written (tests/readme.py): every one is run by a test, and the ones that need
no server or issued year are run here, in a new folder, exactly as the README writes them."""

from __future__ import annotations

import os
import re
import shutil

from tests import readme

REPO = readme.REPO

# set up and measured by themselves, not by the suite ("setup aside"): `make test` is what runs this file,
# `make demo` is what CI's fresh clone runs, `make bench` takes an hour
NOT_RUN_BY_THE_SUITE = {"make demo", "make test", "make bench", "make bench SCALE=300",
                        "make bench PROFILE=/tmp/prof"}


def _clean_shell() -> dict:
    """A new terminal: no workspace or server chosen beforehand."""
    return {k: v for k, v in os.environ.items() if k not in ("TWOMOUNTAINS_HOME", "PREFECT_API_URL")}


def test_every_readme_command_is_run_by_a_test():
    """A README command is claimed by a test that calls readme.command() with a prefix matching it alone."""
    claims = set()
    for source in (REPO / "tests").glob("test_*.py"):
        claims |= set(re.findall(r'readme\.command\(\s*f?"([^"]+)"', source.read_text(encoding="utf-8")))
    claims = {c.replace("{name}", n) for c in claims
              for n in ("annual-evaluation/annual-evaluation", "distribute-scorecards/distribute-scorecards")}
    unclaimed = [c for c in readme.commands() if c not in NOT_RUN_BY_THE_SUITE
                 and not any(c == p or c.startswith(p + " ") for p in claims)]
    assert not unclaimed, f"README commands no test runs: {unclaimed}"
    assert len(readme.commands()) >= 20  # the parser still finds the README's commands


def test_a_bureau_writes_its_form_fills_it_and_checks_it(tmp_path):
    """README, "Pointing it at real data": `template` writes the file name the drop folder expects; the
    bureau fills it in; `validate … --html` reports in Chinese, writes the page beside the file, exit 0."""
    shell = _clean_shell()
    made = readme.run(readme.command(".venv/bin/twomountains template --department stats --year 2024"),
                      cwd=tmp_path, env=shell)
    assert made.returncode == 0, made.stdout + made.stderr
    form = tmp_path / "统计局_2024年主要经济指标.xlsx"
    assert form.is_file() and "注意" not in made.stdout

    # the clerk types the counties' figures in (here the sample's 2023 figures: a plausible year on year)
    import openpyxl

    last = openpyxl.load_workbook(REPO / "data" / "sample" / "2023" / "统计局_2023年主要经济指标.xlsx").worksheets[0]
    header = next(row for row in last.iter_rows(values_only=True) if row[0] == "区县代码")
    figures = {str(row[0]): dict(zip(header, row)) for row in last.iter_rows(values_only=True)
               if row[0] and str(row[0]).isdigit()}
    book = openpyxl.load_workbook(form)
    sheet = book["填报表"]
    columns = [cell.value for cell in next(r for r in sheet.iter_rows() if r[0].value == "区县代码")]
    filled = 0
    for row in sheet.iter_rows():
        for cell, name in zip(row, columns):
            if cell.value is None and str(row[0].value) in figures:
                cell.value = figures[str(row[0].value)][name]
                filled += 1
    assert filled == 9 * 5
    book.save(form)

    checked = readme.run(readme.command(".venv/bin/twomountains validate 统计局_2024年主要经济指标.xlsx --html"),
                         cwd=tmp_path, env=shell)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "按文件名判断为统计局" in checked.stdout and "通过" in checked.stdout
    assert list(tmp_path.glob("*.html")), "the page beside the file"


def test_an_admin_account_is_made_as_written(tmp_path):
    """README, "The bureaus' web portal": the first account, password typed twice (here piped: one line)."""
    made = readme.run(readme.command(".venv/bin/twomountains users add admin"), cwd=tmp_path,
                      env=_clean_shell(), input="admin-pass-2024\n")
    assert made.returncode == 0 and "已创建账户 admin" in made.stdout, made.stdout + made.stderr
    assert (tmp_path / "reports" / "ledger").is_dir()  # the workspace is the folder the command was typed in


def test_the_engine_runs_coinr_asem_as_written(tmp_path):
    """README, "The index engine": COINr-style tables and a spec of named steps, results to a CSV."""
    for name in ("iData.csv", "iMeta.csv"):
        shutil.copy(REPO / "tests" / "data" / "coinr-asem" / name, tmp_path)
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    done = readme.run(readme.command(".venv/bin/twomountains index --data iData.csv"), cwd=tmp_path,
                      env=_clean_shell())
    assert done.returncode == 0, done.stdout + done.stderr
    rows = (tmp_path / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 47 and rows[1].startswith("CHE,1,")  # the 46 countries COINr's screening keeps

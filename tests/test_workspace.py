"""The workspace: where a command reads and writes when it is not told (evaluation/workspace.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.errors import UserError
from evaluation.workspace import ENV, find

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_home(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


def test_the_checkout_is_a_workspace_of_the_sample_data():
    ws = find(REPO / "evaluation")  # found upward from a sub-folder
    assert ws.root == REPO and ws.data == REPO / "data" / "sample" and ws.reports == REPO / "reports"
    assert ws.config == REPO / "config" and ws.ledger is None


def test_a_folder_without_settings_is_its_own_workspace(tmp_path):
    ws = find(tmp_path)
    assert (ws.root, ws.data, ws.reports, ws.config, ws.found_by) == (
        tmp_path, tmp_path / "data", tmp_path / "reports", None, "当前目录")


def test_twomountains_home_wins_and_its_settings_are_read(tmp_path, monkeypatch):
    home = tmp_path / "evaluation-2024"
    (home / "config").mkdir(parents=True)
    (home / "config" / "indicators.yaml").write_text("{}", encoding="utf-8")
    (home / "twomountains.yaml").write_text("data: 报送\nledger: postgresql+psycopg://u@db/ledger\n", encoding="utf-8")
    monkeypatch.setenv(ENV, str(home))
    ws = find(REPO)
    assert ws.data == home / "报送" and ws.reports == home / "reports" and ws.config == home / "config"
    assert ws.ledger == "postgresql+psycopg://u@db/ledger" and ws.found_by == ENV


@pytest.mark.parametrize("text, words", [
    ("output: x\n", "未知的设置：output"),
    ("- data\n", "应为“键: 值”的形式"),
    ("data: [a, b]\n", "data 应为文字"),
    ("data: [\n", "不是有效的 YAML"),
])
def test_bad_settings_are_refused_in_words(tmp_path, text, words):
    (tmp_path / "twomountains.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=words):
        find(tmp_path)


def test_a_command_typed_elsewhere_writes_there_not_into_the_checkout(tmp_path):
    before = sorted(p.name for p in (REPO / "reports").iterdir()) if (REPO / "reports").is_dir() else []
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "flows.cli", "history", "--year", "2023"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "reports" / "ledger").is_dir()  # the ledger it opened is this folder's
    after = sorted(p.name for p in (REPO / "reports").iterdir()) if (REPO / "reports").is_dir() else []
    assert after == before

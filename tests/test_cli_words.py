"""The command line speaks Chinese throughout: usage errors, help headings, and help that fits 80 columns
(measured in terminal columns: a CJK character takes two)."""

from __future__ import annotations

import re

import click
import pytest
from typer.testing import CliRunner

from flows import clizh
from flows.cli import app

COMMANDS = ["", "run", "correct", "distribute", "suites", "validate", "index", "template", "history", "web",
            "users", "users add", "users list", "users disable", "users enable", "users reset-password"]


def _invoke(*args: str):
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_and_is_not_cut(command):
    result = _invoke(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    for line in result.output.splitlines():
        assert clizh.display_width(line) <= 80, line
    body = [line for line in result.output.splitlines() if not line.startswith(("用法：", "Usage:"))]
    assert not any("..." in line for line in body) and "<bool>" not in result.output
    assert "用法：" in result.output and "显示本帮助并退出" in result.output
    assert "Usage:" not in result.output and "Show this message" not in result.output


@pytest.mark.parametrize("args, words", [
    (["run"], "缺少选项 '--year'"),
    (["run", "--year", "二〇二三"], "'--year' 的取值无效：应为整数"),
    (["run", "--year", "2023", "--bogus"], "没有选项 --bogus"),
    (["validate"], "缺少参数 'file'"),
    (["nosuch"], "没有命令 'nosuch'"),
    (["history", "--year"], "选项 '--year' 需要一个值"),
])
def test_usage_errors_are_in_chinese(args, words):
    result = _invoke(*args)
    assert result.exit_code == 2
    assert words in result.output, result.output
    assert "错误：" in result.output and not re.search(r"\b(Error|Missing|Usage|Try)\b", result.output), result.output


def test_every_message_click_marks_for_translation_that_users_meet_has_one():
    """The table covers the messages of click's exceptions, parser and number types (a new click that
    renames one shows up here, not as English on a bureau's screen)."""
    import importlib
    import inspect

    names = [f"{package}.{module}" for package in ("click", "typer._click") for module in ("exceptions", "parser", "types")]
    sources = "\n".join(inspect.getsource(importlib.import_module(name)) for name in names
                        if importlib.util.find_spec(name) is not None)
    marked = set(re.findall(r'_\(\s*"([^"]+)"\s*\)', sources))
    missing = sorted(m.encode().decode("unicode_escape") for m in marked
                     if m.encode().decode("unicode_escape") not in clizh.TEXT_ZH)
    assert not missing, missing
    import typer._click.formatting

    assert click.formatting.term_len is clizh.display_width and typer._click.formatting.term_len is clizh.display_width


def test_wrapping_counts_cjk_characters_as_two_columns():
    text = "报送台账数据库（SQLAlchemy URL，默认 <out>/ledger/ledger.sqlite）/ ledger URL " * 3
    for line in clizh.wrap_text(text, width=40, initial_indent="  ", subsequent_indent="    ").splitlines():
        assert clizh.display_width(line) <= 40, line
    assert clizh.display_width("两山 ab") == 7

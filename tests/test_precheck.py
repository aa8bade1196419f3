"""The self-check's pandas evaluation of the suites (`validation/precheck.py`) says what GX says: the same
outcome for every expectation, on the sample's 24 tables, on the hostile corpus and on random frames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluation import operations
from evaluation.validation import Gate
from evaluation.validation.precheck import PrecheckGate, supports

REPO = Path(__file__).resolve().parent.parent
HOSTILE = REPO / "tests" / "data" / "hostile"
SAMPLE = REPO / "data" / "sample"


def _comparable(outcomes: list[dict]) -> list[tuple]:
    """What a finding is made of: which expectation, whether it held, and which rows (or columns) it names."""
    out = []
    for o in outcomes:
        kwargs = {k: v for k, v in o["kwargs"].items() if k != "batch_id"}
        rows = sorted(int(i) for i in o["index"]) if not o["success"] else []
        out.append((o["type"], json.dumps(kwargs, sort_keys=True, default=str), o["severity"], o["success"],
                    o["exception"], sorted(o["missing"]), rows))
    return sorted(out)


class Both:
    """A gate that runs GX and the pre-check on the same frame and suite and requires the same outcomes."""

    def __init__(self, gx: Gate):
        self.gx, self.pre, self.compared, self.failing = gx, PrecheckGate(), 0, 0

    def run(self, frame: pd.DataFrame, suite: dict) -> list[dict]:
        assert supports(suite), suite["name"]
        expected = self.gx.run(frame, suite)
        got = self.pre.run(frame, suite)
        assert _comparable(got) == _comparable(expected), suite["name"]
        self.compared += 1
        self.failing += sum(not o["success"] for o in expected)
        return expected


@pytest.fixture(scope="module")
def gx():
    return Gate()


def test_sample_and_hostile_tables_get_the_same_outcomes(catalogue, gx, tmp_path):
    both = Both(gx)
    for year in (2021, 2022, 2023):
        for department, source in catalogue.sources.items():
            intake = operations.check_file(catalogue, department, year, SAMPLE / str(year) / source.file_name(year),
                                           gate=both)
            assert intake.accepted, intake.message
    cases = [c for c in yaml.safe_load((HOSTILE / "cases.yaml").read_text(encoding="utf-8"))
             if not c.get("generated_by_test")]
    for case in cases:
        operations.check_file(catalogue, case["department"], case["year"], HOSTILE / case["file"], gate=both)
    assert both.compared >= 24 + 20 and both.failing >= 20  # the corpus does reach the suites, and fails them


# -- random frames against a suite of every supported type ------------------------------------------------

SUITE = {"name": "precheck_property", "meta": {}, "expectations": [
    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["a", "b", "code"], "exact_match": False}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "code"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "code"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "known", "value_set": [True]}},
    {"type": "expect_column_unique_value_count_to_be_between", "kwargs": {"column": "code", "min_value": 3, "max_value": 5}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0.0, "max_value": 100.0}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "min_value": -5.0}, "severity": "warning"},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b",
     "kwargs": {"column_A": "a", "column_B": "b", "or_equal": True, "ignore_row_if": "either_value_is_missing"}},
]}

numbers = st.one_of(st.none(), st.sampled_from([0.0, 100.0, -5.0]), st.floats(-20, 130, allow_nan=False))


@st.composite
def frames(draw):
    n = draw(st.integers(1, 8))
    frame = pd.DataFrame({
        "code": draw(st.lists(st.one_of(st.none(), st.sampled_from(["621202", "621221", "621222", "621223"])),
                              min_size=n, max_size=n)),
        "known": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "a": draw(st.lists(numbers, min_size=n, max_size=n)),
        "b": draw(st.lists(numbers, min_size=n, max_size=n)),
    })
    frame["a"], frame["b"] = frame["a"].astype(float), frame["b"].astype(float)
    drop = draw(st.sampled_from([None, None, None, "a", "b"]))
    return frame.drop(columns=[drop]) if drop else frame


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames())
def test_random_frames_get_the_same_outcomes(gx, frame):
    expected, got = gx.run(frame, SUITE), PrecheckGate().run(frame, SUITE)
    assert _comparable(got) == _comparable(expected)


def test_validate_does_not_import_great_expectations(tmp_path):
    """The self-check's speed comes from never loading GX: the command's process must not import it."""
    import subprocess
    import sys

    code = ("import sys, runpy; sys.argv = ['twomountains', 'validate', sys.argv[1], '--out', sys.argv[2]]\n"
            "from flows import cli\n"
            "try:\n    cli.app()\nexcept SystemExit as exc:\n    code = exc.code\n"
            "print('GX', 'great_expectations' in sys.modules, 'CODE', code)")
    table = SAMPLE / "2023" / "统计局_2023年主要经济指标.xlsx"
    done = subprocess.run([sys.executable, "-c", code, str(table), str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert "GX False CODE 0" in done.stdout, done.stdout + done.stderr
    assert "按文件名判断为统计局（stats）的表" in done.stdout

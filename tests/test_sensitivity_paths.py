"""Issue 20: the Sobol indices of the index, the shortest path to the next grade (linear program, checked by
re-scoring and against a brute-force grid), relative readiness signals, the grounded defaults (zone applicability,
census populations, a `source:` on every configured item), and the 2023 sample run's workbook and methodology
report carrying all of it."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation import operations, pipeline
from evaluation.index import paths as path_module
from evaluation.index import sensitivity
from evaluation.index.readiness import assess, target_values
from evaluation.index.scoring import IndexSpec, score, score_catalogue

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"
CENSUS = {"621202": 54.6616, "621221": 24.1587, "621222": 19.6906, "621223": 25.4944, "621224": 16.2418,
          "621225": 35.1069, "621226": 42.4135, "621227": 18.9888, "621228": 3.9709}


@pytest.fixture(scope="module")
def year2023(catalogue):
    history = {y: pipeline.assemble_values(operations.check_folder(catalogue, SAMPLE, y), catalogue) for y in (2021, 2022)}
    made = operations.evaluate(catalogue, operations.check_folder(catalogue, SAMPLE, 2023), 2023,
                               run_date="2024-03-01", history=history, sample=True)
    made.history = history  # the sample's 2021 and 2022 values, for the census test
    return made


# -- Sobol indices of the index ----------------------------------------------------------------------------


def test_the_vectorised_estimator_equals_salib_column_by_column():
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = {"num_vars": 4, "names": ["a", "b", "c", "d"], "groups": ["g1", "g1", "g2", "g3"],
               "bounds": [[0.0, 1.0]] * 4}
    x = sample.sample(problem, 256, calc_second_order=False, seed=3)
    outputs = np.stack([x[:, 0] + 2 * x[:, 1] * x[:, 2], np.sin(6 * x[:, 3]) + x[:, 0] ** 2,
                        np.round(4 * x[:, 2])], axis=1)
    first, total = sensitivity.estimate(outputs, 3)
    for column in range(outputs.shape[1]):
        found = analyze.analyze(problem, outputs[:, column], calc_second_order=False, seed=3)
        assert first[:, column] == pytest.approx(found["S1"], abs=1e-9)
        assert total[:, column] == pytest.approx(found["ST"], abs=1e-9)


def test_index_sobol_is_seeded_names_every_choice_and_says_what_drives_the_ranks(year2023, catalogue):
    result = year2023.result
    run = lambda: sensitivity.index_sobol(result.raw, result.zones, IndexSpec.from_catalogue(catalogue),  # noqa: E731
                                          catalogue.method.uncertainty, catalogue.method.sensitivity)
    first, second = run(), run()
    pd.testing.assert_frame_equal(first.correlation, second.correlation)
    pd.testing.assert_frame_equal(first.total, second.total)
    assert first.inputs == ["weights.key_ecological", "weights.agricultural", "weights.urbanised", "normalise",
                            "aggregate", "missing"]
    groups = len(first.inputs)
    assert first.runs == catalogue.method.sensitivity.samples * (groups + 2)
    assert first.driver() in first.inputs
    assert (first.correlation["ST"] >= -0.05).all() and (first.correlation["ST"] <= 1.1).all()
    assert set(first.total.index) == set(result.raw.index)
    # the analysis of the run carries the same indices
    pd.testing.assert_frame_equal(year2023.analysis.sensitivity.correlation.drop(columns=[]), first.correlation)


# -- the shortest path to the next grade ------------------------------------------------------------------


def test_each_path_re_scored_reaches_the_next_grade(year2023, catalogue):
    result, ways = year2023.result, year2023.analysis.paths
    spec = IndexSpec.from_catalogue(catalogue)
    feasible = [code for code, p in ways.items() if p["grade"].goal and p["grade"].feasible]
    assert feasible, "the sample has counties that can move up within a year"
    for code in feasible:
        p = ways[code]["grade"]
        raw = result.raw.copy()
        for indicator, target in p.changes.items():
            raw.at[code, indicator] = target
        again = score(raw, result.zones, spec)
        assert again.overall[code] >= p.target - 1e-9, code
        assert again.grade[code] == p.goal, code
        for s in p.steps:  # every step within its feasible yearly change
            assert abs(s.change) <= s.cap + 1e-9 or catalogue.indicators[[i.id for i in catalogue.indicators].index(
                s.indicator)].unit == "个"
    for code, p in ways.items():
        if p["grade"].goal and not p["grade"].feasible:  # the most one year reaches is below the next grade
            assert p["grade"].reachable < p["grade"].target


def _two_indicator_case():
    """Two indicators of one dimension, one zone; weights 2:1, goalposts 0-100 and 0-50 (hand-worked below)."""
    indicators = pd.DataFrame({"dimension": ["X", "X"], "direction": [1, -1], "low": [0.0, 0.0],
                               "high": [100.0, 50.0], "weight": [2.0, 1.0]}, index=pd.Index(["a", "b"], name="id"))
    spec = IndexSpec(indicators, pd.DataFrame([[True, True]], index=["z"], columns=indicators.index),
                     pd.DataFrame([[1.0]], index=["z"], columns=["X"]),
                     grades=(("好", 60.0), ("中", 0.0)))
    raw = pd.DataFrame({"a": [40.0], "b": [30.0]}, index=["c1"])
    return spec, raw


def test_the_program_by_hand_on_two_indicators():
    # c1: a 40 -> 40 points, b 30 on a reversed 0-50 scale -> 40 points; composite (2*40 + 40)/3 = 40; to reach 60
    # it needs 20 points: a unit of a adds 2/3 * 1 = 0.667 points, a unit of b 1/3 * 2 = 0.667 points.
    spec, raw = _two_indicator_case()
    result = score(raw, pd.Series({"c1": "z"}), spec)
    assert result.overall["c1"] == pytest.approx(40.0)
    caps = {"a": 24.0, "b": 12.0}  # a's cap costs 1/24 per unit, b's 1/12: a is cheaper per point
    pr = _path_for(result, spec, caps)
    gap = 20.0
    cost = lambda xa, xb: xa / caps["a"] + xb / caps["b"]  # noqa: E731
    # by hand: a gives 0.667 points per unit at 1/24 a unit; all 24 units of a give 16 points; the other 4 from b:
    # 4 / 0.667 = 6 units of b. Cost 1 + 0.5 = 1.5.
    assert pr["a"] == pytest.approx(24.0, abs=1e-6) and pr["b"] == pytest.approx(6.0, abs=1e-6)
    best = cost(pr["a"], pr["b"])
    assert best == pytest.approx(1.5, abs=1e-6)
    grid_a, grid_b = np.linspace(0, caps["a"], 241), np.linspace(0, caps["b"], 121)
    xa, xb = np.meshgrid(grid_a, grid_b)
    points = (2 / 3) * xa * (100 / 100) + (1 / 3) * xb * (100 / 50)
    reaching = points >= gap - 1e-9
    assert reaching.any()
    assert cost(xa, xb)[reaching].min() >= best - 1e-9
    # and the path re-scored reaches the grade
    moved = raw.copy()
    moved.at["c1", "a"] = 40 + pr["a"]
    moved.at["c1", "b"] = 30 - pr["b"]
    assert score(moved, pd.Series({"c1": "z"}), spec).overall["c1"] >= 60 - 1e-9


def test_a_countys_path_is_no_dearer_than_any_point_of_a_brute_force_grid_re_scored(year2023, catalogue):
    """礼县 (about 2.4 points below 合格) with only two indicators free to move: the program's answer against every
    point of a 81 x 81 grid over them, each scored by the engine (one call: the grid's points as counties)."""
    result, code = year2023.result, "621226"
    free = {"public_satisfaction": 12.0, "forest_cover": 20.0}  # caps in the indicators' units
    caps = {i.id: free.get(i.id, 1e-9) for i in catalogue.indicators}
    p = path_module.grade_path(result, catalogue, code, caps)
    assert p.feasible and p.goal == "合格"
    moves = {s.indicator: abs(s.change) for s in p.steps if abs(s.change) > 1e-6}
    assert set(moves) <= set(free)
    best = sum(moves.get(j, 0.0) / c for j, c in free.items())
    grid = {j: np.linspace(0, c, 81) for j, c in free.items()}
    xa, xb = np.meshgrid(grid["public_satisfaction"], grid["forest_cover"])
    rows = pd.DataFrame([result.raw.loc[code]] * xa.size).reset_index(drop=True)
    rows.index = [f"g{k}" for k in range(len(rows))]
    rows["public_satisfaction"] += xa.ravel()
    rows["forest_cover"] += xb.ravel()
    overall = score(rows, pd.Series(result.zones[code], index=rows.index), IndexSpec.from_catalogue(catalogue)).overall
    goal = p.target  # the 合格 band's floor
    reaching = (overall.reindex(rows.index).to_numpy() >= goal)
    assert reaching.any()
    costs = xa.ravel() / free["public_satisfaction"] + xb.ravel() / free["forest_cover"]
    assert costs[reaching].min() >= best - 1e-9
    raw = result.raw.copy()
    for j, target in p.changes.items():
        raw.at[code, j] = target
    assert score(raw, result.zones, IndexSpec.from_catalogue(catalogue)).overall[code] >= goal


def _path_for(result, spec, caps: dict[str, float]) -> dict[str, float]:
    """The program of path_module for a hand-made spec (the catalogue-free core: gains, caps, room)."""
    terms = [("a", 40.0, 0.0, 100.0, 1, 2 / 3), ("b", 30.0, 0.0, 50.0, -1, 1 / 3)]
    gain = np.array([100 * w / (hi - lo) for _, _, lo, hi, _, w in terms])
    cap = np.array([caps["a"], caps["b"]])
    room = np.array([100 - 40.0, 30.0 - 0.0])
    x = path_module._solve(gain, 1 / cap, np.minimum(cap, room), 60 - float(result.overall["c1"]))
    return {"a": float(x[0]), "b": float(x[1])}


def test_the_geometric_mean_path_is_re_scored_until_it_reaches_the_grade(year2023, catalogue):
    method = catalogue.method.model_copy(update={"aggregate": "geometric_mean"})
    geo = catalogue.model_copy(update={"method": method})
    spec = IndexSpec.from_catalogue(geo)
    result = score(year2023.result.raw, year2023.result.zones, spec)

    def rescore(code, values):
        raw = result.raw.copy()
        for indicator, value in values.items():
            raw.at[code, indicator] = value
        return score(raw, result.zones, spec).overall[code]

    ways = path_module.all_paths(result, geo, rescore=rescore)
    checked = 0
    for code, p in ways.items():
        g = p["grade"]
        if g.goal and g.feasible:
            assert rescore(code, g.changes) >= g.target - 1e-9
            checked += 1
    assert checked


# -- readiness signals ----------------------------------------------------------------------------------------


def test_a_relative_signal_asks_for_the_value_of_the_county_now_at_the_cut(catalogue):
    codes = ["621202", "621221", "621222", "621223", "621224", "621225"]
    raw = pd.DataFrame({i.id: 50.0 for i in catalogue.indicators}, index=codes)
    raw["eqi"] = [70.0, 60.0, 65.0, 72.0, 55.0, 68.0]  # order: 621223 72, 621202 70, 621225 68, 621222 65, ...
    targets = target_values(raw, catalogue)
    k = next(n for n, s in enumerate(catalogue.readiness.signals) if s.indicator == "eqi")
    assert catalogue.readiness.signals[k].within == "city" and catalogue.readiness.signals[k].top == 3
    # outside the top 3: equal the third best (68); inside it: the third best of the others (65)
    assert targets[k].to_dict() == {"621202": 65.0, "621221": 68.0, "621222": 68.0, "621223": 65.0,
                                    "621224": 68.0, "621225": 65.0}
    checks = assess(raw, catalogue)
    eqi = {code: next(c for c in checks[code] if c.indicator == "eqi") for code in codes}
    assert [eqi[c].met for c in codes] == [True, False, False, True, False, True]
    assert eqi["621222"].threshold == "全市前3位"


# -- grounded defaults ----------------------------------------------------------------------------------------


def test_sample_populations_are_the_2020_census(year2023):
    for year, values in {**year2023.history, 2023: year2023.values}.items():
        assert values["population"].to_dict() == pytest.approx(CENSUS, abs=1e-9), year
        assert values["population"].sum() == pytest.approx(240.7272, abs=1e-9)
    values = year2023.values
    assert values.at["621221", "gdp"] == pytest.approx(87.62)  # 成县 2023, published
    assert (values["surface_water_good"] == 100).all()  # 2023: every monitored section good


def test_gdp_counts_only_for_urbanised_counties_and_grain_only_for_agricultural_ones(catalogue):
    zone = {c.code: c.zone for c in catalogue.counties}
    assert zone["621225"] == "agricultural" and zone["621221"] == "urbanised" and zone["621202"] == "key_ecological"
    values = pd.DataFrame({v: 50.0 for v in catalogue.variables}, index=[c.code for c in catalogue.counties])
    base = score_catalogue(values, catalogue)
    for gdp_based in ("gdp_per_capita", "energy_per_gdp", "water_per_gdp"):
        assert base.applicable[gdp_based][base.zones == "urbanised"].all()
        assert not base.applicable[gdp_based][base.zones != "urbanised"].any()
    assert base.applicable["grain_output"].to_dict() == {c: zone[c] == "agricultural" for c in zone}
    richer = values.copy()
    richer["gdp"] *= 3  # 3 x GDP: per-capita GDP up, energy and water per GDP down
    moved = score_catalogue(richer, catalogue).overall - base.overall
    assert moved["621225"] == pytest.approx(0.0) and moved["621202"] == pytest.approx(0.0)
    assert moved["621221"] > 1.0
    grain = values.copy()
    grain["grain_output"] = 10.0  # 万吨 on goalposts 5-25: 25 points instead of 100 (50 is above the top)
    moved = score_catalogue(grain, catalogue).overall - base.overall
    # by hand: an agricultural county's B (weight 0.35) has 10 applicable indicators of equal weight (with the GEP
    # conversion rate), so the composite moves by -75 x 0.35 / 10 = -2.625; nobody else reports grain as an indicator
    assert moved["621225"] == pytest.approx(-75 * 0.35 / 10)
    assert moved["621221"] == pytest.approx(0.0) and moved["621202"] == pytest.approx(0.0)
    assert [z.name for z in catalogue.zone_types.values()] == ["重点生态功能区", "农产品主产区", "城市化地区"]


def test_every_configured_item_says_where_it_comes_from(catalogue):
    missing = []
    for i in catalogue.indicators:
        missing += [f"indicator {i.id}"] * (not i.source) + [f"goalposts {i.id}"] * (not i.goalposts_source)
    missing += [f"county {c.code}" for c in catalogue.counties if not c.source]
    missing += [f"zone type {z}" for z, t in catalogue.zone_types.items() if not t.source]
    missing += [f"weight set {w}" for w in catalogue.weight_sets if not catalogue.weight_set_sources.get(w)]
    missing += [f"grade {g.name}" for g in catalogue.grades if not g.source]
    missing += [f"dimension {d.id}" for d in catalogue.dimensions if not d.source]
    missing += [f"signal {s.name}" for s in catalogue.readiness.signals if not s.source]
    missing += [f"city target {t.year}" for t in catalogue.readiness.city_targets if not t.source]
    missing += ["missing_score"] * (not catalogue.missing_score_source)
    m = catalogue.method
    missing += [name for name, item in (("method", m), ("uncertainty", m.uncertainty), ("sensitivity", m.sensitivity),
                                        ("path", m.path), ("ratings", m.ratings), ("readiness", catalogue.readiness))
                if not item.source]
    assert not missing, missing
    # a default no published source backs says so, and stays unverified
    assert all(not c.verified for c in catalogue.counties if c.source.startswith("proposed"))
    assert not catalogue.readiness.verified and not m.path.verified


# -- the 2023 sample run: workbook and methodology report -----------------------------------------------------


def check_version_carries_audit_sobol_and_paths(folder: Path, manifest: dict, catalogue) -> None:
    """A version of the 2023 sample (tests/test_flow.py's first annual flow run calls this on its v1): its
    workbook and its methodology report carry the audit, the Sobol table and each county's path."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO((folder / manifest["workbook"]["file"]).read_bytes()))
    audit = [r for r in book["统计审计"].iter_rows(min_row=2, values_only=True)]
    assert {r[2] for r in audit if r[0] == "一致性"} >= {"Cronbach's α", "第一主成分方差占比"}
    assert any(r[0] == "标记" and r[2] == "地表水达到或好于Ⅲ类水体比例" and "无区分度" in r[4] for r in audit)
    sobol = [r for r in book["敏感性分析"].iter_rows(min_row=2, values_only=True)]
    assert {r[3] for r in sobol if r[0] == "与基准排名的Spearman相关系数"} >= {"标准化方法", "加总方法", "缺失值规则"}
    assert {r[1] for r in sobol if r[0] == "县区排名"} == {c.code for c in catalogue.counties}
    paths = [r for r in book["升级路径"].iter_rows(min_row=2, values_only=True)]
    assert {r[0] for r in paths if r[2] == "升至下一等级"} == {c.code for c in catalogue.counties}
    assert any(r[2] == "达到全部创建信号" for r in paths)

    report = folder / manifest["methodology"]["file"]
    assert report.name == "621200_陇南市_2023年度评价技术报告.pdf"
    assert manifest["methodology"]["file"] not in manifest["outputs"]  # never sent to a county
    text = re.sub(r"\s+", "", subprocess.run(["pdftotext", str(report), "-"], capture_output=True, text=True,
                                               check=True).stdout)
    for expected in ("技术报告", "评价框架", "Cronbach", "第一主成分", "审计标记", "无区分度", "Sobol", "标准化方法",
                     "缺失值规则", "升至下一等级的最短路径", "线性规划", "十四五规划纲要", "提议", "示例数据",
                     "城市化地区", "默认设置及其依据", "择优遴选"):
        assert expected in text, expected
    for county in catalogue.counties:  # every county's path is listed
        assert county.name in text.split("升至下一等级的最短路径", 1)[1], county.name
    fonts = subprocess.run(["pdffonts", str(report)], capture_output=True, text=True, check=True).stdout
    assert "Noto-Sans-CJK-SC" in fonts

"""The composite-indicator engine: COINr's published ASEM results, hand-worked golden cases per method,
and Hypothesis properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from evaluation.index import methods as m
from evaluation.index.coin import SpecError, load_coin, load_spec, run
from flows.cli import app

REPO = Path(__file__).resolve().parent.parent
ASEM = REPO / "tests" / "data" / "coinr-asem"  # a copy of shared/anchors/coinr-asem
SPEC_A = REPO / "examples" / "asem-spec.yaml"
COLS = ["Index", "Conn", "Sust", "Physical", "ConEcFin", "Political", "Instit", "P2P", "Environ", "Social", "SusEcFin"]

# COINr overview vignette (docs/articles/overview.html): denominate, screen 0.9, Treat, min-max, a_amean
PUBLISHED_A = {
    "CHE": [68.33, 62.18, 74.48, 64.37, 33.30, 73.03, 83.32, 56.87, 78.13, 87.63, 57.67],
    "DNK": [64.47, 56.05, 72.90, 50.17, 30.52, 76.98, 71.59, 51.01, 70.53, 86.17, 61.99],
    "NLD": [64.46, 61.32, 67.60, 68.15, 45.11, 83.49, 67.96, 41.86, 57.14, 86.00, 59.65],
    "NOR": [64.23, 56.53, 71.93, 57.45, 25.39, 78.95, 87.10, 33.75, 71.55, 87.04, 57.20],
    "BEL": [63.11, 63.02, 63.19, 71.80, 48.65, 79.57, 71.84, 43.27, 52.00, 85.36, 52.22],
    "SWE": [62.82, 52.88, 72.77, 51.90, 23.93, 80.10, 70.04, 38.43, 68.34, 86.92, 63.04],
}
# all 46 ranks of the same pipeline ("Screen90" in COINr's adjustments vignette)
RANKS_A = ("CHE DNK NLD NOR BEL SWE AUT LUX DEU SVN SGP IRL MLT FIN GBR LTU CZE FRA HRV HUN LVA SVK EST ESP ROU "
           "PRT POL ITA CYP KOR BGR NZL GRC JPN AUS VNM THA MYS PHL IND IDN MNG KAZ PAK CHN RUS").split()
# build_example_coin() (results vignette): group-mean imputation by EurAsia_group before screening
PUBLISHED_B = {
    "CHE": [68.38, 62.79, 73.98, 63.41, 32.87, 74.78, 85.94, 56.93, 77.21, 87.85, 56.88],
    "NLD": [64.82, 61.94, 67.70, 64.87, 46.62, 84.55, 71.74, 41.92, 58.73, 86.58, 57.78],
    "DNK": [64.80, 57.10, 72.51, 50.52, 30.43, 78.13, 75.35, 51.04, 69.83, 86.40, 61.29],
    "NOR": [64.47, 57.44, 71.50, 58.18, 25.70, 80.03, 89.46, 33.80, 70.90, 87.00, 56.59],
    "BEL": [63.54, 63.99, 63.09, 71.97, 48.22, 80.84, 75.60, 43.32, 53.01, 86.17, 50.09],
    "SWE": [63.00, 53.87, 72.12, 51.51, 23.87, 80.98, 74.51, 38.50, 66.37, 87.74, 62.27],
}


@pytest.fixture(scope="module")
def coin():
    return load_coin(ASEM / "iData.csv", ASEM / "iMeta.csv")


def test_reproduces_coinr_overview_example(coin):
    result = run(coin, load_spec(SPEC_A))
    table = result.results.set_index("uCode")
    assert result.screened_out == ["BGD", "BRN", "KHM", "LAO", "MMR"]
    assert list(result.results.columns) == ["uCode", "Rank"] + COLS
    for unit, values in PUBLISHED_A.items():
        assert table.loc[unit, COLS].astype(float).tolist() == pytest.approx(values, abs=0.005), unit
    assert list(result.results["uCode"]) == RANKS_A
    assert list(result.results["Rank"]) == list(range(1, 47))


def test_reproduces_coinr_build_example_coin(coin):
    steps = [{"denominate": {}}, {"impute": {"method": "group_mean", "group": "EurAsia_group"}},
             {"screen": {"min_availability": 0.9}}, {"treat": {"winmax": 5}},
             {"normalise": {"method": "minmax", "range": [0, 100]}}, {"aggregate": {"method": "arithmetic_mean"}}]
    table = run(coin, steps).results.set_index("uCode")
    assert len(table) == 51
    for unit, values in PUBLISHED_B.items():
        assert table.loc[unit, COLS].astype(float).tolist() == pytest.approx(values, abs=0.005), unit
    ind = table.loc["IND"]
    assert [ind["Index"], ind["Conn"], ind["Sust"]] == pytest.approx([39.79, 28.60, 50.99], abs=0.005)
    assert ind["Rank"] == 45


def test_treat_checkpoints_from_coinr_vignette(coin):
    flights = coin.data["Flights"].to_numpy()
    assert (m.skew(flights), m.kurt(flights)) == pytest.approx((2.1032872, 4.5088794), abs=1e-6)
    capped, positions = m.winsorise(flights)
    assert len(positions) == 1
    assert (m.skew(capped), m.kurt(capped)) == pytest.approx((1.900658, 3.336065), abs=1e-6)
    # winmax = 1 cannot fix Goods: log_CT of the original column
    goods, record = m.treat_column(coin.data["Goods"].to_numpy(), winmax=1)
    assert record.method == "log_ct"
    assert (m.skew(goods), m.kurt(goods)) == pytest.approx((0.03104001, -0.8888965), abs=1e-6)
    flights0, record = m.treat_column(flights, winmax=0)
    assert record.method == "log_ct"
    assert (m.skew(flights0), m.kurt(flights0)) == pytest.approx((-0.09502644, -0.8305217), abs=1e-6)


def test_cli_index_writes_results_and_refuses_bad_specs(tmp_path):
    out = tmp_path / "asem.csv"
    result = CliRunner().invoke(app, ["index", "--data", str(ASEM / "iData.csv"), "--meta", str(ASEM / "iMeta.csv"),
                                      "--spec", str(SPEC_A), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert list(table.columns[:3]) == ["uCode", "Rank", "Index"] and table.loc[0, "uCode"] == "CHE"
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - normalise: {method: magic}\n  - aggregate: {}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["index", "--data", str(ASEM / "iData.csv"), "--meta", str(ASEM / "iMeta.csv"),
                                      "--spec", str(bad), "--out", str(out)])
    assert result.exit_code == 2 and "unknown normalisation: magic" in result.output
    assert "Traceback" not in result.output


def test_spec_errors_are_clear(coin):
    with pytest.raises(SpecError, match="unknown step: weigh"):
        run(coin, [{"weigh": {}}])
    with pytest.raises(SpecError, match="no aggregate step"):
        run(coin, [{"normalise": {}}])


# -- golden cases, one per method (worked by hand) -------------------------------------------

X = pd.DataFrame({"a": [1.0, 2.0, 4.0, np.nan], "b": [10.0, 20.0, 30.0, 40.0]}, index=list("pqrs"))
DIR = pd.Series({"a": 1, "b": -1})


def test_minmax_by_hand():
    out = m.normalise(X, DIR, "minmax", range=[0, 100])
    # a: (x-1)/3*100 -> 0, 33.33, 100, NaN;  b reversed: (40-x)/30*100 -> 100, 66.67, 33.33, 0
    assert out["a"].tolist()[:3] == pytest.approx([0, 100 / 3, 100]) and math.isnan(out.at["s", "a"])
    assert out["b"].tolist() == pytest.approx([100, 200 / 3, 100 / 3, 0])


def test_efficacy_by_hand():
    out = m.normalise(X, DIR, "efficacy")
    # NBS efficacy coefficient: 60 + 40 * minmax share
    assert out["b"].tolist() == pytest.approx([100, 60 + 40 * 2 / 3, 60 + 40 / 3, 60])


def test_zscore_by_hand():
    out = m.normalise(X, DIR, "zscore")
    # b directed = -10,-20,-30,-40: mean -25, sample sd sqrt(500/3) = 12.910
    assert out["b"].tolist() == pytest.approx([15 / 12.909944, 5 / 12.909944, -5 / 12.909944, -15 / 12.909944])


def test_rank_by_hand():
    out = m.normalise(pd.DataFrame({"a": [3.0, 1.0, 3.0, 2.0]}), pd.Series({"a": 1}), "rank")
    assert out["a"].tolist() == [3, 1, 3, 2]


def test_goalposts_by_hand():
    out = m.normalise(X, DIR, "goalposts", low=pd.Series({"a": 0, "b": 10}), high=pd.Series({"a": 2, "b": 50}))
    # a: x/2 clipped -> 50, 100, 100;  b reversed: (50 - x)/40 -> 100, 75, 50, 25
    assert out["a"].tolist()[:3] == pytest.approx([50, 100, 100])
    assert out["b"].tolist() == pytest.approx([100, 75, 50, 25])


def test_arithmetic_mean_skips_missing():
    children = pd.DataFrame({"x": [80.0, np.nan], "y": [40.0, 30.0]})
    out = m.a_amean(children, pd.Series({"x": 3.0, "y": 1.0}))
    assert out.tolist() == pytest.approx([(3 * 80 + 40) / 4, 30])


def test_geometric_mean_by_hand():
    children = pd.DataFrame({"x": [16.0, 0.0, np.nan], "y": [1.0, 5.0, 9.0]})
    out = m.a_gmean(children, pd.Series({"x": 1.0, "y": 1.0}))
    assert out.tolist() == pytest.approx([4.0, 0.0, 9.0])
    with pytest.raises(m.MethodError):
        m.a_gmean(pd.DataFrame({"x": [-1.0]}), pd.Series({"x": 1.0}))


def test_ahp_by_hand_and_refuses_inconsistency():
    # a perfectly consistent matrix for weights 4:2:1
    w, cr = m.ahp([[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]], ["A", "B", "C"])
    assert w.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7]) and cr == pytest.approx(0, abs=1e-9)
    # Saaty's classic 3x3 example: lambda_max 3.0385, CI 0.0193, CR 0.033
    w, cr = m.ahp([[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]])
    assert w.tolist() == pytest.approx([0.6370, 0.2583, 0.1047], abs=1e-3) and cr == pytest.approx(0.033, abs=1e-3)
    with pytest.raises(m.MethodError, match=r"CR = \d+\.\d+ ≥ 0.1"):
        m.ahp([[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]])
    with pytest.raises(m.MethodError, match="正互反"):
        m.ahp([[1, 2], [2, 1]])


def test_entropy_by_hand():
    # column u is constant (no information) -> weight 0; v and w carry it all
    frame = pd.DataFrame({"u": [1.0, 1.0], "v": [1.0, 3.0], "w": [1.0, 3.0]})
    w = m.w_entropy(frame)
    assert w.tolist() == pytest.approx([0, 0.5, 0.5])
    # v: p = (0.25, 0.75), e = -(0.25 ln 0.25 + 0.75 ln 0.75)/ln 2 = 0.811278, d = 0.188722
    one = m.w_entropy(pd.DataFrame({"v": [1.0, 3.0], "x": [1.0, 1.0 + 1e-12]}))
    assert one["v"] == pytest.approx(1.0, abs=1e-6)


def test_impute_screen_and_denominate_by_hand():
    data = pd.DataFrame({"uCode": ["a", "b", "c", "d"], "g": ["x", "x", "y", "y"], "pop": [10.0, 20.0, 5.0, 0.0],
                         "i1": [1.0, np.nan, 3.0, 5.0], "i2": [20.0, 40.0, np.nan, 10.0]})
    meta = pd.DataFrame({"iCode": ["i1", "i2", "P"], "Level": [1, 1, 2], "Parent": ["P", "P", np.nan],
                         "Direction": [1, 1, np.nan], "Weight": [1, 1, 1], "Type": ["Indicator", "Indicator", "Aggregate"],
                         "Denominator": [np.nan, "pop", np.nan]})
    coin = load_coin(data, meta)
    r = run(coin, [{"denominate": {}}, {"impute": {"method": "group_mean", "group": "g"}},
                   {"normalise": {"method": "minmax"}}, {"aggregate": {}}])
    den = r.stages["denominate"]
    assert den["i2"].tolist()[:2] == [2.0, 2.0] and math.isnan(den.at["d", "i2"])  # 10/0 -> missing
    imp = r.stages["impute"]
    assert imp.at["b", "i1"] == 1.0  # group x mean of i1
    assert math.isnan(imp.at["c", "i2"]) and math.isnan(imp.at["d", "i2"])  # group y has no i2 at all
    r = run(coin, [{"screen": {"min_availability": 0.5}}, {"impute": {"method": "floor", "value": 60}},
                   {"aggregate": {}}])
    assert r.screened_out == [] and r.stages["impute"].at["b", "i1"] == 60
    r = run(coin, [{"screen": {"min_availability": 1.0}}, {"aggregate": {}}])
    assert r.screened_out == ["b", "c"]


# -- properties ---------------------------------------------------------------------------

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
frames = st.lists(st.tuples(values, values, values), min_size=2, max_size=12).map(
    lambda rows: pd.DataFrame(rows, columns=["a", "b", "c"]))


@settings(max_examples=100, deadline=None)
@given(frames, st.sampled_from(["minmax", "efficacy"]))
def test_normalised_values_stay_within_bounds(frame, method):
    out = m.normalise(frame, pd.Series({"a": 1, "b": -1, "c": 1}), method)
    low, high = (0, 100) if method == "minmax" else (60, 100)
    finite = out.stack().dropna()
    assert ((finite >= low - 1e-9) & (finite <= high + 1e-9)).all()


@settings(max_examples=100, deadline=None)
@given(frames)
def test_flipping_direction_mirrors_normalised_values(frame):
    up = m.normalise(frame, pd.Series({"a": 1, "b": 1, "c": 1}), "minmax")
    down = m.normalise(frame, pd.Series({"a": -1, "b": -1, "c": -1}), "minmax")
    both = up.notna() & down.notna()
    assert np.allclose((up + down)[both].stack(), 100)
    z_up = m.normalise(frame, pd.Series({"a": 1, "b": 1, "c": 1}), "zscore")
    z_down = m.normalise(frame, pd.Series({"a": -1, "b": -1, "c": -1}), "zscore")
    assert np.allclose(z_up.fillna(0), -z_down.fillna(0))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(*(st.floats(min_value=0, max_value=100) for _ in range(3))), min_size=1, max_size=10),
       st.lists(st.floats(min_value=0.01, max_value=10), min_size=3, max_size=3), st.floats(min_value=0.001, max_value=1000))
def test_scaling_all_weights_changes_nothing(rows, weights, k):
    children = pd.DataFrame(rows, columns=["a", "b", "c"])
    w = pd.Series(weights, index=["a", "b", "c"])
    for fn in (m.a_amean, m.a_gmean):
        assert np.allclose(fn(children, w), fn(children, w * k), equal_nan=True)
        out = fn(children, w)
        assert ((out >= children.min(axis=1) - 1e-9) & (out <= children.max(axis=1) + 1e-9)).all()


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_order_of_units_changes_nothing(rnd):
    data = pd.read_csv(ASEM / "iData.csv")
    order = list(data.index)
    rnd.shuffle(order)
    a = run(load_coin(data, ASEM / "iMeta.csv"), load_spec(SPEC_A)).results.set_index("uCode")
    b = run(load_coin(data.loc[order].reset_index(drop=True), ASEM / "iMeta.csv"), load_spec(SPEC_A)).results.set_index("uCode")
    pd.testing.assert_frame_equal(a, b.loc[a.index])


def test_winsorise_and_log_ct_by_hand():
    # nine 1s... and one 10: skew 3.16 and kurtosis 10 -> fails; capping the 10 to the next value (2)
    # gives [1]*8 + [2, 2], which passes (kurtosis < 3.5)
    x = np.array([1.0] * 8 + [2.0, 10.0])
    assert m.passes_skew_kurt(x) is False
    capped, record = m.treat_column(x)
    assert record.method == "winsorised" and record.winsorised == [9]
    assert capped.tolist() == [1.0] * 8 + [2.0, 2.0]
    # log_CT: ln(x - min + 0.01 * range)
    assert m.log_ct(np.array([0.0, 1.0, 10.0])).tolist() == pytest.approx([math.log(0.1), math.log(1.1), math.log(10.1)])
    # constant columns and too few points are left alone
    assert m.treat_column(np.array([5.0, 5.0, 5.0, 5.0]))[1].method == "none"
    assert m.treat_column(np.array([1.0, 2.0]))[1].method == "untreatable"


def test_the_county_index_runs_on_this_engine_and_its_manifest_recomputes_it(tmp_path, rendered_pdfs):
    """One engine (issue 16): the county index is the engine's mask/normalise/impute/weight/aggregate
    steps; a version's manifest keeps their inputs, so `twomountains index --manifest` gives its scores.
    The version is issued by the same operations the annual flow runs, here in this process."""
    import json

    from evaluation import operations
    from evaluation.catalogue import load_catalogue
    from evaluation.reporting.rendercache import RenderCache
    from evaluation.resources import open_ledger
    from evaluation.versions import code_hash

    catalogue = load_catalogue(REPO / "config")
    intakes = operations.check_folder(catalogue, REPO / "data" / "sample", 2023)
    reports = tmp_path / "reports"
    with open_ledger(reports) as ledger:
        operations.record(ledger, intakes, catalogue, "2024-03-01T00:00:00+00:00")
        kw = dict(run_date="2024-03-01", sample=True, code=code_hash(), workers=2,
                  renders=RenderCache(rendered_pdfs, code_hash()))
        issued = operations.issue(catalogue, intakes, ledger, reports, 2023, **kw)
        assert issued.status == "issued" and issued.version == 1 and len(issued.rendered) == 10
        assert sorted(p.name for p in issued.folder.iterdir()) == sorted([*issued.manifest["outputs"], "manifest.json",
                                                                        issued.manifest["workbook"]["file"],
                                                                        issued.manifest["methodology"]["file"],
                                                                        issued.manifest["contexts"]["file"]])
        # the contexts kept for the web workbench are the ones the PDFs were rendered from
        from evaluation.pipeline import EDITION_KEYS
        from evaluation.reporting import pages

        assert pages.verify(issued.folder, issued.manifest["contexts"]["sha256"])
        kept = pages.read(issued.folder, "621202")
        planned = operations.evaluate(catalogue, intakes, 2023, run_date="2024-03-01", sample=True,
                                      code=code_hash()).report("621202").context
        assert {k: v for k, v in kept.items() if k not in EDITION_KEYS} == json.loads(json.dumps(
            {k: v for k, v in planned.items() if k not in EDITION_KEYS}, ensure_ascii=False, default=str))
        again = operations.issue(catalogue, intakes, ledger, reports, 2023, **kw)
        assert again.status == "unchanged" and again.version == 1
    manifest = issued.manifest
    result = operations.evaluate(catalogue, intakes, 2023, run_date="2024-03-01", analyse=False).result
    assert [next(iter(s)) for s in result.steps] == ["mask", "normalise", "impute", "weight", "aggregate"]
    assert result.log[0].startswith("mask:") and len(result.log) == 5
    path = issued.folder / "manifest.json"
    out = tmp_path / "again.csv"
    done = CliRunner().invoke(app, ["index", "--manifest", str(path), "--out", str(out)])
    assert done.exit_code == 0, done.output
    again = pd.read_csv(out, dtype={"uCode": str}).set_index("uCode")
    scores = {s["county_code"]: s for s in manifest["scores"]}
    assert sorted(again.index) == sorted(scores)
    for code, row in again.iterrows():
        assert row["composite"] == pytest.approx(scores[code]["overall"], abs=5e-5)
        assert row["Rank"] == scores[code]["rank"]
    for dim in result.dimension_scores.columns:
        assert again[dim].to_numpy() == pytest.approx(result.dimension_scores.loc[again.index, dim].to_numpy())
    broken = tmp_path / "old.json"
    broken.write_text(json.dumps({"year": 2023}), encoding="utf-8")
    refused = CliRunner().invoke(app, ["index", "--manifest", str(broken), "--out", str(out)])
    assert refused.exit_code == 2 and "没有保存综合指数" in refused.output

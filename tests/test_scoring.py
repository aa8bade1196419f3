"""The scoring engine: a hand-worked golden case and Hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames

from evaluation.index.scoring import IndexSpec, compute_raw, goalpost_normalise, score, score_catalogue

# -- golden case ----------------------------------------------------------------
# Two dimensions, four indicators, two zone types; the expected numbers are worked
# by hand in the comments.


def golden_spec() -> IndexSpec:
    indicators = pd.DataFrame(
        {
            "dimension": ["X", "X", "Y", "Y"],
            "direction": [1, -1, 1, 1],
            "low": [0.0, 10.0, 0.0, 0.0],
            "high": [100.0, 20.0, 50.0, 10.0],
            "weight": [1.0, 1.0, 2.0, 1.0],
        },
        index=pd.Index(["i1", "i2", "i3", "i4"], name="id"),
    )
    applicable = pd.DataFrame(
        [[True, True, True, True], [True, True, False, True]], index=["z1", "z2"], columns=indicators.index
    )
    weights = pd.DataFrame([[0.6, 0.4], [0.5, 0.5]], index=["z1", "z2"], columns=["X", "Y"])
    return IndexSpec(indicators, applicable, weights, missing_score=0.0)


def golden_raw() -> tuple[pd.DataFrame, pd.Series]:
    raw = pd.DataFrame(
        {"i1": [80.0, 50.0, np.nan], "i2": [12.0, 25.0, 10.0], "i3": [25.0, 40.0, 50.0], "i4": [12.0, 5.0, 0.0]},
        index=["c1", "c2", "c3"],
    )
    zones = pd.Series({"c1": "z1", "c2": "z2", "c3": "z1"})
    return raw, zones


def test_golden_case_by_hand():
    raw, zones = golden_raw()
    r = score(raw, zones, golden_spec())
    # c1 (z1): i1 80 -> 80; i2 12 on a reversed 10..20 scale -> 80; i3 25/50 -> 50; i4 12 -> capped 100
    #   X = (80 + 80) / 2 = 80;  Y = (2*50 + 1*100) / 3 = 66.667;  overall = .6*80 + .4*66.667 = 74.667
    # c2 (z2): i1 50; i2 25 -> below the reversed floor -> 0; i3 not applicable (dropped); i4 5 -> 50
    #   X = 25;  Y = 50 (i3's weight spread to i4);  overall = .5*25 + .5*50 = 37.5
    # c3 (z1): i1 missing -> floor 0 (imputed); i2 10 -> 100; i3 50 -> 100; i4 0 -> 0
    #   X = 50;  Y = (2*100 + 0) / 3 = 66.667;  overall = .6*50 + .4*66.667 = 56.667
    assert r.normalised.loc["c1"].tolist() == pytest.approx([80, 80, 50, 100])
    assert r.normalised.loc["c2", ["i1", "i2", "i4"]].tolist() == pytest.approx([50, 0, 50])
    assert math.isnan(r.normalised.at["c2", "i3"])
    assert r.dimension_scores.loc["c1"].tolist() == pytest.approx([80, 200 / 3])
    assert r.dimension_scores.loc["c2"].tolist() == pytest.approx([25, 50])
    assert r.dimension_scores.loc["c3"].tolist() == pytest.approx([50, 200 / 3])
    assert r.overall.to_dict() == pytest.approx({"c1": 74 + 2 / 3, "c2": 37.5, "c3": 56 + 2 / 3})
    assert r.imputed.at["c3", "i1"] and not r.imputed.at["c2", "i3"]
    assert not r.applicable.at["c2", "i3"]
    assert r.rank.to_dict() == {"c1": 1, "c2": 3, "c3": 2}
    assert r.zone_rank.to_dict() == {"c1": 1, "c2": 1, "c3": 2}
    assert r.zone_size.to_dict() == {"c1": 2, "c2": 1, "c3": 2}
    assert r.grade.to_dict() == {"c1": "良好", "c2": "待提升", "c3": "合格"}
    # c1's points: i1 .6*.5*80 = 24, i2 24, i3 .4*(2/3)*50 = 13.333, i4 .4*(1/3)*100 = 13.333
    assert r.contributions.loc["c1"].tolist() == pytest.approx([24, 24, 40 / 3, 40 / 3])
    assert r.contributions.sum(axis=1).to_dict() == pytest.approx(r.overall.to_dict())


def test_ties_share_the_better_rank():
    raw = pd.DataFrame({"i1": [50.0, 50.0, 10.0], "i2": [15.0] * 3, "i3": [10.0] * 3, "i4": [5.0] * 3},
                       index=["a", "b", "c"])
    r = score(raw, pd.Series({"a": "z1", "b": "z1", "c": "z1"}), golden_spec())
    assert r.rank.to_dict() == {"a": 1, "b": 1, "c": 3}


def test_unknown_zone_is_a_clear_error():
    raw, zones = golden_raw()
    with pytest.raises(ValueError, match="unknown zone types"):
        score(raw, zones.replace("z2", "nowhere"), golden_spec())


def test_ratio_indicator_and_zero_denominator(catalogue):
    values = pd.DataFrame({v: [1.0, 1.0] for v in catalogue.variables}, index=["621202", "621221"])
    values.loc["621202", ["gdp", "population"]] = [137.27, 54.66]
    values.loc["621221", "population"] = 0.0
    raw = compute_raw(values, catalogue)
    assert raw.at["621202", "gdp_per_capita"] == pytest.approx(137.27 / 54.66 * 10000)  # 25,113 元/人
    assert math.isnan(raw.at["621221", "gdp_per_capita"])


def test_key_ecological_county_is_not_judged_on_gdp(catalogue):
    values = pd.DataFrame({v: 50.0 for v in catalogue.variables}, index=[c.code for c in catalogue.counties])
    base = score_catalogue(values, catalogue)
    values.loc["621202", "gdp"] *= 100  # 武都区 is a key ecological-function county in config
    richer = score_catalogue(values, catalogue)
    assert not base.applicable.at["621202", "gdp_per_capita"]
    assert richer.overall["621202"] == pytest.approx(base.overall["621202"])
    values.loc["621221", "gdp"] *= 100  # 成县 is a development county: GDP counts
    assert score_catalogue(values, catalogue).overall["621221"] != pytest.approx(base.overall["621221"])


# -- properties -------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
maybe_missing = st.one_of(finite, st.just(float("nan")))


def raw_frames(min_size: int = 1):
    return data_frames(
        columns=[column(name, elements=maybe_missing) for name in ["i1", "i2", "i3", "i4"]],
        index=st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=min_size, max_size=8, unique=True)
        .map(pd.Index),
    )


@st.composite
def scenario(draw):
    raw = draw(raw_frames())
    zones = pd.Series({c: draw(st.sampled_from(["z1", "z2"])) for c in raw.index})
    return raw, zones


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_scores_stay_within_bounds(case):
    raw, zones = case
    r = score(raw, zones, golden_spec())
    assert ((r.overall >= -1e-9) & (r.overall <= 100 + 1e-9)).all()
    dims = r.dimension_scores.stack()
    assert ((dims >= -1e-9) & (dims <= 100 + 1e-9)).all()
    assert (r.rank >= 1).all() and (r.rank <= len(raw)).all()
    assert r.contributions.sum(axis=1).to_numpy() == pytest.approx(r.overall.to_numpy(), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(scenario(), st.sampled_from(["i1", "i2", "i3", "i4"]), st.floats(min_value=0.001, max_value=1e5))
def test_direction_better_value_never_lowers_the_score(case, indicator, step):
    raw, zones = case
    spec = golden_spec()
    county = raw.index[0]
    if math.isnan(raw.at[county, indicator]):
        raw.at[county, indicator] = 0.0
    before = score(raw, zones, spec).overall[county]
    improved = raw.copy()
    improved.at[county, indicator] += step * spec.indicators.at[indicator, "direction"]
    after = score(improved, zones, spec).overall[county]
    assert after >= before - 1e-9


@settings(max_examples=40, deadline=None)
@given(scenario(), st.floats(min_value=0.01, max_value=100), st.floats(min_value=0.01, max_value=100))
def test_scaling_all_weights_changes_nothing(case, k_ind, k_dim):
    raw, zones = case
    spec = golden_spec()
    scaled_ind = spec.indicators.assign(weight=spec.indicators["weight"] * k_ind)
    scaled = IndexSpec(scaled_ind, spec.applicable, spec.dimension_weights * k_dim, spec.missing_score)
    a, b = score(raw, zones, spec), score(raw, zones, scaled)
    pd.testing.assert_series_equal(a.overall, b.overall, atol=1e-9, rtol=1e-9)
    pd.testing.assert_frame_equal(a.dimension_scores, b.dimension_scores, atol=1e-9, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(scenario(), st.randoms(use_true_random=False))
def test_order_of_counties_and_indicators_does_not_matter(case, rnd):
    raw, zones = case
    rows, cols = list(raw.index), list(raw.columns)
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    a = score(raw, zones, golden_spec())
    b = score(raw.loc[rows, cols], zones.loc[rows], golden_spec())
    pd.testing.assert_series_equal(a.overall, b.overall)
    pd.testing.assert_series_equal(a.rank, b.rank)
    pd.testing.assert_series_equal(a.zone_rank, b.zone_rank)


@given(st.floats(min_value=-1e6, max_value=1e6), st.floats(min_value=-1e3, max_value=1e3),
       st.floats(min_value=0.001, max_value=1e3))
def test_goalposts_reverse_for_negative_indicators(x, low, width):
    frame = pd.DataFrame({"a": [x], "b": [x]})
    low_s = pd.Series({"a": low, "b": low})
    high_s = pd.Series({"a": low + width, "b": low + width})
    out = goalpost_normalise(frame, low_s, high_s, pd.Series({"a": 1, "b": -1}))
    assert out.at[0, "a"] + out.at[0, "b"] == pytest.approx(100)

"""More method families by name (COINr's menu): distance-to-target normalisation, harmonic and
generalised means, CRITIC and PCA weights. Each is checked on a tiny case worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.index import methods as m
from evaluation.index.coin import load_coin, run

# -- dist_to_target (COINr n_dist2targ) --------------------------------------------------------


def test_dist_to_target_by_hand():
    frame = pd.DataFrame({"a": [2.0, 4.0, 6.0, np.nan], "b": [10.0, 20.0, 30.0, 25.0]}, index=list("pqrs"))
    direction = pd.Series({"a": 1, "b": -1})
    targets = pd.Series({"a": 5.0, "b": 15.0})
    out = m.normalise(frame, direction, "dist_to_target", targets=targets)
    # a (+1): (x - 2) / (5 - 2) = 0, 2/3, 4/3 -> capped 1;  x 100 -> 0, 66.67, 100, NaN stays NaN
    assert out["a"].tolist()[:3] == pytest.approx([0, 200 / 3, 100], abs=1e-12)
    assert math.isnan(out.at["s", "a"])
    # b (-1): (30 - x) / (30 - 15) = 20/15 -> capped 1, 10/15, 0, 5/15
    assert out["b"].tolist() == pytest.approx([100, 200 / 3, 0, 100 / 3], abs=1e-12)


def test_dist_to_target_uncapped_other_range_and_a_mapping_of_targets():
    frame = pd.DataFrame({"a": [2.0, 4.0, 6.0]})
    out = m.normalise(frame, pd.Series({"a": 1}), "dist_to_target", targets={"a": 5}, cap_max=False)
    # no cap: 4/3 of the way -> 133.33
    assert out["a"].tolist() == pytest.approx([0, 200 / 3, 400 / 3], abs=1e-12)
    out = m.normalise(frame, pd.Series({"a": 1}), "dist_to_target", targets={"a": 5}, range=[60, 100])
    # 60 + 40 * (0, 2/3, 1)
    assert out["a"].tolist() == pytest.approx([60, 60 + 80 / 3, 100], abs=1e-12)


def test_dist_to_target_refusals():
    frame = pd.DataFrame({"a": [2.0, 4.0, 6.0], "b": [1.0, 2.0, 3.0]})
    direction = pd.Series({"a": 1, "b": 1})
    with pytest.raises(m.MethodError, match="needs a target per indicator"):
        m.normalise(frame, direction, "dist_to_target")
    with pytest.raises(m.MethodError, match="no target for: b"):
        m.normalise(frame, direction, "dist_to_target", targets={"a": 5})
    # a target no better than the worst unit (a's minimum is 2) cannot be a distance to target
    with pytest.raises(m.MethodError, match="better than the worst unit: a"):
        m.normalise(frame, direction, "dist_to_target", targets={"a": 2, "b": 3})
    with pytest.raises(m.MethodError, match="better than the worst unit: b"):
        m.normalise(frame, pd.Series({"a": 1, "b": -1}), "dist_to_target", targets={"a": 5, "b": 4})
    assert "dist_to_target" in m.NORMALISERS


# -- harmonic and generalised means --------------------------------------------------------


EQUAL = pd.Series({"x": 1.0, "y": 1.0})


def test_harmonic_mean_by_hand():
    children = pd.DataFrame({"x": [20.0, 20.0, np.nan, 0.0, np.nan], "y": [80.0, 80.0, 30.0, 50.0, np.nan]})
    out = m.a_hmean(children, EQUAL)
    # 2 / (1/20 + 1/80) = 2 / (5/80) = 32;  missing x -> y alone;  a zero child -> 0;  nothing -> NaN
    assert out.tolist()[:4] == pytest.approx([32, 32, 30, 0], abs=1e-12)
    assert math.isnan(out.iloc[4])
    weighted = m.a_hmean(children.iloc[:1], pd.Series({"x": 3.0, "y": 1.0}))
    # 4 / (3/20 + 1/80) = 4 / (13/80) = 320/13
    assert weighted.iloc[0] == pytest.approx(320 / 13, abs=1e-12)
    with pytest.raises(m.MethodError, match="harmonic mean needs non-negative data"):
        m.a_hmean(pd.DataFrame({"x": [-1.0], "y": [2.0]}), EQUAL)
    assert m.aggregator("harmonic_mean") is m.a_hmean


def test_generalised_mean_by_hand():
    children = pd.DataFrame({"x": [3.0, 1.0, 0.0, np.nan], "y": [4.0, 9.0, 4.0, 16.0]})
    # p = 2: sqrt((9 + 16) / 2) = sqrt(12.5);  (1 + 81)/2 = 41 -> sqrt 41;  (0 + 16)/2 = 8 -> sqrt 8;  16 alone
    out = m.a_genmean(children, EQUAL, p=2)
    assert out.tolist() == pytest.approx([math.sqrt(12.5), math.sqrt(41), math.sqrt(8), 16], abs=1e-12)
    # p = 0.5: ((sqrt 1 + sqrt 9) / 2)^2 = (4/2)^2 = 4;  ((0 + 2)/2)^2 = 1
    out = m.a_genmean(children, EQUAL, p=0.5)
    assert out.iloc[1] == pytest.approx(4, abs=1e-12) and out.iloc[2] == pytest.approx(1, abs=1e-12)
    # p = -1 with a zero child is 0 (the limit), as for the harmonic mean
    assert m.a_genmean(children, EQUAL, p=-1).iloc[2] == 0
    # weights 3:1, p = 2: sqrt((3*9 + 16) / 4) = sqrt(43/4)
    assert m.a_genmean(children.iloc[:1], pd.Series({"x": 3.0, "y": 1.0}), p=2).iloc[0] == pytest.approx(
        math.sqrt(43 / 4), abs=1e-12)


def test_generalised_mean_special_cases_are_the_other_means():
    children = pd.DataFrame({"x": [20.0, 16.0, 0.0, np.nan, 5.0], "y": [80.0, 1.0, 5.0, 9.0, np.nan],
                             "z": [50.0, 4.0, 7.0, 2.0, 6.0]})
    w = pd.Series({"x": 2.0, "y": 1.0, "z": 0.5})
    pd.testing.assert_series_equal(m.a_genmean(children, w, p=1), m.a_amean(children, w), rtol=1e-12)
    pd.testing.assert_series_equal(m.a_genmean(children, w, p=0), m.a_gmean(children, w), rtol=1e-12)
    pd.testing.assert_series_equal(m.a_genmean(children, w, p=-1), m.a_hmean(children, w), rtol=1e-12)
    # the named parts of the first row, by hand: x=20, y=80 at equal weights
    pair = children.iloc[:1][["x", "y"]]
    assert m.a_genmean(pair, EQUAL, p=1).iloc[0] == pytest.approx(50, abs=1e-12)  # (20 + 80) / 2
    assert m.a_genmean(pair, EQUAL, p=0).iloc[0] == pytest.approx(40, abs=1e-12)  # sqrt(1600)
    assert m.a_genmean(pair, EQUAL, p=-1).iloc[0] == pytest.approx(32, abs=1e-12)  # 2 / (1/20 + 1/80)


def test_generalised_mean_refusals_and_the_aggregator_binds_p():
    children = pd.DataFrame({"x": [3.0], "y": [4.0]})
    with pytest.raises(m.MethodError, match="needs the parameter p"):
        m.a_genmean(children, EQUAL)
    with pytest.raises(m.MethodError, match="generalised mean needs non-negative data"):
        m.a_genmean(pd.DataFrame({"x": [-3.0], "y": [4.0]}), EQUAL, p=2)
    with pytest.raises(m.MethodError, match="p must be a number"):
        m.a_genmean(children, EQUAL, p="half")
    with pytest.raises(m.MethodError, match="p must be finite"):
        m.a_genmean(children, EQUAL, p=math.inf)
    fn = m.aggregator("generalised_mean", p="2")  # as a spec's YAML might give it
    assert fn(children, EQUAL).iloc[0] == pytest.approx(math.sqrt(12.5), abs=1e-12)
    with pytest.raises(m.MethodError, match="unknown aggregation"):
        m.aggregator("median")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(*(st.floats(min_value=0, max_value=100) for _ in range(3))), min_size=1, max_size=10),
       st.lists(st.floats(min_value=0.01, max_value=10), min_size=3, max_size=3), st.floats(min_value=0.001, max_value=1000))
def test_power_means_are_ordered_bounded_and_scale_free(rows, weights, k):
    children = pd.DataFrame(rows, columns=["a", "b", "c"])
    w = pd.Series(weights, index=["a", "b", "c"])
    means = [m.a_hmean(children, w), m.a_gmean(children, w), m.a_amean(children, w), m.a_genmean(children, w, p=2)]
    lo, hi = children.min(axis=1), children.max(axis=1)
    for lower, upper in zip(means, means[1:]):  # harmonic <= geometric <= arithmetic <= quadratic
        assert (lower <= upper * (1 + 1e-9) + 1e-9).all()
    assert (means[0] >= lo - 1e-9).all() and (means[-1] <= hi + 1e-9).all()
    for fn, params in ((m.a_hmean, {}), (m.a_genmean, {"p": 0.5}), (m.a_genmean, {"p": -2})):
        assert np.allclose(fn(children, w, **params), fn(children, w * k, **params), equal_nan=True)


# -- CRITIC weights ---------------------------------------------------------------------------


def test_critic_by_hand():
    # complete rows p, q, r (s lacks b and is left out):
    #   a = 0, 1, 2: sd 1;   b = 0, 2, 4: sd 2;   c = 0, 2, 1: deviations -1, 1, 0, sd 1
    #   r(a,b) = 1;  r(a,c) = (-1)(-1) + 0 + 1*0 = 1 over sqrt(2) sqrt(2) = 0.5;  r(b,c) = 0.5 (b = 2a)
    #   C_a = 1 * ((1-1) + (1-0.5)) = 0.5;  C_b = 2 * (0 + 0.5) = 1;  C_c = 1 * (0.5 + 0.5) = 1;  sum 2.5
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 5.0], "b": [0.0, 2.0, 4.0, np.nan], "c": [0.0, 2.0, 1.0, 7.0]},
                         index=list("pqrs"))
    w = m.w_critic(frame)
    assert list(w.index) == ["a", "b", "c"]
    assert w.tolist() == pytest.approx([0.2, 0.4, 0.4], abs=1e-12)


def test_critic_with_an_uncorrelated_and_a_constant_indicator():
    # a = 0, 1, 2 (sd 1); c = 1, 0, 1: deviations 1/3, -2/3, 1/3, var (1/9 + 4/9 + 1/9) / 2 = 1/3, sd 1/sqrt 3;
    # r(a,c) = -1/3 + 0 + 1/3 = 0.  k is constant: sd 0 so C_k = 0, and its undefined r counts as 0.
    #   C_a = 1 * (1 + 1) = 2;  C_c = (1/sqrt 3) * (1 + 1) = 2/sqrt 3;  C_k = 0
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0], "c": [1.0, 0.0, 1.0], "k": [5.0, 5.0, 5.0]})
    total = 2 + 2 / math.sqrt(3)
    assert m.w_critic(frame).tolist() == pytest.approx([2 / total, (2 / math.sqrt(3)) / total, 0], abs=1e-12)
    # every indicator constant -> equal weights
    assert m.w_critic(pd.DataFrame({"u": [1.0, 1.0], "v": [2.0, 2.0]})).tolist() == pytest.approx([0.5, 0.5])


def test_critic_and_pca_refuse_too_little_data():
    one_row = pd.DataFrame({"a": [1.0, np.nan], "b": [2.0, 3.0]})
    one_column = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    for fn in (m.w_critic, m.w_pca):
        with pytest.raises(m.MethodError, match="at least 2 indicators and 2 units"):
            fn(one_row)
        with pytest.raises(m.MethodError, match="at least 2 indicators and 2 units"):
            fn(one_column)


# -- PCA weights --------------------------------------------------------------------------


def test_pca_two_indicators_split_evenly():
    # with two standardised indicators the correlation matrix is [[1, r], [r, 1]]; its first eigenvector is
    # (1, 1)/sqrt 2 for r > 0 and (1, -1)/sqrt 2 for r < 0, so the squared loadings are 0.5 and 0.5
    up = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 4.0, 3.0]})  # r = 0.6
    down = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [10.0, 7.0, 8.0, 1.0]})
    for frame in (up, down):
        assert m.w_pca(frame).tolist() == pytest.approx([0.5, 0.5], abs=1e-12)


def test_pca_three_indicators_by_hand():
    # b = 2a (r = 1); c = 1, -1, -1, 1 is uncorrelated with a (deviations of a: -1.5, -0.5, 0.5, 1.5;
    # dot = -1.5 + 0.5 - 0.5 + 1.5 = 0).  R = [[1,1,0],[1,1,0],[0,0,1]]: eigenvalues 2, 1, 0, and the
    # first eigenvector is (1, 1, 0)/sqrt 2 -> squared loadings 0.5, 0.5, 0
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 4.0, 6.0, 8.0], "c": [1.0, -1.0, -1.0, 1.0]})
    assert m.w_pca(frame).tolist() == pytest.approx([0.5, 0.5, 0.0], abs=1e-12)


def test_pca_three_indicators_against_an_independent_eigen_decomposition():
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0, 7.0, 3.0, np.nan], "b": [2.0, 1.0, 5.0, 6.0, 4.0, 3.0],
                          "c": [9.0, 3.0, 4.0, 1.0, 2.0, 8.0]})
    x = frame.dropna().to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    corr = z.T @ z / (len(z) - 1)
    values, vectors = np.linalg.eigh(corr)
    expected = vectors[:, np.argmax(values)] ** 2
    w = m.w_pca(frame)
    assert w.tolist() == pytest.approx(expected.tolist(), abs=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    # and by power iteration, with no eigen-solver at all
    v = np.ones(3)
    for _ in range(500):
        v = corr @ v
        v /= np.linalg.norm(v)
    assert w.tolist() == pytest.approx((v**2).tolist(), abs=1e-9)


def test_pca_refuses_a_constant_indicator_and_a_tied_first_component():
    with pytest.raises(m.MethodError, match="constant indicator: k"):
        m.w_pca(pd.DataFrame({"a": [1.0, 2.0, 3.0], "k": [4.0, 4.0, 4.0]}))
    # uncorrelated pair: R = I, both eigenvalues 1, no first component to weight by
    with pytest.raises(m.MethodError, match="not unique"):
        m.w_pca(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "c": [1.0, -1.0, -1.0, 1.0]}))


# -- through the engine's spec steps -----------------------------------------------------------


def _coin(target: bool = True):
    data = pd.DataFrame({"uCode": ["a", "b", "c"], "i1": [2.0, 4.0, 6.0], "i2": [10.0, 30.0, 20.0]})
    meta = pd.DataFrame({"iCode": ["i1", "i2", "P"], "Level": [1, 1, 2], "Parent": ["P", "P", np.nan],
                         "Direction": [1, -1, np.nan], "Weight": [1, 1, 1],
                         "Type": ["Indicator", "Indicator", "Aggregate"]})
    if target:
        meta["Target"] = [5.0, 15.0, np.nan]
    return load_coin(data, meta)


def test_engine_runs_dist_to_target_and_generalised_mean_from_a_spec():
    r = run(_coin(), [{"normalise": {"method": "dist_to_target"}},
                      {"aggregate": {"method": "generalised_mean", "p": 0.5}}])
    norm = r.stages["normalise"]
    # i1 (+1, target 5, min 2): 0, 2/3, 1 (capped);  i2 (-1, target 15, max 30): (30 - x)/15 = 4/3 -> 1, 0, 2/3
    assert norm["i1"].tolist() == pytest.approx([0, 200 / 3, 100], abs=1e-12)
    assert norm["i2"].tolist() == pytest.approx([100, 0, 200 / 3], abs=1e-12)
    # p = 0.5, equal weights: a ((0 + 10)/2)^2 = 25;  b (sqrt(200/3)/2)^2 = 50/3;
    # c ((10 + sqrt(200/3))/2)^2 = (100 + 20 sqrt(200/3) + 200/3) / 4
    c = (100 + 20 * math.sqrt(200 / 3) + 200 / 3) / 4
    assert r.stages["aggregate"]["P"].tolist() == pytest.approx([25, 50 / 3, c], abs=1e-9)
    assert r.log == ["normalise: dist_to_target", "aggregate: generalised_mean p=0.5"]
    assert r.results["uCode"].tolist() == ["c", "a", "b"]
    # harmonic: a zero child gives 0;  c: 2 / (1/100 + 3/200) = 80
    r = run(_coin(), [{"normalise": {"method": "dist_to_target"}}, {"aggregate": {"method": "harmonic_mean"}}])
    assert r.stages["aggregate"]["P"].tolist() == pytest.approx([0, 0, 80], abs=1e-9)
    # targets in the spec override iMeta's
    r = run(_coin(target=False), [{"normalise": {"method": "dist_to_target", "targets": {"i1": 6, "i2": 10}}},
                                  {"aggregate": {}}])
    assert r.stages["normalise"]["i1"].tolist() == pytest.approx([0, 50, 100], abs=1e-12)  # (x - 2)/4
    with pytest.raises(m.MethodError, match="needs a target per indicator"):
        run(_coin(target=False), [{"normalise": {"method": "dist_to_target"}}, {"aggregate": {}}])
    with pytest.raises(m.MethodError, match="needs the parameter p"):
        run(_coin(), [{"aggregate": {"method": "generalised_mean"}}])


def test_engine_weights_by_critic_and_pca():
    # raw i1 = 2, 4, 6 (sd 2), i2 = 10, 30, 20 (sd 10); r = (-2)(-10) + 0 + 2*0 = 20 over sqrt 8 sqrt 200 = 0.5
    # CRITIC: C = 2 * 0.5 = 1 and 10 * 0.5 = 5 -> 1/6, 5/6;  PCA on two indicators -> 1/2, 1/2
    r = run(_coin(), [{"weight": {"method": "critic"}}, {"aggregate": {}}])
    assert r.weights[["i1", "i2"]].tolist() == pytest.approx([1 / 6, 5 / 6], abs=1e-12)
    assert r.stages["aggregate"]["P"].tolist() == pytest.approx([(2 + 50) / 6, (4 + 150) / 6, (6 + 100) / 6])
    r = run(_coin(), [{"weight": {"method": "pca"}}, {"aggregate": {}}])
    assert r.weights[["i1", "i2"]].tolist() == pytest.approx([0.5, 0.5], abs=1e-12)
    assert r.log == ["weight: pca", "aggregate: arithmetic_mean"]

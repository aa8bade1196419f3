"""Monte Carlo rank intervals, '两山' base readiness, and the explanations on a scorecard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evaluation.catalogue import Uncertainty
from evaluation.index.explain import dimension_progress, strengths_weaknesses
from evaluation.index.readiness import assess, city_view, is_ready
from evaluation.index.scoring import IndexSpec, compute_raw, score, score_catalogue
from evaluation.index.uncertainty import monte_carlo, rank_desc
from tests.test_scoring import golden_raw, golden_spec


@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 30)),
              elements=st.sampled_from([-1.5, 0.0, 0.25, 3.0, 7.0, 1e9])))
@settings(deadline=None)  # the first example pays for importing scipy.stats
def test_rank_desc_is_scipy_rankdata_min_of_the_negated_rows(values):
    from scipy.stats import rankdata

    assert (rank_desc(values) == rankdata(-values, axis=1, method="min")).all()


def test_monte_carlo_without_perturbation_gives_the_deterministic_ranks():
    raw, zones = golden_raw()
    spec = golden_spec()
    fixed = Uncertainty(draws=50, seed=3, weight_perturbation=0.0, normalise_alternatives=["goalposts"],
                        aggregate_alternatives=["arithmetic_mean"])
    mc = monte_carlo(raw, zones, spec, fixed)
    r = score(raw, zones, spec)
    assert mc["rank_p05"].tolist() == mc["rank_p95"].tolist() == r.rank.tolist()
    assert mc["zone_rank_median"].tolist() == r.zone_rank.tolist()
    assert mc["score_median"].to_numpy() == pytest.approx(r.overall.to_numpy())


def test_monte_carlo_is_seeded_and_its_intervals_are_ordered(catalogue):
    values = pd.DataFrame(np.random.default_rng(0).uniform(1, 100, size=(9, len(catalogue.variables))),
                          index=sorted(c.code for c in catalogue.counties), columns=list(catalogue.variables))
    raw = compute_raw(values, catalogue)
    zones = pd.Series({c.code: c.zone for c in catalogue.counties})
    spec = IndexSpec.from_catalogue(catalogue)
    a = monte_carlo(raw, zones, spec, catalogue.method.uncertainty)
    b = monte_carlo(raw, zones, spec, catalogue.method.uncertainty)
    pd.testing.assert_frame_equal(a, b)
    assert ((a["rank_p05"] <= a["rank_median"]) & (a["rank_median"] <= a["rank_p95"])).all()
    assert a["rank_p05"].min() >= 1 and a["rank_p95"].max() <= 9
    assert (a["zone_rank_p95"] <= zones.map(zones.value_counts())).all()
    assert ((a["score_p05"] >= 0) & (a["score_p95"] <= 100)).all()
    assert (a["rank_p95"] > a["rank_p05"]).any()  # the perturbation does move ranks


def test_alternative_methods_keep_scores_in_bounds(catalogue):
    values = pd.DataFrame(np.random.default_rng(1).uniform(1, 1000, size=(9, len(catalogue.variables))),
                          index=sorted(c.code for c in catalogue.counties), columns=list(catalogue.variables))
    raw = compute_raw(values, catalogue)
    zones = pd.Series({c.code: c.zone for c in catalogue.counties})
    for norm, low in (("goalposts", 0), ("minmax", 0), ("efficacy", 60)):
        for agg in ("arithmetic_mean", "geometric_mean"):
            r = score(raw, zones, IndexSpec.from_catalogue(catalogue).with_methods(norm, agg))
            assert ((r.overall >= low - 1e-9) | (r.overall == 0)).all() and (r.overall <= 100 + 1e-9).all(), (norm, agg)
            assert r.contributions.sum(axis=1).to_numpy() == pytest.approx(r.overall.to_numpy(), abs=1e-6)


def test_efficacy_floor_for_missing_values_is_60(catalogue):
    raw, zones = golden_raw()
    r = score(raw, zones, golden_spec().with_methods("efficacy", "arithmetic_mean"))
    assert r.normalised.at["c3", "i1"] == 60  # missing: the NBS floor on the efficacy scale
    assert r.normalised.loc["c1", "i1"] == pytest.approx(100)  # the best observed value


def test_strengths_and_weaknesses_by_hand():
    raw, zones = golden_raw()
    r = score(raw, zones, golden_spec())
    # c1 scores: i1 80, i2 80, i3 50, i4 100 -> best i4, then i1/i2 tie broken by points (both 24) then id
    best, worst = strengths_weaknesses(r, "c1", n=3)
    assert best == ["i4", "i1", "i2"] and worst == ["i3", "i1", "i2"]
    # c3: i1 is missing (imputed) so it is neither a strength nor a weakness
    best, worst = strengths_weaknesses(r, "c3", n=2)
    assert "i1" not in best + worst and best == ["i2", "i3"] and worst[0] == "i4"


def test_dimension_progress_by_hand():
    raw, zones = golden_raw()
    spec = golden_spec()
    now = score(raw, zones, spec)
    before = score(raw.assign(i1=raw["i1"] - 10), zones, spec)
    change = dimension_progress(now, before)
    # c1: i1 80 -> 70 a year ago: X was (70 + 80) / 2 = 75, now 80 -> +5; overall +0.6 * 5 = +3
    assert change.at["c1", "X"] == pytest.approx(5) and change.at["c1", "overall"] == pytest.approx(3)
    assert change.at["c1", "Y"] == pytest.approx(0)
    assert dimension_progress(now, None).isna().all().all()


def test_readiness_by_hand(catalogue):
    codes = sorted(c.code for c in catalogue.counties)
    raw = pd.DataFrame(np.nan, index=codes, columns=[i.id for i in catalogue.indicators])
    good = {"forest_cover": 60, "eqi": 65, "good_air_days": 95, "surface_water_good": 95,
            "public_satisfaction": 90, "eco_industry_share": 35, "gep_growth": 3, "eod_projects": 1}
    for code in codes:
        raw.loc[code, list(good)] = list(good.values())
    raw.loc["621221", "forest_cover"] = 49.9  # last in the city: outside the top 5 (a relative signal)
    raw.loc["621222", "gep_growth"] = 0  # not positive
    raw.loc["621223", "eod_projects"] = np.nan  # unknown
    result = assess(raw, catalogue)
    assert is_ready(result["621202"])
    forest = next(c for c in result["621221"] if c.indicator == "forest_cover")
    assert forest.met is False and forest.threshold == "全市前5位" and forest.value == 49.9 and forest.target == 60
    air = next(c for c in result["621221"] if c.indicator == "good_air_days")
    assert air.met is True and air.threshold == "≥ 87.5 %"  # the 14th five-year plan's target, an absolute one
    assert not is_ready(result["621222"]) and not is_ready(result["621223"])
    assert next(c for c in result["621223"] if c.indicator == "eod_projects").met is None
    city = city_view(result, catalogue, 2023)
    assert city["ready_count"] == 6 and not city["verified"]
    statuses = [t["status"] for t in city["targets"]]
    assert statuses == ["全部暂定信号达标 6 个，已不少于目标数"] * 2 + ["全部暂定信号达标 6 个，尚差 3 个"], statuses
    assert not any("已达到" in s for s in statuses)  # bases are named by the ministry, not reached by a score


def test_key_ecological_county_ignores_gdp_under_every_method(catalogue):
    values = pd.DataFrame({v: 50.0 for v in catalogue.variables}, index=[c.code for c in catalogue.counties])
    values["gdp"] = np.linspace(50, 400, len(values))
    for norm in ("goalposts", "minmax", "efficacy"):
        cat_spec = IndexSpec.from_catalogue(catalogue).with_methods(norm, "arithmetic_mean")
        zones = pd.Series({c.code: c.zone for c in catalogue.counties})
        base = score(compute_raw(values, catalogue), zones, cat_spec)
        more = values.copy()
        more.loc["621202", "gdp"] *= 5
        more.loc["621221", "gdp"] *= 5  # from the lower to the higher of the two urbanised counties' GDP
        after = score(compute_raw(more, catalogue), zones, cat_spec)
        assert after.overall["621202"] == pytest.approx(base.overall["621202"]), norm
        assert after.overall["621221"] != pytest.approx(base.overall["621221"]), norm
    assert score_catalogue(values, catalogue).overall.notna().all()

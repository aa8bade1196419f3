"""The statistical audit (issue 20, first part): Cronbach's alpha, the first principal component's share and
the correlation flags, by hand-worked cases and against a direct computation on COINr's ASEM example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.index import audit

REPO = Path(__file__).resolve().parent.parent
ASEM = REPO / "tests" / "data" / "coinr-asem"
SPEC = REPO / "examples" / "asem-spec.yaml"


def test_hand_worked_alpha_and_first_component():
    # a = 1..4, b = 2,1,4,3: var 5/3 each, cov 1 -> alpha = 2 * (1 - (10/3) / (16/3)) = 0.75;
    # r = 0.6, eigenvalues 1.6 and 0.4 -> the first component carries 0.8
    items = pd.DataFrame({"a": [1, 2, 3, 4], "b": [2, 1, 4, 3]}, dtype=float)
    assert audit.cronbach_alpha(items) == pytest.approx(0.75, abs=1e-12)
    assert audit.pc1_share(items) == pytest.approx(0.8, abs=1e-12)
    same = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 4]})
    assert audit.cronbach_alpha(same) == pytest.approx(1.0) and audit.pc1_share(same) == pytest.approx(1.0)
    # incomplete rows are left out, as COINr's na.omit
    gappy = pd.concat([items, pd.DataFrame({"a": [np.nan], "b": [9.0]})], ignore_index=True)
    assert audit.cronbach_alpha(gappy) == pytest.approx(0.75, abs=1e-12)


def test_flags_negative_collinear_and_constant_children():
    units = pd.Index([f"u{i}" for i in range(6)])
    x = pd.Series([1.0, 2, 3, 4, 5, 6], index=units)
    children = pd.DataFrame({"x": x, "twin": x * 2 + 0.01 * np.array([1, -1, 1, -1, 1, -1]), "flat": 3.0,
                             "against": -x + np.array([0.5, -0.5, 0.2, 0, 0.1, -0.3])}, index=units)
    parent = x * 1.5
    found = audit.audit_group("D", children, parent)
    kinds = {(f["kind"], f["indicator"]) for f in found.flags}
    assert ("collinear", "x ~ twin") in kinds and ("no_variance", "flat") in kinds and ("negative", "against") in kinds
    assert found.with_parent["x"] == pytest.approx(1.0)
    assert audit.FLAG_ZH["negative"] == "与所属维度负相关"


def _direct(frame: pd.DataFrame) -> tuple[float, float]:
    """Alpha from item variances and the variance of the sum; the first component by SVD of the z-scores."""
    data = frame.dropna().to_numpy(dtype=float)
    k = data.shape[1]
    alpha = k / (k - 1) * (1 - data.var(axis=0, ddof=1).sum() / data.sum(axis=1).var(ddof=1))
    keep = data.std(axis=0, ddof=1) > 0
    z = (data[:, keep] - data[:, keep].mean(axis=0)) / data[:, keep].std(axis=0, ddof=1)
    s = np.linalg.svd(z, compute_uv=False)
    return alpha, s[0] ** 2 / (s ** 2).sum()


def test_the_engines_audit_step_on_asem_agrees_with_a_direct_computation():
    from evaluation.index.coin import load_coin, load_spec, run

    coin = load_coin(ASEM / "iData.csv", ASEM / "iMeta.csv")
    result = run(coin, load_spec(SPEC))
    assert result.audit is not None
    pillars = {a.group: a for a in result.audit}
    assert set(pillars) == {"Physical", "ConEcFin", "Political", "Instit", "P2P", "Environ", "Social", "SusEcFin"}
    normalised = result.stages["normalise"]
    for name, found in pillars.items():
        alpha, share = _direct(normalised[found.children])
        assert found.cronbach_alpha == pytest.approx(alpha, abs=1e-9), name
        assert found.pc1_share == pytest.approx(share, abs=1e-9), name
        assert found.units == len(normalised[found.children].dropna())
    # TBTs (technical barriers to trade) runs against its pillar: the audit says so
    assert any(f["kind"] == "negative" and f["indicator"] == "TBTs" for f in pillars["Instit"].flags)


def test_twomountains_index_prints_the_audit_per_pillar(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    said = CliRunner().invoke(app, ["index", "--data", str(ASEM / "iData.csv"), "--meta", str(ASEM / "iMeta.csv"),
                                    "--spec", str(SPEC), "--out", str(tmp_path / "asem.csv")])
    assert said.exit_code == 0, said.output
    text = " ".join(said.output.split())
    assert "CronbachAlpha" in text and "PC1Share" in text and "与所属维度负相关 / negative: Instit · TBTs" in text
    for pillar in ("Physical", "ConEcFin", "Political", "Instit", "P2P", "Environ", "Social", "SusEcFin"):
        assert pillar in text


def test_sobol_indices_reproduce_the_ishigami_functions_analytic_values_with_the_configured_sample_size():
    from evaluation.catalogue import load_catalogue
    from evaluation.index import sensitivity

    config = load_catalogue().method.sensitivity
    bounds = [(-np.pi, np.pi)] * 3
    found = sensitivity.sobol(sensitivity.ishigami, ["x1", "x2", "x3"], config.samples, config.seed, bounds)
    expected = sensitivity.ishigami_analytic()
    assert expected["S1"].round(4).tolist() == [0.3139, 0.4424, 0.0]  # the published values
    assert expected["ST"].round(4).tolist() == [0.5576, 0.4424, 0.2437]
    for column in ("S1", "ST"):
        assert (found.table[column] - expected[column]).abs().max() < 0.02, found.table
    assert found.runs == config.samples * (3 + 2) and found.driver() == "x1"  # first and total order only
    again = sensitivity.sobol(sensitivity.ishigami, ["x1", "x2", "x3"], config.samples, config.seed, bounds)
    pd.testing.assert_frame_equal(found.table, again.table)  # seeded: the same numbers every time

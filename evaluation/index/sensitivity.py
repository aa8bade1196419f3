"""Variance-based sensitivity analysis (COINr's `get_sensitivity`, the Handbook's step 7): first-order and
total Sobol indices of a model output with respect to each uncertain input, with SALib (Saltelli's
sampling on a Sobol sequence, Jansen/Saltelli estimators). Seeded and reproducible.

`sobol(model, names, samples, seed)` runs `model` on an (n, D) array of inputs in [0, 1) (vectorised: one
call for every run) and returns the indices per input. The estimator is trusted on the index only because
it reproduces the Ishigami function's analytic indices (tests/test_audit.py); mapping the index's choices
(weights per zone type, normalisation, aggregation, the missing-value rule) onto such inputs comes next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd


@dataclass
class Indices:
    """Sobol indices per input: first-order (S1) and total (ST), with SALib's 95 % bootstrap half-widths."""

    table: pd.DataFrame  # index = input name; columns S1, S1_conf, ST, ST_conf
    runs: int

    def driver(self) -> str:
        """The input with the largest total index (the choice that drives the output most)."""
        return str(self.table["ST"].idxmax())


def sobol(model: Callable[[np.ndarray], np.ndarray], names: list[str], samples: int, seed: int,
          bounds: list[tuple[float, float]] | None = None) -> Indices:
    """Sobol indices of `model` (inputs uniform on `bounds`, default [0, 1] each; `samples` a power of two)."""
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    problem = {"num_vars": len(names), "names": list(names),
               "bounds": [list(b) for b in (bounds or [(0.0, 1.0)] * len(names))]}
    inputs = sample.sample(problem, samples, calc_second_order=False, seed=seed)
    outputs = np.asarray(model(inputs), dtype="float64")
    if outputs.shape != (len(inputs),):
        raise ValueError(f"the model gave {outputs.shape} outputs for {len(inputs)} runs")
    found = analyze.analyze(problem, outputs, calc_second_order=False, seed=seed, print_to_console=False)
    table = pd.DataFrame({"S1": found["S1"], "S1_conf": found["S1_conf"], "ST": found["ST"],
                          "ST_conf": found["ST_conf"]}, index=pd.Index(names, name="input"))
    return Indices(table, len(inputs))


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """The Ishigami function on inputs in [-pi, pi]^3 (the usual test of a sensitivity estimator)."""
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_analytic(a: float = 7.0, b: float = 0.1) -> pd.DataFrame:
    """Its analytic first-order and total indices (Ishigami and Homma 1990; Sobol' 2001)."""
    v1 = 0.5 * (1 + b * np.pi ** 4 / 5) ** 2
    v2 = a ** 2 / 8
    v13 = b ** 2 * np.pi ** 8 * (1 / 18 - 1 / 50)
    total = v1 + v2 + v13
    return pd.DataFrame({"S1": [v1 / total, v2 / total, 0.0], "ST": [(v1 + v13) / total, v2 / total, v13 / total]},
                        index=pd.Index(["x1", "x2", "x3"], name="input"))

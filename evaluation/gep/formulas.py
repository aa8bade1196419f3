"""The physical accounts the 技术指南 gives a table-level formula for, each written once.

Inputs are reported per county (precipitation, the RUSLE factors R, K and LS) and per county and
ecosystem type (area in 平方公里, runoff and evapotranspiration in 毫米, NEP in 吨碳/公顷·年); the
constants (the C and P factors per ecosystem type, CO2/C) are in config/gep.yaml.

    water_balance  水源涵养量 (万立方米) = Σ_i A_i × (P − R_i − ET_i) × 0.1
                   A in 平方公里 (10^6 m²), depths in 毫米 (10^-3 m): 10^3 m³ = 0.1 万立方米 per km²·mm.
                   A type whose runoff and evapotranspiration exceed the precipitation conserves
                   nothing that year (0, not a negative amount).
    rusle          土壤保持量 (万吨) = Σ_i A_i × 100 × R × K × LS × (1 − C_i × P_i) / 10^4
                   potential erosion R·K·LS minus actual R·K·LS·C·P, in 吨/公顷, over A_i × 100 公顷;
                   a type without a C factor (a water surface) has no erodible soil and is left out.
    nep_carbon     固碳量 (万吨二氧化碳) = Σ_i A_i × 100 × NEP_i × (44/12) / 10^4
                   NEP in 吨碳/公顷 over A_i × 100 公顷, as CO2 (a negative NEP is a net source).

A missing input makes the county's quantity missing (NaN), never a smaller number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _col(values: pd.DataFrame, name: str | None) -> pd.Series:
    if name is None or name not in values.columns:
        return pd.Series(np.nan, index=values.index, dtype="float64")
    return values[name].astype("float64")


def water_balance(values: pd.DataFrame, config) -> pd.Series:
    precipitation = _col(values, config.formulas.precipitation)
    total = pd.Series(0.0, index=values.index)
    for eco in config.ecosystems.values():
        depth = (precipitation - _col(values, eco.runoff) - _col(values, eco.evapotranspiration)).clip(lower=0)
        total = total + _col(values, eco.area) * depth * 0.1
    return total


def rusle(values: pd.DataFrame, config) -> pd.Series:
    f = config.formulas
    potential = _col(values, f.erosivity) * _col(values, f.erodibility) * _col(values, f.slope_length)  # 吨/公顷
    total = pd.Series(0.0, index=values.index)
    for eco in config.ecosystems.values():
        if eco.c_factor is None:  # no erodible soil (a water surface): nothing to retain
            continue
        retained = potential * (1 - float(eco.c_factor) * eco.p_factor)
        total = total + _col(values, eco.area) * 100 * retained / 1e4
    return total


def nep_carbon(values: pd.DataFrame, config) -> pd.Series:
    total = pd.Series(0.0, index=values.index)
    for eco in config.ecosystems.values():
        total = total + _col(values, eco.area) * 100 * _col(values, eco.nep) * config.formulas.co2_per_carbon / 1e4
    return total


FORMULAS = {"water_balance": water_balance, "rusle": rusle, "nep_carbon": nep_carbon}


def compute(name: str, values: pd.DataFrame, config) -> pd.Series:
    return FORMULAS[name](values, config).astype("float64")

"""GEP accounting: each county's gross ecosystem product from physical accounts and prices.

    account(values, catalogue, previous)  every item's quantity, price and value, the class totals and GEP,
                                          the change on last year split into quantity and price effects,
                                          growth at constant prices, the realised value and conversion rate
    derive(values, catalogue, previous)   the values with the computed variables (GEP, its growth, the
                                          conversion rate) filled in, for scoring
    boundary_columns / suite_expectations the checks a physical-accounts table gets at the boundary

Values are county x variable frames of reported figures (as the ledger holds them); `previous` is last
year's. Pure pandas, vectorised over counties: national scale (2,844 counties) costs milliseconds.

Growth at constant prices values both years' quantities at last year's prices (可比价, as GDP growth is
computed), so a price change is never growth: V(t) - V(t-1) = quantity effect Σ (q(t) - q(t-1)) p(t-1)
+ price effect Σ q(t) (p(t) - p(t-1)), and growth = quantity effect / V(t-1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from evaluation.gep import formulas
from evaluation.gep.config import CLASSES, MONEY_UNITS, GepConfig, Item

__all__ = ["Account", "account", "derive", "GepConfig", "CLASSES", "boundary_columns", "suite_expectations"]

BASIS_FORMULA = "公式计算"
BASIS_REPORTED = "直接报送"


@dataclass
class Account:
    """One year's GEP account for every county (frames are county x item unless said otherwise; 亿元)."""

    config: GepConfig
    quantity: pd.DataFrame  # in each item's unit
    basis: pd.DataFrame  # BASIS_FORMULA or BASIS_REPORTED
    price: pd.DataFrame  # 元 per the item's price unit
    value: pd.DataFrame
    classes: pd.DataFrame  # county x class
    total: pd.Series  # GEP
    previous_value: pd.DataFrame | None  # last year's, at last year's prices
    at_previous_prices: pd.DataFrame | None  # this year's quantities at last year's prices
    growth: pd.Series  # %, constant prices (NaN without last year's accounts)
    realised_parts: pd.DataFrame  # county x realised variable, 亿元
    realised: pd.Series
    conversion: pd.Series  # %
    reported: pd.Series | None  # the bureau's typed GEP (cross-check)
    difference: pd.Series | None  # (reported - computed) / computed
    base_year: pd.Series | None
    per_capita: pd.Series | None  # 万元/人
    gdp_ratio: pd.Series | None  # GEP / GDP

    @property
    def items(self) -> list[Item]:
        return list(self.config.items)

    # The derived figures are computed once per account (a scorecard per county reads them: recomputing them
    # for each made planning quadratic in the number of counties).
    @cached_property
    def previous_total(self) -> pd.Series | None:
        return None if self.previous_value is None else self.previous_value.sum(axis=1, skipna=False)

    @cached_property
    def quantity_effect(self) -> pd.DataFrame | None:
        """Per item: (q(t) - q(t-1)) x p(t-1), 亿元."""
        if self.previous_value is None:
            return None
        return self.at_previous_prices - self.previous_value

    @cached_property
    def price_effect(self) -> pd.DataFrame | None:
        """Per item: q(t) x (p(t) - p(t-1)), 亿元."""
        if self.previous_value is None:
            return None
        return self.value - self.at_previous_prices

    def flagged(self) -> pd.Series:
        """Counties whose typed GEP differs from the computed one by more than the tolerance."""
        return self._flagged

    @cached_property
    def _flagged(self) -> pd.Series:
        check = self.config.cross_check
        if check is None or self.difference is None:
            return pd.Series(False, index=self.total.index)
        return self.difference.abs() > check.tolerance

    @cached_property
    def by_county(self) -> dict[str, dict[str, dict]]:
        """{frame name: {county code: {column: value}}} of the county x item (and x class) frames, for reading
        one county at a time."""
        frames = {"quantity": self.quantity, "price": self.price, "value": self.value, "basis": self.basis,
                  "classes": self.classes}
        if self.previous_value is not None:
            frames.update(quantity_effect=self.quantity_effect, price_effect=self.price_effect)
        return {name: frame.to_dict(orient="index") for name, frame in frames.items()}


def _column(values: pd.DataFrame, name: str | None) -> pd.Series:
    if name is None or name not in values.columns:
        return pd.Series(np.nan, index=values.index, dtype="float64")
    return values[name].astype("float64")


def _quantities(values: pd.DataFrame, config: GepConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    quantity, basis = {}, {}
    for item in config.items:
        if item.var is not None:
            quantity[item.id] = _column(values, item.var)
            basis[item.id] = pd.Series(BASIS_REPORTED, index=values.index)
            continue
        computed = formulas.compute(item.formula, values, config)
        direct = _column(values, item.reported)
        use_direct = direct.notna()
        quantity[item.id] = direct.where(use_direct, computed)
        basis[item.id] = pd.Series(np.where(use_direct, BASIS_REPORTED, BASIS_FORMULA), index=values.index)
    return pd.DataFrame(quantity, index=values.index), pd.DataFrame(basis, index=values.index)


def _prices(values: pd.DataFrame, config: GepConfig) -> pd.DataFrame:
    return pd.DataFrame({item.id: _column(values, item.price) for item in config.items}, index=values.index)


def _factors(config: GepConfig) -> pd.Series:
    return pd.Series({item.id: item.to_yi for item in config.items}, dtype="float64")


def account(values: pd.DataFrame, catalogue, previous: pd.DataFrame | None = None) -> Account | None:
    """The GEP account of every county in `values` (None when the catalogue has no GEP accounting).

    An item whose quantity or price is missing is NaN, and so are its class total and GEP: a GEP that
    left an item out would be understated without saying so (the index then scores it as missing)."""
    config: GepConfig | None = catalogue.gep
    if config is None:
        return None
    k = _factors(config)
    quantity, basis = _quantities(values, config)
    price = _prices(values, config)
    value = quantity * price * k
    classes = pd.DataFrame({cls: value[[i.id for i in config.items if i.cls == cls]].sum(axis=1, skipna=False)
                            for cls in CLASSES if any(i.cls == cls for i in config.items)}, index=values.index)
    total = value.sum(axis=1, skipna=False)
    previous_value = at_previous = None
    growth = pd.Series(np.nan, index=values.index, dtype="float64")
    if previous is not None:
        prev = previous.reindex(values.index)
        q0, _ = _quantities(prev, config)
        p0 = _prices(prev, config)
        previous_value = q0 * p0 * k
        at_previous = quantity * p0 * k
        v0 = previous_value.sum(axis=1, skipna=False)
        growth = (at_previous.sum(axis=1, skipna=False) / v0.where(v0 != 0) - 1) * 100
    parts = {}
    for part in config.realised:
        unit = catalogue.variables[part.var].unit
        parts[part.var] = _column(values, part.var) * MONEY_UNITS[unit] / 1e8
    realised_parts = pd.DataFrame(parts, index=values.index)
    realised = realised_parts.sum(axis=1, skipna=False) if parts else pd.Series(np.nan, index=values.index)
    conversion = realised / total.where(total > 0) * 100
    reported = difference = None
    if config.cross_check is not None:
        reported = _column(values, config.cross_check.var)
        difference = (reported - total) / total.where(total != 0)
    base_year = _column(values, config.price_base_year) if config.price_base_year else None
    population = _column(values, "population") if "population" in catalogue.variables else None
    gdp = _column(values, "gdp") if "gdp" in catalogue.variables else None
    return Account(
        config=config, quantity=quantity, basis=basis, price=price, value=value, classes=classes, total=total,
        previous_value=previous_value, at_previous_prices=at_previous, growth=growth,
        realised_parts=realised_parts, realised=realised, conversion=conversion, reported=reported,
        difference=difference, base_year=base_year,
        per_capita=None if population is None else total / population.where(population > 0),
        gdp_ratio=None if gdp is None else total / gdp.where(gdp > 0),
    )


def derive(values: pd.DataFrame, catalogue, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """`values` with the computed variables (GEP, its growth at constant prices, the conversion rate) filled
    in from the physical accounts and prices (and last year's, for the growth). Without GEP accounting in
    the catalogue, `values` unchanged."""
    acc = account(values, catalogue, previous)
    if acc is None:
        return values
    out = values.copy()
    gep, growth, conversion = acc.config.output_ids()
    # a county-year with no GEP prices at all (a year before accounting began: its ledger holds the GEP the 发改委
    # typed then, under the same ids) keeps the figures it was evaluated with; once prices are reported the GEP is
    # the account's, missing where an input is missing
    prices = [item.price for item in acc.config.items if item.price in values.columns]
    unaccounted = values[prices].isna().all(axis=1) if prices else pd.Series(True, index=values.index)
    for name, computed in ((gep, acc.total), (growth, acc.growth), (conversion, acc.conversion)):
        before = values[name] if name in values.columns else pd.Series(np.nan, index=values.index)
        out[name] = computed.where(~unaccounted, before).astype("float64")
    return out


def derive_history(history: dict[int, pd.DataFrame], catalogue) -> dict[int, pd.DataFrame]:
    """Each past year's values with its computed variables (growth needs the year before it, when known)."""
    if catalogue.gep is None:
        return history
    return {y: derive(v, catalogue, history.get(y - 1)) for y, v in history.items()}


# -- at the boundary ------------------------------------------------------------------------------

LAND_AREA = "land_area__county"  # the county's 国土面积 (zones.yaml), 平方公里
ECOSYSTEM_AREA = "ecosystem_area__total"  # the sum of the table's ecosystem areas
BASE_YEAR_LAG = "__lag"  # suffix: the table's year minus the price base year


def boundary_columns(frame: pd.DataFrame, catalogue, department: str, year: int | None) -> tuple[pd.DataFrame, dict]:
    """The derived columns a bureau's table is checked on (land area, ecosystem areas summed, the price year's
    lag), and their headers as a bureau reads them."""
    config: GepConfig | None = catalogue.gep
    headers: dict[str, str] = {}
    if config is None:
        return frame, headers
    mine = {v.id for v in catalogue.department_variables(department)}
    areas = [a for a in config.area_variables() if a in mine]
    if areas:
        land = {c.code: c.land_area for c in catalogue.counties if c.land_area}
        frame = frame.copy()
        frame[LAND_AREA] = frame["county_code"].astype(object).map(land).astype("float64")
        present = [a for a in areas if a in frame.columns]
        frame[ECOSYSTEM_AREA] = frame[present].sum(axis=1, min_count=1) if present else np.nan
        headers[LAND_AREA] = "本县区国土面积（平方公里）"
        headers[ECOSYSTEM_AREA] = "各类生态系统面积合计"
    base = config.price_base_year
    if base and base in mine and base in frame.columns:
        frame = frame.copy()
        frame[base + BASE_YEAR_LAG] = (float(year) - frame[base]) if year else np.nan
        headers[base + BASE_YEAR_LAG] = catalogue.variables[base].name
    return frame, headers


def suite_expectations(catalogue, department: str) -> list[dict]:
    """The GEP checks of one bureau's table, as (type, kwargs, rule_zh, expected_zh, severity) dicts."""
    config: GepConfig | None = catalogue.gep
    if config is None:
        return []
    mine = {v.id for v in catalogue.department_variables(department)}
    out = []
    if any(a in mine for a in config.area_variables()):
        out.append({"type": "expect_column_pair_values_a_to_be_greater_than_b",
                    "kwargs": {"column_A": LAND_AREA, "column_B": ECOSYSTEM_AREA, "or_equal": True,
                               "ignore_row_if": "either_value_is_missing"},
                    "rule_zh": "各类生态系统面积之和超过本县区国土面积：面积应以平方公里填报，"
                               "请核对是否误按公顷填报（1 平方公里 = 100 公顷）",
                    "expected_zh": "不超过本县区国土面积（平方公里）", "severity": "critical"})
    base = config.price_base_year
    if base and base in mine:
        out.append({"type": "expect_column_values_to_be_between",
                    "kwargs": {"column": base + BASE_YEAR_LAG, "min_value": 0, "max_value": 30},
                    "rule_zh": "价格基准年不能晚于核算年度，也不宜早于核算年度 30 年以上",
                    "expected_zh": "核算年度或之前 30 年内的年份", "severity": "critical"})
        out.append({"type": "expect_column_values_to_be_between",
                    "kwargs": {"column": base + BASE_YEAR_LAG, "min_value": 0, "max_value": 0},
                    "rule_zh": "价格基准年早于核算年度：按所报价格核算（未作价格指数换算），请确认",
                    "expected_zh": "核算年度的当年价格", "severity": "warning"})
    return out

"""The GEP accounting catalogue (config/gep.yaml), checked once against the variables it names.

Gross ecosystem product = the money value of three classes of ecosystem products (物质供给, 调节服务,
文化服务), each item a physical quantity (实物量) times a price (价值量), following the NDRC/NBS
《生态产品总值核算规范（试行）》(2022) and MEE's 《陆地生态系统生产总值（GEP）核算技术指南》(2020).
An item's quantity is a reported variable, or one of the formulas of `evaluation.gep.formulas`
computed from reported variables (a county that reports the quantity directly is taken at its word).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# (the catalogue is passed in where needed, never imported: evaluation.catalogue imports this module)

_ID = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]
_TEXT = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f\u2028\u2029]{0,200}$")]
_NAME = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f\u2028\u2029]{1,60}$")]

CLASSES = {"supply": "物质供给", "regulating": "调节服务", "cultural": "文化服务"}
METHODS = {
    "market_value": "市场价值法",
    "replacement_cost": "替代成本法",
    "shadow_project": "影子工程法",
    "avoided_cost": "防护与恢复成本法",
    "travel_cost": "旅行费用法",
    "hedonic_price": "享乐价格法",
}
FORMULAS = ("water_balance", "rusle", "nep_carbon")
# a quantity unit -> (the unit its price is per, how many of those one quantity unit holds)
QUANTITY_UNITS: dict[str, tuple[str, float]] = {
    "吨": ("吨", 1.0), "万吨": ("吨", 1e4),
    "立方米": ("立方米", 1.0), "万立方米": ("立方米", 1e4), "亿立方米": ("立方米", 1e8),
    "千瓦时": ("千瓦时", 1.0), "万千瓦时": ("千瓦时", 1e4), "亿千瓦时": ("千瓦时", 1e8),
    "人次": ("人次", 1.0), "万人次": ("人次", 1e4),
    "平方米": ("平方米", 1.0), "万平方米": ("平方米", 1e4),
    "吨二氧化碳": ("吨二氧化碳", 1.0), "万吨二氧化碳": ("吨二氧化碳", 1e4),
}
MONEY_UNITS = {"元": 1.0, "万元": 1e4, "亿元": 1e8}
# what each formula computes, in which unit (evaluation.gep.formulas)
FORMULA_UNITS = {"water_balance": "万立方米", "rusle": "万吨", "nep_carbon": "万吨二氧化碳"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Ecosystem(_Strict):
    """One ecosystem type a county reports per-type figures for (the variables are reported ones)."""

    name: _NAME
    area: _ID  # 平方公里
    runoff: _ID | None = None  # 地表径流深, 毫米 (water balance)
    evapotranspiration: _ID | None = None  # 蒸散发量, 毫米 (water balance)
    nep: _ID | None = None  # 净生态系统生产力, 吨碳/公顷·年 (carbon sequestration)
    c_factor: float | None = Field(default=None, ge=0, le=1)  # RUSLE cover-management factor C
    p_factor: float = Field(default=1.0, ge=0, le=1)  # RUSLE support-practice factor P
    source: _TEXT = ""  # where the C and P factors come from


class Formulas(_Strict):
    """The reported county-level inputs of the formulas and their constants."""

    precipitation: _ID | None = None  # 年降水量, 毫米
    erosivity: _ID | None = None  # RUSLE R, MJ·mm/(公顷·小时·年)
    erodibility: _ID | None = None  # RUSLE K, 吨·公顷·小时/(公顷·MJ·mm)
    slope_length: _ID | None = None  # RUSLE LS, 无量纲
    co2_per_carbon: float = Field(default=44 / 12, gt=0)  # molar mass ratio CO2/C
    source: _TEXT = ""


class Item(_Strict):
    """One accounting item: a physical quantity (reported `var`, or a `formula`, which a county's reported
    `reported` figure overrides) in `unit`, valued at `price` (a reported variable, 元 per unit)."""

    id: _ID
    cls: Literal["supply", "regulating", "cultural"] = Field(alias="class")
    name: _NAME
    unit: str
    var: _ID | None = None
    formula: Literal["water_balance", "rusle", "nep_carbon"] | None = None
    reported: _ID | None = None
    price: _ID
    method: Literal["market_value", "replacement_cost", "shadow_project", "avoided_cost", "travel_cost",
                    "hedonic_price"]
    source: _TEXT = ""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

    @model_validator(mode="after")
    def _one_quantity(self) -> "Item":
        if (self.var is None) == (self.formula is None):
            raise ValueError(f"GEP item {self.id}: give exactly one of `var` or `formula`")
        if self.reported is not None and self.formula is None:
            raise ValueError(f"GEP item {self.id}: `reported` overrides a formula; a `var:` item is reported already")
        if self.unit not in QUANTITY_UNITS:
            raise ValueError(f"GEP item {self.id}: unit {self.unit!r} is not one of {', '.join(QUANTITY_UNITS)}")
        if self.formula is not None and FORMULA_UNITS[self.formula] != self.unit:
            raise ValueError(f"GEP item {self.id}: formula {self.formula} gives {FORMULA_UNITS[self.formula]}, "
                             f"not {self.unit}")
        return self

    @property
    def class_name(self) -> str:
        return CLASSES[self.cls]

    @property
    def method_name(self) -> str:
        return METHODS[self.method]

    @property
    def price_unit(self) -> str:
        return "元/" + QUANTITY_UNITS[self.unit][0]

    @property
    def to_yi(self) -> float:
        """Quantity (in `unit`) x price (元 per base unit) x this = value in 亿元."""
        return QUANTITY_UNITS[self.unit][1] / 1e8


class Realised(_Strict):
    """Realised value (生态产品价值实现量): reported money figures that count as GEP turned into income."""

    var: _ID
    name: _NAME | None = None  # default: the variable's name
    source: _TEXT = ""


class CrossCheck(_Strict):
    """The bureau's own typed GEP, kept as a cross-check: a relative difference above `tolerance` is a
    warning on the county's scorecard."""

    var: _ID
    tolerance: float = Field(default=0.05, gt=0, lt=10)
    source: _TEXT = ""


class Outputs(_Strict):
    """The computed variables (declared in indicators.yaml with `computed: true`) the accounting fills."""

    gep: _ID = "gep"  # 亿元, at current prices
    growth: _ID = "gep_growth"  # %, at the previous year's prices (constant prices)
    conversion: _ID = "gep_conversion_rate"  # %, realised value / GEP


class GepConfig(_Strict):
    verified: bool = False
    source: _TEXT = ""
    ecosystems: dict[_ID, Ecosystem]
    formulas: Formulas = Formulas()
    items: list[Item]
    realised: list[Realised] = Field(default_factory=list)
    realised_source: _TEXT = ""
    cross_check: CrossCheck | None = None
    price_base_year: _ID | None = None  # the reported variable stating each county's price year
    outputs: Outputs = Outputs()

    def output_ids(self) -> tuple[str, str, str]:
        """The computed variables: GEP, its constant-price growth and the conversion rate."""
        return (self.outputs.gep, self.outputs.growth, self.outputs.conversion)

    def formula_inputs(self, formula: str) -> list[str]:
        """The reported variables a formula reads."""
        eco = self.ecosystems.values()
        f = self.formulas
        if formula == "water_balance":
            return [f.precipitation] + [v for e in eco for v in (e.area, e.runoff, e.evapotranspiration)]
        if formula == "rusle":
            return [f.erosivity, f.erodibility, f.slope_length] + [e.area for e in eco if e.c_factor is not None]
        return [v for e in eco for v in (e.area, e.nep)]

    def quantity_inputs(self, item: Item) -> list[str]:
        """The reported variables an item's physical quantity is computed from."""
        quantity = [item.var] if item.var else self.formula_inputs(item.formula) + ([item.reported] if item.reported else [])
        return list(dict.fromkeys(quantity))

    def item_inputs(self, item: Item) -> list[str]:
        """The reported variables an item's value is computed from (its quantity's and its price)."""
        return list(dict.fromkeys([*self.quantity_inputs(item), item.price]))

    def inputs(self, catalogue=None) -> list[str]:
        """Every reported variable the accounting reads (items, the price year, realised value and the cross-check)."""
        names = [v for item in self.items for v in self.item_inputs(item)]
        if self.price_base_year:
            names.append(self.price_base_year)
        names += [r.var for r in self.realised]
        if self.cross_check:
            names.append(self.cross_check.var)
        return list(dict.fromkeys(names))

    def output_inputs(self, output: str) -> list[str]:
        """This year's reported variables a computed one is made from: GEP, every item's quantity and price; its
        growth, this year's quantities (valued at last year's prices, which with last year's quantities are last
        year's figures); the conversion rate, GEP's and the realised value's. Never the price year or the
        cross-check, which change no value."""
        if output == self.outputs.growth:
            return list(dict.fromkeys(v for item in self.items for v in self.quantity_inputs(item)))
        names = [v for item in self.items for v in self.item_inputs(item)]
        if output == self.outputs.conversion:
            names += [r.var for r in self.realised]
        return list(dict.fromkeys(names))

    def area_variables(self) -> list[str]:
        return [e.area for e in self.ecosystems.values()]

    def problems(self, catalogue) -> list[str]:
        """Cross-checks against the catalogue's variables (as strings, like the catalogue's own)."""
        out: list[str] = []
        variables = catalogue.variables
        ids = [i.id for i in self.items]
        if len(ids) != len(set(ids)):
            out.append("gep.yaml: duplicate item ids")
        used = {i.formula for i in self.items if i.formula}
        needs = {"water_balance": ("precipitation", ("area", "runoff", "evapotranspiration")),
                 "rusle": (("erosivity", "erodibility", "slope_length"), ("area",)),
                 "nep_carbon": ((), ("area", "nep"))}
        for formula in used:
            county_fields, eco_fields = needs[formula]
            for name in (county_fields if isinstance(county_fields, tuple) else (county_fields,)):
                if getattr(self.formulas, name) is None:
                    out.append(f"gep.yaml formulas: {formula} needs `{name}`")
            for key, eco in self.ecosystems.items():
                for name in eco_fields:
                    if getattr(eco, name) is None:
                        out.append(f"gep.yaml ecosystem {key}: {formula} needs `{name}`")
        for name in self.inputs():
            if name is None:
                continue
            if name not in variables:
                out.append(f"gep.yaml: unknown variable {name!r}")
            elif variables[name].computed:
                out.append(f"gep.yaml: {name} is computed; the accounting reads reported variables only")
        for item in self.items:
            if item.var in variables and variables[item.var].unit != item.unit:
                out.append(f"gep.yaml item {item.id}: variable {item.var} is in {variables[item.var].unit}, not {item.unit}")
            if item.reported in variables and variables[item.reported].unit != item.unit:
                out.append(f"gep.yaml item {item.id}: variable {item.reported} is in {variables[item.reported].unit}, "
                           f"not {item.unit}")
            if item.price in variables and variables[item.price].unit != item.price_unit:
                out.append(f"gep.yaml item {item.id}: price {item.price} is in {variables[item.price].unit}, "
                           f"not {item.price_unit}")
        for part in self.realised:
            if part.var in variables and variables[part.var].unit not in MONEY_UNITS:
                out.append(f"gep.yaml realised: {part.var} is not a money figure ({variables[part.var].unit})")
        for area in self.area_variables():
            if area in variables and variables[area].unit != "平方公里":
                out.append(f"gep.yaml: ecosystem area {area} must be in 平方公里")
        for name in self.output_ids():
            if name not in variables:
                out.append(f"gep.yaml outputs: declare {name!r} in indicators.yaml with `computed: true`")
            elif not variables[name].computed:
                out.append(f"gep.yaml outputs: {name} must be `computed: true` (the accounting fills it)")
        return out

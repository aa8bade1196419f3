"""The catalogue: indicators, zones and sources, loaded from config/ and checked once.

Everything downstream (ingest, validation, scoring, reporting) reads these models,
so a mistake in the YAML surfaces here, with a message naming the file and field,
rather than as a wrong number on a scorecard.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from evaluation.yamlsafe import load_yaml

WEIGHT_TOLERANCE = 1e-6


class CatalogueError(ValueError):
    """The configuration is invalid; the message says where and why."""


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` anywhere in the config is refused, never scored
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Ids name columns, suites (`expectations/gx/expectations/<department>_submission.json`) and keys.
ID = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
# County and city names become parts of report file names: CJK, digits, Latin letters and “·” only,
# so no name can carry a path, a console markup tag or a matplotlib math expression.
PLACE_NAME = r"^[\u3400-\u4dbf\u4e00-\u9fff0-9A-Za-z·]{1,40}$"
# Other names and notes reach documents and messages: one line, bounded.
TEXT = r"^[^\x00-\x1f\x7f\u2028\u2029]{0,200}$"
Id = Annotated[str, StringConstraints(pattern=ID)]
Text = Annotated[str, StringConstraints(pattern=TEXT)]
Name = Annotated[str, StringConstraints(pattern=TEXT, min_length=1, max_length=60)]
# A drop-folder file name: one path component (no separator, not hidden), `{year}` the only placeholder.
FILE_PATTERN = r"^(?:[^./\\{}\x00-\x1f\x7f]|\{year\})(?:[^/\\{}\x00-\x1f\x7f]|\{year\}){0,119}$"


class Department(_Strict):
    id: Id
    name: Name
    short: Name | None = None  # as printed in narrow table columns (default: the name)

    @property
    def label(self) -> str:
        """The name a narrow table column prints."""
        return self.short or self.name


class Dimension(_Strict):
    id: Id
    name: Name
    description: Text = ""
    source: Text = ""  # a citation, or "proposed: ..." (printed in the methodology report)


class Variable(_Strict):
    """A figure that a bureau reports, one column in its table."""

    id: Id
    name: Name
    department: Id
    unit: Text
    range: tuple[float, float]
    # largest plausible year-on-year change, in percent of last year's accepted value;
    # a larger one is a warning (None: no check, e.g. for small counts and growth rates)
    max_change: float | None = Field(default=50.0, gt=0)
    # computed (GEP accounting, config/gep.yaml) rather than reported: no column, no suite, no form
    computed: bool = False
    # a cell may be left blank (e.g. a physical quantity a county reports directly instead of the formula's)
    optional: bool = False
    # what a bureau is told when a required cell is blank (default: 必须填写数值)
    blank_zh: Text = ""

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(value)}")
        return value


class Indicator(_Strict):
    """A scored indicator: a variable as-is, or a ratio of two variables."""

    id: Id
    name: Name
    dimension: Id
    unit: Text
    direction: Literal[1, -1]
    goalposts: tuple[float, float]
    weight: float = Field(default=1.0, gt=0, le=100)
    var: Id | None = None
    ratio: tuple[Id, Id] | None = None
    factor: float = Field(default=1.0, gt=0)
    zones: list[Id] | Literal["all"] = "all"
    source: Text = ""  # why the indicator is in the index and where it applies: a citation or "proposed: ..."
    goalposts_source: Text = ""  # where the goalposts come from
    # the largest improvement a county can plausibly make in a year, in the indicator's unit (the shortest
    # path to the next grade caps each step by it; default: method.path.feasible_share of the goalpost span)
    feasible_change: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> "Indicator":
        if (self.var is None) == (self.ratio is None):
            raise ValueError("give exactly one of `var` or `ratio`")
        if not self.goalposts[0] < self.goalposts[1]:
            raise ValueError(f"goalposts must be [low, high] with low < high, got {list(self.goalposts)}")
        return self

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.var,) if self.var else tuple(self.ratio or ())


class ZoneType(_Strict):
    id: Id
    name: Name
    weight_set: Id
    note: Text = ""
    source: Text = ""


class County(_Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str = Field(pattern=PLACE_NAME)
    short: str = Field(pattern=PLACE_NAME)
    zone: Id
    verified: bool = False
    source: Text = ""  # where the zone assignment comes from
    # 国土面积 in 平方公里 (zones.yaml `land_area_source:` says where from): a bureau's ecosystem areas
    # are checked against it at the boundary (areas in 公顷 declared as 平方公里 are refused)
    land_area: float | None = Field(default=None, gt=0)


class Grade(_Strict):
    name: Name
    min: float = Field(ge=0, le=100)
    source: Text = ""


class City(_Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str = Field(pattern=PLACE_NAME)
    # who issues the documents: printed on every page 1 and in the signature block (not the software)
    issuer: Name | None = None  # default: the city's name
    doc_number: Text = ""  # 文号, optional
    contact: Text = ""  # 联系人及电话, optional


# Units a bureau may report in, as multiples of a base unit; a column declared in one
# unit is converted into its variable's catalogue unit of the same family.
UNIT_FAMILIES: dict[str, dict[str, float]] = {
    "money": {"元": 1, "千元": 1e3, "万元": 1e4, "百万元": 1e6, "亿元": 1e8},
    "people": {"人": 1, "万人": 1e4},
    "visits": {"人次": 1, "万人次": 1e4},
    "volume": {"立方米": 1, "万立方米": 1e4, "亿立方米": 1e8},
    "energy": {"吨标准煤": 1, "万吨标准煤": 1e4},
    "area": {"平方米": 1, "公顷": 1e4, "平方公里": 1e6, "亩": 10000 / 15},
    "share": {"%": 1, "‰": 0.1},
}


def unit_factor(from_unit: str, to_unit: str) -> float:
    """Multiplier turning a value in `from_unit` into `to_unit`; ValueError when they don't convert."""
    if from_unit == to_unit:
        return 1.0
    for family in UNIT_FAMILIES.values():
        if from_unit in family and to_unit in family:
            return family[from_unit] / family[to_unit]
    raise ValueError(f"cannot convert {from_unit!r} to {to_unit!r}")


class ColumnMap(_Strict):
    """One bureau column: the variable it carries and, if the bureau reports in another
    unit than the catalogue, that unit (converted automatically) or an explicit scale."""

    var: str
    unit: str | None = None
    scale: float | None = None

    @model_validator(mode="after")
    def _one_conversion(self) -> "ColumnMap":
        if self.unit is not None and self.scale is not None:
            raise ValueError("give `unit` or `scale`, not both")
        return self

    def factor(self, catalogue_unit: str) -> float:
        if self.scale is not None:
            return self.scale
        return unit_factor(self.unit, catalogue_unit) if self.unit else 1.0


class Limits(_Strict):
    """The most of one table that is read; more is refused (while streaming, for xlsx and CSV), so a
    mistaken or hostile file costs seconds and little memory. The defaults fit a national table
    (2,844 counties, a few dozen columns) several times over. `limits:` at the top of sources.yaml
    sets them for every source; a source's own `limits:` overrides single fields."""

    max_bytes: int = Field(default=50 * 2**20, ge=1, le=2**31)  # the file as received
    max_unpacked_bytes: int = Field(default=200 * 2**20, ge=1, le=2**32)  # an xlsx unpacked (zip-bomb guard)
    max_rows: int = Field(default=10_000, ge=1, le=1_048_576)  # the last row that holds anything
    max_columns: int = Field(default=256, ge=1, le=16_384)  # the last column that holds anything
    max_cells: int = Field(default=200_000, ge=1, le=10_000_000)  # cells that hold anything


class Source(_Strict):
    """Where one bureau's yearly table comes from and how to read it."""

    department: Id
    kind: Literal["folder", "http", "sql", "portal"] = "folder"  # portal: uploaded through the web portal
    # folder: a file name (with {year}) inside <data dir>/<year>/; no path, no other placeholder
    pattern: str | None = Field(default=None, pattern=FILE_PATTERN)
    # http: a URL (with {year}); sql: a SQLAlchemy URL. ${ENV} variables are expanded.
    url: str | None = None
    # sql: the query; :year is bound to the evaluation year
    query: str | None = None
    format: Literal["xlsx", "csv", "json"] = "csv"
    timeout: float = Field(default=30, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    sheet: str | None = None
    header_row: int = Field(default=1, ge=1)
    skip_rows: list[int] = Field(default_factory=list)  # 1-based rows below the header to skip (e.g. a unit row)
    county_column: str
    columns: dict[str, ColumnMap]
    ignore_columns: list[str] = Field(default_factory=list)  # known columns that carry no variable
    limits: Limits = Limits()  # the top-level `limits:` merged with the source's own

    @model_validator(mode="after")
    def _kind_fields(self) -> "Source":
        need = {"folder": ("pattern",), "http": ("url",), "sql": ("url", "query"), "portal": ()}[self.kind]
        missing = [name for name in need if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} source needs {', '.join(missing)}")
        if self.kind == "folder":
            if self.format == "json":
                raise ValueError("folder sources read xlsx or csv")
        if self.kind == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("an http source needs an http:// or https:// URL")
        return self

    def file_name(self, year: int) -> str:
        return (self.pattern or "").replace("{year}", str(int(year)))

    def location(self, year: int) -> str:
        """The URL (http/sql) for a year, with ${ENV} variables expanded."""
        import os

        return os.path.expandvars((self.url or "").replace("{year}", str(int(year))))

    def describe(self) -> str:
        """Where the data comes from, for logs and the ledger (no credentials)."""
        if self.kind == "folder":
            return f"folder:{self.pattern}"
        if self.kind == "portal":
            return "portal"
        if self.kind == "sql":
            return "sql:" + re.sub(r"//[^@/]*@", "//***@", self.url or "")
        return f"http:{self.url}"


class Uncertainty(_Strict):
    draws: int = Field(default=1000, ge=1, le=100000)
    seed: int = 0
    weight_perturbation: float = Field(default=0.25, ge=0, lt=1)
    source: Text = ""
    normalise_alternatives: list[Literal["goalposts", "minmax", "efficacy", "zscore", "rank"]] = ["goalposts"]
    aggregate_alternatives: list[Literal["arithmetic_mean", "geometric_mean"]] = ["arithmetic_mean"]


class Sensitivity(_Strict):
    """Variance-based sensitivity (Sobol indices, SALib's Saltelli scheme): `samples` is the base sample
    N (a power of two); the model is evaluated N * (D + 2) times for D uncertain inputs."""

    samples: int = Field(default=1024, ge=64, le=65536)
    seed: int = 0
    # the missing-value rules a run may take (floor: the NBS rule the index uses; skip: leave the indicator out
    # and spread its weight; mean: the mean of the counties of its zone type that report it)
    missing_alternatives: list[Literal["floor", "skip", "mean"]] = ["floor"]
    source: Text = ""

    @field_validator("samples")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"sensitivity.samples must be a power of two (Sobol sequences), not {value}")
        return value


class RatingBand(_Strict):
    min: float = Field(ge=0, le=100)
    name: Name
    colour: Literal["green", "yellow", "orange", "red"]


class TrendThresholds(_Strict):
    """Points per year (least-squares slope of the normalised score over the years shown)."""

    improving: float = 2.0
    moderately_improving: float = 0.5
    declining: float = -0.5

    @model_validator(mode="after")
    def _ordered(self) -> "TrendThresholds":
        if not self.improving > self.moderately_improving > self.declining:
            raise ValueError("trend thresholds must satisfy improving > moderately_improving > declining")
        return self


class Ratings(_Strict):
    """The indicator table's four-colour rating and trend category (SDR dashboard style)."""

    verified: bool = False
    source: Text = "proposed"
    bands: list[RatingBand] = Field(default_factory=lambda: [
        RatingBand(min=80, name="达到目标", colour="green"), RatingBand(min=60, name="尚有差距", colour="yellow"),
        RatingBand(min=40, name="差距明显", colour="orange"), RatingBand(min=0, name="差距很大", colour="red")])
    trend: TrendThresholds = TrendThresholds()

    @model_validator(mode="after")
    def _bands(self) -> "Ratings":
        mins = [b.min for b in self.bands]
        if not self.bands or mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins) or mins[-1] != 0:
            raise ValueError("rating bands must be listed from the highest `min` down, each different, the last at 0")
        return self


class PathSettings(_Strict):
    """The shortest path to the next grade: each indicator's step is capped by its `feasible_change` (config) or,
    where none is set, by `feasible_share` of its goalpost span, raised to the county's own best yearly
    improvement over the years shown when `use_trend` (a county that has moved faster may again)."""

    feasible_share: float = Field(default=0.1, gt=0, le=1)
    use_trend: bool = True
    verified: bool = False
    source: Text = "proposed"


class Method(_Strict):
    normalise: Literal["goalposts", "minmax", "efficacy", "zscore", "rank"] = "goalposts"
    aggregate: Literal["arithmetic_mean", "geometric_mean"] = "arithmetic_mean"
    # past years a run reads (from the ledger, or once from the drop folder): shown in trends; the year
    # before also feeds the jump check. Part of the config hash, so changing it issues a new version.
    years_back: int = Field(default=2, ge=0, le=10)
    uncertainty: Uncertainty = Uncertainty()
    sensitivity: Sensitivity = Sensitivity()
    path: PathSettings = PathSettings()
    ratings: Ratings = Ratings()
    source: Text = ""  # why these methods (the normalisation and aggregation above)


class Signal(_Strict):
    """A readiness signal on one indicator: absolute (`op` and `value`) or relative (`within` the city or the
    province, among the `top` counties; a county's city and province are its GB/T 2260 code's first 4 and 2 digits)."""

    indicator: str
    name: str
    op: Literal[">=", ">", "<=", "<"] | None = None
    value: float | None = None
    within: Literal["city", "province"] | None = None
    top: int | None = Field(default=None, ge=1)
    verified: bool = False
    source: Text = ""

    @model_validator(mode="after")
    def _one_kind(self) -> "Signal":
        absolute = self.op is not None and self.value is not None
        relative = self.within is not None and self.top is not None
        if absolute == relative or (self.op is None) != (self.value is None) or (self.within is None) != (self.top is None):
            raise ValueError("a signal is either absolute (op and value) or relative (within and top)")
        return self

    @property
    def relative(self) -> bool:
        return self.within is not None


class CityTarget(_Strict):
    year: int
    min: int
    max: int
    text: str
    source: Text = ""


class NamedBase(_Strict):
    """A base already named (a published fact, shown beside the signals)."""

    code: str = Field(pattern=r"^\d{6}$")
    level: Name
    year: int
    source: Text = ""


class Readiness(_Strict):
    verified: bool = False
    source: Text = ""
    signals: list[Signal] = Field(default_factory=list)
    named: list[NamedBase] = Field(default_factory=list)
    city_targets: list[CityTarget] = Field(default_factory=list)


class Catalogue(_Strict):
    """The whole configuration, cross-checked."""

    version: str
    departments: dict[str, Department]
    dimensions: list[Dimension]
    variables: dict[str, Variable]
    indicators: list[Indicator]
    zone_types: dict[str, ZoneType]
    weight_sets: dict[Id, dict[Id, Annotated[float, Field(ge=0, le=1)]]]
    grades: list[Grade]
    missing_score: float = Field(ge=0, le=100)
    missing_score_source: Text = ""
    weight_set_sources: dict[Id, Text] = Field(default_factory=dict)  # from each weight set's `source:`
    counties: list[County]
    city: City
    sources: dict[str, Source]
    method: Method = Method()
    readiness: Readiness = Readiness()
    limits: Limits = Limits()  # sources.yaml's top-level `limits:` (each source holds its merged copy)
    land_area_source: Text = ""
    gep: "GepConfig | None" = None  # config/gep.yaml: the GEP accounting catalogue (evaluation.gep)
    config_hash: str

    @model_validator(mode="before")
    @classmethod
    def _weight_set_sources(cls, data):
        """A weight set may carry `source:` beside its weights; it is kept apart from the weights."""
        if isinstance(data, dict) and isinstance(data.get("weight_sets"), dict):
            sets, sources = {}, dict(data.get("weight_set_sources") or {})
            for name, weights in data["weight_sets"].items():
                if isinstance(weights, dict) and "source" in weights:
                    weights = dict(weights)
                    sources[name] = weights.pop("source")
                sets[name] = weights
            data = {**data, "weight_sets": sets, "weight_set_sources": sources}
        return data

    @model_validator(mode="after")
    def _cross_check(self) -> "Catalogue":
        problems: list[str] = []
        dim_ids = [d.id for d in self.dimensions]
        _dupes("dimension", dim_ids, problems)
        _dupes("indicator", [i.id for i in self.indicators], problems)
        _dupes("county code", [c.code for c in self.counties], problems)
        for var in self.variables.values():
            if var.department not in self.departments:
                problems.append(f"variable {var.id}: unknown department {var.department!r}")
        for ind in self.indicators:
            if ind.dimension not in dim_ids:
                problems.append(f"indicator {ind.id}: unknown dimension {ind.dimension!r}")
            for name in ind.inputs:
                if name not in self.variables:
                    problems.append(f"indicator {ind.id}: unknown variable {name!r}")
            if ind.var in self.variables and (ind.name, ind.unit) != (self.variables[ind.var].name,
                                                                  self.variables[ind.var].unit):
                var = self.variables[ind.var]
                problems.append(f"indicator {ind.id}: name/unit {ind.name}/{ind.unit} differ from its variable's "
                                f"{var.name}/{var.unit}; leave them out (a var: indicator takes its variable's)")
            if ind.var in self.variables:
                low, high = self.variables[ind.var].range
                if not (low <= ind.goalposts[0] and ind.goalposts[1] <= high):
                    problems.append(f"indicator {ind.id}: goalposts {list(ind.goalposts)} lie outside the plausible "
                                    f"range {[low, high]} of variable {ind.var}")
            if ind.zones != "all":
                for zone in ind.zones:
                    if zone not in self.zone_types:
                        problems.append(f"indicator {ind.id}: unknown zone type {zone!r}")
        for zone in self.zone_types.values():
            weights = self.weight_sets.get(zone.weight_set)
            if weights is None:
                problems.append(f"zone type {zone.id}: unknown weight set {zone.weight_set!r}")
                continue
            for dim in dim_ids:
                if dim not in weights:
                    problems.append(f"weight set {zone.weight_set}: no weight for dimension {dim}")
            extra = sorted(set(weights) - set(dim_ids))
            if extra:
                problems.append(f"weight set {zone.weight_set}: unknown dimensions {extra}")
            total = sum(weights.values())
            if any(w < 0 for w in weights.values()):
                problems.append(f"weight set {zone.weight_set}: negative weight")
            if not math.isclose(total, 1.0, abs_tol=WEIGHT_TOLERANCE):
                problems.append(f"weight set {zone.weight_set}: weights sum to {total:g}, not 1")
            for dim in dim_ids:
                if weights.get(dim, 0) > 0 and not self.indicators_for(zone.id, dim):
                    problems.append(f"zone type {zone.id}: dimension {dim} has weight but no applicable indicator")
        for county in self.counties:
            if county.zone not in self.zone_types:
                problems.append(f"county {county.code}: unknown zone type {county.zone!r}")
        mins = [g.min for g in self.grades]
        if mins != sorted(mins, reverse=True) or not mins or mins[-1] != 0:
            problems.append("grades must be listed highest first and the last must have min 0")
        covered: dict[str, str] = {}
        for dept, source in self.sources.items():
            if dept not in self.departments:
                problems.append(f"source {dept}: unknown department")
            for header, col in source.columns.items():
                var = self.variables.get(col.var)
                if var is None:
                    problems.append(f"source {dept}, column {header!r}: unknown variable {col.var!r}")
                elif var.department != dept:
                    problems.append(f"source {dept}, column {header!r}: variable {col.var} belongs to {var.department}")
                elif col.unit is not None:
                    try:
                        unit_factor(col.unit, var.unit)
                    except ValueError:
                        problems.append(f"source {dept}, column {header!r}: unit {col.unit} does not convert to {var.unit}")
                covered[col.var] = dept
        indicator_ids = {i.id for i in self.indicators}
        for signal in self.readiness.signals:
            if signal.indicator not in indicator_ids:
                problems.append(f"readiness signal {signal.name!r}: unknown indicator {signal.indicator!r}")
        for name in self.weight_set_sources:
            if name not in self.weight_sets:
                problems.append(f"weight set {name}: a source for a weight set that does not exist")
        for var in self.variables.values():
            if var.computed and var.id in covered:
                problems.append(f"variable {var.id}: computed, so no source column may report it")
            elif not var.computed and var.id not in covered:
                problems.append(f"variable {var.id}: no source column reports it")
        if self.gep is not None:
            problems += self.gep.problems(self)
        elif any(v.computed for v in self.variables.values()):
            problems.append("computed variables need config/gep.yaml (the GEP accounting that computes them)")
        if problems:
            raise ValueError("\n  - ".join(problems))
        return self

    # lookups -----------------------------------------------------------------

    def applies(self, indicator: Indicator, zone: str) -> bool:
        return indicator.zones == "all" or zone in indicator.zones

    def indicators_for(self, zone: str, dimension: str | None = None) -> list[Indicator]:
        return [
            i for i in self.indicators
            if self.applies(i, zone) and (dimension is None or i.dimension == dimension)
        ]

    def zone_weights(self, zone: str) -> dict[str, float]:
        return dict(self.weight_sets[self.zone_types[zone].weight_set])

    @functools.cached_property
    def _county_by_code(self) -> dict[str, County]:
        return {county.code: county for county in self.counties}

    def county(self, code: str) -> County:
        """The county of a code (KeyError if none); a lookup, so a national plan is not quadratic."""
        return self._county_by_code[code]

    def department_variables(self, department: str) -> list[Variable]:
        """The variables a bureau's table reports (computed ones are nobody's column)."""
        return [v for v in self.variables.values() if v.department == department and not v.computed]

    def feeds(self, variable: str) -> tuple[str, ...]:
        """The indicators this year's value of a variable feeds: directly, or through the computed variables of
        the GEP accounting whose value it enters (evaluation.gep.config.GepConfig.output_inputs)."""
        names = {variable}
        if self.gep is not None:
            names |= {out for out in self.gep.output_ids() if variable in self.gep.output_inputs(out)}
        return tuple(i.id for i in self.indicators if names & set(i.inputs))

    def county_lookup(self) -> dict[str, str]:
        """Every accepted spelling of a county (code, full name, short name) -> code."""
        lookup: dict[str, str] = {}
        for c in self.counties:
            for key in (c.code, c.name, c.short):
                lookup[key] = c.code
        return lookup


def _dupes(kind: str, ids: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            problems.append(f"duplicate {kind} {item!r}")
        seen.add(item)


CONFIG_FILES = ("indicators.yaml", "zones.yaml", "sources.yaml", "method.yaml", "readiness.yaml", "gep.yaml")
OPTIONAL_CONFIG = ("method.yaml", "readiness.yaml", "gep.yaml")


# Which file a top-level field comes from, and Chinese for pydantic's common complaints.
_FILE_OF = {**dict.fromkeys(("version", "departments", "dimensions", "variables", "indicators"), "indicators.yaml"),
            **dict.fromkeys(("zone_types", "weight_sets", "grades", "missing_score", "counties", "city",
                             "land_area_source"), "zones.yaml"), "gep": "gep.yaml",
            "sources": "sources.yaml", "limits": "sources.yaml", "method": "method.yaml", "readiness": "readiness.yaml"}
_ERRORS_ZH = {
    "finite_number": "必须是有限的数值（不能是 .inf、.nan）",
    "string_pattern_mismatch": "含有不允许的字符或格式不对（名称只能用汉字、数字、字母和“·”；标识用字母、数字和下划线；"
                               "文件名不能含路径，只能用 {year} 占位）",
    "string_too_long": "太长",
    "string_too_short": "不能为空",
    "greater_than": "必须大于下限",
    "greater_than_equal": "低于允许的下限（不低于 {ge}）",
    "less_than": "必须小于上限",
    "less_than_equal": "超过允许的上限（不超过 {le}）",
    "extra_forbidden": "不认识的字段（拼写错误？）",
    "missing": "缺少必填字段",
    "float_parsing": "必须是数值",
    "int_parsing": "必须是整数",
    "literal_error": "不是允许的取值",
}


def _source_specs(src: dict) -> dict:
    """Each source's spec, its `limits:` being the top-level block overridden by its own fields.
    An invalid top-level block is left out here: it is reported once, as `limits`."""
    top = src.get("limits") or {}
    try:
        Limits(**top)
    except (ValidationError, TypeError):
        top = {}
    return {k: {"department": k, **v, "limits": {**top, **(v.get("limits") or {})}}
            for k, v in (src.get("sources") or {}).items()}


def _with_variable_words(indicators: list, variables: list) -> list:
    """A `var:` indicator is its variable scored: its name and unit are the variable's (stated once,
    in `variables:`), filled in here where the indicator leaves them out."""
    words = {v.get("id"): v for v in variables if isinstance(v, dict)}
    out = []
    for item in indicators:
        if isinstance(item, dict) and isinstance(item.get("var"), str):
            # an unknown variable is reported by the cross-check, not as a missing name and unit
            var = words.get(item["var"]) or {"name": "未知变量", "unit": "—"}
            item = {"name": var.get("name"), "unit": var.get("unit"), **item}
        out.append(item)
    return out


def default_config_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "config"


def load_catalogue(config_dir: Path | str | None = None) -> Catalogue:
    """Load and check config/indicators.yaml, zones.yaml and sources.yaml."""
    config_dir = Path(config_dir) if config_dir else default_config_dir()
    raw: dict[str, dict] = {}
    digest = hashlib.sha256()
    for name in CONFIG_FILES:
        path = config_dir / name
        if name in OPTIONAL_CONFIG and not path.exists():
            raw[name] = {}
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CatalogueError(f"无法读取配置文件 {path}: {exc.strerror}") from None
        digest.update(name.encode() + b"\0" + data + b"\0")
        try:
            raw[name] = load_yaml(data) or {}
        except yaml.YAMLError as exc:
            raise CatalogueError(f"配置文件 {path} 不是有效的 YAML（如重复的键、缩进错误）: {exc}") from None
        if not isinstance(raw[name], dict):
            raise CatalogueError(f"配置文件 {path} 的顶层应是键值映射。")
    ind, zones, src = raw["indicators.yaml"], raw["zones.yaml"], raw["sources.yaml"]
    method, readiness, gep = raw["method.yaml"], raw["readiness.yaml"], raw["gep.yaml"]
    try:
        return Catalogue(
            version=str(ind.get("version", "")),
            departments={k: {"id": k, **v} for k, v in (ind.get("departments") or {}).items()},
            dimensions=ind.get("dimensions") or [],
            variables={v["id"]: v for v in ind.get("variables") or []},
            indicators=_with_variable_words(ind.get("indicators") or [], ind.get("variables") or []),
            zone_types={k: {"id": k, **v} for k, v in (zones.get("zone_types") or {}).items()},
            weight_sets=zones.get("weight_sets") or {},
            grades=zones.get("grades") or [],
            missing_score=zones.get("missing_score", 0),
            missing_score_source=zones.get("missing_score_source", ""),
            counties=zones.get("counties") or [],
            city=zones.get("city") or {},
            sources=_source_specs(src),
            limits=src.get("limits") or {},
            method=method or {},
            readiness=readiness or {},
            land_area_source=zones.get("land_area_source", ""),
            gep=gep or None,
            config_hash=digest.hexdigest(),
        )
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = _ERRORS_ZH.get(err["type"], "") or err["msg"].removeprefix("Value error, ")
            if "{" in msg:
                try:
                    msg = msg.format(**err.get("ctx", {}))
                except (KeyError, IndexError, ValueError):
                    msg = msg.split("（", 1)[0]
            loc = ".".join(str(p) for p in err["loc"])
            where = f"{_FILE_OF.get(str(err['loc'][0]), '')} {loc}".strip() if err["loc"] else ""
            value = err.get("input")
            shown = f"（值：{str(value)[:60]}）" if isinstance(value, (str, int, float)) else ""
            lines.append(f"{where}: {msg}{shown}" if where else msg)
        raise CatalogueError("配置检查未通过 / invalid configuration:\n  - " + "\n  - ".join(lines)) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatalogueError(f"配置结构有误 / malformed configuration: {exc}") from None


from evaluation.gep.config import GepConfig  # noqa: E402 - the GEP catalogue model refers back to this module's types

Catalogue.model_rebuild()

"""The catalogue: indicators, zones and sources, loaded from config/ and checked once.

Everything downstream (ingest, validation, scoring, reporting) reads these models,
so a mistake in the YAML surfaces here, with a message naming the file and field,
rather than as a wrong number on a scorecard.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WEIGHT_TOLERANCE = 1e-6


class CatalogueError(ValueError):
    """The configuration is invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    id: str
    name: str


class Dimension(_Strict):
    id: str
    name: str
    description: str = ""


class Variable(_Strict):
    """A figure that a bureau reports, one column in its table."""

    id: str
    name: str
    department: str
    unit: str
    range: tuple[float, float]
    # largest plausible year-on-year change, in percent of last year's accepted value;
    # a larger one is a warning (None: no check, e.g. for small counts and growth rates)
    max_change: float | None = Field(default=50.0, gt=0)

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(value)}")
        return value


class Indicator(_Strict):
    """A scored indicator: a variable as-is, or a ratio of two variables."""

    id: str
    name: str
    dimension: str
    unit: str
    direction: Literal[1, -1]
    goalposts: tuple[float, float]
    weight: float = Field(default=1.0, gt=0)
    var: str | None = None
    ratio: tuple[str, str] | None = None
    factor: float = 1.0
    zones: list[str] | Literal["all"] = "all"

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
    id: str
    name: str
    weight_set: str
    note: str = ""


class County(_Strict):
    code: str = Field(pattern=r"^\d{6}$")
    name: str
    short: str
    zone: str
    verified: bool = False


class Grade(_Strict):
    name: str
    min: float


class City(_Strict):
    code: str
    name: str


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


class Source(_Strict):
    """Where one bureau's yearly table comes from and how to read it."""

    department: str
    kind: Literal["folder", "http", "sql"] = "folder"
    # folder: a file name (with {year}) inside <data dir>/<year>/
    pattern: str | None = None
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

    @model_validator(mode="after")
    def _kind_fields(self) -> "Source":
        need = {"folder": ("pattern",), "http": ("url",), "sql": ("url", "query")}[self.kind]
        missing = [name for name in need if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} source needs {', '.join(missing)}")
        if self.kind == "folder":
            name = self.pattern or ""
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError("pattern must be a plain file name, not a path")
            if self.format == "json":
                raise ValueError("folder sources read xlsx or csv")
        if self.kind == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("an http source needs an http:// or https:// URL")
        return self

    def file_name(self, year: int) -> str:
        return (self.pattern or "").format(year=year)

    def location(self, year: int) -> str:
        """The URL (http/sql) for a year, with ${ENV} variables expanded."""
        import os

        return os.path.expandvars((self.url or "").replace("{year}", str(int(year))))

    def describe(self) -> str:
        """Where the data comes from, for logs and the ledger (no credentials)."""
        if self.kind == "folder":
            return f"folder:{self.pattern}"
        if self.kind == "sql":
            return "sql:" + re.sub(r"//[^@/]*@", "//***@", self.url or "")
        return f"http:{self.url}"


class Uncertainty(_Strict):
    draws: int = Field(default=1000, ge=1, le=100000)
    seed: int = 0
    weight_perturbation: float = Field(default=0.25, ge=0, lt=1)
    normalise_alternatives: list[Literal["goalposts", "minmax", "efficacy", "zscore", "rank"]] = ["goalposts"]
    aggregate_alternatives: list[Literal["arithmetic_mean", "geometric_mean"]] = ["arithmetic_mean"]


class Method(_Strict):
    normalise: Literal["goalposts", "minmax", "efficacy", "zscore", "rank"] = "goalposts"
    aggregate: Literal["arithmetic_mean", "geometric_mean"] = "arithmetic_mean"
    uncertainty: Uncertainty = Uncertainty()


class Criterion(_Strict):
    indicator: str
    op: Literal[">=", ">", "<=", "<"]
    value: float
    name: str


class CityTarget(_Strict):
    year: int
    min: int
    max: int
    text: str


class Readiness(_Strict):
    verified: bool = False
    criteria: list[Criterion] = Field(default_factory=list)
    city_targets: list[CityTarget] = Field(default_factory=list)


class Catalogue(_Strict):
    """The whole configuration, cross-checked."""

    version: str
    departments: dict[str, Department]
    dimensions: list[Dimension]
    variables: dict[str, Variable]
    indicators: list[Indicator]
    zone_types: dict[str, ZoneType]
    weight_sets: dict[str, dict[str, float]]
    grades: list[Grade]
    missing_score: float = Field(ge=0, le=100)
    counties: list[County]
    city: City
    sources: dict[str, Source]
    method: Method = Method()
    readiness: Readiness = Readiness()
    config_hash: str

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
        for crit in self.readiness.criteria:
            if crit.indicator not in indicator_ids:
                problems.append(f"readiness criterion {crit.name!r}: unknown indicator {crit.indicator!r}")
        for var in self.variables:
            if var not in covered:
                problems.append(f"variable {var}: no source column reports it")
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

    def county(self, code: str) -> County:
        for county in self.counties:
            if county.code == code:
                return county
        raise KeyError(code)

    def grade(self, score: float) -> str:
        for band in self.grades:
            if score >= band.min:
                return band.name
        return self.grades[-1].name

    def department_variables(self, department: str) -> list[Variable]:
        return [v for v in self.variables.values() if v.department == department]

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


CONFIG_FILES = ("indicators.yaml", "zones.yaml", "sources.yaml", "method.yaml", "readiness.yaml")
OPTIONAL_CONFIG = ("method.yaml", "readiness.yaml")


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
            raw[name] = yaml.safe_load(data) or {}
        except yaml.YAMLError as exc:
            raise CatalogueError(f"配置文件 {path} 不是有效的 YAML: {exc}") from None
    ind, zones, src = raw["indicators.yaml"], raw["zones.yaml"], raw["sources.yaml"]
    method, readiness = raw["method.yaml"], raw["readiness.yaml"]
    try:
        return Catalogue(
            version=str(ind.get("version", "")),
            departments={k: {"id": k, **v} for k, v in (ind.get("departments") or {}).items()},
            dimensions=ind.get("dimensions") or [],
            variables={v["id"]: v for v in ind.get("variables") or []},
            indicators=ind.get("indicators") or [],
            zone_types={k: {"id": k, **v} for k, v in (zones.get("zone_types") or {}).items()},
            weight_sets=zones.get("weight_sets") or {},
            grades=zones.get("grades") or [],
            missing_score=zones.get("missing_score", 0),
            counties=zones.get("counties") or [],
            city=zones.get("city") or {},
            sources={k: {"department": k, **v} for k, v in (src.get("sources") or {}).items()},
            method=method or {},
            readiness=readiness or {},
            config_hash=digest.hexdigest(),
        )
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"{loc}: {msg}" if loc else msg)
        raise CatalogueError("配置检查未通过 / invalid configuration:\n  - " + "\n  - ".join(lines)) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise CatalogueError(f"配置结构有误 / malformed configuration: {exc}") from None

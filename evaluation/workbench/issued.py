"""An issued version read back from its folder: manifest, the engine's record (every county's indicator
values and the zone rules it was scored with), the ranking and the map."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evaluation import versions
from evaluation.catalogue import Catalogue
from evaluation.index.scoring import ZONE, IndexSpec, ScoreResult, score

PAGE_SIZE = 50
SCORE_BANDS = ((90, "#00441b"), (75, "#238b45"), (60, "#74c476"), (45, "#d9c77a"), (30, "#e08a4a"), (0, "#b5523b"))


@dataclass
class Issued:
    """One issued version of a year, with the engine's spec and result rebuilt from its manifest."""

    year: int
    version: int
    folder: Path
    manifest: dict
    spec: IndexSpec
    raw: pd.DataFrame  # county x indicator, as scored
    zones: pd.Series
    result: ScoreResult
    names: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """county x (name, zone, zone_name, overall, grade, rank, zone_rank, dimension scores), by rank."""
        if "_table" not in self.__dict__:
            self.__dict__["_table"] = self._make_table()
        return self.__dict__["_table"]

    def _make_table(self) -> pd.DataFrame:
        issued = pd.DataFrame(self.manifest["scores"]).set_index("county_code")
        table = issued[["zone", "overall", "grade", "rank", "zone_rank"]].join(self.result.dimension_scores)
        table.insert(0, "name", [self.names.get(c, c) for c in table.index])
        return table.sort_values(["rank", "name"])


def spec_from_manifest(manifest: dict, catalogue: Catalogue) -> tuple[IndexSpec, pd.DataFrame, pd.Series]:
    """The spec, indicator values and zones a version was scored with, from its manifest alone (the
    configuration may have changed since); the grade bands are the configuration's."""
    record = manifest["index"]
    data = pd.DataFrame(record["iData"]).set_index("uCode")
    data.index = data.index.astype(str)
    zones = data.pop(ZONE).astype(str)
    meta = pd.DataFrame(record["iMeta"])
    ind = meta[meta["Level"] == 1].set_index("iCode")
    steps = {next(iter(s)): next(iter(s.values())) for s in record["steps"]}
    indicators = pd.DataFrame({"dimension": ind["Parent"], "direction": ind["Direction"].astype(int),
                               "low": ind["GoalLow"], "high": ind["GoalHigh"], "weight": ind["Weight"]})
    indicators.index.name = "id"
    applies = steps["mask"]["applies"]
    weights = steps["weight"]["weights"]
    zone_ids = list(weights)
    dims = list(meta[meta["Level"] == 2]["iCode"])
    applicable = pd.DataFrame([[i in applies.get(z, []) for i in indicators.index] for z in zone_ids],
                              index=zone_ids, columns=indicators.index)
    dim_weights = pd.DataFrame([[weights[z].get(d, 0.0) for d in dims] for z in zone_ids], index=zone_ids, columns=dims)
    floor = steps["impute"]
    missing = float(floor.get("value", catalogue.missing_score)) if floor.get("method") == "floor" else catalogue.missing_score
    spec = IndexSpec(indicators, applicable, dim_weights, missing, tuple((g.name, g.min) for g in catalogue.grades),
                     steps["normalise"]["method"], steps["aggregate"]["method"])
    raw = data.reindex(columns=indicators.index).astype("float64")
    return spec, raw, zones


def load(out_dir: Path, year: int, version: int, catalogue: Catalogue) -> Issued:
    folder = versions.year_dir(Path(out_dir), year) / f"v{int(version)}"
    manifest = versions.read_manifest(folder)
    spec, raw, zones = spec_from_manifest(manifest, catalogue)
    result = score(raw, zones, spec)
    names = {c.code: c.name for c in catalogue.counties}
    return Issued(int(year), int(version), folder, manifest, spec, raw, zones, result, names)


def check_reproduced(issued: Issued) -> float:
    """The largest difference between the issued composite scores and the ones rebuilt here (0 expected)."""
    given = pd.Series({s["county_code"]: s["overall"] for s in issued.manifest["scores"]})
    return float((given - issued.result.overall.reindex(given.index)).abs().max())


def ranking(issued: Issued, *, zone: str = "", grade: str = "", query: str = "", sort: str = "rank",
            descending: bool = False, page: int = 1, size: int = PAGE_SIZE) -> tuple[pd.DataFrame, int, int]:
    """A page of the ranking, filtered and sorted: (rows, matching count, pages)."""
    table = issued.table
    if zone:
        table = table[table["zone"] == zone]
    if grade:
        table = table[table["grade"] == grade]
    if query:
        table = table[table["name"].str.contains(query, regex=False) | table.index.str.startswith(query)]
    columns = {"rank", "overall", "name", "zone_rank", *issued.result.dimension_scores.columns}
    key = sort if sort in columns else "rank"
    ascending = not descending if key in ("rank", "zone_rank", "name") else descending
    table = table.sort_values([key, "rank"], ascending=[ascending, True], kind="stable")
    pages = max(1, -(-len(table) // size))
    page = min(max(1, page), pages)
    return table.iloc[(page - 1) * size: page * size], len(table), pages


def colour_of(value: float) -> str:
    if pd.isna(value):
        return "#c8cfcc"
    return next(colour for low, colour in SCORE_BANDS if value >= low)


def map_svg(issued: Issued, catalogue: Catalogue, by: str, link) -> tuple[bytes, list[str]]:
    """The summary's choropleth (the same drawing code), coloured by grade, the composite or a dimension,
    each county a link (`link(code)` -> URL). Returns the SVG and the names without boundary data."""
    from evaluation.reporting import maps
    from evaluation.reporting.context import GRADE_FILLS, grade_class

    table = issued.table.sort_index()
    small = len(table) <= 40
    if by == "grade":
        fills = {c: GRADE_FILLS.get(grade_class(catalogue, g), "#6b7772") for c, g in table["grade"].items()}
        grades = sorted(catalogue.grades, key=lambda g: -g.min)
        legend = [(g.name, GRADE_FILLS.get(f"g{i + 1}", "#6b7772")) for i, g in enumerate(grades)]
    else:
        column = by if by in table.columns and by not in ("name", "zone", "grade") else "overall"
        fills = {c: colour_of(v) for c, v in table[column].items()}
        bands = list(SCORE_BANDS)
        legend = [(f"≥{low}" if i else f"≥{low}", colour) for i, (low, colour) in enumerate(bands[:-1])] \
            + [(f"<{bands[-2][0]}", bands[-1][1])]
    values = table["overall"]
    areas = [maps.Area(c, issued.names.get(c, c) if small else "", fills[c]) for c in table.index]
    links = {c: (link(c), f"{issued.names.get(c, c)}：{values[c]:.1f} 分，第 {int(table.at[c, 'rank'])} 名")
             for c in table.index}
    svg, missing = maps.choropleth_svg(areas, legend, max_height_mm=110 if small else 150, links=links)
    return svg, [a.name or issued.names.get(a.code, a.code) for a in missing]

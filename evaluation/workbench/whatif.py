"""What-if: re-score an issued version with other zone weights, another normalisation or aggregation,
or without some indicators, and compare every county's score and rank with what was issued.

Only the version's manifest is read (the engine's record of the values and rules it scored); nothing is
written but, on request, a named proposal under `proposals/` beside the configuration folder, which
nothing ever applies by itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from evaluation.catalogue import Catalogue
from evaluation.index.scoring import IndexSpec, score
from evaluation.workbench.issued import Issued

NORMALISE = {"goalposts": "固定目标值（现行）", "minmax": "最小–最大值", "efficacy": "功效系数法（60–100）",
             "zscore": "标准分", "rank": "名次"}
AGGREGATE = {"arithmetic_mean": "加权算术平均", "geometric_mean": "加权几何平均"}
NAME_CAP = 60


class ScenarioError(ValueError):
    """A what-if that cannot be computed, said in Chinese."""


@dataclass(frozen=True)
class Scenario:
    weights: dict[str, dict[str, float]]  # zone type -> dimension -> weight (each row sums to 1)
    normalise: str
    aggregate: str
    dropped: tuple[str, ...] = ()

    @classmethod
    def issued(cls, issued: Issued) -> "Scenario":
        spec = issued.spec
        return cls({z: {d: float(w) for d, w in row.items()} for z, row in spec.dimension_weights.iterrows()},
                   spec.normalise, spec.aggregate)

    @classmethod
    def from_form(cls, issued: Issued, form: dict[str, str]) -> "Scenario":
        """From the what-if form (`w.<zone>.<dimension>`, `normalise`, `aggregate`, `drop`); only the keys the
        version knows are read, every weight is checked, and each zone's weights are scaled to sum to 1."""
        spec = issued.spec
        weights = {}
        for zone, row in spec.dimension_weights.iterrows():
            given = {}
            for dim, default in row.items():
                text = str(form.get(f"w.{zone}.{dim}", "")).strip()
                try:
                    value = float(text) if text else float(default)
                except ValueError:
                    raise ScenarioError(f"权重“{text[:20]}”不是数字。") from None
                if not np.isfinite(value) or value < 0:
                    raise ScenarioError("权重必须是不小于 0 的数。")
                given[dim] = value
            total = sum(given.values())
            if total <= 0:
                raise ScenarioError("每类功能区的维度权重之和必须大于 0。")
            weights[str(zone)] = {d: v / total for d, v in given.items()}
        normalise = form.get("normalise") or spec.normalise
        aggregate = form.get("aggregate") or spec.aggregate
        if normalise not in NORMALISE or aggregate not in AGGREGATE:
            raise ScenarioError("未知的标准化或加总方法。")
        dropped = form.get("drop", "")
        drops = tuple(sorted({d for d in (dropped if isinstance(dropped, (list, tuple)) else dropped.split(","))
                              if d in spec.indicators.index}))
        if len(drops) >= len(spec.indicators):
            raise ScenarioError("不能去掉全部指标。")
        return cls(weights, normalise, aggregate, drops)

    def spec(self, base: IndexSpec) -> IndexSpec:
        keep = [i for i in base.indicators.index if i not in self.dropped]
        dims = list(base.dimension_weights.columns)
        weights = pd.DataFrame([[self.weights[z][d] for d in dims] for z in base.dimension_weights.index],
                               index=base.dimension_weights.index, columns=dims)
        return IndexSpec(base.indicators.loc[keep], base.applicable[keep], weights, base.missing_score, base.grades,
                         self.normalise, self.aggregate)

    def changes(self, issued: Issued, catalogue: Catalogue) -> list[str]:
        """What differs from the issued version, in words."""
        base = Scenario.issued(issued)
        zones = {z: t.name for z, t in catalogue.zone_types.items()}
        dims = {d.id: d.name for d in catalogue.dimensions}
        names = {i.id: i.name for i in catalogue.indicators}
        said = []
        for zone, row in self.weights.items():
            moved = [f"{dims.get(d, d)} {base.weights[zone][d] * 100:.0f}%→{w * 100:.0f}%" for d, w in row.items()
                     if abs(w - base.weights[zone][d]) > 5e-4]
            if moved:
                said.append(f"{zones.get(zone, zone)}：" + "，".join(moved))
        if self.normalise != base.normalise:
            said.append(f"标准化：{NORMALISE[base.normalise]}→{NORMALISE[self.normalise]}")
        if self.aggregate != base.aggregate:
            said.append(f"加总：{AGGREGATE[base.aggregate]}→{AGGREGATE[self.aggregate]}")
        if self.dropped:
            said.append("去掉指标：" + "、".join(names.get(i, i) for i in self.dropped))
        return said


@dataclass
class Outcome:
    scenario: Scenario
    table: pd.DataFrame  # county: name, zone, issued_score, issued_rank, score, rank, score_change, rank_change
    changes: list[str] = field(default_factory=list)

    @property
    def moved(self) -> int:
        return int((self.table["rank_change"] != 0).sum())

    @property
    def spearman(self) -> float:
        return float(self.table["issued_rank"].corr(self.table["rank"], method="spearman")) if len(self.table) > 1 else 1.0


def compare(issued: Issued, catalogue: Catalogue, scenario: Scenario) -> Outcome:
    """Every county's score and rank under `scenario` against the issued ones (rank_change > 0: moves up)."""
    result = score(issued.raw, issued.zones, scenario.spec(issued.spec))
    base = issued.table
    zones = {z: t.name for z, t in catalogue.zone_types.items()}
    table = pd.DataFrame({
        "name": base["name"], "zone": [zones.get(z, z) for z in base["zone"]],
        "issued_score": base["overall"], "issued_rank": base["rank"].astype(int), "issued_grade": base["grade"],
        "score": result.overall.reindex(base.index), "rank": result.rank.reindex(base.index).astype(int),
        "grade": result.grade.reindex(base.index)})
    table["score_change"] = table["score"] - table["issued_score"]
    table["rank_change"] = table["issued_rank"] - table["rank"]
    table = table.sort_values(["rank", "name"])
    return Outcome(scenario, table, scenario.changes(issued, catalogue))


def rows(outcome: Outcome, *, moved_only: bool = False, page: int = 1, size: int = 100) -> tuple[pd.DataFrame, int]:
    table = outcome.table[outcome.table["rank_change"] != 0] if moved_only else outcome.table
    pages = max(1, -(-len(table) // size))
    page = min(max(1, page), pages)
    return table.iloc[(page - 1) * size: page * size], pages


def xlsx(outcome: Outcome, issued: Issued) -> bytes:
    """The comparison as a workbook (formula-safe cells; a sheet saying what was changed)."""
    from evaluation.exports import safe_frame

    table = outcome.table.reset_index().rename(columns={
        "county_code": "县区代码", "name": "县区", "zone": "主体功能区", "issued_score": f"第{issued.version}版得分",
        "issued_rank": f"第{issued.version}版排名", "issued_grade": f"第{issued.version}版等级", "score": "模拟得分",
        "rank": "模拟排名", "grade": "模拟等级", "score_change": "得分变化", "rank_change": "排名变化（正数为上升）"})
    notes = pd.DataFrame({"说明": [f"{issued.year}年度第{issued.version}版的假设分析（模拟），不是正式评价结果，未出具任何报告。",
                                  *(outcome.changes or ["与已出具版本相同的设定。"])]})
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe_frame(table.round(4)).to_excel(writer, sheet_name="模拟结果", index=False)
        safe_frame(notes).to_excel(writer, sheet_name="设定", index=False)
    return buffer.getvalue()


def proposals_dir(config_dir: Path) -> Path:
    """Where proposals are kept: `proposals/` beside the configuration folder."""
    return Path(config_dir).resolve().parent / "proposals"


def save_proposal(config_dir: Path, name: str, outcome: Outcome, issued: Issued, catalogue: Catalogue, *,
                  author: str, now: dt.datetime) -> Path:
    """Write the scenario as a named proposal (YAML). The file name is made here (time and a digest), never
    from the name given; the configuration is never touched."""
    name = " ".join(str(name).split())[:NAME_CAP]
    if not name:
        raise ScenarioError("请给方案起一个名称。")
    s = outcome.scenario
    weight_sets = {z: {d: round(w, 4) for d, w in row.items()} for z, row in s.weights.items()}
    body = {
        "proposal": name,
        "status": "提案（未采用）：本文件不会被系统自动采用；如需采用，请按评审结论修改 config/ 中的配置。",
        "verified": False,
        "author": author,
        "created_at": now.isoformat(timespec="seconds"),
        "based_on": {"year": issued.year, "version": issued.version},
        "changes": outcome.changes or ["与已出具版本相同"],
        "method": {"normalise": s.normalise, "aggregate": s.aggregate},
        "weight_sets": {catalogue.zone_types[z].weight_set if z in catalogue.zone_types else z: w
                        for z, w in weight_sets.items()},
        "dropped_indicators": list(s.dropped),
        "effect": {"counties": len(outcome.table), "rank_changed": outcome.moved,
                   "spearman_with_issued": round(outcome.spearman, 4)},
    }
    text = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    folder = proposals_dir(config_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{issued.year}-{stamp}-{hashlib.sha256(text.encode()).hexdigest()[:8]}.yaml"
    from evaluation.fsutil import atomic_write

    atomic_write(path, ("# 两山转化绩效评价：权重与方法调整提案（假设分析生成，未采用）\n" + text).encode("utf-8"))
    return path

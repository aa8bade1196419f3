"""The 修订说明: what changed in a county's report since the previous version, in Chinese."""

from __future__ import annotations

import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.index.scoring import ScoreResult
from evaluation.ingest import clip
from evaluation.pipeline.intake import NAME_CAP, Intake
from evaluation.pipeline.manifest import manifest_inputs


REASON_CAP = 120  # characters of a correction's reason printed in a 修订说明


def revisions(previous: dict, intakes: list[Intake], result: ScoreResult, old_facts: pd.DataFrame,
              catalogue: Catalogue, *, version: int, run_date: str, reasons: dict[str, str] | None = None,
              codes: set[str] | None = None) -> dict[str, tuple[str, ...]]:
    """The 修订说明 of each county (and of the city summary, under the city code) against the previous version.

    previous: the previous version's manifest; old_facts: the facts of the submissions it was made from.
    codes: only these counties / the city (the reports re-issued in this version); default all.
    A report carried over unchanged in earlier versions revises the edition it last had.
    """
    reasons = reasons or {}
    editions = {name.split("_", 1)[0]: int(v) for name, v in previous.get("editions", {}).items()}
    names = {v.id: v.name for v in catalogue.variables.values()}
    units = {v.id: v.unit for v in catalogue.variables.values()}
    dept_name = {k: d.name for k, d in catalogue.departments.items()}
    before_ids = manifest_inputs(previous)
    changed = {i.department: i for i in intakes if i.received and before_ids.get(i.department) != i.received.submission_id}
    def head(code: str) -> str:
        return f"本报告为第{version}版（{run_date}），修订第{editions.get(code, version - 1)}版。"

    general = []
    for dept, intake in sorted(changed.items()):
        old = (before_ids.get(dept) or "无")[:12]
        why = clip(reasons.get(intake.received.submission_id, ""), REASON_CAP)  # text from people: bounded
        general.append(f"{dept_name[dept]}更正了数据：《{clip(intake.file, NAME_CAP)}》"
                       f"（提交编号 {old} → {intake.received.submission_id[:12]}）"
                       + (f"，更正原因：{why}" if why else "") + "。")
    if not changed:
        general.append("输入数据未变，本版因评价配置或程序更新而重新出具。")
    new_facts = pd.concat([i.submission.facts(catalogue).assign(original_name=i.file)
                           for d, i in changed.items() if i.submission is not None and i.accepted], ignore_index=True) \
        if any(i.submission is not None and i.accepted for i in changed.values()) else pd.DataFrame()
    old_scores = {s["county_code"]: s for s in previous.get("scores", [])}
    out: dict[str, tuple[str, ...]] = {}
    for county in catalogue.counties:
        if codes is not None and county.code not in codes:
            continue
        lines = [head(county.code)] + general
        if not new_facts.empty:
            mine = new_facts[new_facts["county_code"] == county.code]
            for f in mine.itertuples():
                prior = old_facts[(old_facts["county_code"] == county.code) & (old_facts["variable_id"] == f.variable_id)]
                old_value = prior["value"].iloc[0] if not prior.empty else None
                if old_value is not None and pd.notna(old_value) and pd.notna(f.value) and abs(old_value - f.value) < 1e-12:
                    continue
                shown_old = "—" if old_value is None or pd.isna(old_value) else f"{old_value:g}"
                shown_new = "—" if pd.isna(f.value) else f"{f.value:g}"
                lines.append(f"{names[f.variable_id]}：{shown_old} → {shown_new} {units[f.variable_id]}"
                             f"（来源：《{clip(f.original_name, NAME_CAP)}》第 {f.row} 行）")
        old = old_scores.get(county.code)
        if old is not None:
            new_score, new_rank = float(result.overall[county.code]), int(result.rank[county.code])
            new_zone = int(result.zone_rank[county.code])
            lines.append(f"综合得分 {old['overall']:.1f} → {new_score:.1f}；全市排名 {old['rank']} → {new_rank}；"
                         f"同类功能区排名 {old['zone_rank']} → {new_zone}。")
        out[county.code] = tuple(lines)
    if codes is None or catalogue.city.code in codes:
        out[catalogue.city.code] = tuple([head(catalogue.city.code)] + general)
    return out

"""The 修订说明: what changed in a county's report since the previous version, in Chinese."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.index.scoring import ScoreResult
from evaluation.ingest import clip
from evaluation.pipeline.intake import NAME_CAP, Intake
from evaluation.pipeline.manifest import manifest_inputs
from evaluation.reporting.context import fmt_date, unit_text


REASON_CAP = 120  # characters of a correction's reason printed in a 修订说明


@dataclass(frozen=True)
class Revisions:
    """A version's 修订说明 per county (and the city summary, under the city code), and per county
    the indicators whose own figures it corrected (marked in the indicator table)."""

    lines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    corrected: dict[str, tuple[str, ...]] = field(default_factory=dict)


def revisions(previous: dict, intakes: list[Intake], result: ScoreResult, old_facts: pd.DataFrame,
              catalogue: Catalogue, *, version: int, run_date: str, reasons: dict[str, str] | None = None,
              codes: set[str] | None = None, past_changed: bool = False) -> Revisions:
    """The 修订说明 of each county (and of the city summary, under the city code) against the previous version,
    and the indicators each county's corrected figures feed.

    previous: the previous version's manifest; old_facts: the facts of the submissions it was made from.
    codes: only these counties / the city (the reports re-issued in this version); default all.
    A report carried over unchanged in earlier versions revises the edition it last had.
    """
    reasons = reasons or {}
    editions = {name.split("_", 1)[0]: int(v) for name, v in previous.get("editions", {}).items()}
    names = {v.id: v.name for v in catalogue.variables.values()}
    units = {v.id: (" " + unit_text(v.unit)).rstrip() for v in catalogue.variables.values()}  # no "无量纲"
    dept_name = {k: d.name for k, d in catalogue.departments.items()}
    before_ids = manifest_inputs(previous)
    changed = {i.department: i for i in intakes if i.received and before_ids.get(i.department) != i.received.submission_id}
    def head(code: str) -> str:
        return f"本报告为第{version}版（{fmt_date(run_date)}），修订第{editions.get(code, version - 1)}版。"

    general, ids = [], []
    for dept, intake in sorted(changed.items()):
        old = (before_ids.get(dept) or "无")[:12]
        general.append(f"{dept_name[dept]}更正了数据（《{clip(intake.file, NAME_CAP)}》）。")
        ids.append(f"{dept_name[dept]} {old} → {intake.received.submission_id[:12]}")
    appendix = [f"附：提交编号 {'；'.join(ids)}。"] if ids else []
    if past_changed:
        general.append("往年已采用的数据有更正，GEP增速（按上年价格）、较上年变化和趋势据以重新计算。")
    if not changed and not past_changed:
        general.append("输入数据未变，本版因评价配置或程序更新而重新出具。")
    new_facts = pd.concat([i.submission.facts(catalogue).assign(original_name=i.file)
                           for d, i in changed.items() if i.submission is not None and i.accepted], ignore_index=True) \
        if any(i.submission is not None and i.accepted for i in changed.values()) else pd.DataFrame()
    old_scores = {s["county_code"]: s for s in previous.get("scores", [])}
    old_zone_mean = pd.Series({c: s["overall"] for c, s in old_scores.items()}).groupby(
        pd.Series({c: s["zone"] for c, s in old_scores.items()})).mean() if old_scores else pd.Series(dtype=float)
    new_zone_mean = result.overall.groupby(result.zones).mean()
    out: dict[str, tuple[str, ...]] = {}
    corrected: dict[str, tuple[str, ...]] = {}
    feeds = {v: catalogue.feeds(v) for v in catalogue.variables}  # through the GEP accounting too
    accounted = set(catalogue.gep.inputs()) if catalogue.gep is not None else set()
    gep_before = gep_after = None
    if accounted and not new_facts.empty and new_facts["variable_id"].isin(accounted).any():
        current = [i.submission.facts(catalogue) for i in intakes if i.accepted and i.submission is not None]
        gep_before, gep_after = _gep_totals(old_facts, catalogue), _gep_totals(pd.concat(current), catalogue)
    moved = []  # (name, old score, new score, old rank, new rank) of every county whose score or rank changed
    for county in catalogue.counties:
        old = old_scores.get(county.code)
        new_score, new_rank = float(result.overall[county.code]), int(result.rank[county.code])
        new_zone = int(result.zone_rank[county.code])
        if old is not None and (round(old["overall"], 1) != round(new_score, 1) or old["rank"] != new_rank):
            moved.append(f"{county.name} {old['overall']:.1f} → {new_score:.1f} 分（全市第{old['rank']}名 → 第{new_rank}名）")
        if codes is not None and county.code not in codes:
            continue
        lines = [head(county.code)] + general
        own, fixed, touched = [], [], False
        if not new_facts.empty:
            mine = new_facts[new_facts["county_code"] == county.code]
            for f in mine.itertuples():
                prior = old_facts[(old_facts["county_code"] == county.code) & (old_facts["variable_id"] == f.variable_id)]
                old_value = prior["value"].iloc[0] if not prior.empty else None
                if old_value is not None and pd.notna(old_value) and pd.notna(f.value) and abs(old_value - f.value) < 1e-12:
                    continue
                if (old_value is None or pd.isna(old_value)) and pd.isna(f.value):
                    continue  # a cell blank before and after (an optional one): nothing changed
                fixed.extend(feeds.get(f.variable_id, ()))
                touched = touched or f.variable_id in accounted
                shown_old = "—" if old_value is None or pd.isna(old_value) else f"{old_value:g}"
                shown_new = "—" if pd.isna(f.value) else f"{f.value:g}"
                own.append(f"{names[f.variable_id]}：{shown_old} → {shown_new}{units[f.variable_id]}"
                           f"（{dept_name[f.department]}，《{clip(f.original_name, NAME_CAP)}》第 {f.row} 行）")
                why = clip(reasons.get(f.submission_id, ""), REASON_CAP)  # text from people: bounded
                if why and f"更正原因：{why}" not in own:
                    own.append(f"更正原因：{why}")
        lines += own
        if gep_before is not None and touched:
            before, after = gep_before.get(county.code), gep_after.get(county.code)
            if before is not None and after is not None and pd.notna(before) and pd.notna(after):
                lines.append(f"生态产品总值（GEP）按更正后的数据重新核算：{before:,.2f} → {after:,.2f} 亿元。")
        if old is not None:
            same = round(old["overall"], 1) == round(new_score, 1) and old["rank"] == new_rank and old["zone_rank"] == new_zone
            if own:
                lines.append(f"本县区综合得分 {old['overall']:.1f} → {new_score:.1f} 分；全市排名 第{old['rank']}名 → 第{new_rank}名；"
                             f"同类功能区排名 第{old['zone_rank']}名 → 第{new_zone}名。")
            else:
                zone = result.zones[county.code]
                before_mean, after_mean = old_zone_mean.get(zone), float(new_zone_mean[zone])
                text = "本县区数据未变。"
                if before_mean is not None and round(before_mean, 1) != round(after_mean, 1):
                    text += (f"因同类功能区其他县区数据更正，本报告中的同类功能区平均值随之变化"
                             f"（平均综合得分 {before_mean:.1f} → {after_mean:.1f} 分）。")
                if same:
                    text += f"本县区综合得分（{new_score:.1f} 分）和排名（全市第{new_rank}名、同类第{new_zone}名）不变。"
                else:
                    text += (f"本县区综合得分 {old['overall']:.1f} → {new_score:.1f} 分；全市排名 第{old['rank']}名 → 第{new_rank}名；"
                             f"同类功能区排名 第{old['zone_rank']}名 → 第{new_zone}名。")
                lines.append(text)
        out[county.code] = tuple(lines + appendix)
        if fixed:
            corrected[county.code] = tuple(dict.fromkeys(fixed))
    if codes is None or catalogue.city.code in codes:
        city = [head(catalogue.city.code)] + general
        city.append("综合得分或排名有变化的县区：" + "；".join(moved) + "。" if moved else "各县区综合得分和排名均未变化。")
        out[catalogue.city.code] = tuple(city + appendix)
    return Revisions(out, corrected)


def _gep_totals(facts: pd.DataFrame, catalogue: Catalogue) -> pd.Series:
    """Each county's GEP (亿元) accounted from a set of facts (its level only: no year before is needed)."""
    from evaluation import gep

    if facts.empty:
        return pd.Series(dtype="float64")
    values = facts.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")
    return gep.account(values.astype("float64"), catalogue).total

"""What changed between two issued versions of a year: each county's score and rank, the figures behind
them (old -> new, with the bureau and file of each), and which reports the later one re-issued and why."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from evaluation import versions
from evaluation.catalogue import Catalogue
from evaluation.ledger import Ledger
from evaluation.workbench.provenance import version_facts


@dataclass
class Diff:
    year: int
    a: int
    b: int
    scores: pd.DataFrame  # county: name, score_a, score_b, rank_a, rank_b, change, rank_change
    figures: list[dict]  # county, variable, old, new, department, files
    reissued: list[str]  # file names the later version rendered anew
    revisions: dict[str, list[str]]  # code -> 修订说明 lines of version b


def between(ledger: Ledger, catalogue: Catalogue, out_dir, year: int, a: int, b: int) -> Diff:
    folder = versions.year_dir(out_dir, year)
    ma, mb = versions.read_manifest(folder / f"v{a}"), versions.read_manifest(folder / f"v{b}")
    names = {c.code: c.name for c in catalogue.counties}
    sa = pd.DataFrame(ma["scores"]).set_index("county_code")
    sb = pd.DataFrame(mb["scores"]).set_index("county_code")
    scores = pd.DataFrame({"name": [names.get(c, c) for c in sb.index], "score_a": sa["overall"].reindex(sb.index),
                           "score_b": sb["overall"], "rank_a": sa["rank"].reindex(sb.index), "rank_b": sb["rank"]},
                          index=sb.index)
    scores["change"] = scores["score_b"] - scores["score_a"]
    scores["rank_change"] = scores["rank_a"] - scores["rank_b"]
    scores = scores.sort_values(["rank_b", "name"])
    key = ["county_code", "variable_id"]
    fa, fb = version_facts(ledger, ma), version_facts(ledger, mb)
    merged = fa.merge(fb, on=key, how="outer", suffixes=("_a", "_b"))
    changed = merged[~((merged["value_a"] == merged["value_b"]) | (merged["value_a"].isna() & merged["value_b"].isna()))]
    variables = catalogue.variables
    figures = []
    for _, row in changed.sort_values(key).iterrows():
        var = variables.get(row["variable_id"])
        dept = row["department_b"] if pd.notna(row.get("department_b")) else row["department_a"]
        figures.append({
            "county": row["county_code"], "county_name": names.get(row["county_code"], row["county_code"]),
            "variable": var.name if var else row["variable_id"], "unit": var.unit if var else "",
            "old": row["value_a"], "new": row["value_b"],
            "department": catalogue.departments[dept].name if dept in catalogue.departments else dept,
            "old_file": row.get("original_name_a"), "new_file": row.get("original_name_b"),
            "old_row": row.get("row_a"), "new_row": row.get("row_b"),
            "new_submission": row.get("submission_id_b")})
    editions = mb.get("editions", {})
    reissued = sorted(f for f in mb["outputs"] if int(editions.get(f, b)) == b) if b > a else []
    return Diff(year, a, b, scores, figures, reissued, {k: list(v) for k, v in mb.get("revisions", {}).items()})

"""Where each figure of a county's report came from: the bureau, the file (its submission, downloadable),
sheet and row, the bytes' sha256, when it was received, who submitted it, and what superseded it."""

from __future__ import annotations

import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.ledger import Ledger
from evaluation.pipeline import manifest_inputs

KIND_ZH = {"folder": "报送文件夹", "http": "HTTP 接口", "sql": "数据库", "portal": "报送门户"}


def version_facts(ledger: Ledger, manifest: dict, county: str | None = None) -> pd.DataFrame:
    """The facts a version was evaluated from (its input submissions), with their provenance."""
    ids = {sid for sid in manifest_inputs(manifest).values() if sid}
    facts = ledger.facts(int(manifest["year"]), county, current_only=False)
    return facts[facts["submission_id"].isin(ids)].reset_index(drop=True)


def figure(ledger: Ledger, catalogue: Catalogue, manifest: dict, county: str, indicator: str) -> list[dict]:
    """The reported variables behind one indicator of one county, each with its provenance. A computed variable
    (GEP, its growth, the conversion rate) is an entry saying so, followed by every reported figure it was
    accounted from (the physical accounts and the prices), each with its own provenance (`part_of`)."""
    ind = next((i for i in catalogue.indicators if i.id == indicator), None)
    if ind is None:
        return []
    facts = version_facts(ledger, manifest, county)
    subs = {}
    out = []
    wanted: list[tuple[str, str | None]] = []
    for var in ind.inputs:
        variable = catalogue.variables.get(var)
        if variable is not None and variable.computed and catalogue.gep is not None:
            wanted.append((var, None))
            wanted += [(v, var) for v in catalogue.gep.output_inputs(var)]
        else:
            wanted.append((var, None))
    for var, part_of in wanted:
        variable = catalogue.variables.get(var)
        if variable is not None and variable.computed:
            out.append({"variable": var, "variable_name": variable.name, "missing": False, "computed": True,
                        "value": _computed(facts, catalogue, county, var), "unit": variable.unit,
                        "inputs": len(catalogue.gep.output_inputs(var)), "part_of": None})
            continue
        found = facts[facts["variable_id"] == var]
        if found.empty:
            out.append({"variable": var, "variable_name": variable.name if variable else var, "missing": True,
                        "department": catalogue.departments[variable.department].name if variable else "",
                        "part_of": part_of})
            continue
        row = found.iloc[-1]
        sid = row["submission_id"]
        if sid not in subs:
            subs[sid] = ledger.submission(sid) or {}
        sub = subs[sid]
        later = ledger.submission(sub["superseded_by"]) if sub.get("superseded_by") else None
        out.append({
            "variable": var, "variable_name": variable.name if variable else var, "missing": False,
            "value": float(row["value"]), "unit": row["unit"], "department": catalogue.departments[row["department"]].name
            if row["department"] in catalogue.departments else row["department"],
            "submission_id": sid, "file": row["original_name"], "sheet": row["sheet"] or "（CSV，无工作表）",
            "row": int(row["row"]), "sha256": row["sha256"], "received_at": row["received_at"],
            "submitted_by": sub.get("submitted_by") or "", "via": KIND_ZH.get(sub.get("kind", ""), sub.get("kind", "")),
            "reason": sub.get("reason") or "",
            "superseded_by": later, "part_of": part_of,
        })
    return out


def _computed(facts: pd.DataFrame, catalogue: Catalogue, county: str, var: str) -> float | None:
    """A computed variable's value for the county, accounted from the version's facts (growth needs last year's
    accounts: None here, the scorecard and workbook carry it)."""
    from evaluation import gep

    if facts.empty or var == catalogue.gep.outputs.growth:
        return None
    values = facts.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")
    value = gep.derive(values.astype("float64"), catalogue).get(var)
    return None if value is None or pd.isna(value.get(county)) else round(float(value[county]), 4)

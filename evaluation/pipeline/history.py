"""The ledger's side of a run: current submissions, corrections, recording, and past years' accepted values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from evaluation import gep
from evaluation.catalogue import Catalogue
from evaluation.ingest import discover, Expected
from evaluation.pipeline.intake import Intake

if TYPE_CHECKING:  # the ledger's SQLAlchemy (half a second to import) is loaded by whoever opens a ledger
    from evaluation.ledger import Ledger, Recorded


def current_for(ledger: Ledger, intake: Intake) -> tuple[Intake, str | None]:
    """The bureau's current submission when the received bytes were since superseded.

    A correction recorded with `twomountains correct` supersedes the file still lying in the
    drop folder; that old file must not undo it. Returns the intake to use and, when it
    was swapped, the id of the superseded bytes that were received.
    """
    if intake.received is None:
        return intake, None
    known = ledger.submission(intake.received.submission_id)
    if known is None or not known["superseded_by"]:
        return intake, None
    current = ledger.current(intake.department, intake.received.year)
    if current is None:
        return intake, None
    received = ledger.received(current["id"])
    return Intake(intake.department, intake.department_name, received.original_name, "pending",
                  received=received, notices=intake.notices), intake.received.submission_id


def receive_from_ledger(ledger: Ledger, expected: Expected, catalogue: Catalogue, year: int) -> Intake:
    """A portal source's table for the year: the bureau's current accepted submission in the ledger
    ("pending" with its bytes, to be checked like any other), or "missing" before it has submitted one."""
    name = catalogue.departments[expected.department].name
    current = ledger.current(expected.department, year)
    if current is None:
        return Intake(expected.department, name, expected.path.name, "missing",
                      message=f"尚未通过报送门户提交 {year} 年数据")
    received = ledger.received(current["id"])
    return Intake(expected.department, name, received.original_name, "pending", received=received)


def same_bytes_notice(ledger: Ledger, intake: Intake, catalogue: Catalogue) -> Intake:
    """Add a notice when the bytes received equal a file sent for another year or bureau (e.g. last
    year's file sent again under this year's name). The figures themselves are checked by validation."""
    if intake.received is None:
        return intake
    earlier = ledger.same_bytes(intake.received)
    if not earlier:
        return intake
    first = earlier[0]
    whose = catalogue.departments[first["department"]].name if first["department"] in catalogue.departments \
        else first["department"]
    notice = (f"《{intake.file}》与{whose} {first['year']} 年报送的《{first['original_name']}》内容完全相同（逐字节一致），"
              f"请确认没有把其他年度或部门的文件当作本年度数据报送。")
    return replace(intake, notices=intake.notices + (notice,))


def record_one(ledger: Ledger, intake: Intake, catalogue: Catalogue, received_at: str, reason: str = "",
               submitted_by: str = "") -> Recorded | None:
    """Keep what was received in the ledger (bytes, outcome, and facts when accepted); `submitted_by`:
    the portal account that submitted it."""
    if intake.received is None:
        return None
    findings = [
        {"severity": f.severity, "rule": f.rule, "column": f.column, "rows": f.rows, "found": f.found}
        for f in (intake.report.findings if intake.report else [])
    ]
    if intake.status == "unreadable":
        findings = [{"severity": "error", "rule": intake.message, "column": "", "rows": [], "found": []}]
    facts = intake.submission.facts(catalogue) if intake.accepted and intake.submission else None
    return ledger.record(intake.received, status=intake.status, received_at=received_at, facts=facts,
                         findings=findings, reason=reason, submitted_by=submitted_by)


def accepted_values(ledger: Ledger, department: str, year: int) -> pd.DataFrame | None:
    """A bureau's current accepted values for a year (county x variable), or None."""
    facts = ledger.facts(year)
    facts = facts[facts["department"] == department]
    if facts.empty:
        return None
    return facts.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")


def backfill_needed(ledger: Ledger, catalogue: Catalogue, year: int, data_dir: Path | str | None) -> list[Expected]:
    """A past year's tables that the ledger has nothing accepted for but the sources may have."""
    known = ledger.departments_with_facts(year)  # one query for every bureau
    return [e for e in discover(data_dir or ".", year, catalogue) if e.present and e.department not in known]


def reported_values(ledger: Ledger, catalogue: Catalogue, year: int) -> pd.DataFrame:
    """A year's current accepted values from the ledger as reported (county x variable; NaN where unknown)."""
    codes = sorted(c.code for c in catalogue.counties)
    facts = ledger.facts(year)
    if facts.empty:
        return pd.DataFrame(index=codes, columns=list(catalogue.variables), dtype="float64")
    wide = facts.pivot_table(index="county_code", columns="variable_id", values="value", aggfunc="first")
    return wide.reindex(index=codes, columns=list(catalogue.variables)).astype("float64")


def year_values(ledger: Ledger, catalogue: Catalogue, year: int) -> pd.DataFrame:
    """A year's current accepted values from the ledger (county x variable; NaN where unknown), with the computed
    variables accounted from them (GEP growth from the year before's, when the ledger holds it)."""
    values = reported_values(ledger, catalogue, year)
    if catalogue.gep is None:
        return values
    return gep.derive(values, catalogue, reported_values(ledger, catalogue, year - 1))


def past_years(catalogue: Catalogue, year: int) -> list[int]:
    """The past years a run reads: `method.years_back` of them, and at least the year before when the catalogue
    accounts GEP (its growth values this year's quantities at last year's prices)."""
    back = max(catalogue.method.years_back, 1 if catalogue.gep is not None else 0)
    return list(range(year - back, year))

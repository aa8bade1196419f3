"""Receiving and checking one bureau table: the intake state machine (pending -> received -> accepted/rejected)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from evaluation.catalogue import Catalogue
from evaluation.ingest import Expected, IngestError, parse, receive, Received, Submission, TransientSourceError
from evaluation.validation import Gate, validate_submission, ValidationReport


SAMPLE_MARKER = "SAMPLE.yaml"


NAME_CAP = 60  # characters of a bureau's file name printed in a document


STATUS_LABEL = {"missing": "缺少数据", "unreadable": "无法读取", "rejected": "校验未通过"}


@dataclass
class Intake:
    """What happened to one bureau's file for the year."""

    department: str
    department_name: str
    file: str
    status: str  # "accepted", "rejected", "unreadable", "missing"
    submission: Submission | None = None
    report: ValidationReport | None = None
    message: str = ""
    received: Received | None = None
    # about the delivery, not the figures (e.g. a second file for the bureau in the drop folder);
    # parse_one hands them to the submission, whose validation report carries them as warnings
    notices: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def is_sample(data_dir: Path | str) -> bool:
    """Sample data carries a marker file; every report made from it is stamped 示例数据."""
    return (Path(data_dir) / SAMPLE_MARKER).is_file()


def receive_one(expected: Expected, catalogue: Catalogue, year: int, data_dir: Path | str | None = None, *,
                retries: int | None = None) -> Intake:
    """Receive a bureau's table from its source ("pending" with the bytes, "missing", or
    "unreadable" for a file that is there but cannot be used: an .xls, a symlink, too large).

    retries=0 leaves retrying to the caller: a transient remote failure then raises
    `TransientSourceError` instead of becoming "missing".
    """
    from evaluation.ingest import MissingFileError, clip_list, others_notice

    name = catalogue.departments[expected.department].name
    others = expected.others
    notice = others_notice(expected, name, year)
    notices = (notice,) if notice else ()
    if expected.problem:
        return Intake(expected.department, name, expected.path.name, "unreadable", message=expected.problem,
                      notices=notices)
    if not expected.present:
        message = f"未收到文件 {expected.path.name}"
        if others:
            message += (f"；文件夹中有 {clip_list(others, '个文件')}，如是本部门 {year} 年的数据，"
                        f"请改名为 {expected.path.name}")
        return Intake(expected.department, name, expected.path.name, "missing", message=message)
    try:
        received = receive(catalogue.sources[expected.department], year, data_dir, retries=retries)
    except TransientSourceError:
        if retries == 0:
            raise
        return Intake(expected.department, name, expected.path.name, "missing", message="数据源暂时无法访问")
    except IngestError as exc:
        present = expected.kind == "folder" and not isinstance(exc, MissingFileError)
        return Intake(expected.department, name, expected.path.name, "unreadable" if present else "missing",
                      message=str(exc), notices=notices)
    return Intake(expected.department, name, received.original_name, "pending", received=received, notices=notices)


def unreachable(expected: Expected, catalogue: Catalogue, error: BaseException) -> Intake:
    """The intake of a source that still failed after every retry."""
    message = str(error) if isinstance(error, IngestError) else f"数据源访问失败：{type(error).__name__}"
    return Intake(expected.department, catalogue.departments[expected.department].name, expected.path.name,
                  "missing", message=message)


def parse_one(intake: Intake, catalogue: Catalogue) -> Intake:
    """Read received bytes as the bureau's table ("pending" with a submission, or "unreadable")."""
    if intake.received is None or intake.submission is not None:
        return intake
    notices = intake.notices
    try:
        sub = parse(intake.received, catalogue.sources[intake.department], catalogue)
    except IngestError as exc:
        return Intake(intake.department, intake.department_name, intake.file, "unreadable", message=str(exc),
                      received=intake.received, notices=notices)
    sub.notices = list(notices)
    return Intake(intake.department, intake.department_name, intake.file, "pending", submission=sub,
                  received=intake.received, notices=notices)


def ingest_one(expected: Expected, catalogue: Catalogue, year: int, data_dir: Path | str | None = None) -> Intake:
    """Receive and read a bureau's table; problems become a status, not an exception."""
    return parse_one(receive_one(expected, catalogue, year, data_dir), catalogue)


def validate_one(intake: Intake, catalogue: Catalogue, *, previous: pd.DataFrame | None = None,
                 gate: Gate | None = None) -> Intake:
    """Run the bureau's GX suite; `previous` (last year's accepted values) feeds the jump check."""
    if intake.submission is None:
        return intake
    report = validate_submission(intake.submission, catalogue, previous=previous, gate=gate)
    status = "accepted" if report.accepted else "rejected"
    message = "" if report.accepted else report.summary_zh()
    return replace(intake, status=status, report=report, message=message)


def check_one(intake: Intake, catalogue: Catalogue, *, previous: pd.DataFrame | None = None,
              gate: Gate | None = None) -> Intake:
    """Parse and validate received bytes: the pure, cacheable part of the intake."""
    return validate_one(parse_one(intake, catalogue), catalogue, previous=previous, gate=gate)


def completeness(intakes: list[Intake]) -> list[str]:
    """Chinese lines naming every bureau whose data cannot be scored."""
    return [
        f"{i.department_name}：{STATUS_LABEL[i.status]}（{i.file}）"
        + ("" if i.message == f"未收到文件 {i.file}" else "\n    " + i.message.replace("\n", "\n    "))
        + "".join("\n    " + n for n in i.notices if n not in i.message)
        for i in intakes if not i.accepted
    ]


def warning_notes(intakes: list[Intake]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Validation warnings about the figures, as run-wide notes and per-county notes for the scorecards
    (an ignored column or a second file in the drop folder stays in the validation report only)."""
    from evaluation.validation import NOT_FOR_DOCUMENTS

    general: list[str] = []
    per_county: dict[str, list[str]] = {}
    for intake in intakes:
        if intake.report is None or intake.submission is None:
            continue
        table = intake.submission.table.set_index("_row")
        for finding in intake.report.warnings:
            if finding.expectation in NOT_FOR_DOCUMENTS:
                continue
            text = f"{intake.department_name}数据提示：“{finding.column}”{finding.rule}"
            if not finding.rows:
                general.append(text)
            for i, row in enumerate(finding.rows):
                if row not in table.index:
                    continue
                found = f"（{finding.found[i]}）" if i < len(finding.found) else ""
                per_county.setdefault(str(table.at[row, "county_code"]), []).append(text + found)
    return tuple(general), {k: tuple(v) for k, v in per_county.items()}

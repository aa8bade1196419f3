"""A report planned for issue, and rendering it: what a render worker process needs, and nothing more.

A render worker unpickles `PlannedReport`s and calls `render_one`; importing this module (not the
pipeline, which brings pandas' statistics, the ledger and Great Expectations) keeps a worker's start
to WeasyPrint, Jinja2 and the charts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.fsutil import child

if TYPE_CHECKING:  # pragma: no cover
    from evaluation.reporting.rendercache import RenderCache


@dataclass(frozen=True)
class PlannedReport:
    file_name: str
    county_code: str  # the city code for the summary
    context: dict = field(hash=False)
    attachments: tuple[tuple[str, bytes, str], ...] = ()
    content_key: str = ""  # what the reader sees, apart from its edition (see pipeline.EDITION_KEYS)


def render_one(report: PlannedReport, folder: Path, renders: "RenderCache | None" = None) -> str:
    """Render one PDF into the (staged) version folder; returns its sha256. With `renders`, the PDF is
    kept there first and then linked into the folder, so a PDF a killed run left in its staging folder
    is always in the cache too (the next run takes it instead of rendering it again)."""
    from evaluation.fsutil import atomic_write
    from evaluation.reporting.pdf import render_pdf

    target = child(folder, report.file_name)  # refuses a name that would leave the folder, before any work
    data = render_pdf(report.context, attachments=list(report.attachments))
    digest = hashlib.sha256(data).hexdigest()
    entry = renders.keep(report, data, digest) if renders is not None else None
    # the staging folder must exist: one cleared after its run died is never recreated by a stray worker
    if not Path(folder).is_dir() or entry is None or not renders.link(entry, target):
        atomic_write(target, data, make_parents=False)
    return digest

"""Render many PDFs on all cores: a pool of worker processes, each warmed up once.

WeasyPrint is CPU-bound Python, so threads do not help; processes do. Workers are started
with "spawn" (the caller may be a threaded orchestrator, where fork is unsafe) and load
WeasyPrint and the CJK font before their first report. Each result is written atomically
by the worker, so an interrupted batch never leaves a partial PDF.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable


def default_workers() -> int:
    return max(1, int(os.environ.get("TWOMOUNTAINS_RENDER_WORKERS", 0)) or os.cpu_count() or 1)


def _warm() -> None:
    from evaluation.reporting.pdf import warm_up

    warm_up()


def _render(report, folder: str) -> tuple[str, str]:
    from evaluation.pipeline import render_one

    return report.file_name, render_one(report, Path(folder))


def render_many(reports: Iterable, folder: Path, *, workers: int | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, str]:
    """Render planned reports into `folder` in parallel; returns {file name: sha256}.

    progress(file_name, done, total) is called as each report finishes.
    """
    reports = list(reports)
    workers = min(workers or default_workers(), len(reports)) or 1
    out: dict[str, str] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm) as pool:
        futures = [pool.submit(_render, report, str(folder)) for report in reports]
        for future in as_completed(futures):
            name, digest = future.result()
            out[name] = digest
            if progress is not None:
                progress(name, len(out), len(reports))
    return out

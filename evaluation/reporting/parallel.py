"""Render many PDFs on all cores: a pool of worker processes, each warmed up once.

WeasyPrint is CPU-bound Python, so threads do not help; processes do. The caller may be a
threaded orchestrator, where fork is unsafe, so workers come from a "forkserver": a clean
single-threaded process, started once per caller, that loads WeasyPrint, the report code and
the CJK font (`warm.py`) and then forks each worker already warm. The first pool of a process
pays about 2 s for that; every later pool starts in milliseconds (spawned workers paid about
2.5 s of CPU each, every time). Each result is written atomically by the worker, so an
interrupted batch never leaves a partial PDF.

A `RenderPool` can be started early, so its workers are ready while the caller is still busy
with other work, e.g. checking the bureaus' tables.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable


def default_workers() -> int:
    return max(1, int(os.environ.get("TWOMOUNTAINS_RENDER_WORKERS", 0)) or os.cpu_count() or 1)


def _die_with_parent() -> None:
    """Ask the kernel to kill this worker when the process that started it dies, even by SIGKILL,
    so no worker outlives its run or writes into a staging folder after the run died (Linux only)."""
    try:
        import ctypes
        import signal

        # Ctrl-C in a terminal reaches the whole process group: the command stops its workers itself,
        # and a worker's own KeyboardInterrupt traceback would only clutter the screen
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while it started (RenderPool)
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        # The kernel's parent is the fork server, which exits when the last holder of its "alive" pipe
        # does. Each worker is handed that pipe too (for processes of its own, which it never starts):
        # closing it here lets the fork server, and so this worker, die with the caller.
        _release_fork_server()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        parent = multiprocessing.parent_process()
        if os.getppid() == 1 or (parent is not None and not _alive(parent.pid)):  # died before the request took effect
            os._exit(1)
    except (OSError, AttributeError):
        pass


def _release_fork_server() -> None:
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if multiprocessing.parent_process() is not None and isinstance(fd, int):
        os.close(fd)
        server._forkserver_alive_fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _context():
    """The fork server's context, preloading the warm modules (set once per process)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["evaluation.reporting.warm"])
    return context


def _warm() -> None:
    _die_with_parent()
    from evaluation.reporting.planned import render_one  # noqa: F401 - imported here, not at the first report
    from evaluation.reporting.pdf import warm_up

    warm_up()


def _ready() -> int:
    time.sleep(0.1)  # long enough that one warm worker does not answer for all of them
    return os.getpid()


def _render(report, folder: str, renders=None) -> tuple[str, str]:
    from evaluation.reporting.planned import render_one

    return report.file_name, render_one(report, Path(folder), renders)


def longest_first(reports: Iterable) -> list:
    """Summaries and the methodology report first: each is many times a scorecard's work, and
    started last it would leave the other workers idle at the end."""
    return sorted(reports, key=lambda report: report.context.get("kind") not in ("summary", "methodology"))


class RenderPool:
    """Worker processes that are started (forked warm) as soon as the pool is created."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()
        context = _context()
        self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=_warm)
        # Workers start with Ctrl-C blocked until they ignore it (the fork server is started inside this
        # block the first time, and the mask survives its exec and every fork): one still starting when
        # a terminal's Ctrl-C reaches the process group would print a traceback.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._started = [self._executor.submit(_ready) for _ in range(self.workers)]  # starts every worker now
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def wait_ready(self) -> None:
        """Block until every worker has started and warmed up (a worker answers only once warm)."""
        pids = {future.result() for future in self._started}
        while len(pids) < self.workers:
            pids |= {future.result() for future in [self._executor.submit(_ready) for _ in range(self.workers)]}

    def map(self, fn: Callable, items: Iterable) -> list:
        """fn(item) for each item in the warm workers, in order (fn must be importable)."""
        return list(self._executor.map(fn, items, chunksize=1))

    def render(self, reports: Iterable, folder: Path,
               progress: Callable[[str, int, int], None] | None = None, renders=None) -> dict[str, str]:
        """Render planned reports into `folder`; returns {file name: sha256}.

        progress(file_name, done, total) is called as each report finishes; `renders` (a
        RenderCache) keeps each PDF as soon as it is made.
        """
        reports = longest_first(reports)
        out: dict[str, str] = {}
        # Workers keep the fork server's working directory, not necessarily the caller's current one.
        folder = Path(folder).resolve()
        if renders is not None:
            renders = renders.resolved()
        futures = [self._executor.submit(_render, report, str(folder), renders) for report in reports]
        for future in as_completed(futures):
            name, digest = future.result()
            out[name] = digest
            if progress is not None:
                progress(name, len(out), len(reports))
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def render_many(reports: Iterable, folder: Path, *, workers: int | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> dict[str, str]:
    """Render planned reports into `folder` (created if missing) in a pool of its own; returns {file name: sha256}."""
    reports = list(reports)
    Path(folder).mkdir(parents=True, exist_ok=True)
    with RenderPool(min(workers or default_workers(), len(reports)) or 1) as pool:
        return pool.render(reports, folder, progress)

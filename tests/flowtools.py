"""Helpers for tests that run flows on the session's Prefect harness (see conftest.prefect_harness)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path


# Where run_flow keeps cached task results unless a test names a cache_dir (None: the run's own,
# <out_dir>/.cache/prefect). Set per pytest worker by conftest: runs of one worker share their checks
# of the sample tables, as runs on one machine do (the keys are the tables' bytes, config and code),
# and all workers share the PDFs rendered from identical contexts (<cache>/rendered, see conftest).
SHARED_CACHE: Path | None = None


def run_flow(**kwargs):
    """Run the annual flow in-process; returns (final state, its data)."""
    from flows.annual import annual_evaluation

    kwargs.setdefault("run_date", "2024-03-01")
    if SHARED_CACHE is not None:
        kwargs.setdefault("cache_dir", str(SHARED_CACHE))
    state = annual_evaluation(return_state=True, **kwargs)
    return state, state.result(raise_on_failure=False)


def share(cache_dir: Path) -> int:
    """Offer what a run made in a task cache of its own to the runs after it in this worker (SHARED_CACHE):
    its checked tables, scores and analyses, and its rendered PDFs. Every entry is named by a key of
    everything it was made from (see SHARED_CACHE), so a later run that finds one would have made the same;
    it is what a second run on the same machine finds. Returns how many entries were new here."""
    if SHARED_CACHE is None:
        return 0
    shared = 0
    for source, target in ((Path(cache_dir), SHARED_CACHE), (Path(cache_dir) / "rendered", SHARED_CACHE / "rendered")):
        if not source.is_dir():
            continue
        target.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if entry.name.startswith(".") or entry.is_symlink() or not entry.is_file() or (target / entry.name).exists():
                continue
            if source.name == "rendered":
                try:  # a hard link, as the render cache keeps its own entries (other workers read this folder)
                    os.link(entry, target / entry.name)
                    shared += 1
                    continue
                except FileExistsError:
                    continue
                except OSError:
                    pass
            # a copy (a task result may be rewritten in place), put in place whole
            partial = target / f".{entry.name}.{os.getpid()}.partial"
            shutil.copyfile(entry, partial)
            os.replace(partial, target / entry.name)
            shared += 1
    return shared


def task_states(state) -> list[tuple[str, str]]:
    """(task name, final state name) of every task run in a flow run, read back from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    # Task states reach the API as events, a moment after the flow has its results: wait for them.
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            # (none yet is not "all final": under load the first events can take a few seconds)
            if (runs and all(r.state is not None and r.state.is_final() for r in runs)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    return sorted((r.name.rsplit("-", 1)[0], r.state.name) for r in runs)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

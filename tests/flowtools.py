"""Helpers for tests that run flows on the session's Prefect harness (see conftest.prefect_harness)."""

from __future__ import annotations

import hashlib
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

"""The event a recorded correction emits for the `correction-rerun` deployment (see prefect.yaml).
Light to import: the CLI and the web portal emit it without loading the flows."""

from __future__ import annotations

from evaluation.errors import Unreachable

EVENT = "twomountains.submission.corrected"  # emitted by `twomountains correct` and the portal with PREFECT_API_URL set
RESOURCE_PREFIX = "twomountains.submission."


def announce_correction(submission_id: str, year: int, department: str, file_name: str, *,
                        wait: bool = False) -> None:
    """Tell the Prefect server PREFECT_API_URL names that a correction was recorded. wait=True (a command
    about to exit) sends it before returning: Prefect's events worker otherwise sends it from a thread
    that a process leaving at once (the CLI ends with os._exit) never lets finish."""
    from prefect.events import emit_event

    event = emit_event(event=EVENT, resource={"prefect.resource.id": RESOURCE_PREFIX + submission_id,
                                              "prefect.resource.name": file_name[:120]},
                       payload={"year": year, "department": department})
    if event is not None and wait:
        from prefect.events.worker import EventsWorker

        EventsWorker.drain_all(timeout=15)
    if event is None:
        raise Unreachable("更正已登记，但未能通知 Prefect 服务器（事件未发出）；请在服务器上手动运行 correction-rerun。")


def start_deployment(name: str, parameters: dict, *, tags: list[str], api_url: str) -> tuple[str, str, str]:
    """Create a flow run of deployment `name` ("flow/deployment") on the server and return at once:
    (flow run id, its state type, its page in Prefect's UI)."""
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters=parameters, timeout=0, tags=tags)
    base = api_url.rstrip("/")
    ui = (base[:-4] if base.endswith("/api") else base) + f"/runs/flow-run/{run.id}"
    return str(run.id), run.state.type.value if run.state else "SCHEDULED", ui


def read_run(flow_run_id: str, lines: int = 12) -> tuple[str, list[str]]:
    """A flow run's state type and the first line of each of its last `lines` log messages, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=lines,
                                sort=LogSort.TIMESTAMP_DESC)
    state = run.state.type.value if run.state else ""
    return state, [entry.message.splitlines()[0][:300] for entry in reversed(logs) if entry.message]

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

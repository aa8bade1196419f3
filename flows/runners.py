"""Which Prefect task runner the flows use: local threads, or an existing Dask cluster.

Locally, the flow's own tasks run in threads; the CPU-heavy rendering goes to a pool of
worker processes inside one task (evaluation.reporting.parallel), which starts in about 3 s
where Prefect's process runner took 13 s. Given a Dask scheduler address (`--dask-address`,
or TWOMOUNTAINS_DASK_ADDRESS for deployments), `prefect-dask`'s DaskTaskRunner takes over:
validation and rendering fan out as tasks across the cluster's workers.
"""

from __future__ import annotations

import os

from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

DASK_ENV = "TWOMOUNTAINS_DASK_ADDRESS"


def dask_address(address: str | None = None) -> str | None:
    return (address or os.environ.get(DASK_ENV) or "").strip() or None


def task_runner(address: str | None = None):
    """A DaskTaskRunner on the cluster at `address` (or $TWOMOUNTAINS_DASK_ADDRESS), else threads."""
    address = dask_address(address)
    if address is None:
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


def on_dask() -> bool:
    """True inside a flow run whose tasks go to a Dask cluster."""
    context = FlowRunContext.get()
    return context is not None and type(context.task_runner).__name__ == "DaskTaskRunner"

"""Re-run a year's evaluation after a bureau's correction (triggered by an event).

The event `twomountains.submission.corrected` names the corrected submission as its
resource (`twomountains.submission.<submission id>`); the year comes from the ledger.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Failed

from evaluation.resources import open_ledger
from flows.annual import annual_evaluation
from flows.events import EVENT, RESOURCE_PREFIX  # noqa: F401 - EVENT is this flow's trigger (prefect.yaml)


@flow(name="correction-rerun")
def correction_rerun(submission_id: str, data_dir: str = "data/sample", out_dir: str = "reports",
                     ledger_url: str | None = None, run_date: str | None = None, lock_wait: float = 0.0):
    logger = get_run_logger()
    sid = submission_id.removeprefix(RESOURCE_PREFIX)
    with open_ledger(out_dir, ledger_url) as ledger:
        found = [s for s in [ledger.submission(sid)] if s is not None]
    if not found:
        message = f"台账中没有提交编号为 {sid[:12]} 的数据，无法重新评价。"
        logger.error(message)
        return Failed(message=message)
    year = int(found[0]["year"])
    logger.info("re-running %d after correction %s (%s)", year, sid[:12], found[0]["original_name"])
    return annual_evaluation(year=year, data_dir=data_dir, out_dir=out_dir, run_date=run_date, ledger_url=ledger_url,
                             lock_wait=lock_wait)

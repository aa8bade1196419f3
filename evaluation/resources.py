"""The resources a command or flow run works with, each built in exactly one place.

- the submission ledger and the delivery ledger (one database; SQLite under the reports folder
  unless a URL or TWOMOUNTAINS_LEDGER names another), opened as context managers;
- the clock: library code never reads it; the front doors (CLI, flows, web app) take the time
  here and pass it in.

A ledger is opened per step rather than once per run because a step may run in another process
(a Dask worker, a Prefect worker): what travels is the folder and the URL, never an engine.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from evaluation.distribution.deliveries import DeliveryLedger
from evaluation.ledger import Ledger


def open_ledger(out_dir: Path | str, url: str | None = None) -> Ledger:
    """The submission ledger of a reports folder (use as `with open_ledger(out, url) as ledger:`)."""
    return Ledger.at(Path(out_dir), url)


def open_deliveries(out_dir: Path | str, url: str | None = None) -> DeliveryLedger:
    """The delivery ledger of a reports folder (use as `with open_deliveries(out, url) as deliveries:`)."""
    return DeliveryLedger.at(Path(out_dir), url)


def utc_now() -> str:
    """Now, as the ledgers record it: ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def local_time(iso: str | None) -> str:
    """A stored UTC timestamp as people here read it: Beijing time, to the minute (text that is not
    a timestamp comes back as it is)."""
    from zoneinfo import ZoneInfo

    if not iso:
        return ""
    try:
        return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def today() -> dt.date:
    return dt.date.today()

"""No process outlives the command that started it.

A `twomountains` command may start Prefect's temporary server (a uvicorn subprocess) and a
pool of render workers (about 900 MB at national scale). On Ctrl-C or SIGTERM the CLI stops
them itself (`stop_children`). Against `kill -9`, which leaves no chance to clean up:

- every command records its own pid and its children's pids (with their start times, so a
  recycled pid is never mistaken for ours) in `<run dir>/<pid>.json`, refreshed while it runs;
- the next command first reaps the records whose owner is gone: it stops the children still
  alive (`reap_orphans`) and deletes the record;
- render workers also ask the kernel to kill them when their parent dies
  (`evaluation.reporting.parallel`), so none writes into a staging folder after its run died.

The run dir is per Prefect home (`$PREFECT_HOME/twomountains-run`), so commands that share a
temporary server's database share their records, and tests with their own PREFECT_HOME stay apart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import psutil

log = logging.getLogger(__name__)
REFRESH_SECONDS = 0.5


def run_dir() -> Path:
    home = os.environ.get("PREFECT_HOME") or str(Path.home() / ".prefect")
    return Path(home).expanduser() / "twomountains-run"


def _identity(proc: psutil.Process) -> dict | None:
    try:
        return {"pid": proc.pid, "created": proc.create_time(), "name": proc.name()}
    except psutil.Error:
        return None


def _matches(entry: dict) -> psutil.Process | None:
    """The live process an entry describes (same pid and start time), or None."""
    try:
        proc = psutil.Process(int(entry["pid"]))
        if abs(proc.create_time() - float(entry["created"])) < 0.01:
            return proc
    except (psutil.Error, KeyError, TypeError, ValueError):
        pass
    return None


def stop(processes: list[psutil.Process], grace: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL what is still alive after `grace` seconds; returns the pids stopped."""
    alive = []
    for proc in processes:
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=grace)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=grace)
    return [p.pid for p in alive]


def _is_resource_tracker(proc: psutil.Process) -> bool:
    """multiprocessing's resource tracker ignores SIGTERM (stopping it cost 3 s a command) and ends by
    itself when its parent's pipe closes."""
    try:
        return "multiprocessing.resource_tracker" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def reap_orphans(directory: Path | None = None) -> list[int]:
    """Stop the children of commands that died without cleaning up (by recorded pid); returns their pids."""
    directory = directory or run_dir()
    stopped: list[int] = []
    for record in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record.unlink(missing_ok=True)
            continue
        if _matches(data.get("owner", {})) is not None:
            continue  # still running: not an orphan
        orphans = [p for p in (_matches(c) for c in data.get("children", [])) if p is not None]
        if orphans:
            stopped += stop(orphans)
            log.info("stopped %d processes left behind by pid %s: %s", len(orphans), data.get("owner", {}).get("pid"),
                        ", ".join(f"{p.pid}" for p in orphans))
        record.unlink(missing_ok=True)
    return stopped


class ChildWatch:
    """Record this process's children while it runs; stop them when it ends."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or run_dir()
        self.me = psutil.Process()
        self.record = self.directory / f"{self.me.pid}.json"
        self._known: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ChildWatch":
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return self  # nowhere to record: Ctrl-C and SIGTERM are still handled
        self._write()
        self._thread = threading.Thread(target=self._loop, name="twomountains-childwatch", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self._write()

    def _write(self) -> None:
        try:
            children = [c for c in (_identity(p) for p in self.me.children(recursive=True)) if c]
        except psutil.Error:
            return
        known = {(c["pid"], c["created"]) for c in self._known}
        merged = self._known + [c for c in children if (c["pid"], c["created"]) not in known]
        merged = [c for c in merged if _matches(c) is not None]
        if merged == self._known and self.record.exists():
            return
        self._known = merged
        data = {"owner": _identity(self.me), "children": merged}
        tmp = self.record.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.record)
        except OSError:
            pass

    def stop_children(self, grace: float = 3.0) -> list[int]:
        """Stop every child still alive (the temporary server, render workers) and forget the record."""
        self._stop.set()
        try:
            live = [p for p in self.me.children(recursive=True) if not _is_resource_tracker(p)]
        except psutil.Error:
            live = []
        stopped = stop(live, grace) if live else []
        self.record.unlink(missing_ok=True)
        return stopped

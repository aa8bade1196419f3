"""Re-issuing a year after a correction submitted through the portal, exactly as `twomountains correct`
does: with a Prefect server configured (PREFECT_API_URL), the `twomountains.submission.corrected` event
is emitted and the `correction-rerun` deployment re-runs the year; otherwise `twomountains run` is
started here as a child process (the same annual flow, with its year lock), and the portal follows it.
A correction arriving while its year is being re-run starts one more run when that one ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("twomountains.web")


@dataclass
class Job:
    year: int
    started_at: dt.datetime
    process: subprocess.Popen | None = None
    via: str = "local"  # local (a child process here) or prefect (the server's deployment)
    again: bool = False  # another correction came in while this ran
    returncode: int | None = None
    finished_at: dt.datetime | None = None
    log_path: Path | None = None
    submissions: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.via == "local" and self.returncode is None


class Reissuer:
    def __init__(self, *, data_dir: Path, out_dir: Path, config_dir: Path | None, ledger_url: str | None,
                 prefect_api_url: str | None, log_dir: Path):
        self.data_dir, self.out_dir, self.config_dir = data_dir, out_dir, config_dir
        self.ledger_url, self.prefect_api_url = ledger_url, prefect_api_url
        self.log_dir = log_dir
        self.jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def start(self, year: int, submission_id: str, department: str, file_name: str) -> Job:
        """Have `year` re-issued after the correction `submission_id` (see the module's docstring)."""
        now = dt.datetime.now(dt.timezone.utc)
        if self.prefect_api_url:
            from flows.events import announce_correction

            announce_correction(submission_id, year, department, file_name)
            job = Job(year, now, via="prefect", submissions=[submission_id])
            with self._lock:
                self.jobs[year] = job
            return job
        with self._lock:
            job = self.jobs.get(year)
            if job is not None and job.running:
                job.again = True
                job.submissions.append(submission_id)
                return job
            job = Job(year, now, submissions=[submission_id])
            self.jobs[year] = job
            self._spawn(job)
            return job

    def _command(self, year: int) -> list[str]:
        command = [sys.executable, "-m", "flows.cli", "run", "--year", str(int(year)), "--data", str(self.data_dir),
                   "--out", str(self.out_dir)]
        if self.config_dir is not None:
            command += ["--config", str(self.config_dir)]
        if self.ledger_url:
            command += ["--ledger", self.ledger_url]
        return command

    def _spawn(self, job: Job) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        job.log_path = self.log_dir / f"rerun-{int(job.year)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PREFECT_API_URL", None)
        with open(job.log_path, "ab") as handle:
            job.process = subprocess.Popen(self._command(job.year), stdout=handle, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.info("re-running %d after correction (pid %d, log %s)", job.year, job.process.pid, job.log_path)
        threading.Thread(target=self._watch, args=(job,), name=f"rerun-{job.year}", daemon=True).start()

    def _watch(self, job: Job) -> None:
        code = job.process.wait()
        with self._lock:
            job.returncode, job.finished_at = code, dt.datetime.now(dt.timezone.utc)
            log.info("re-run of %d ended with exit code %d", job.year, code)
            if job.again:  # a correction came in meanwhile: run once more, so it is issued too
                again = Job(job.year, job.finished_at, submissions=list(job.submissions))
                self.jobs[job.year] = again
                self._spawn(again)

    def status(self, year: int) -> Job | None:
        with self._lock:
            return self.jobs.get(int(year))

    def stop(self) -> None:
        """Stop the runs this process started (the portal is shutting down)."""
        with self._lock:
            for job in self.jobs.values():
                if job.running and job.process is not None:
                    try:
                        os.killpg(job.process.pid, 15)
                    except OSError:
                        pass

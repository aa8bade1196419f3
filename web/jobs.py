"""Runs the portal starts, and follows on its pages.

- Re-issuing a year after a correction submitted through the portal, exactly as `twomountains correct`
  does: with a Prefect server configured (PREFECT_API_URL), the `twomountains.submission.corrected` event
  is emitted and the `correction-rerun` deployment re-runs the year; otherwise `twomountains run` is
  started here as a child process (the same annual flow, with its year lock), and the portal follows it.
  A correction arriving while its year is being re-run starts one more run when that one ends.
- An analyst's "run the evaluation" button: a flow run of the `annual-evaluation` deployment when a
  Prefect server is configured (its state and logs read back from the server, with a link to its page in
  Prefect's UI), otherwise in a thread of this process (evaluation.operations.annual: the flow's steps,
  without Prefect), each stage shown on the page as it starts.
- An analyst's "distribute" button: a flow run of `distribute-scorecards` with a server, otherwise the
  distribution runs in a thread of this process (evaluation.operations.distribute: each report to each
  recipient at most once, as the delivery ledger guarantees).
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
    kind: str = "rerun"  # rerun (after a correction), run (an analyst's button), distribute
    by: str = ""  # the account that started it
    flow_run_id: str | None = None  # via prefect: the flow run
    ui_url: str | None = None  # via prefect: its page in Prefect's UI
    state: str = ""  # via prefect: the flow run's state, as last read
    lines: list[str] = field(default_factory=list)  # in-process work: what it said so far
    error: str = ""
    version: int | None = None  # the version a finished run issued (or found unchanged)

    @property
    def running(self) -> bool:
        if self.via == "prefect":
            return self.state not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "")  # "" : not read yet
        return self.returncode is None

    def tail(self, n: int = 12) -> list[str]:
        """The last lines the run wrote (its log file, or what in-process work said)."""
        if self.lines:
            return self.lines[-n:]
        if self.log_path is None:
            return []
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()][-n:]


class Busy(Exception):
    """A run of the same kind is under way (said in Chinese)."""


class Reissuer:
    def __init__(self, *, data_dir: Path, out_dir: Path, config_dir: Path | None, ledger_url: str | None,
                 prefect_api_url: str | None, log_dir: Path):
        self.data_dir, self.out_dir, self.config_dir = data_dir, out_dir, config_dir
        self.ledger_url, self.prefect_api_url = ledger_url, prefect_api_url
        self.log_dir = log_dir
        self.jobs: dict[int, Job] = {}  # the year's evaluation run (after a correction, or an analyst's)
        self.distributions: dict[int, Job] = {}
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

    def run(self, year: int, by: str, run_locally) -> Job:
        """Start the annual evaluation of `year` (an analyst's button): a flow run of the deployment with a
        server, else `run_locally(job)` in a thread here. Refused while one is running."""
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            current = self.jobs.get(year)
            if current is not None and current.kind != "distribute" and current.running:
                raise Busy(f"{year} 年度的评价正在进行（{current.started_at.astimezone().strftime('%H:%M')} 开始），"
                           "请等它结束。")
            job = Job(year, now, kind="run", by=by)
            if self.prefect_api_url:
                job.via = "prefect"
                self._deployment(job, "annual-evaluation/annual-evaluation",
                                 {"year": int(year), "data_dir": str(self.data_dir), **self._workspace()})
            else:
                self._thread(job, run_locally, f"run-{year}")
            self.jobs[year] = job
            return job

    @staticmethod
    def _thread(job: Job, work, name: str) -> None:
        def run():
            try:
                work(job)
                job.returncode = 0
            except BaseException as exc:  # noqa: BLE001 - shown on the page, in words where it has them
                job.error, job.returncode = str(exc) or type(exc).__name__, 1
                log.exception("%s failed", name)
            finally:
                job.finished_at = dt.datetime.now(dt.timezone.utc)

        threading.Thread(target=run, name=name, daemon=True).start()

    def distribute(self, year: int, version: int, channel: str, by: str, send_locally) -> Job:
        """Distribute version `version` of `year` over `channel`: a flow run of `distribute-scorecards`
        with a server, else `send_locally(job)` in a thread here (it appends what it did to job.lines)."""
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            current = self.distributions.get(year)
            if current is not None and current.running:
                raise Busy(f"{year} 年度的报告正在分发，请等它结束。")
            job = Job(year, now, kind="distribute", by=by)
            if self.prefect_api_url:
                job.via = "prefect"
                self._deployment(job, "distribute-scorecards/distribute-scorecards",
                                 {"year": int(year), "version": int(version), "channel": channel, **self._workspace()})
            else:
                self._thread(job, send_locally, f"distribute-{year}")
            self.distributions[year] = job
            return job

    def _workspace(self) -> dict:
        """The deployment parameters that point a flow run at this portal's reports, config and ledger."""
        return {"out_dir": str(self.out_dir), **({"config_dir": str(self.config_dir)} if self.config_dir else {}),
                **({"ledger_url": self.ledger_url} if self.ledger_url else {})}

    def _deployment(self, job: Job, name: str, parameters: dict) -> None:
        """Create a flow run of deployment `name` on the configured server (returns at once)."""
        from flows.events import start_deployment

        job.flow_run_id, job.state, job.ui_url = start_deployment(
            name, parameters, tags=["portal", f"by:{job.by}"] if job.by else ["portal"], api_url=self.prefect_api_url)
        log.info("started %s as flow run %s", name, job.flow_run_id)

    def refresh(self, job: Job | None) -> Job | None:
        """Read a Prefect job's state and last log lines back from the server (local jobs need nothing)."""
        if job is None or job.via != "prefect" or not job.flow_run_id or job.finished_at is not None:
            return job  # nothing to read: local work, or a run already seen to its end
        try:
            from flows.events import read_run

            job.state, job.lines = read_run(job.flow_run_id)
            job.error = ""
            if not job.running and job.finished_at is None:
                job.finished_at = dt.datetime.now(dt.timezone.utc)
                job.returncode = 0 if job.state == "COMPLETED" else 1
        except Exception as exc:  # noqa: BLE001 - the page says the server could not be read
            job.error = f"无法读取 Prefect 服务中的运行状态：{type(exc).__name__}"
        return job

    def distribution(self, year: int) -> Job | None:
        with self._lock:
            return self.distributions.get(int(year))

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
        job.log_path = self.log_dir / f"{job.kind}-{int(job.year)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PREFECT_API_URL", None)
        with open(job.log_path, "wb") as handle:  # this run's lines only (the page shows their tail)
            job.process = subprocess.Popen(self._command(job.year), stdout=handle, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.info("%s of %d started (pid %d, log %s)", job.kind, job.year, job.process.pid, job.log_path)
        threading.Thread(target=self._watch, args=(job,), name=f"rerun-{job.year}", daemon=True).start()

    def _watch(self, job: Job) -> None:
        code = job.process.wait()
        with self._lock:
            job.returncode, job.finished_at = code, dt.datetime.now(dt.timezone.utc)
            log.info("%s of %d ended with exit code %d", job.kind, job.year, code)
            if job.again:  # a correction came in meanwhile: run once more, so it is issued too
                again = Job(job.year, job.finished_at, submissions=list(job.submissions), kind=job.kind, by=job.by)
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

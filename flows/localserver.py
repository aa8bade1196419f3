"""The local Prefect server a command-line run uses when no PREFECT_API_URL names one.

Prefect's own ephemeral mode starts the same server (uvicorn on loopback, Prefect's database in
PREFECT_HOME) lazily, at the first API call, with the terminal as its stdout and stderr. For a
command a person runs, that had three costs:

- its shutdown logs ("Error flushing 1 events", and on Ctrl-C two pages of CancelledError
  tracebacks) landed on the console after our one-line summary;
- Ctrl-C in a terminal reached the server too (same process group), which then printed those
  tracebacks on its own, whatever the command did;
- it started only after `prefect` and the evaluation library had been imported (about 5 s
  here), although nothing in the server's start-up needs them.

So the command starts the server itself, first thing: in its own session (Ctrl-C goes to the
command, which stops the server), with its output appended to the command's log file, while the
command goes on importing. `PREFECT_API_URL` then points Prefect at it. It is stopped when the
process exits, after Prefect's own exit handlers have sent their last events and logs.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from evaluation.errors import Unreachable

STARTUP_TIMEOUT = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
STOP_GRACE = 3.0  # seconds the server gets to stop on SIGTERM before it is killed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """One Prefect API server on loopback, owned by this process."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> "LocalServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        # what Prefect's ephemeral mode sets: no UI, migrate the database on start if needed
        env.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        atexit.register(self.stop)  # runs after the exit handlers Prefect registers later (LIFO)
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Block until the API answers; a server that dies or never answers is a sentence, not a hang."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise Unreachable(f"Prefect 本地服务未能启动（详见日志 {self.log_path}）。")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise Unreachable(f"Prefect 本地服务 {timeout:.0f} 秒内未就绪（详见日志 {self.log_path}）。")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_started: LocalServer | None = None


def ensure_server(log_path: Path) -> LocalServer | None:
    """Start a local server (once per process) and point Prefect at it, unless PREFECT_API_URL
    names another. Call before `prefect` is imported; `wait_ready()` before the first flow runs."""
    global _started
    if _started is not None:
        return _started
    if os.environ.get("PREFECT_API_URL"):
        return None
    _started = LocalServer(log_path).start()
    os.environ["PREFECT_API_URL"] = _started.api_url
    os.environ.setdefault("PREFECT_UI_URL", "")  # it serves no UI: no "View at" links to nowhere
    return _started

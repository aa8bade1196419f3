"""Issue 15: mail goes exactly once, by design. The fault campaign's cases, each against the real thing:
two real `twomountains distribute` processes, `kill -9`, a real aiosmtpd server that is slow, drops the
connection after a message's content, or is not there at all.

The CLI processes talk to the session's Prefect test server (PREFECT_API_URL) instead of each starting
a temporary one, which saves ~10-20 s per process; everything else is as a user runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from evaluation.distribution import DeliveryLedger
from evaluation.distribution.recipients import RECIPIENTS_ENV
from evaluation.ledger import LEDGER_ENV
from tests.conftest import prefect_home
from tests.smtptools import free_port, recipients_yaml
from tests.test_distribution import IDS, YEAR, _names, _pdf, write_version

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / ".venv" / "bin" / "twomountains"
DOWN_BOUND_SECONDS = 45  # the whole CLI process, SMTP server down; it used to take ~12 minutes


@pytest.fixture
def reports(catalogue, tmp_path) -> Path:
    """reports/2023/v1 with ten PDFs and their manifest.json, as an issued version."""
    out = tmp_path / "reports"
    folder, manifest = write_version(out, 1, {name: _pdf(name) for name in _names(catalogue).values()})
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture
def env(prefect_harness, tmp_path) -> dict:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect-home")), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "400"}
    for name in (LEDGER_ENV, RECIPIENTS_ENV, "TWOMOUNTAINS_SMTP_USER", "TWOMOUNTAINS_SMTP_PASSWORD"):
        env.pop(name, None)
    return env


def _start(env: dict, reports: Path, recipients: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(CLI), "distribute", "--year", str(YEAR), "--channel", "email", "--out", str(reports),
                             "--recipients", str(recipients), *extra], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"distribute did not finish within {timeout} s:\n{out}\n{err}")
    return proc.returncode, out + err


def _rows(reports: Path) -> dict[str, dict]:
    ledger = DeliveryLedger.at(reports)
    try:
        return {r["recipient_id"]: r for r in ledger.rows(YEAR)}
    finally:
        ledger.close()


# 1. two runs at once -------------------------------------------------------------------------

def test_two_concurrent_runs_send_each_report_exactly_once(reports, smtp_server, env, tmp_path):
    # The first mail's reply waits (at most 8 s, within the client's 20 s timeout) for another client:
    # unless the two runs exclude each other, the second is sending at the same time.
    server = smtp_server(hold_first=8)
    recipients = recipients_yaml(tmp_path / "recipients.yaml", server.port, timeout=20)
    procs = [_start({**env, "PREFECT_HOME": str(prefect_home(tmp_path / f"home-{i}"))}, reports, recipients) for i in range(2)]
    results = [_finish(p) for p in procs]

    copies = server.handler.copies()
    assert len(server.handler.got) == 10 and set(copies.values()) == {1}, (len(server.handler.got), results)
    assert not server.handler.overlapped  # the second run never talked to the server while the first was sending
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 3]), results
    for code, output in results:
        assert "Traceback" not in output, output
        if code == 3:  # refused while the other held the lock: says who
            assert "正由进程" in output and "未发送任何报告" in output, output
    assert any("送达 10 份" in output for _, output in results), results
    rows = _rows(reports)
    assert len(rows) == 10 and {(r["status"], r["attempts"]) for r in rows.values()} == {("delivered", 1)}


# 2. the connection drops after the content, before the final reply -----------------------------

def test_drop_after_data_is_uncertain_and_never_resent_automatically(prefect_harness, reports, smtp_server, tmp_path):
    from flows.distribute import distribute_scorecards

    server = smtp_server(drop_first=True)  # each message: content received, no reply; a second copy would be accepted
    recipients = recipients_yaml(tmp_path / "recipients.yaml", server.port)
    run = dict(year=YEAR, out_dir=str(reports), channel="email", recipients=str(recipients),
               retry_backoff_seconds=0.2, return_state=True)

    state = distribute_scorecards(**run)
    data = state.result(raise_on_failure=False)
    assert len(server.handler.got) == 10 and set(server.handler.copies().values()) == {1}  # no retry resent one
    assert data["counts"]["uncertain"] == 10 and data["counts"]["delivered"] == 0 and data["code"] == 8
    assert all("不确定" in row["结果"] and "断开" in row["说明"] for row in data["rows"])
    assert {r["status"] for r in _rows(reports).values()} == {"uncertain"}

    again = distribute_scorecards(**run).result(raise_on_failure=False)  # a plain rerun: still nothing resent
    assert len(server.handler.got) == 10 and again["counts"]["uncertain"] == 10 and again["code"] == 8

    resent = distribute_scorecards(**run, resend_uncertain=True)  # the user checked: resend them
    assert resent.is_completed(), resent.message
    assert resent.result()["counts"]["delivered"] == 10 and set(server.handler.copies().values()) == {2}
    assert {(r["status"], r["attempts"]) for r in _rows(reports).values()} == {("delivered", 2)}


# 3. kill -9 mid-send, then a rerun ---------------------------------------------------------------

def test_kill_9_mid_send_then_rerun_sends_no_report_twice(reports, smtp_server, env, tmp_path):
    server = smtp_server(delay=30)  # every message waits for its reply: the kill lands between content and reply
    names = {rid: f"[/]{rid}[red]办公室" for rid in IDS.values()}  # console markup in every name
    recipients = recipients_yaml(tmp_path / "recipients.yaml", server.port, rename=names)
    proc = _start(env, reports, recipients)
    deadline = time.monotonic() + 90
    while not server.handler.got and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert server.handler.got, _finish(proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed = server.handler.got[0].rcpt_tos[0]

    server.handler.delay = 0
    code, output = _finish(_start(env, reports, recipients))
    copies = server.handler.copies()
    assert len(server.handler.got) == 10 and set(copies.values()) == {1}, output  # the killed one not sent again
    assert code == 8, output
    assert "结果不确定 1 份" in output and "--resend-uncertain" in output and "Traceback" not in output, output
    rows = _rows(reports)
    uncertain = [r for r in rows.values() if r["status"] == "uncertain"]
    assert [r["address"] for r in uncertain] == [killed] and uncertain[0]["file_name"] in output
    assert sum(r["status"] == "delivered" for r in rows.values()) == 9

    # --resend-uncertain reaches the flow (which resends, see the test above); the dry run prints each
    # line once, names with console markup in them as they are
    code, output = _finish(_start(env, reports, recipients, "--dry-run", "--resend-uncertain"))
    line = f"将发送 {names[killed.partition('@')[0]]} <{killed}>：{uncertain[0]['file_name']}（第1版）"
    assert code == 0 and output.count(line) == 1 and output.count("将发送") == 1, output
    assert len(server.handler.got) == 10


# 4. the SMTP server is down ---------------------------------------------------------------------

def test_smtp_down_is_refused_in_one_sentence_within_seconds(reports, env, tmp_path):
    recipients = recipients_yaml(tmp_path / "recipients.yaml", free_port())  # nothing listens there
    started = time.monotonic()
    code, output = _finish(_start(env, reports, recipients), timeout=DOWN_BOUND_SECONDS)
    elapsed = time.monotonic() - started
    print(f"SMTP-down refusal took {elapsed:.1f} s")
    assert "Traceback" not in output, output
    assert code == 7, output
    assert "无法连接邮件服务器" in output and "连接被拒绝" in output and "未发送任何报告" in output, output
    assert _rows(reports) == {}  # nothing was attempted


def test_server_lost_mid_run_stops_the_rest(prefect_harness, reports, smtp_server, tmp_path):
    """Circuit breaker: once the server is unreachable after the per-message retries, the rest is not attempted."""
    from flows.distribute import distribute_scorecards

    server = smtp_server()
    recipients = recipients_yaml(tmp_path / "recipients.yaml", server.port)

    def stop_after_three() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(r["status"] == "delivered" for r in _rows(reports).values()) >= 3:
                server.stop()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=stop_after_three, daemon=True)
    watcher.start()
    started = time.monotonic()
    state = distribute_scorecards(year=YEAR, out_dir=str(reports), channel="email", recipients=str(recipients),
                                  return_state=True)
    elapsed = time.monotonic() - started
    data = state.result(raise_on_failure=False)
    counts = data["counts"]
    assert sum(counts.values()) == 10 and counts["not_attempted"] >= 1 and data["code"] == 7, counts
    assert counts["delivered"] <= len(server.handler.got) <= counts["delivered"] + counts["uncertain"]
    assert elapsed < 30, elapsed  # per-message retries with the default backoff: seconds, not minutes
    assert "未尝试" in data["message"]


# the CLI's configuration checks (no Prefect needed) -----------------------------------------------

def test_broken_configuration_is_one_sentence_and_exit_2(reports, env, tmp_path):
    bad = tmp_path / "recipients.yaml"
    bad.write_text("counties: [\n  {id: wudu\n", encoding="utf-8")
    code, output = _finish(_start(env, reports, bad), timeout=60)
    assert code == 2 and "不是有效的 YAML" in output and "Traceback" not in output, output

    config = tmp_path / "config"
    config.mkdir()
    (config / "zones.yaml").write_text("zones: [\n", encoding="utf-8")
    proc = subprocess.Popen([str(CLI), "distribute", "--year", str(YEAR), "--out", str(reports), "--config",
                             str(config)], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    code, output = _finish(proc, timeout=60)
    assert code == 2 and "Traceback" not in output and output.strip(), output


def test_dry_run_lists_each_delivery_once_and_leaves_cleanly(reports, env):
    """With its own temporary Prefect server: every line once, and nothing from Prefect's log worker after the
    server stopped (it printed "--- Error logging to API ---" after a clean run)."""
    own = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen([str(CLI), "distribute", "--year", str(YEAR), "--dry-run", "--out", str(reports)],
                            cwd=REPO, env=own, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    lines = [line for line in out.splitlines() if line.startswith("将放入发件箱")]
    assert len(lines) == len(set(lines)) == 10, out
    assert "Error logging to API" not in err and "Traceback" not in err, err


def test_expected_failures_lose_their_traceback_on_prefect_consoles():
    """What Prefect prints for a task whose retries are exhausted, through a Prefect console handler."""
    import io
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from evaluation.distribution import TransientDeliveryError
    from evaluation.errors import Busy
    from flows.logs import QuietExpected, quiet_expected_failures

    stream = io.StringIO()
    handler = PrefectConsoleHandler(stream=stream)
    logger = logging.getLogger("tests.quiet-expected")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        assert quiet_expected_failures() >= 1 and quiet_expected_failures() >= 1
        assert sum(isinstance(f, QuietExpected) for f in handler.filters) == 1  # idempotent
        for exc in (TransientDeliveryError("无法连接邮件服务器 127.0.0.1:2525（连接被拒绝），稍后重试"),
                    Busy("2023 年第 1 版的报告正由进程 1 分发"), ValueError("a bug")):
            try:
                raise exc
            except Exception:
                logger.error("Task run failed with exception: %r - Retries are exhausted", exc, exc_info=True)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "TransientDeliveryError('无法连接邮件服务器" in text and "Busy('2023" in text  # the message lines stay
    assert text.count("Traceback") == 1 and "ValueError: a bug" in text  # only the unexpected one keeps it

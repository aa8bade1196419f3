"""A real Prefect server on loopback: `make serve`'s script deploys prefect.yaml, a real worker runs
a deployment, artifacts come back through the API, and the correction event starts a rerun."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from tests import readme
from tests.conftest import prefect_home
import pytest

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port(default: int) -> int:
    """The README's port when it is free (then its commands run exactly as written), else any free one."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", default))
        except OSError:
            return _free_port()
    return default


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = prefect_home(tmp_path_factory.mktemp("prefect_home"))
    work = tmp_path_factory.mktemp("checkout")  # runs write their reports here, not into the repo
    shutil.copytree(REPO / "flows", work / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "data").symlink_to(REPO / "data")
    (work / "twomountains.yaml").write_text("data: data/sample\n", encoding="utf-8")  # reports/ and the bundled config
    port, portal = _port(4200), _port(8000)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_PORT": str(port), "TWOMOUNTAINS_HOME": str(work),
           "PORTAL_PORT": str(portal),
           "VENV": str(Path(sys.executable).parent.parent), "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           # the worker asks for scheduled runs every second (default 10 s): each run starts that much sooner
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    env.pop("PREFECT_API_URL", None)
    started = readme.run(readme.command("make serve"), cwd=REPO, env=env)
    api = f"http://127.0.0.1:{port}/api"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"Prefect UI: http://127.0.0.1:{port}" in started.stdout
        old = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME")}
        os.environ.update(PREFECT_API_URL=api, PREFECT_HOME=str(home))
        assert f"报送门户 / portal: http://127.0.0.1:{portal}/" in started.stdout
        assert f"export PREFECT_API_URL={api}" in started.stdout  # the line the README says it prints
        yield {"api": api, "work": work, "portal": f"http://127.0.0.1:{portal}", "port": port}
    finally:
        stopped = readme.run(readme.command("make stop"), cwd=REPO, env=env, timeout=120)
        for k, v in locals().get("old", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert "stopped server" in stopped.stdout and "stopped worker" in stopped.stdout
    assert "stopped portal" in stopped.stdout


def _client():
    from prefect.client.orchestration import SyncPrefectClient
    return SyncPrefectClient(os.environ["PREFECT_API_URL"])


def _export(server) -> str:
    """The README's `export PREFECT_API_URL=…` line (with the fixture's port when 4200 was taken)."""
    line = readme.command("export PREFECT_API_URL=http://127.0.0.1:4200/api")
    return line.replace(":4200/", f":{server['port']}/")


def _shell(server) -> dict:
    """A shell that has exported the server's address, whose workspace is the deployments'."""
    return {**os.environ, "PREFECT_API_URL": server["api"], "TWOMOUNTAINS_HOME": str(server["work"])}


def _deployment_run(server, name: str) -> str:
    """`export PREFECT_API_URL=…` then the README's `prefect deployment run <name> -p year=2023`, in a shell
    that had no API address before (as a new terminal): the id of the flow run it created."""
    import re

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = readme.run(_export(server) + "\n" + readme.command(f".venv/bin/prefect deployment run {name}"),
                      cwd=REPO, env=env)
    assert done.returncode == 0 and "Created flow run" in done.stdout, done.stdout + done.stderr
    return re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)


def _wait(fn, timeout: float, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(every)
    return fn()


def test_schedule_is_9am_beijing_on_1_march(server):
    with _client() as client:
        dep = client.read_deployment_by_name("annual-evaluation/annual-evaluation")
        (schedule,) = dep.schedules
        assert schedule.schedule.cron == "0 9 1 3 *" and schedule.schedule.timezone == "Asia/Shanghai"
        runs = _wait(lambda: [r for r in client.read_flow_runs() if r.deployment_id == dep.id
                              and r.state_name == "Scheduled"], 90)
    assert runs, "the scheduler created no run"
    first = min(r.expected_start_time for r in runs).astimezone(ZoneInfo("Asia/Shanghai"))
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    expected_year = today.year if (today.month, today.day, today.hour) < (3, 1, 9) else today.year + 1
    assert (first.year, first.month, first.day, first.hour, first.minute) == (expected_year, 3, 1, 9, 0)


def test_worker_runs_a_deployment_and_artifacts_come_back(server, rendered_pdfs, tmp_path):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    out = server["work"] / "reports"  # the deployments' own reports folder: the correction test follows on
    # a task cache of its own whose PDFs are the session's (rendering is not what this test is about: the
    # sample's 2023 reports are usually rendered by then, as a machine that issued them before would have them)
    cache = tmp_path / "task-cache"
    cache.mkdir()
    (cache / "rendered").symlink_to(rendered_pdfs, target_is_directory=True)

    with _client() as client:
        dep = client.read_deployment_by_name("annual-evaluation/annual-evaluation")
        run = client.create_flow_run_from_deployment(dep.id, parameters={
            "year": 2023, "data_dir": str(REPO / "data" / "sample"), "out_dir": str(out),
            "run_date": "2024-03-01", "cache_dir": str(cache)})
        final = _wait(lambda: (r := client.read_flow_run(run.id)).state.is_final() and r, 300)
        assert final and final.state.is_completed(), final and final.state
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    keys = {a.key for a in artifacts}
    assert {"annual-2023", "data-docs", "validation-summary", "scores-2023", "pdf-2023-621202", "pdf-2023-621200"} <= keys
    table = json.loads(next(a for a in artifacts if a.key == "scores-2023").data)
    assert table[0]["排名"] == 1 and {row["县区"] for row in table} >= {"武都区", "两当县"}
    summary = next(a for a in artifacts if a.key == "annual-2023")
    assert "621202" in str(summary.data) and "武都区" in str(summary.data)
    # the artifacts link to the workbench of `make serve`, not to files on the server's disk
    pdf = next(a for a in artifacts if a.key == "pdf-2023-621202")
    assert f"({server['portal']}/analyst/2023/v/1/report/621202)" in pdf.data, pdf.data
    assert f"{server['portal']}/analyst/2023/county/621202?v=1" in str(summary.data)
    assert "file://" not in str(summary.data) + str(pdf.data)
    assert len([p for p in (out / "2023" / "v1").glob("*.pdf") if "技术报告" not in p.name]) == 10

    # The distribute-scorecards deployment sends that version to the outbox, one folder per recipient: run as the
    # README says, in a shell that has exported the API's address
    run_id = _deployment_run(server, "distribute-scorecards/distribute-scorecards")
    with _client() as client:
        dep = client.read_deployment_by_name("distribute-scorecards/distribute-scorecards")
        assert dep.parameters["channel"] == "outbox" and not dep.schedules
        final = _wait(lambda: (r := client.read_flow_run(run_id)).state.is_final() and r, 300)
        assert final and final.state.is_completed(), final and final.state
        assert final.parameters["year"] == 2023
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    (deliveries,) = [a for a in artifacts if a.key == "deliveries-2023-v1"]
    rows = json.loads(deliveries.data)
    assert len(rows) == 10 and {r["结果"] for r in rows} == {"已送达"}
    outbox = sorted(p.relative_to(out / "outbox").parts[0] for p in (out / "outbox").rglob("*.pdf"))
    assert len(outbox) == 10 and "wudu" in outbox and "city-leaders" in outbox


def test_correction_event_starts_a_rerun(server):
    sid = "0" * 63 + "1"
    # emitted from a separate process, as `twomountains correct` will: this test process may hold another
    # Prefect settings context (the flow tests' harness), which would send the event elsewhere
    emit = ("from prefect.events import emit_event; import sys; "
            "assert emit_event(event='twomountains.submission.corrected', "
            "resource={'prefect.resource.id': 'twomountains.submission.' + sys.argv[1]})")
    env = {**os.environ, "PREFECT_API_URL": server["api"]}
    subprocess.run([sys.executable, "-c", emit, sid], check=True, env=env, timeout=120)
    with _client() as client:
        dep = client.read_deployment_by_name("correction-rerun/correction-rerun")
        runs = _wait(lambda: [r for r in client.read_flow_runs() if r.deployment_id == dep.id], 90)
    assert runs, "no correction-rerun flow run was created"
    assert runs[0].parameters["submission_id"] == f"twomountains.submission.{sid}"


def test_a_cli_correction_reaches_the_server_and_the_deployment_reissues(server, tmp_path):
    """`twomountains correct` with PREFECT_API_URL set records the correction, emits
    twomountains.submission.corrected, and the correction-rerun deployment (run by the worker) issues v2
    of the version the worker test issued in the deployments' reports folder. Last in the file: the event
    test above reads the first correction-rerun run as its own."""
    from evaluation import versions
    from evaluation.ledger import Ledger
    from flows.correction import RESOURCE_PREFIX

    out = server["work"] / "reports"
    if not versions.versions(out, 2023):  # this test alone: issue v1 first, as the worker test does
        with _client() as client:
            dep = client.read_deployment_by_name("annual-evaluation/annual-evaluation")
            run = client.create_flow_run_from_deployment(dep.id, parameters={"year": 2023, "run_date": "2024-03-01"})
            assert _wait(lambda: client.read_flow_run(run.id).state.is_final(), 300)
    assert versions.versions(out, 2023) == [1]
    sample = server["work"] / "data" / "sample"
    lines = (sample / "2023" / "生态环境局_2023年生态环境质量.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("武都区,76.11,")
    fixed = tmp_path / "生态环境局_2023年生态环境质量_更正.csv"
    fixed.write_text("\n".join([lines[0], lines[1].replace("76.11", "76.9", 1), *lines[2:]]) + "\n", encoding="utf-8")

    # the README's command as written, typed in the folder holding the bureau's file, in a shell that exported
    # the server's address and whose workspace is the deployments' (TWOMOUNTAINS_HOME)
    done = readme.run(readme.command(".venv/bin/twomountains correct"), cwd=tmp_path, env=_shell(server))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "已通知 Prefect 服务器" in done.stdout and "Traceback" not in done.stdout + done.stderr
    with Ledger.at(out) as ledger:
        (sid,) = [s["id"] for s in ledger.submissions(2023, "eco") if s["superseded_by"] is None]
    with _client() as client:
        dep = client.read_deployment_by_name("correction-rerun/correction-rerun")
        runs = _wait(lambda: [r for r in client.read_flow_runs() if r.deployment_id == dep.id
                              and r.parameters.get("submission_id") == RESOURCE_PREFIX + sid], 90)
        assert runs, "the correction reached no correction-rerun run"
        final = _wait(lambda: (r := client.read_flow_run(runs[0].id)).state.is_final() and r, 300)
    assert final and final.state.is_completed(), final and final.state
    assert versions.versions(out, 2023) == [1, 2]
    assert any("76.9" in line for line in versions.read_manifest(out / "2023" / "v2")["revisions"]["621202"])


def test_the_portal_of_make_serve_takes_a_bureau_account_made_as_the_readme_says_and_sends_its_correction(server,
                                                                                                    tmp_path):
    """README: `twomountains users add wangfang --role bureau --department eco --name 王芳` (password typed
    in; here piped), then sign in at the portal `make serve` started. A correction submitted there reaches
    the server as the same event, and the correction-rerun deployment issues the next version.
    After the CLI correction test (its v2): this one's run is v3."""
    import re

    import httpx

    from evaluation import versions

    out = server["work"] / "reports"
    made = readme.run(readme.command(".venv/bin/twomountains users add wangfang"), cwd=REPO, env=_shell(server),
                      input="portal-pass-2024\n")
    assert made.returncode == 0 and "已创建账户 wangfang" in made.stdout, made.stdout + made.stderr
    client = httpx.Client(base_url=server["portal"], timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    page = client.post("/login", data={"username": "wangfang", "password": "portal-pass-2024", "csrf_token": token},
                       follow_redirects=True)
    assert page.status_code == 200 and "生态环境局 · 2023 年度数据报送" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    before = versions.versions(out, 2023)
    assert before, "an earlier test issued 2023"
    lines = (server["work"] / "data" / "sample" / "2023" / "生态环境局_2023年生态环境质量.csv").read_text(
        encoding="utf-8").splitlines()
    fixed = "\n".join([lines[0], lines[1].replace("76.11", "76.4", 1), *lines[2:]]) + "\n"
    checked = client.post("/bureau/eco/upload", data={"csrf_token": csrf, "year": "2023"},
                          files={"file": ("生态环境局_2023年生态环境质量_更正2.csv", fixed.encode("utf-8"))},
                          follow_redirects=True)
    assert "校验通过" in checked.text and "本次提交将作为更正" in checked.text
    action = re.search(r'action="(/bureau/eco/uploads/[^"]+/submit)"', checked.text).group(1)
    done = client.post(action, data={"csrf_token": csrf, "reason": "武都区EQI再次复核"}, follow_redirects=True)
    assert "更正已登记" in done.text and "已通知评价服务（Prefect）" in done.text
    assert _wait(lambda: len(versions.versions(out, 2023)) == len(before) + 1, 300), "the portal's correction was not re-issued"
    latest = versions.read_manifest(out / "2023" / f"v{len(before) + 1}")
    assert any("武都区EQI再次复核" in line for line in latest["revisions"]["621202"])


def test_the_workbench_of_make_serve_runs_and_distributes_through_the_deployments(server):
    """An analyst's run button and distribute button on the portal `make serve` started create flow runs of
    the annual-evaluation and distribute-scorecards deployments, followed on the page with a link to each
    run in Prefect's UI. Last in the file: nothing has changed since the portal test's v3, so the run finds
    the year unchanged; the distribution sends what was not yet delivered to the outbox."""
    import re

    import httpx

    from evaluation import versions

    out = server["work"] / "reports"
    made = readme.run(readme.command(".venv/bin/twomountains users add chenjing"), cwd=REPO, env=_shell(server),
                      input="analyst-pass-2024\n")
    assert made.returncode == 0, made.stdout + made.stderr
    client = httpx.Client(base_url=server["portal"], timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    page = client.post("/login", data={"username": "chenjing", "password": "analyst-pass-2024", "csrf_token": token},
                       follow_redirects=True)
    assert "2023 年度评价工作台" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    before = versions.versions(out, 2023)
    started = client.post("/analyst/2023/run", data={"csrf_token": csrf}, follow_redirects=True)
    assert "由 Prefect 服务运行" in started.text
    ui = re.search(r'href="(http://127\.0\.0\.1:\d+/runs/flow-run/[0-9a-f-]+)"', started.text).group(1)
    run_id = ui.rsplit("/", 1)[1]
    with _client() as prefect:
        run = prefect.read_flow_run(run_id)
        assert prefect.read_deployment(run.deployment_id).name == "annual-evaluation"
        final = _wait(lambda: (r := prefect.read_flow_run(run_id)).state.is_final() and r, 300)
    assert final and final.state.is_completed(), final and final.state
    shown = _wait(lambda: "已完成" in (t := client.get("/analyst/2023").text) and t, 30)
    assert shown and "COMPLETED" in shown
    assert versions.versions(out, 2023) == before  # unchanged since the last version

    latest = before[-1]
    sent = client.post("/analyst/2023/distribution", data={"csrf_token": csrf, "version": str(latest),
                                                          "channel": "outbox"}, follow_redirects=True)
    assert "由 Prefect 服务运行" in sent.text
    run_id = re.search(r'/runs/flow-run/([0-9a-f-]+)"', sent.text).group(1)
    with _client() as prefect:
        assert prefect.read_deployment(prefect.read_flow_run(run_id).deployment_id).name == "distribute-scorecards"
        final = _wait(lambda: (r := prefect.read_flow_run(run_id)).state.is_final() and r, 300)
    assert final and final.state.is_completed(), final and final.state
    page = client.get(f"/analyst/2023/distribution?v={latest}").text
    assert "待发送" not in re.sub(r"<[^>]+>", "", page).split("每份报告")[0]


def test_the_readme_commands_for_an_issued_year_as_written(server, smtp_server, tmp_path):
    """The README's commands once a year is issued, each exactly as written, in a shell that exported the
    server's address (README, "Scheduled runs"): the annual deployment run now, the three distribution
    commands, the history of a county and the recomputation of a version from its manifest. Last in the
    file: the year is issued (v1–v3) and distributed to the outbox by the tests above."""
    import re

    from evaluation import versions

    work, out = server["work"], server["work"] / "reports"
    issued = versions.versions(out, 2023)
    assert issued, "the tests above issued 2023"

    # `prefect deployment run annual-evaluation/annual-evaluation -p year=2023`: nothing changed, nothing issued
    run_id = _deployment_run(server, "annual-evaluation/annual-evaluation")
    with _client() as client:
        final = _wait(lambda: (r := client.read_flow_run(run_id)).state.is_final() and r, 300)
    assert final and final.state.is_completed() and final.parameters["year"] == 2023, final and final.state
    assert versions.versions(out, 2023) == issued

    # distribution, as written: the workspace's config names the city's mail server; here it is a real one on
    # loopback (no TLS, no login), the rest of the config as shipped
    mail = smtp_server()
    config = tmp_path / "workspace" / "config"
    shutil.copytree(REPO / "config", config)
    recipients = (config / "recipients.yaml").read_text(encoding="utf-8")
    recipients = re.sub(r"host: smtp\.longnan\.example\n  port: 587\n  security: starttls[^\n]*\n"
                        r"  username_env: [A-Z_]+\n  password_env: [A-Z_]+\n",
                        f"host: 127.0.0.1\n  port: {mail.port}\n  security: none\n", recipients)
    assert f"port: {mail.port}" in recipients
    (config / "recipients.yaml").write_text(recipients, encoding="utf-8")
    (config.parent / "twomountains.yaml").write_text(f"data: {work / 'data' / 'sample'}\nreports: {out}\n"
                                                     f"config: config\n", encoding="utf-8")
    shell = {**_shell(server), "TWOMOUNTAINS_HOME": str(config.parent)}
    dry = readme.run(readme.command(".venv/bin/twomountains distribute --year 2023 --dry-run"), cwd=REPO, env=shell)
    # the workbench test above delivered every report to the outbox (the default channel): nothing left to send
    assert dry.returncode == 0 and "没有需要发送的报告（均已送达）" in dry.stdout, dry.stdout + dry.stderr
    outbox = readme.run(readme.command(".venv/bin/twomountains distribute --year 2023"), cwd=REPO, env=shell)
    assert outbox.returncode == 0 and "均已送达" in outbox.stdout, outbox.stdout + outbox.stderr
    email = readme.run(readme.command(".venv/bin/twomountains distribute --year 2023 --channel email"), cwd=REPO,
                       env=shell)
    assert email.returncode == 0, email.stdout + email.stderr
    to = {address for got in mail.handler.got for address in got.rcpt_tos}
    assert len(mail.handler.got) >= 10 and any(a.endswith("longnan.example") for a in to), to
    assert "Traceback" not in dry.stdout + dry.stderr + outbox.stdout + outbox.stderr + email.stdout + email.stderr

    # where each figure of a county came from, and a version recomputed from its manifest alone
    history = readme.run(readme.command(".venv/bin/twomountains history --year 2023 --county 621202"), cwd=REPO,
                         env=_shell(server))
    assert history.returncode == 0 and "武都区（621202）2023 年度数据来源" in history.stdout, history.stdout + history.stderr
    again = readme.run(readme.command(".venv/bin/twomountains index --manifest reports/2023/v1/manifest.json"),
                       cwd=work, env=_shell(server))
    assert again.returncode == 0, again.stdout + again.stderr
    assert len((work / "again.csv").read_text(encoding="utf-8").splitlines()) >= 10

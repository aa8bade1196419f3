"""Issue 8: a bureau's correction re-issues only what changed, survives SIGKILL, and is idempotent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import threading

import yaml

from evaluation import versions
from evaluation.catalogue import load_catalogue
from evaluation.distribution import DeliveryLedger
from evaluation.ledger import Ledger
from tests.conftest import prefect_home
from tests.flowtools import run_flow, sha
from tests.smtptools import Recorder, SmtpServer
from tests.pdftools import pdf_text

REPO = Path(__file__).resolve().parent.parent
REASON = "武都区EQI录入错误，按监测站复核值更正"


def _corrected_eco(sample: Path, dest: Path) -> Path:
    """The ecology bureau's 2023 table with 武都区's EQI corrected from 76.11 to 76.9."""
    lines = (sample / "2023" / "生态环境局_2023年生态环境质量.csv").read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    assert cells[:2] == ["武都区", "76.11"], cells
    cells[1] = "76.9"
    lines[1] = ",".join(cells)
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def _chart_pages(pdf: Path) -> list[tuple[int, str]]:
    """(page, caption) of every figure caption in a PDF: where its charts fall."""
    pages = pdf_text(pdf).split("\f")
    return [(n, m) for n, page in enumerate(pages, 1) for m in re.findall(r"图\d+", re.sub(r"\s+", "", page))]


def _correct_cmd(fixed: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "correct", str(fixed), "--department", "eco", "--year", "2023",
            "--reason", REASON, "--data", str(data), "--out", str(out), "--run-date", "2024-03-15"]


def _recipients_for(server: SmtpServer, dest: Path) -> Path:
    """config/recipients.yaml with its SMTP section pointed at the test server."""
    config = yaml.safe_load((REPO / "config" / "recipients.yaml").read_text(encoding="utf-8"))
    config["smtp"] = {"host": "127.0.0.1", "port": server.port, "security": "none",
                      "from_address": "lianshan-pingjia@longnan.example", "timeout": 5}
    dest.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return dest


def _distribute(out: Path, recipients: Path):
    from flows.distribute import distribute_scorecards

    state = distribute_scorecards(year=2023, out_dir=str(out), channel="email", recipients=str(recipients),
                                  retry_backoff_seconds=1, return_state=True)
    return state, state.result(raise_on_failure=False)


def _attachments(received) -> list[str]:
    return [part.get_filename() for r in received for part in r.message.iter_attachments()]


def _stray_files(out: Path) -> list[Path]:
    """Half-built versions and unfinished atomic writes anywhere under the report folder."""
    return [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name]


def test_correction_reissues_changed_reports_survives_sigkill_and_is_idempotent(prefect_harness, sample_copy,
                                                                                tmp_path):
    out = tmp_path / "reports"
    state, result = run_flow(year=2023, data_dir=str(sample_copy), out_dir=str(out))
    assert result["status"] == "issued", state.message
    v1 = out / "2023" / "v1"
    manifest1 = versions.read_manifest(v1)
    # v1 goes out by email. The SMTP server is down when distribution starts and comes back 2.5 s
    # later: the server check before sending retries with backoff (3 attempts over about 3 s) and finds
    # it back, so nothing is sent into the outage, and each report arrives exactly once.
    server = SmtpServer(Recorder())
    recipients = _recipients_for(server, tmp_path / "recipients.yaml")
    threading.Timer(2.5, server.start).start()
    try:
        state, sent = _distribute(out, recipients)
        assert state.is_completed(), state.message
        assert sent["counts"] == {"delivered": 10, "skipped": 0, "failed": 0, "uncertain": 0, "not_attempted": 0}
        assert sorted(_attachments(server.handler.got)) == sorted(manifest1["outputs"])
        rows = DeliveryLedger.at(out).rows(year=2023)
        assert {r["status"] for r in rows} == {"delivered"} and {r["attempts"] for r in rows} == {1}
        state, again = _distribute(out, recipients)
        assert again["status"] == "nothing" and len(server.handler.got) == 10
    finally:
        server.stop()

    fixed = _corrected_eco(sample_copy, tmp_path / "eco_fixed.csv")
    env = {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)

    # 1. SIGKILL the correction while it renders: the carried reports are in the staged folder and
    #    at least one changed report has been rendered after them.
    partial = out / "2023" / ".v2.partial"
    proc = subprocess.Popen(_correct_cmd(fixed, sample_copy, out), cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.is_dir() and len(list(partial.glob("*.pdf"))) >= 9:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the correction finished before it could be killed mid-render"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert versions.versions(out, 2023) == [1]  # the latest complete version is still v1
    assert Ledger.at(out).verify() == []
    # what it had rendered is kept (the rerun takes it instead of rendering it again)
    assert any((out / ".cache" / "prefect" / "rendered").glob("*.pdf"))

    # 2. Run the same correction again: it completes v2.
    rerun = subprocess.run(_correct_cmd(fixed, sample_copy, out), cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "此前已登记" in rerun.stdout and "Traceback" not in rerun.stdout + rerun.stderr
    assert versions.versions(out, 2023) == [1, 2]
    assert _stray_files(out) == []
    assert Ledger.at(out).verify() == []
    v2 = out / "2023" / "v2"
    manifest2 = versions.read_manifest(v2)
    sent = lambda folder: {p.name: sha(p) for p in folder.glob("*.pdf") if "技术报告" not in p.name}  # noqa: E731
    assert manifest2["outputs"] == sent(v2)  # complete (the methodology report beside them is not sent)
    assert sent(v1) == manifest1["outputs"]  # v1 untouched

    # 3. Re-rendered = exactly the reports whose content changed; the rest are v1's bytes.
    changed = {f for f, key in manifest2["content_keys"].items() if key != manifest1["content_keys"][f]}
    assert changed and len(changed) < len(manifest2["outputs"])
    assert any(f.startswith("621202_") for f in changed)
    for name, digest in manifest2["outputs"].items():
        if name in changed:
            assert manifest2["editions"][name] == 2 and digest != manifest1["outputs"][name]
            text = re.sub(r"\s+", "", pdf_text(v2 / name))
            assert "修订版，修订说明见文末" in text.split("第2版", 1)[1][:40]  # flagged in the head
            notice = text.rsplit("修订说明", 1)[1]  # printed at the end, so no chart moves for it
            assert "本报告为第2版（2024年3月15日），修订第1版。" in notice[:30]
            assert _chart_pages(v2 / name) == _chart_pages(v1 / name), name
            if name.startswith(("621202_", "621200_")):  # 武都区's own figure, and the city summary
                assert "武都区" in notice[:600]
            else:  # its own data did not change: it says what changed in it, and names no other county
                notice = notice.split("本县区数据未变", 1)
                assert len(notice) == 2 and REASON not in text, name
                others = [c.name for c in load_catalogue().counties if not name.startswith(c.code)]
                assert not any(o in notice[0] + notice[1][:300] for o in others), name
                assert "本版更正" not in text, name  # nothing of its own is marked corrected
        else:
            assert manifest2["editions"][name] == 1 and digest == manifest1["outputs"][name]
            assert (v2 / name).read_bytes() == (v1 / name).read_bytes()
    wudu = re.sub(r"\s+", "", pdf_text(next(v2.glob("621202_*.pdf"))))
    assert "生态质量指数（EQI）：76.11→76.9（生态环境局" in wudu  # a dimensionless index: no unit printed
    table = wudu.split("三、指标明细", 1)[1]  # the corrected figure is marked where it is printed
    assert "标注“本版更正”的指标" in table
    rows = pdf_text(next(v2.glob("621202_*.pdf")), layout=True).splitlines()
    assert any("生态质量指数（EQI）" in line and "76.90" in line for line in rows)  # the figure in its row
    assert table.count("本版更正") == 2  # the one corrected row, and the note that explains the mark
    assert any("76.11 → 76.9" in line for line in manifest2["revisions"]["621202"])
    assert set(manifest2["revisions"]) == {name.split("_")[0] for name in changed}
    ledger = Ledger.at(out)
    eco = [s for s in ledger.submissions(2023, "eco")]
    assert [s["reason"] for s in eco if s["superseded_by"] is None] == [REASON]

    # 4. Distribution sends only the re-issued reports, each with its 修订说明 in the mail.
    server.handler.got.clear()
    server.start()
    try:
        state, sent = _distribute(out, recipients)
    finally:
        server.stop()
    assert state.is_completed() and sent["counts"]["delivered"] == len(changed)
    assert sorted(_attachments(server.handler.got)) == sorted(changed)
    for message in (r.message for r in server.handler.got):
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert "修订说明" in body and ("本县区数据未变" in body or REASON in body or "综合得分或排名有变化的县区" in body), body

    # 5. The same file a third time: no new version.
    again = subprocess.run(_correct_cmd(fixed, sample_copy, out), cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "没有变化" in again.stdout, again.stdout + again.stderr
    assert versions.versions(out, 2023) == [1, 2]
    history = subprocess.run([sys.executable, "-m", "flows.cli", "history", "--year", "2023", "--out", str(out),
                              "--county", "621202"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert history.returncode == 0, history.stderr
    text = re.sub(r"\s+", "", history.stdout)
    assert "v2" in text and "76.11→76.9" in text and REASON in text


def test_rejected_correction_is_kept_but_changes_nothing(sample_copy, tmp_path, catalogue):
    """A correction that fails validation is recorded (nothing is lost) but does not supersede anything."""
    from evaluation import operations

    out = tmp_path / "reports"
    ledger = Ledger.at(out)
    operations.record(ledger, operations.check_folder(catalogue, sample_copy, 2023), catalogue, "2024-03-01T00:00:00+00:00")
    bad = _corrected_eco(sample_copy, tmp_path / "eco_bad.csv")
    bad.write_text(bad.read_text(encoding="utf-8").replace("76.9", "176.9"), encoding="utf-8")  # EQI above 100
    proc = subprocess.run(_correct_cmd(bad, sample_copy, out), cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect"))})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "未通过校验" in proc.stderr and "生态质量指数" in proc.stdout and "Traceback" not in proc.stderr
    subs = {s["original_name"]: s for s in Ledger.at(out).submissions(2023, "eco")}
    assert subs["eco_bad.csv"]["status"] == "rejected" and subs["eco_bad.csv"]["supersedes"] is None
    assert subs["生态环境局_2023年生态环境质量.csv"]["superseded_by"] is None
    assert versions.versions(out, 2023) == []
    assert json.dumps(Ledger.at(out).verify()) == "[]"

"""Distribution: recipients config, delivery planning, the outbox and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, inspect

from evaluation.distribution import (
    INTERRUPTED_ZH,
    Delivery,
    DeliveryLedger,
    DistributionError,
    Outcome,
    RecipientsError,
    TransientDeliveryError,
    check_smtp,
    deliver_one,
    describe,
    describe_held,
    load_recipients,
    make_plan,
    outbox_path,
    recover_interrupted,
)
from evaluation.distribution.mail import build_message
from evaluation.distribution.recipients import RECIPIENTS_ENV
from evaluation.ledger import LEDGER_ENV, Ledger
from tests.smtptools import SENDER, Recorder

REPO = Path(__file__).resolve().parent.parent
RECIPIENTS_YAML = REPO / "config" / "recipients.yaml"
YEAR = 2023
NOW = "2024-03-01T08:00:00+00:00"  # the library never reads the clock: the caller says when
LATER = "2024-03-02T09:30:00+00:00"
IDS = {"621202": "wudu", "621221": "chengxian", "621222": "wenxian", "621223": "tanchang", "621224": "kangxian",
       "621225": "xihe", "621226": "lixian", "621227": "huixian", "621228": "liangdang", "621200": "city-leaders"}


# a fake version folder -------------------------------------------------------------

def _names(catalogue) -> dict[str, str]:
    names = {c.code: f"{c.code}_{c.name}_{YEAR}年度两山转化绩效评价.pdf" for c in catalogue.counties}
    names[catalogue.city.code] = f"{catalogue.city.code}_{catalogue.city.name}_{YEAR}年度两山转化绩效评价汇总.pdf"
    return names


def _pdf(file_name: str, edition: str = "") -> bytes:
    return f"%PDF-1.7\n% {file_name} {edition}\n1 0 obj << >> endobj\n%%EOF\n".encode("utf-8")


def write_version(reports: Path, version: int, files: dict[str, bytes],
                  revisions: dict[str, list[str]] | None = None,
                  editions: dict[str, int] | None = None) -> tuple[Path, dict]:
    """reports/<year>/v<N>/ with the PDFs and a manifest shaped like pipeline.build_manifest's."""
    folder = reports / str(YEAR) / f"v{version}"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        "config_hash": "0" * 64, "code_hash": "1" * 64, "code_version": "0.1.0", "allow_incomplete": False,
        "inputs": [], "year": YEAR, "version": version, "run_date": f"{YEAR + 1}-03-01", "sample_data": True,
        "incomplete": False,
        "outputs": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "content_keys": {name: hashlib.sha256(b"key:" + data).hexdigest() for name, data in sorted(files.items())},
        "editions": {name: int((editions or {}).get(name, version)) for name in sorted(files)},
        "scores": [], "revisions": {code: list(lines) for code, lines in sorted((revisions or {}).items())},
        "validation": {},
    }
    return folder, manifest


@pytest.fixture
def recipients(catalogue):
    return load_recipients(catalogue, RECIPIENTS_YAML)


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    return tmp_path / "reports"


@pytest.fixture
def v1(catalogue, reports):
    return write_version(reports, 1, {name: _pdf(name) for name in _names(catalogue).values()})


@pytest.fixture
def ledger(reports, monkeypatch, ledger_url):
    """The delivery ledger on SQLite and on PostgreSQL (each test runs against both)."""
    monkeypatch.delenv(LEDGER_ENV, raising=False)
    book = DeliveryLedger.at(reports, ledger_url)
    yield book
    book.close()


def _deliver_all(todo: list[Delivery], folder: Path, ledger: DeliveryLedger, **kw) -> list[Outcome]:
    return [deliver_one(d, folder, ledger, now=NOW, **kw) for d in todo]


def _attachments(message: EmailMessage) -> list[EmailMessage]:
    return list(message.iter_attachments())


# recipients.yaml -------------------------------------------------------------------

def test_recipients_yaml_loads_and_covers_every_county(catalogue, monkeypatch):
    monkeypatch.delenv(RECIPIENTS_ENV, raising=False)
    rec = load_recipients(catalogue)  # default path: config/recipients.yaml
    assert rec.verified is False
    assert rec.allowed_domains == ["longnan.example"]
    for code, rid in IDS.items():
        people = rec.for_code(code)
        assert [p.id for p in people] == [rid]
        assert people[0].email == f"{rid}@longnan.example"
        assert people[0].name.endswith("人民政府办公室")
    assert rec.for_code("621200")[0].name == "陇南市人民政府办公室"
    assert rec.for_code("999999") == []
    assert rec.smtp is not None and rec.smtp.security == "starttls" and rec.smtp.effective_port == 587
    assert rec.smtp.username_env == "TWOMOUNTAINS_SMTP_USER"


def _edit(data: dict, path: tuple, value) -> None:
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()
BAD_CONFIGS = {
    "county without recipient": (("counties", "621228"), _DELETE, ["621228", "两当县", "没有配置收件人"]),
    "foreign domain": (("counties", "621202", 0, "email"), "wudu@example.com",
                       ["example.com", "不在允许的域名", "longnan.example"]),
    "bad slug": (("counties", "621202", 0, "id"), "Wu Du", ["收件人标识", "Wu Du", "无效"]),
    "path-like slug": (("counties", "621202", 0, "id"), "../etc", ["收件人标识", "无效"]),
    "duplicate id": (("counties", "621221", 0, "id"), "wudu", ["wudu", "重复"]),
    "unknown county": (("counties", "621299"), [{"id": "x", "name": "某县", "email": "x@longnan.example"}],
                       ["621299", "不在目录"]),
    "no city recipient": (("city",), [], ["市级汇总报告", "621200"]),
    "invalid address": (("counties", "621202", 0, "email"), "wudu@@longnan.example", ["格式无效"]),
    "header in name": (("counties", "621202", 0, "name"), "武都区\nBcc: x@longnan.example", ["控制字符"]),
    "secret instead of env name": (("smtp", "password_env"), "hunter2 secret!", ["不是环境变量名"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_invalid_recipients_are_refused_in_chinese(catalogue, tmp_path, case):
    path_, value, expected = BAD_CONFIGS[case]
    data = yaml.safe_load(RECIPIENTS_YAML.read_text(encoding="utf-8"))
    _edit(data, path_, value)
    bad = tmp_path / "recipients.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RecipientsError) as info:
        load_recipients(catalogue, bad)
    message = str(info.value)
    for text in expected:
        assert text in message, (text, message)
    assert "Traceback" not in message and "pydantic" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_malformed_yaml_is_refused(catalogue, tmp_path):
    bad = tmp_path / "recipients.yaml"
    bad.write_text("verified: false\ncounties: [\n  {id: wudu\n", encoding="utf-8")
    with pytest.raises(RecipientsError, match="不是有效的 YAML") as info:
        load_recipients(catalogue, bad)
    assert "行" in str(info.value) and "Traceback" not in str(info.value)


# outbox ------------------------------------------------------------------------------

def test_outbox_gives_each_recipient_only_its_own_report(catalogue, recipients, ledger, v1, tmp_path):
    folder, manifest = v1
    todo = make_plan(manifest, recipients, ledger, "outbox", catalogue).send
    assert len(todo) == 10
    lines = describe(todo)
    assert lines[1] == f"将放入发件箱 武都区人民政府办公室 <wudu@longnan.example>：{_names(catalogue)['621202']}（第1版）"
    outbox = tmp_path / "outbox"
    outcomes = _deliver_all(todo, folder, ledger, outbox_dir=outbox)
    assert [o.status for o in outcomes] == ["delivered"] * 10

    assert {p.name for p in outbox.iterdir()} == set(IDS.values())
    for code, name in _names(catalogue).items():
        rid = IDS[code]
        box = outbox / rid / str(YEAR) / "v1"
        assert sorted(p.name for p in box.iterdir()) == sorted([name, name.removesuffix(".pdf") + ".txt"])
        assert (box / name).read_bytes() == (folder / name).read_bytes()
        text = (box / (name.removesuffix(".pdf") + ".txt")).read_text(encoding="utf-8")
        assert recipients.for_code(code)[0].name in text and "陇南市生态环境局" in text and "示例数据" in text
        assert f"请与陇南市生态环境局联系（{catalogue.city.contact}）。" in text  # every mail names whom to ask
        assert not list(box.glob(".*.tmp"))

    assert make_plan(manifest, recipients, ledger, "outbox", catalogue).send == []
    assert describe([]) == ["没有需要发送的报告（均已送达）。"]
    rows = ledger.rows(YEAR, 1)
    assert len(rows) == 10 and {r["status"] for r in rows} == {"delivered"} and {r["attempts"] for r in rows} == {1}
    # another channel is another delivery; a repeated call for a delivered one sends nothing
    assert len(make_plan(manifest, recipients, ledger, "email", catalogue).send) == 10
    assert deliver_one(todo[0], folder, ledger, now=NOW, outbox_dir=outbox).status == "skipped"
    assert ledger.rows(YEAR, 1)[0]["attempts"] == 1


def test_the_distribute_operation_sends_once_and_says_what_became_of_each(catalogue, recipients, ledger, v1, reports):
    """operations.distribute (what the flow runs, with a plain send): 10 delivered, then nothing to send;
    a send that raises with `unreachable` stops the rest, which are reported as not attempted."""
    import json

    from evaluation import operations

    folder, manifest = v1
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    done = operations.distribute(ledger, reports, YEAR, 1, recipients, catalogue, "outbox", now=lambda: NOW)
    assert done.counts() == {"delivered": 10, "skipped": 0, "failed": 0, "uncertain": 0, "not_attempted": 0}
    assert done.verdict()[0] == "sent" and done.rows()[0]["结果"] == "已送达"
    again = operations.distribute(ledger, reports, YEAR, 1, recipients, catalogue, "outbox", now=lambda: NOW)
    assert again.verdict() == ("nothing", 0, None) and again.counts()["skipped"] == 10

    class Down(Exception):
        reason, unreachable = "无法连接邮件服务器", True

    def down(delivery):
        raise Down()

    cut = operations.distribute(ledger, reports, YEAR, 1, recipients, catalogue, "email", now=lambda: NOW, send=down)
    assert cut.counts()["failed"] == 1 and cut.counts()["not_attempted"] == 9
    status, code, message = cut.verdict()
    assert status == "unreachable" and code == 7 and "9 份未尝试" in message


def test_changed_pdf_is_refused(catalogue, recipients, ledger, v1, tmp_path):
    folder, manifest = v1
    todo = make_plan(manifest, recipients, ledger, "outbox", catalogue).send
    victim = next(d for d in todo if d.county_code == "621222")
    (folder / victim.file_name).write_bytes(_pdf(victim.file_name, "tampered"))
    outbox = tmp_path / "outbox"
    outcome = deliver_one(victim, folder, ledger, now=NOW, outbox_dir=outbox)
    assert outcome.status == "failed" and "SHA-256" in outcome.error and "拒绝发送" in outcome.error
    assert not outbox_path(victim, outbox).exists()
    row = ledger.get("wenxian", victim.report_sha256, "outbox")
    assert row["status"] == "failed" and "不一致" in row["last_error"]
    others = [deliver_one(d, folder, ledger, now=NOW, outbox_dir=outbox) for d in todo if d is not victim]
    assert [o.status for o in others] == ["delivered"] * 9


def test_unsafe_or_unknown_manifest_names_are_refused(catalogue, recipients, ledger, v1):
    _, manifest = v1
    for bad in ("621202_../../etc/passwd.pdf", "../621202_x.pdf", "621202_x.exe", "629999_某县_2023.pdf"):
        hostile = {**manifest, "outputs": {bad: "a" * 64}}
        with pytest.raises(DistributionError):
            make_plan(hostile, recipients, ledger, "outbox", catalogue).send
    with pytest.raises(DistributionError, match="发送方式"):
        make_plan(manifest, recipients, ledger, "fax", catalogue).send


def test_delivery_ledger_shares_the_submission_database(reports, ledger):
    submissions = Ledger.at(reports, ledger.url)
    try:
        assert submissions.url == ledger.url
        tables = set(inspect(create_engine(ledger.url)).get_table_names())
        assert {"submissions", "facts", "deliveries"} <= tables
    finally:
        submissions.close()


# email (real SMTP server) -----------------------------------------------------------

def test_email_sends_each_report_once_with_its_pdf(catalogue, recipients, ledger, v1, smtp_server):
    folder, manifest = v1
    server = smtp_server()
    todo = make_plan(manifest, recipients, ledger, "email", catalogue).send
    outcomes = _deliver_all(todo, folder, ledger, smtp=server.settings())
    assert [o.status for o in outcomes] == ["delivered"] * 10

    got = server.handler.got
    assert len(got) == 10
    by_address = {r.rcpt_tos[0]: r for r in got}
    for code, name in _names(catalogue).items():
        person = recipients.for_code(code)[0]
        received = by_address[person.email]
        msg = received.message
        assert received.rcpt_tos == [person.email] and received.mail_from == SENDER
        assert [a.addr_spec for a in msg["To"].addresses] == [person.email]
        assert msg["To"].addresses[0].display_name == person.name
        attachments = _attachments(msg)
        assert len(attachments) == 1
        assert attachments[0].get_content_type() == "application/pdf"
        assert attachments[0].get_filename() == name
        assert attachments[0].get_content() == (folder / name).read_bytes()
        subject = str(msg["Subject"])
        assert "两山转化绩效评价" in subject and "第1版" in subject and "示例数据" in subject
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        assert text.startswith(f"{person.name}：") and "陇南市生态环境局" in text and "示例数据" in text
        assert "修订说明" not in text and "&" not in text
        assert person.name in html
        delivery = next(d for d in todo if d.recipient.id == person.id)
        assert msg["Message-ID"] == delivery.message_id == \
            f"<{delivery.report_sha256[:16]}.{person.id}.v1@twomountains>"

    rows = ledger.rows(YEAR)
    assert len(rows) == 10
    assert all(r["status"] == "delivered" and r["message_id"] and r["delivered_at"] for r in rows)
    assert make_plan(manifest, recipients, ledger, "email", catalogue).send == []


def test_server_down_mid_run_then_rerun_sends_each_report_exactly_once(catalogue, recipients, ledger, v1,
                                                                       smtp_server):
    folder, manifest = v1
    server = smtp_server()
    todo = make_plan(manifest, recipients, ledger, "email", catalogue).send
    for delivery in todo[:4]:
        assert deliver_one(delivery, folder, ledger, now=NOW, smtp=server.settings()).status == "delivered"
    server.stop()
    for delivery in todo[4:]:
        with pytest.raises(TransientDeliveryError) as info:
            deliver_one(delivery, folder, ledger, now=NOW, smtp=server.settings())
        assert "连接被拒绝" in info.value.reason and info.value.recipient_id == delivery.recipient.id
    failed = [r for r in ledger.rows(YEAR) if r["status"] == "failed"]
    assert len(failed) == 6 and all("连接被拒绝" in r["last_error"] and r["attempts"] == 1 for r in failed)

    server.start()  # same port if it is still free, otherwise settings() follows the move
    ledger.close()
    ledger = DeliveryLedger(ledger.url)  # a new run: only the database remembers
    again = make_plan(manifest, recipients, ledger, "email", catalogue).send
    assert [(d.recipient.id, d.file_name) for d in again] == [(d.recipient.id, d.file_name) for d in todo[4:]]
    assert [o.status for o in _deliver_all(again, folder, ledger, smtp=server.settings())] == ["delivered"] * 6

    counts = Counter((r.rcpt_tos[0], _attachments(r.message)[0].get_filename()) for r in server.handler.got)
    expected = {(recipients.for_code(code)[0].email, name) for code, name in _names(catalogue).items()}
    assert set(counts) == expected and set(counts.values()) == {1}
    rows = ledger.rows(YEAR)
    assert all(r["status"] == "delivered" and r["last_error"] is None for r in rows)
    assert sorted(r["attempts"] for r in rows) == [1] * 4 + [2] * 6
    assert make_plan(manifest, recipients, ledger, "email", catalogue).send == []
    ledger.close()


def test_rejected_recipient_fails_alone(catalogue, recipients, ledger, v1, smtp_server):
    folder, manifest = v1
    server = smtp_server(reject="wenxian@longnan.example")
    todo = make_plan(manifest, recipients, ledger, "email", catalogue).send
    outcomes = {o.recipient_id: o for o in _deliver_all(todo, folder, ledger, smtp=server.settings())}
    bad = outcomes.pop("wenxian")
    assert bad.status == "failed" and "拒绝收件人" in bad.error and "550" in bad.error and bad.message_id is None
    assert {o.status for o in outcomes.values()} == {"delivered"}
    assert len(server.handler.got) == 9
    assert "wenxian@longnan.example" not in {r.rcpt_tos[0] for r in server.handler.got}
    sha = next(d.report_sha256 for d in todo if d.recipient.id == "wenxian")
    row = ledger.get("wenxian", sha, "email")
    assert row["status"] == "failed" and row["last_error"] == bad.error
    assert [d.recipient.id for d in make_plan(manifest, recipients, ledger, "email", catalogue).send] == ["wenxian"]


def test_temporary_refusal_is_transient(catalogue, recipients, ledger, v1, smtp_server):
    folder, manifest = v1
    server = smtp_server(tempfail="wudu@longnan.example")
    delivery = next(d for d in make_plan(manifest, recipients, ledger, "email", catalogue).send
                    if d.recipient.id == "wudu")
    with pytest.raises(TransientDeliveryError) as info:
        deliver_one(delivery, folder, ledger, now=NOW, smtp=server.settings())
    assert "451" in info.value.reason and "暂时" in info.value.reason
    assert ledger.get("wudu", delivery.report_sha256, "email")["status"] == "failed"
    server.handler.tempfail = None  # the server recovers; the orchestrator's retry succeeds
    assert deliver_one(delivery, folder, ledger, now=NOW, smtp=server.settings()).status == "delivered"
    assert ledger.get("wudu", delivery.report_sha256, "email")["attempts"] == 2
    assert len(server.handler.got) == 1


def test_connection_dropped_after_the_content_is_uncertain_and_resent_only_on_request(catalogue, recipients, ledger,
                                                                                      v1, smtp_server):
    folder, manifest = v1
    server = smtp_server(drop_first=True)  # receives the content, closes without the final reply (once per mail)
    delivery = make_plan(manifest, recipients, ledger, "email", catalogue).send[0]
    outcome = deliver_one(delivery, folder, ledger, now=NOW, smtp=server.settings())  # no exception: no retry
    assert outcome.status == "uncertain" and "无法确定对方是否已收到" in outcome.error
    assert outcome.message_id == delivery.message_id and len(server.handler.got) == 1
    row = ledger.get(delivery.recipient.id, delivery.report_sha256, "email")
    assert (row["status"], row["attempts"], row["updated_at"], row["last_error"]) == \
        ("uncertain", 1, NOW, outcome.error)

    plan = make_plan(manifest, recipients, ledger, "email", catalogue)
    assert plan.uncertain == [delivery] and delivery not in plan.send and len(plan.send) == 9
    assert describe_held(plan.uncertain)[0].startswith("结果不确定，不会重发（除非加 --resend-uncertain）：")
    again = deliver_one(delivery, folder, ledger, now=LATER, smtp=server.settings())  # a repeated call sends nothing
    assert again.status == "uncertain" and len(server.handler.got) == 1

    assert delivery in make_plan(manifest, recipients, ledger, "email", catalogue, resend_uncertain=True).send
    resent = deliver_one(delivery, folder, ledger, now=LATER, smtp=server.settings(), resend_uncertain=True)
    assert resent.status == "delivered" and len(server.handler.got) == 2  # checked with the recipient: sent again
    assert server.handler.got[1].message["Message-ID"] == delivery.message_id  # recognisably the same mail
    row = ledger.get(delivery.recipient.id, delivery.report_sha256, "email")
    assert (row["status"], row["attempts"], row["first_attempt_at"], row["delivered_at"]) == \
        ("delivered", 2, NOW, LATER)


def test_rows_left_sending_become_uncertain_and_older_rows_keep_working(catalogue, recipients, ledger, v1):
    from sqlalchemy import text

    folder, manifest = v1
    todo = {d.recipient.id: d for d in make_plan(manifest, recipients, ledger, "email", catalogue).send}
    # a run that died between recording the attempt and its outcome (kill -9)
    assert ledger.start(todo["wudu"], NOW)
    # rows as the code before issue 15 wrote them (same table, no migration): delivered, failed, sending
    with ledger.engine.begin() as conn:
        for rid, status in (("xihe", "delivered"), ("lixian", "failed"), ("huixian", "sending")):
            d = todo[rid]
            conn.execute(text(
                "INSERT INTO deliveries (recipient_id, address, county_code, year, version, file_name, report_sha256,"
                " channel, status, attempts, message_id, last_error, first_attempt_at, updated_at, delivered_at)"
                " VALUES (:rid, :address, :code, :year, 1, :file, :sha, 'email', :status, 1, :mid, NULL, :now, :now,"
                " :delivered)"), dict(rid=rid, address=d.recipient.email, code=d.county_code, year=YEAR,
                                      file=d.file_name, sha=d.report_sha256, status=status, mid=d.message_id,
                                      now="2024-01-01T00:00:00+00:00",
                                      delivered="2024-01-01T00:00:00+00:00" if status == "delivered" else None))
    # the lock holder claims nothing another run shows "sending" (two overlapping runs send it once)
    assert not ledger.start(todo["wudu"], LATER)
    assert deliver_one(todo["wudu"], folder, ledger, now=LATER, smtp=_loopback()).status == "uncertain"

    plan = make_plan(manifest, recipients, ledger, "email", catalogue)
    assert sorted(d.recipient.id for d in plan.uncertain) == ["huixian", "wudu"]
    assert [d.recipient.id for d in plan.delivered] == ["xihe"] and "lixian" in {d.recipient.id for d in plan.send}
    assert recover_interrupted(manifest, ledger, "email", LATER) == 2
    for rid in ("wudu", "huixian"):
        row = ledger.get(rid, todo[rid].report_sha256, "email")
        assert (row["status"], row["last_error"], row["updated_at"]) == ("uncertain", INTERRUPTED_ZH, LATER)
    assert recover_interrupted(manifest, ledger, "email", LATER) == 0
    assert ledger.get("lixian", todo["lixian"].report_sha256, "email")["status"] == "failed"

    # outbox: a file write left "sending" is simply written again (the same bytes to the same path)
    box = make_plan(manifest, recipients, ledger, "outbox", catalogue).send
    assert ledger.start(box[0], NOW) and recover_interrupted(manifest, ledger, "outbox", LATER) == 0
    assert box[0] in make_plan(manifest, recipients, ledger, "outbox", catalogue).send


def _loopback():
    """SMTP settings for a port where nothing listens (a test that must not reach any server)."""
    from evaluation.distribution import SmtpSettings
    from tests.smtptools import free_port

    return SmtpSettings(host="127.0.0.1", port=free_port(), security="none", from_address=SENDER, timeout=5)


def test_server_check_sends_nothing(smtp_server):
    server = smtp_server()
    assert check_smtp(server.settings()) is None and server.handler.got == []
    with pytest.raises(DistributionError, match="STARTTLS"):
        check_smtp(server.settings(security="starttls"))
    server.stop()
    with pytest.raises(TransientDeliveryError) as info:
        check_smtp(server.settings())
    assert info.value.unreachable and "连接被拒绝" in info.value.reason


def test_starttls_on_a_server_without_it_is_a_permanent_failure(catalogue, recipients, ledger, v1, smtp_server):
    folder, manifest = v1
    server = smtp_server()
    delivery = make_plan(manifest, recipients, ledger, "email", catalogue).send[0]
    outcome = deliver_one(delivery, folder, ledger, now=NOW, smtp=server.settings(security="starttls"))
    assert outcome.status == "failed" and "STARTTLS" in outcome.error
    assert server.handler.got == []


def test_missing_credentials_are_a_clear_error(catalogue, recipients, ledger, v1, smtp_server, monkeypatch):
    folder, manifest = v1
    server = smtp_server()
    monkeypatch.delenv("TWOMOUNTAINS_TEST_SMTP_USER", raising=False)
    monkeypatch.setenv("TWOMOUNTAINS_TEST_SMTP_PASSWORD", "x")
    settings = server.settings(username_env="TWOMOUNTAINS_TEST_SMTP_USER",
                               password_env="TWOMOUNTAINS_TEST_SMTP_PASSWORD")
    delivery = make_plan(manifest, recipients, ledger, "email", catalogue).send[0]
    with pytest.raises(DistributionError, match="TWOMOUNTAINS_TEST_SMTP_USER") as info:
        deliver_one(delivery, folder, ledger, now=NOW, smtp=settings)
    assert "环境变量" in str(info.value)
    assert ledger.rows() == [] and server.handler.got == []


def test_correction_sends_only_changed_reports_with_revision_notes(catalogue, recipients, ledger, v1, reports,
                                                                   smtp_server):
    folder1, manifest1 = v1
    server = smtp_server()
    _deliver_all(make_plan(manifest1, recipients, ledger, "email", catalogue).send, folder1, ledger,
                 smtp=server.settings())
    assert len(server.handler.got) == 10

    names = _names(catalogue)
    files = {name: (folder1 / name).read_bytes() for name in names.values()}  # carried over byte-identical
    files[names["621221"]] = _pdf(names["621221"], "v2")
    files[names["621200"]] = _pdf(names["621200"], "v2")
    notes = ["“森林覆盖率”由 52.1% 更正为 53.4%（林草局 2024-03-05 更正来函）", "A<B & C > D"]
    carried = {name: 1 for code, name in names.items() if code not in ("621221", "621200")}
    folder2, manifest2 = write_version(reports, 2, files, {"621221": notes, "621200": ["成县数据更正，汇总排名随之更新"]},
                                       carried)
    todo = make_plan(manifest2, recipients, ledger, "email", catalogue).send
    assert [(d.recipient.id, d.version) for d in todo] == [("city-leaders", 2), ("chengxian", 2)]
    assert all("含修订说明" in line for line in describe(todo))
    _deliver_all(todo, folder2, ledger, smtp=server.settings())

    assert len(server.handler.got) == 12
    chengxian = next(r.message for r in server.handler.got[10:] if r.rcpt_tos == ["chengxian@longnan.example"])
    text = chengxian.get_body(preferencelist=("plain",)).get_content()
    html = chengxian.get_body(preferencelist=("html",)).get_content()
    assert "修订说明" in text and all(line in text for line in notes)  # plain text: no HTML entities
    assert "A&lt;B &amp; C &gt; D" in html and "A<B & C" not in html
    assert "修订" in str(chengxian["Subject"]) and chengxian["Message-ID"].endswith(".chengxian.v2@twomountains>")
    assert _attachments(chengxian)[0].get_content() == files[names["621221"]]

    # a further correction of one county that leaves the summary unchanged sends that county only
    files[names["621202"]] = _pdf(names["621202"], "v3")
    _, manifest3 = write_version(reports, 3, files, {"621202": ["武都区数据更正"]},
                                 {**carried, names["621221"]: 2, names["621200"]: 2})
    assert [d.recipient.id for d in make_plan(manifest3, recipients, ledger, "email", catalogue).send] == ["wudu"]


def test_no_header_injection_through_names_or_notes(recipients, smtp_server):
    person = recipients.for_code("621202")[0]
    delivery = Delivery(recipient=person, county_code="621202", year=YEAR, version=1,
                        file_name="621202_武都区_2023年度两山转化绩效评价.pdf", report_sha256="ab" * 32,
                        channel="email", title="武都区\r\nBcc: evil@longnan.example\r\n",
                        revision_lines=("第一行\r\nX-Evil: 1",))
    settings = smtp_server().settings()
    raw = build_message(delivery, b"%PDF-1.7", settings).as_bytes(policy=policy.SMTP)
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert "\n" not in str(parsed["Subject"]) and "Bcc: evil" in str(parsed["Subject"])
    # an id or a file name that would escape the outbox is refused before anything happens
    with pytest.raises(DistributionError):
        replace(delivery, file_name="621202_../../x.pdf").check()


def test_undelivered_carried_report_goes_out_as_its_own_edition(catalogue, recipients, ledger, v1, reports, tmp_path):
    folder1, manifest1 = v1
    outbox = tmp_path / "outbox"
    todo = make_plan(manifest1, recipients, ledger, "outbox", catalogue).send
    _deliver_all([d for d in todo if d.recipient.id != "liangdang"], folder1, ledger, outbox_dir=outbox)

    names = _names(catalogue)
    files = {name: (folder1 / name).read_bytes() for name in names.values()}
    files[names["621202"]] = _pdf(names["621202"], "v2")
    carried = {name: 1 for code, name in names.items() if code != "621202"}
    folder2, manifest2 = write_version(reports, 2, files, {"621202": ["武都区数据更正"]}, carried)
    again = {d.recipient.id: d for d in make_plan(manifest2, recipients, ledger, "outbox", catalogue).send}
    assert sorted(again) == ["liangdang", "wudu"]
    assert again["liangdang"].version == 1 and again["liangdang"].revision_lines == ()
    assert again["wudu"].version == 2 and again["wudu"].revision_lines == ("武都区数据更正",)
    for delivery in again.values():
        assert deliver_one(delivery, folder2, ledger, now=NOW, outbox_dir=outbox).status == "delivered"
    assert (outbox / "liangdang" / str(YEAR) / "v1" / names["621228"]).read_bytes() == files[names["621228"]]
    assert (outbox / "wudu" / str(YEAR) / "v2" / names["621202"]).read_bytes() == files[names["621202"]]


# the distribute-scorecards flow: SMTP login from a Prefect Secret block -----------------

@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # loopback test server
def test_flow_logs_in_with_a_prefect_secret_block(prefect_harness, v1, reports, tmp_path, monkeypatch):
    import json

    from aiosmtpd.smtp import AuthResult
    from prefect.blocks.system import Secret

    from flows.distribute import distribute_scorecards
    from tests.smtptools import free_port

    monkeypatch.delenv("TWOMOUNTAINS_SMTP_USER", raising=False)
    monkeypatch.delenv("TWOMOUNTAINS_SMTP_PASSWORD", raising=False)
    folder, manifest = v1
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    Secret(value={"username": "pingjia", "password": "s3cret"}).save("twomountains-smtp-test", overwrite=True)
    logins: list[bool] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password) == (b"pingjia", b"s3cret"))
        return AuthResult(success=logins[-1])

    handler = Recorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        config = yaml.safe_load(RECIPIENTS_YAML.read_text(encoding="utf-8"))
        config["smtp"].update(host="127.0.0.1", port=port, security="none", timeout=5)
        path = tmp_path / "recipients.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        run = dict(year=YEAR, out_dir=str(reports), channel="email", recipients=str(path), return_state=True)

        refused = distribute_scorecards(**run)  # no secret and no environment variables: refused up front
        assert refused.is_failed() and "TWOMOUNTAINS_SMTP_USER" in refused.result(raise_on_failure=False)["message"]
        assert handler.got == []

        state = distribute_scorecards(**run, smtp_secret="twomountains-smtp-test")
        assert state.is_completed(), state.message
        assert state.result()["counts"]["delivered"] == 10 and len(handler.got) == 10
        assert logins == [True] * 11  # the server check before sending, then one login per mail
    finally:
        controller.stop()

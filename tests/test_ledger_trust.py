"""The submission ledger keeps one truth: a submission is its bureau, year and bytes; at most one is
current per bureau and year, whatever the race; an older ledger is migrated. SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from evaluation.ingest import Received, parse, receive, submission_id
from evaluation.ledger import Ledger
from tests.conftest import SAMPLE

ECO_2022 = "生态环境局_2022年生态环境质量.csv"
ECO_2023 = "生态环境局_2023年生态环境质量.csv"


def _accept(ledger: Ledger, received: Received, catalogue, at: str, reason: str = ""):
    facts = parse(received, catalogue.sources[received.department], catalogue).facts(catalogue)
    return ledger.record(received, status="accepted", received_at=at, facts=facts, reason=reason)


def test_last_years_file_sent_as_this_year_is_a_new_submission(catalogue, tmp_path, ledger_url):
    """Defect: the ledger skipped a file whose bytes it held, whatever year it was sent for, so
    `history` showed nothing for the year while the scorecard printed last year's figures."""
    with Ledger.at(tmp_path / "reports", ledger_url) as ledger:
        data = (SAMPLE / "2022" / ECO_2022).read_bytes()
        last_year = Received("eco", 2022, "folder", "x", ECO_2022, data, "csv")
        again = Received("eco", 2023, "folder", "x", ECO_2023, data, "csv")
        assert last_year.sha256 == again.sha256 and last_year.submission_id != again.submission_id
        first = _accept(ledger, last_year, catalogue, "2023-02-01T00:00:00+00:00")
        second = _accept(ledger, again, catalogue, "2024-02-01T00:00:00+00:00")
        assert first.new and second.new
        assert ledger.current("eco", 2023)["id"] == again.submission_id
        facts = ledger.facts(2023)
        assert len(facts) == 9 * len(catalogue.department_variables("eco")) and (facts["submission_id"] == again.submission_id).all()
        assert (facts["sha256"] == again.sha256).all()
        assert [s["year"] for s in ledger.same_bytes(again)] == [2022]  # so the sender can be told
        assert ledger.raw_bytes(again.submission_id) == data
        assert ledger.verify() == []


def test_a_file_rejected_under_the_wrong_bureau_takes_effect_under_the_right_one(catalogue, tmp_path, ledger_url):
    with Ledger.at(tmp_path / "reports", ledger_url) as ledger:
        data = (SAMPLE / "2023" / ECO_2023).read_bytes()
        wrong = Received("water", 2023, "folder", "x", ECO_2023, data, "csv")
        ledger.record(wrong, status="rejected", received_at="2024-02-01T00:00:00+00:00", reason="更正")
        right = Received("eco", 2023, "folder", "x", ECO_2023, data, "csv")
        recorded = _accept(ledger, right, catalogue, "2024-02-01T00:05:00+00:00", reason="更正")
        assert recorded.new
        assert ledger.current("eco", 2023)["id"] == right.submission_id
        assert ledger.current("water", 2023) is None
        assert not ledger.facts(2023).empty
        assert ledger.verify() == []


def _record_many(url: str, out: str, lock: bool, worker: int, rounds: int, barrier) -> None:
    """Record `rounds` corrections of eco 2023, in step with the other worker."""
    from evaluation.catalogue import load_catalogue

    catalogue = load_catalogue()
    source = catalogue.sources["eco"]
    base = (SAMPLE / "2023" / ECO_2023).read_text(encoding="utf-8")
    with Ledger(url, Path(out) / "ledger" / "store", lock_dir=out if lock else None) as ledger:
        for i in range(rounds):
            data = base.encode("utf-8") + b"\n" + b" " * (worker * 1000 + i + 1)  # same figures, other bytes
            received = Received("eco", 2023, "folder", "x", f"更正{worker}_{i}.csv", data, "csv")
            facts = parse(received, source, catalogue).facts(catalogue)
            barrier.wait(timeout=60)
            ledger.record(received, status="accepted", received_at=f"2024-02-01T00:{i:02d}:0{worker}+00:00",
                          facts=facts, reason="更正")


@pytest.mark.parametrize("with_year_lock", [True, False], ids=["year-lock", "database-only"])
def test_two_corrections_at_the_same_moment_leave_one_current(catalogue, tmp_path, ledger_url, with_year_lock):
    """Defect: two corrections of the same bureau and year recorded at the same moment could leave two
    "current" submissions. Two processes record 6 corrections each, released together by a barrier;
    with the reports folder's year lock, and with the database's unique index alone (another machine
    sharing a PostgreSQL ledger holds no lock of ours)."""
    out = tmp_path / "reports"
    with Ledger.at(out, ledger_url):
        pass  # tables exist before the race starts
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_record_many, args=(ledger_url, str(out), with_year_lock, w, 6, barrier))
             for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0, 0]
    with Ledger.at(out, ledger_url) as ledger:
        subs = ledger.submissions(2023, "eco")
        assert len(subs) == 12
        current = [s for s in subs if s["status"] == "accepted" and s["superseded_by"] is None]
        assert len(current) == 1
        assert ledger.verify() == []


# The schema of the first ledger (id = sha256 of the bytes; facts.indicator_id), as that code created it.
V1_SCHEMA = [
    """CREATE TABLE submissions (id VARCHAR(64) PRIMARY KEY, department VARCHAR(32), year INTEGER, kind VARCHAR(16),
       location TEXT, original_name TEXT, size INTEGER, received_at VARCHAR(40), status VARCHAR(16),
       supersedes VARCHAR(64), superseded_by VARCHAR(64), findings TEXT, reason TEXT)""",
    """CREATE TABLE facts (id {serial} PRIMARY KEY, submission_id VARCHAR(64) REFERENCES submissions(id),
       county_code VARCHAR(6), year INTEGER, indicator_id VARCHAR(64), value FLOAT, unit VARCHAR(32),
       department VARCHAR(32), sheet TEXT, "row" INTEGER)""",
]


def test_a_ledger_of_the_first_schema_is_migrated(catalogue, tmp_path, ledger_url):
    out = tmp_path / "reports"
    first = receive(catalogue.sources["eco"], 2023, SAMPLE)
    fixed = Received("eco", 2023, "folder", "x", "更正.csv", first.data.replace(b"\n", b"\n", 1) + b"\n", "csv")
    engine = create_engine(ledger_url)
    serial = "SERIAL" if ledger_url.startswith("postgresql") else "INTEGER"
    with engine.begin() as conn:
        for statement in V1_SCHEMA:
            conn.execute(text(statement.format(serial=serial)))
        for received, superseded_by, supersedes in ((first, fixed.sha256, None), (fixed, None, first.sha256)):
            conn.execute(text(
                "INSERT INTO submissions VALUES (:id, 'eco', 2023, 'folder', 'x', :name, :size, :at, 'accepted', "
                ":supersedes, :superseded_by, '[]', '')"),
                {"id": received.sha256, "name": received.original_name, "size": len(received.data),
                 "at": "2024-02-0%dT00:00:00+00:00" % (1 if supersedes is None else 2),
                 "supersedes": supersedes, "superseded_by": superseded_by})
            facts = parse(received, catalogue.sources["eco"], catalogue).facts(catalogue)
            for f in facts.itertuples():
                conn.execute(text(
                    'INSERT INTO facts (submission_id, county_code, year, indicator_id, value, unit, department, '
                    'sheet, "row") VALUES (:sid, :c, 2023, :v, :val, :u, \'eco\', \'\', :r)'),
                    {"sid": received.sha256, "c": f.county_code, "v": f.variable_id, "val": float(f.value),
                     "u": f.unit, "r": int(f.row)})
    engine.dispose()
    store = out / "ledger" / "store"
    for received in (first, fixed):  # the old store was keyed by the same sha256
        (store / received.sha256[:2]).mkdir(parents=True, exist_ok=True)
        (store / received.sha256[:2] / received.sha256).write_bytes(received.data)

    with Ledger.at(out, ledger_url) as ledger:
        subs = {s["id"]: s for s in ledger.submissions(2023)}
        assert set(subs) == {first.submission_id, fixed.submission_id}
        assert subs[first.submission_id]["superseded_by"] == fixed.submission_id
        assert subs[fixed.submission_id]["supersedes"] == first.submission_id
        assert subs[fixed.submission_id]["sha256"] == fixed.sha256
        assert ledger.current("eco", 2023)["id"] == fixed.submission_id
        assert set(ledger.facts(2023)["submission_id"]) == {fixed.submission_id}
        assert len(ledger.facts(2023, current_only=False)) == 2 * 9 * len(catalogue.department_variables("eco"))
        assert set(ledger.facts(2023)["variable_id"]) == {v.id for v in catalogue.department_variables("eco")}
        assert ledger.raw_bytes(first.submission_id) == first.data
        assert ledger.verify() == []
        # recording the same bytes again is recognised under the new identity
        assert not _accept(ledger, fixed, catalogue, "2024-03-01T00:00:00+00:00").new
    with Ledger.at(out, ledger_url) as ledger:  # opening a migrated ledger again changes nothing
        assert ledger.verify() == [] and len(ledger.submissions(2023)) == 2


def test_manifests_of_the_first_schema_name_their_inputs_under_the_new_ids():
    from evaluation.pipeline import manifest_inputs

    sha = "ab" * 32
    old = {"year": 2023, "inputs": [{"department": "eco", "submission_id": sha, "file": "x.csv", "status": "accepted"}]}
    new = {"year": 2023, "inputs": [{"department": "eco", "submission_id": "cd" * 32, "sha256": sha}]}
    assert manifest_inputs(old) == {"eco": submission_id("eco", 2023, sha)}
    assert manifest_inputs(new) == {"eco": "cd" * 32}


def test_recording_waits_for_the_year_and_says_who_holds_it(catalogue, tmp_path):
    from evaluation.errors import Busy, ExitCode
    from evaluation.ledger import LOCK_WAIT

    out = tmp_path / "reports"
    received = receive(catalogue.sources["eco"], 2023, SAMPLE)
    ctx = multiprocessing.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_year, args=(str(out), holding, release))
    holder.start()
    try:
        assert holding.wait(60)
        with Ledger.at(out) as ledger, pytest.raises(Busy) as raised:
            assert ledger.lock_wait == LOCK_WAIT
            ledger.lock_wait = 0.5
            ledger.record(received, status="rejected", received_at="2024-02-01T00:00:00+00:00")
        assert raised.value.code == ExitCode.BUSY
        assert f"进程 {holder.pid}（annual-evaluation test" in raised.value.message
    finally:
        release.set()
        holder.join(30)
    with Ledger.at(out) as ledger:  # free again: recorded
        assert ledger.record(received, status="rejected", received_at="2024-02-01T00:00:00+00:00").new


def _hold_year(out: str, holding, release) -> None:
    from evaluation.versions import year_lock

    with year_lock(out, 2023, what="annual-evaluation test"):
        holding.set()
        release.wait(60)

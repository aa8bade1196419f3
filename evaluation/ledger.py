"""The submission ledger: what was received, when, from where, and what became of it.

- A submission is a bureau's bytes for a year. Its id hashes the bureau, the year and the
  sha256 of the bytes (`evaluation.ingest.submission_id`): the same file sent twice for the
  same bureau and year is one submission; the same bytes sent for another year or bureau
  are another (and `same_bytes` finds the earlier one, so the sender can be warned).
- The bytes are kept in a content-addressed store (`<store>/<sha256[:2]>/<sha256>`), so any
  figure can be re-derived from the exact bytes.
- Accepted submissions have their facts stored with provenance (sheet, row).
- A newer accepted submission for the same bureau and year supersedes the older one
  (`supersedes` / `superseded_by`). Nothing is ever deleted. At most one submission per bureau
  and year is current: recording takes the year's lock (`versions.year_lock`) and a partial
  unique index makes the database refuse a second current one, whatever the race.
- Older ledgers (ids that were the bare sha256) are migrated on open (`SCHEMA_VERSION`).

SQLAlchemy 2; SQLite by default, any SQLAlchemy URL (e.g. PostgreSQL) at scale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from evaluation.fsutil import atomic_write
from evaluation.ingest import FACT_COLUMNS, Received, submission_id as make_submission_id
from evaluation.workspace import LEDGER_ENV

SCHEMA_VERSION = 4  # 1: id = sha256 of the bytes; 2: id = (bureau, year, bytes), sha256 column, one current;
# 3: facts.indicator_id renamed variable_id (it always held variable ids: gep, population);
# 4: submissions.submitted_by (the portal account that submitted it; empty for the other sources)
LOCK_WAIT = 30.0  # seconds a recording waits for the year's lock (a run holds it while it records)

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


class SubmissionRow(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        # at most one current accepted submission per bureau and year, enforced by the database
        Index("uq_current_submission", "department", "year", unique=True,
              sqlite_where=text("status = 'accepted' AND superseded_by IS NULL"),
              postgresql_where=text("status = 'accepted' AND superseded_by IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # evaluation.ingest.submission_id
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the received bytes
    department: Mapped[str] = mapped_column(String(32), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # folder, http, sql, portal
    location: Mapped[str] = mapped_column(Text)
    original_name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # accepted, rejected, unreadable
    supersedes: Mapped[str | None] = mapped_column(String(64), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    findings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was sent (corrections)
    submitted_by: Mapped[str] = mapped_column(String(64), default="")  # the portal account, if any


class FactRow(Base):
    __tablename__ = "facts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    variable_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(32))
    sheet: Mapped[str] = mapped_column(Text)
    row: Mapped[int] = mapped_column(Integer)


def _fact_rows(submission_id: str, facts: pd.DataFrame) -> list[dict]:
    """The facts table's rows of a submission, as plain dicts with Python values (a missing value is NULL)."""
    f = facts[FACT_COLUMNS]
    values = f["value"].astype("float64")
    columns = {
        "county_code": f["county_code"].astype(str).tolist(),
        "year": [int(y) for y in f["year"]],
        "variable_id": f["variable_id"].astype(str).tolist(),
        "value": [None if v != v else v for v in values.tolist()],
        "unit": f["unit"].astype(str).tolist(),
        "department": f["department"].astype(str).tolist(),
        "sheet": f["sheet"].astype(str).tolist(),
        "row": [int(r) for r in f["row"]],
    }
    names = list(columns)
    return [{"submission_id": submission_id, **dict(zip(names, cells))} for cells in zip(*columns.values())]


@dataclass(frozen=True)
class Recorded:
    submission_id: str
    new: bool  # False when this bureau's bytes for this year were already in the ledger
    supersedes: str | None


def default_url(out_dir: Path | str) -> str:
    env = os.environ.get(LEDGER_ENV)
    if env:
        return env
    path = Path(out_dir).resolve() / "ledger" / "ledger.sqlite"
    return f"sqlite:///{path}"


def make_engine(url: str):
    """An engine for a ledger database (the submission and delivery ledgers share one)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # wait for another process's write instead of failing at once with "database is locked"
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url)


def create_tables(engine, metadata) -> None:
    """create_all, tolerating another process creating the same tables at the same moment."""
    for attempt in range(5):
        try:
            metadata.create_all(engine)
            return
        except (OperationalError, IntegrityError) as exc:  # "table ... already exists" from a concurrent create
            if attempt == 4:
                raise
            log.debug("create_all raced another process (%s); retrying", exc)


class Ledger:
    def __init__(self, url: str, store_dir: Path | str, lock_dir: Path | str | None = None):
        """lock_dir: the reports folder whose year locks recording takes (None: the database's
        unique index alone keeps one current submission per bureau and year)."""
        self.url = url
        self.engine = make_engine(url)
        _migrate(self.engine)
        create_tables(self.engine, Base.metadata)
        self.store = Path(store_dir)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else None
        self.lock_wait = LOCK_WAIT

    @classmethod
    def at(cls, out_dir: Path | str, url: str | None = None) -> "Ledger":
        """The ledger of a report folder: SQLite at <out>/ledger/ unless a URL is given."""
        return cls(url or default_url(out_dir), Path(out_dir) / "ledger" / "store", lock_dir=out_dir)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # content store -------------------------------------------------------------

    def _blob(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.store / sha256[:2] / sha256

    def keep_bytes(self, received: Received) -> Path:
        path = self._blob(received.sha256)
        if not path.exists():
            atomic_write(path, received.data)
        return path

    def stored(self, sha256: str) -> bytes:
        """Bytes kept in the content store under their sha256 (KeyError when not kept)."""
        path = self._blob(sha256)
        if not path.is_file():
            raise KeyError(sha256)
        return path.read_bytes()

    def raw_bytes(self, submission_id: str) -> bytes:
        """The bytes of a submission (by its id) as received."""
        sub = self.submission(submission_id)
        if sub is None:
            raise KeyError(submission_id)
        return self._blob(sub["sha256"]).read_bytes()

    # recording -----------------------------------------------------------------

    def record(self, received: Received, *, status: str, received_at: str, facts: pd.DataFrame | None = None,
               findings: list[dict] | None = None, reason: str = "", submitted_by: str = "") -> Recorded:
        """Record a received submission once; an accepted one supersedes the bureau's current one for the year.

        Takes the year's lock (when the ledger belongs to a reports folder) and retries when
        the database refuses a concurrent second current submission.
        """
        self.keep_bytes(received)
        if self.lock_dir is None:
            return self._record(received, status, received_at, facts, findings, reason, submitted_by)
        from evaluation.versions import year_lock

        with year_lock(self.lock_dir, received.year, wait=self.lock_wait, what="recording a submission"):
            return self._record(received, status, received_at, facts, findings, reason, submitted_by)

    def _record(self, received: Received, status: str, received_at: str, facts: pd.DataFrame | None,
                findings: list[dict] | None, reason: str, submitted_by: str = "") -> Recorded:
        for attempt in range(5):
            try:
                return self._record_once(received, status, received_at, facts, findings, reason, submitted_by)
            except IntegrityError:
                # another process recorded this submission, or a current one, at the same moment: look again
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _record_once(self, received: Received, status: str, received_at: str, facts: pd.DataFrame | None,
                     findings: list[dict] | None, reason: str, submitted_by: str = "") -> Recorded:
        sid = received.submission_id
        with Session(self.engine) as session, session.begin():
            existing = session.get(SubmissionRow, sid)
            if existing is not None:
                return Recorded(sid, False, existing.supersedes)
            previous = None
            if status == "accepted":
                previous = session.scalars(
                    select(SubmissionRow).where(
                        SubmissionRow.department == received.department, SubmissionRow.year == received.year,
                        SubmissionRow.status == "accepted", SubmissionRow.superseded_by.is_(None),
                    ).with_for_update()
                ).first()
            if previous is not None:  # first, so that two current rows never exist, even inside this transaction
                previous.superseded_by = sid
                session.flush()
            session.add(SubmissionRow(
                id=sid, sha256=received.sha256, department=received.department, year=received.year,
                kind=received.kind, location=received.location, original_name=received.original_name,
                size=len(received.data), received_at=received_at, status=status,
                supersedes=previous.id if previous else None, superseded_by=None,
                findings=json.dumps(findings or [], ensure_ascii=False), reason=reason, submitted_by=submitted_by,
            ))
            session.flush()  # the submission exists before anything points at it
            if status == "accepted" and facts is not None and not facts.empty:
                # One executemany of plain rows (SQLAlchemy Core), not an ORM object per fact: a national table
                # has tens of thousands of facts, and the unit of work took about 40 s for a year's eight tables.
                session.execute(insert(FactRow.__table__), _fact_rows(sid, facts))
            return Recorded(sid, True, previous.id if previous else None)

    # queries -------------------------------------------------------------------

    def submissions(self, year: int | None = None, department: str | None = None) -> list[dict]:
        with Session(self.engine) as session:
            query = select(SubmissionRow)
            if year is not None:
                query = query.where(SubmissionRow.year == year)
            if department is not None:
                query = query.where(SubmissionRow.department == department)
            rows = session.scalars(query.order_by(SubmissionRow.department, SubmissionRow.received_at)).all()
            return [
                {c.name: getattr(r, c.name) for c in SubmissionRow.__table__.columns} for r in rows
            ]

    def submission(self, submission_id: str) -> dict | None:
        with Session(self.engine) as session:
            row = session.get(SubmissionRow, submission_id)
            return None if row is None else {c.name: getattr(row, c.name) for c in SubmissionRow.__table__.columns}

    def received(self, submission_id: str) -> Received:
        """A recorded submission's bytes as received (from the content store)."""
        sub = self.submission(submission_id)
        if sub is None:
            raise KeyError(submission_id)
        suffix = Path(sub["original_name"]).suffix.lower().lstrip(".")
        fmt = {"xlsm": "xlsx"}.get(suffix, suffix if suffix in ("xlsx", "csv", "json") else "csv")
        return Received(sub["department"], int(sub["year"]), sub["kind"], sub["location"], sub["original_name"],
                        self._blob(sub["sha256"]).read_bytes(), fmt)

    def same_bytes(self, received: Received) -> list[dict]:
        """Other submissions (another year or bureau) of exactly these bytes, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(SubmissionRow).where(SubmissionRow.sha256 == received.sha256,
                                            SubmissionRow.id != received.submission_id)
                .order_by(SubmissionRow.received_at)).all()
            return [{c.name: getattr(r, c.name) for c in SubmissionRow.__table__.columns} for r in rows]

    def verify(self) -> list[str]:
        """Consistency problems (empty when sound): every submission's bytes are stored and hash
        to its sha256; its id is that of its bureau, year and bytes; at most one current accepted
        submission per bureau and year; supersede links point both ways; facts belong to accepted
        submissions only."""
        problems = []
        subs = {s["id"]: s for s in self.submissions()}
        current: dict[tuple[str, int], list[str]] = {}
        for sid, s in subs.items():
            path = self._blob(s["sha256"])
            if not path.exists():
                problems.append(f"{sid[:12]}: bytes missing from the store")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != s["sha256"]:
                problems.append(f"{sid[:12]}: stored bytes do not match their sha256")
            if make_submission_id(s["department"], s["year"], s["sha256"]) != sid:
                problems.append(f"{sid[:12]}: id does not match its bureau, year and bytes")
            if s["status"] == "accepted" and s["superseded_by"] is None:
                current.setdefault((s["department"], s["year"]), []).append(sid)
            if s["supersedes"] and subs.get(s["supersedes"], {}).get("superseded_by") != sid:
                problems.append(f"{sid[:12]}: supersedes {s['supersedes'][:12]}, which does not point back")
        problems += [f"{d} {y}: {len(ids)} current submissions" for (d, y), ids in current.items() if len(ids) > 1]
        with Session(self.engine) as session:
            for sid in session.scalars(select(FactRow.submission_id).distinct()):
                if subs.get(sid, {}).get("status") != "accepted":
                    problems.append(f"{sid[:12]}: facts recorded for a submission that is not accepted")
        return problems

    def current(self, department: str, year: int) -> dict | None:
        for sub in self.submissions(year, department):
            if sub["status"] == "accepted" and sub["superseded_by"] is None:
                return sub
        return None

    def facts(self, year: int, county: str | None = None, *, current_only: bool = True) -> pd.DataFrame:
        """Facts with provenance (submission hash, original file, sheet, row)."""
        # plain columns, not ORM objects: at 300 counties (8,100 facts a year) building an object per row
        # made each call 0.32 s instead of 0.065 s on a quiet machine, and over a second on a busy one
        query = (
            select(*(FactRow.__table__.c[c] for c in FACT_COLUMNS), SubmissionRow.original_name,
                   SubmissionRow.received_at, SubmissionRow.superseded_by, SubmissionRow.sha256)
            .join(SubmissionRow, FactRow.submission_id == SubmissionRow.id)
            .where(FactRow.year == year)
        )
        if county is not None:
            query = query.where(FactRow.county_code == county)
        if current_only:
            query = query.where(SubmissionRow.superseded_by.is_(None))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        columns = FACT_COLUMNS + ["original_name", "received_at", "superseded_by", "sha256"]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame.sort_values(["county_code", "department", "variable_id", "received_at"]).reset_index(drop=True)

    def departments_with_facts(self, year: int) -> set[str]:
        """The bureaus whose current submission for `year` holds accepted figures."""
        query = (select(FactRow.department).distinct()
                 .join(SubmissionRow, FactRow.submission_id == SubmissionRow.id)
                 .where(FactRow.year == year, SubmissionRow.superseded_by.is_(None)))
        with self.engine.connect() as connection:
            return set(connection.scalars(query))


# -- schema migration -------------------------------------------------------------


def _migrate(engine) -> None:
    """Bring an existing ledger to SCHEMA_VERSION (a new one is simply created)."""
    names = set(inspect(engine).get_table_names())
    if "submissions" not in names:
        return
    _migrate_step(engine, "submissions", lambda cols: "sha256" not in cols, _migrate_1_to_2)
    if "facts" in names:
        _migrate_step(engine, "facts", lambda cols: "indicator_id" in cols, _migrate_2_to_3)
    _migrate_step(engine, "submissions", lambda cols: "submitted_by" not in cols, _migrate_3_to_4)


def _migrate_step(engine, table: str, needed, step) -> None:
    """Run `step` in one transaction when `needed(columns of table)`; another process doing the same
    at the same moment is fine if the step is done afterwards."""
    if not needed({c["name"] for c in inspect(engine).get_columns(table)}):
        return
    try:
        with engine.begin() as conn:
            step(conn)
    except (OperationalError, IntegrityError, ProgrammingError):
        if needed({c["name"] for c in inspect(engine).get_columns(table)}):
            raise


def _migrate_3_to_4(conn) -> None:
    conn.execute(text("ALTER TABLE submissions ADD COLUMN submitted_by VARCHAR(64) DEFAULT '' NOT NULL"))
    log.info("ledger migrated to schema 4 (submissions.submitted_by)")


def _migrate_2_to_3(conn) -> None:
    conn.execute(text("ALTER TABLE facts RENAME COLUMN indicator_id TO variable_id"))
    log.info("ledger migrated to schema %d (facts.variable_id)", SCHEMA_VERSION)


def _migrate_1_to_2(conn) -> None:
    """Ids were the sha256 of the bytes; now they are (bureau, year, bytes). Old rows are copied
    under their new ids (so foreign keys hold throughout), facts and supersede links follow, and
    any bureau-year left with two current submissions by the old race keeps the latest as current."""
    conn.execute(text("ALTER TABLE submissions ADD COLUMN sha256 VARCHAR(64)"))
    rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM submissions"))]
    new_id = {r["id"]: make_submission_id(r["department"], r["year"], r["id"]) for r in rows}
    insert = text(
        "INSERT INTO submissions (id, sha256, department, year, kind, location, original_name, size, received_at, "
        "status, supersedes, superseded_by, findings, reason) VALUES (:id, :sha256, :department, :year, :kind, "
        ":location, :original_name, :size, :received_at, :status, :supersedes, :superseded_by, :findings, :reason)")
    for r in rows:
        conn.execute(insert, {**r, "id": new_id[r["id"]], "sha256": r["id"],
                              "supersedes": new_id.get(r["supersedes"], r["supersedes"]),
                              "superseded_by": new_id.get(r["superseded_by"], r["superseded_by"])})
    for old, new in new_id.items():
        conn.execute(text("UPDATE facts SET submission_id = :new WHERE submission_id = :old"), {"new": new, "old": old})
    for old in new_id:
        conn.execute(text("DELETE FROM submissions WHERE id = :old"), {"old": old})
    current: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        if r["status"] == "accepted" and r["superseded_by"] is None:
            current.setdefault((r["department"], r["year"]), []).append(r)
    for (department, year), subs in current.items():
        if len(subs) < 2:
            continue
        subs.sort(key=lambda r: r["received_at"])
        latest = new_id[subs[-1]["id"]]
        log.warning("ledger migration: %s %s had %d current submissions; %s stays current", department, year,
                    len(subs), latest[:12])
        for r in subs[:-1]:
            conn.execute(text("UPDATE submissions SET superseded_by = :latest WHERE id = :id"),
                         {"latest": latest, "id": new_id[r["id"]]})
    for index in SubmissionRow.__table__.indexes:
        index.create(conn, checkfirst=True)
    log.info("ledger migrated to schema 2 (%d submissions)", len(rows))

"""The submission ledger: what was received, when, from where, and what became of it.

- A submission's id is the sha256 of the received bytes; the bytes are kept in a
  content-addressed store (`<store>/<id[:2]>/<id>`), so the same file twice is one
  submission and any figure can be re-derived from the exact bytes.
- Accepted submissions have their facts stored with provenance (sheet, row).
- A newer accepted submission for the same bureau and year supersedes the older one
  (`supersedes` / `superseded_by`). Nothing is ever deleted.

SQLAlchemy 2; SQLite by default, any SQLAlchemy URL (e.g. PostgreSQL) at scale.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Float, ForeignKey, Integer, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from evaluation.fsutil import atomic_write
from evaluation.ingest import FACT_COLUMNS, Received

LEDGER_ENV = "TWOMOUNTAINS_LEDGER_URL"


class Base(DeclarativeBase):
    pass


class SubmissionRow(Base):
    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the received bytes
    department: Mapped[str] = mapped_column(String(32), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # folder, http, sql
    location: Mapped[str] = mapped_column(Text)
    original_name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # accepted, rejected, unreadable
    supersedes: Mapped[str | None] = mapped_column(String(64), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    findings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was sent (corrections)


class FactRow(Base):
    __tablename__ = "facts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    indicator_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(32))
    sheet: Mapped[str] = mapped_column(Text)
    row: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Recorded:
    submission_id: str
    new: bool  # False when these exact bytes were already in the ledger
    supersedes: str | None


def default_url(out_dir: Path | str) -> str:
    env = os.environ.get(LEDGER_ENV)
    if env:
        return env
    path = Path(out_dir).resolve() / "ledger" / "ledger.sqlite"
    return f"sqlite:///{path}"


class Ledger:
    def __init__(self, url: str, store_dir: Path | str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = create_engine(url)
        Base.metadata.create_all(self.engine)
        self.store = Path(store_dir)

    @classmethod
    def at(cls, out_dir: Path | str, url: str | None = None) -> "Ledger":
        """The ledger of a report folder: SQLite at <out>/ledger/ unless a URL is given."""
        return cls(url or default_url(out_dir), Path(out_dir) / "ledger" / "store")

    def close(self) -> None:
        self.engine.dispose()

    # content store -------------------------------------------------------------

    def _blob(self, submission_id: str) -> Path:
        if len(submission_id) != 64 or not all(c in "0123456789abcdef" for c in submission_id):
            raise ValueError(f"not a submission id: {submission_id!r}")
        return self.store / submission_id[:2] / submission_id

    def keep_bytes(self, received: Received) -> Path:
        path = self._blob(received.submission_id)
        if not path.exists():
            atomic_write(path, received.data)
        return path

    def raw_bytes(self, submission_id: str) -> bytes:
        return self._blob(submission_id).read_bytes()

    # recording -----------------------------------------------------------------

    def record(self, received: Received, *, status: str, received_at: str, facts: pd.DataFrame | None = None,
               findings: list[dict] | None = None, reason: str = "") -> Recorded:
        """Record a received submission once; an accepted one supersedes the bureau's current one for the year."""
        sid = received.submission_id
        self.keep_bytes(received)
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
                    )
                ).first()
            row = SubmissionRow(
                id=sid, department=received.department, year=received.year, kind=received.kind,
                location=received.location, original_name=received.original_name, size=len(received.data),
                received_at=received_at, status=status, supersedes=previous.id if previous else None,
                superseded_by=None, findings=json.dumps(findings or [], ensure_ascii=False), reason=reason,
            )
            session.add(row)
            session.flush()  # the submission exists before anything points at it
            if previous is not None:
                previous.superseded_by = sid
            if status == "accepted" and facts is not None and not facts.empty:
                session.add_all(
                    FactRow(submission_id=sid, county_code=str(f.county_code), year=int(f.year),
                            indicator_id=str(f.indicator_id), value=None if pd.isna(f.value) else float(f.value),
                            unit=str(f.unit), department=str(f.department), sheet=str(f.sheet), row=int(f.row))
                    for f in facts[FACT_COLUMNS].itertuples(index=False)
                )
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
                        self.raw_bytes(submission_id), fmt)

    def verify(self) -> list[str]:
        """Consistency problems (empty when sound): every submission's bytes are stored and hash
        to its id; at most one current accepted submission per bureau and year; supersede links
        point both ways; facts belong to accepted submissions only."""
        problems = []
        subs = {s["id"]: s for s in self.submissions()}
        current: dict[tuple[str, int], list[str]] = {}
        for sid, s in subs.items():
            path = self._blob(sid)
            if not path.exists():
                problems.append(f"{sid[:12]}: bytes missing from the store")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != sid:
                problems.append(f"{sid[:12]}: stored bytes do not match the id")
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
        with Session(self.engine) as session:
            query = (
                select(FactRow, SubmissionRow.original_name, SubmissionRow.received_at, SubmissionRow.superseded_by)
                .join(SubmissionRow, FactRow.submission_id == SubmissionRow.id)
                .where(FactRow.year == year)
            )
            if county is not None:
                query = query.where(FactRow.county_code == county)
            if current_only:
                query = query.where(SubmissionRow.superseded_by.is_(None))
            records = [
                {**{c: getattr(f, c) for c in FACT_COLUMNS}, "original_name": name, "received_at": at,
                 "superseded_by": sup}
                for f, name, at, sup in session.execute(query).all()
            ]
        columns = FACT_COLUMNS + ["original_name", "received_at", "superseded_by"]
        frame = pd.DataFrame.from_records(records, columns=columns)
        return frame.sort_values(["county_code", "department", "indicator_id", "received_at"]).reset_index(drop=True)

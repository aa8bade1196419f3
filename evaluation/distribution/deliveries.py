"""The delivery ledger: which report went to whom, over which channel, and how it went.

One row per (recipient, report bytes, channel), keyed by the report's sha256, so:

- a rerun sends only what is not yet ``delivered``;
- after a correction, reports carried over byte-identical are recognised as already
  delivered and only changed ones go out;
- every attempt is counted, and the last error is kept (in Chinese, for people).

``start`` commits the row as ``sending`` *before* anything is sent, and
``succeed``/``fail`` commit afterwards. A crash between an accepted send and
``succeed`` leaves the row ``sending``; the next run sends it again with the same
deterministic Message-ID (at-least-once delivery, recognisable duplicates).

The table lives in its own ``DeclarativeBase`` but in the same database as the
submission ledger (SQLite at ``<out>/ledger/ledger.sqlite`` by default, any
SQLAlchemy URL allowed).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, Text, UniqueConstraint, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

if TYPE_CHECKING:
    from evaluation.distribution.model import Delivery


class DeliveryBase(DeclarativeBase):
    pass


class DeliveryRow(DeliveryBase):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("recipient_id", "report_sha256", "channel", name="uq_delivery"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient_id: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(Text)
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(Text)
    report_sha256: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # outbox, email
    status: Mapped[str] = mapped_column(String(16))  # sending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # Chinese, for people
    first_attempt_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))
    delivered_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class DeliveryLedger:
    """Record and query deliveries; safe to share a database with ``evaluation.ledger.Ledger``."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = create_engine(url)
        DeliveryBase.metadata.create_all(self.engine)

    @classmethod
    def at(cls, out_dir: Path | str, url: str | None = None) -> "DeliveryLedger":
        """The delivery ledger of a report folder: the submission ledger's database unless a URL is given."""
        from evaluation.ledger import default_url

        return cls(url or default_url(out_dir))

    def close(self) -> None:
        self.engine.dispose()

    # queries -------------------------------------------------------------------

    def _row(self, session: Session, recipient_id: str, sha256: str, channel: str) -> DeliveryRow | None:
        return session.scalars(
            select(DeliveryRow).where(
                DeliveryRow.recipient_id == recipient_id, DeliveryRow.report_sha256 == sha256,
                DeliveryRow.channel == channel,
            )
        ).first()

    def delivered(self, recipient_id: str, sha256: str, channel: str) -> bool:
        """True when these exact report bytes already reached this recipient over this channel."""
        with Session(self.engine) as session:
            row = self._row(session, recipient_id, sha256, channel)
            return row is not None and row.status == "delivered"

    def get(self, recipient_id: str, sha256: str, channel: str) -> dict | None:
        with Session(self.engine) as session:
            row = self._row(session, recipient_id, sha256, channel)
            return _as_dict(row) if row is not None else None

    def rows(self, year: int | None = None, version: int | None = None) -> list[dict]:
        """All deliveries (optionally of one year / version), ordered by code, recipient and channel."""
        with Session(self.engine) as session:
            query = select(DeliveryRow)
            if year is not None:
                query = query.where(DeliveryRow.year == year)
            if version is not None:
                query = query.where(DeliveryRow.version == version)
            query = query.order_by(DeliveryRow.county_code, DeliveryRow.recipient_id, DeliveryRow.channel,
                                   DeliveryRow.id)
            return [_as_dict(r) for r in session.scalars(query).all()]

    # recording -----------------------------------------------------------------

    def start(self, delivery: "Delivery") -> bool:
        """Record an attempt as ``sending`` and commit; False (nothing changed) if already delivered."""
        key = (delivery.recipient.id, delivery.report_sha256, delivery.channel)
        for _ in range(2):  # a concurrent insert of the same key turns the second try into an update
            try:
                with Session(self.engine) as session, session.begin():
                    row = self._row(session, *key)
                    if row is not None and row.status == "delivered":
                        return False
                    now = _now()
                    if row is None:
                        row = DeliveryRow(recipient_id=key[0], report_sha256=key[1], channel=key[2],
                                          attempts=0, first_attempt_at=now)
                        session.add(row)
                    row.address = delivery.recipient.email
                    row.county_code = delivery.county_code
                    row.year = int(delivery.year)
                    row.version = int(delivery.version)
                    row.file_name = delivery.file_name
                    row.status = "sending"
                    row.attempts = (row.attempts or 0) + 1
                    row.message_id = delivery.message_id
                    row.updated_at = now
                return True
            except IntegrityError:
                continue
        raise RuntimeError(f"could not record the delivery attempt {key}")

    def succeed(self, delivery: "Delivery", message_id: str | None = None) -> None:
        """Mark a started delivery ``delivered``."""
        self._finish(delivery, status="delivered", message_id=message_id, error=None)

    def fail(self, delivery: "Delivery", error: str) -> None:
        """Mark a started delivery ``failed`` with a Chinese reason."""
        self._finish(delivery, status="failed", message_id=None, error=error)

    def _finish(self, delivery: "Delivery", *, status: str, message_id: str | None, error: str | None) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, delivery.recipient.id, delivery.report_sha256, delivery.channel)
            if row is None:
                raise RuntimeError(f"no started delivery for {delivery.recipient.id} / {delivery.file_name}")
            now = _now()
            row.status = status
            row.updated_at = now
            if status == "delivered":
                row.delivered_at = now
                row.message_id = message_id or row.message_id
                row.last_error = None
            else:
                row.last_error = error


def _as_dict(row: DeliveryRow) -> dict:
    return {c.name: getattr(row, c.name) for c in DeliveryRow.__table__.columns}

"""The delivery ledger: which report went to whom, over which channel, and how it went.

One row per (recipient, report bytes, channel), keyed by the report's sha256, so:

- a rerun sends only what is not yet ``delivered``;
- after a correction, reports carried over byte-identical are recognised as already
  delivered and only changed ones go out;
- every attempt is counted, and the last error is kept (in Chinese, for people).

A row's states: ``start`` commits it as ``sending`` *before* anything is sent; then
``succeed`` (``delivered``), ``fail`` (``failed``: nothing went out, or the server
refused it; it may be sent again) or ``uncertain`` (the content went out and the final
reply never came, so nobody knows whether it arrived). An ``uncertain`` row is not sent
again unless the caller asks for it (``resend_uncertain``): at most once, never silently
twice. The Message-ID is deterministic, so a deliberate re-send is recognisable.

Distribution holds a lock per year and version while it plans and sends, so a row that a
later run finds ``sending`` was left by a run that died (``kill -9``, a crash, a power
cut): ``mark_interrupted`` makes those ``uncertain``. ``start`` claims a row atomically
(a conditional UPDATE, or an INSERT that the unique key lets only one writer win): it
moves to ``sending`` only from no row or ``failed`` (``uncertain`` too when resending is
asked for; an outbox row also from ``sending``, as rewriting the same file is harmless),
so two runs that do overlap (two versions sharing a carried-over report) send it once.

Nothing here reads the clock: every recording method takes ``now`` (ISO 8601, UTC) from
its caller. No migration is needed for these states: ``status`` is a plain string column
(``uncertain`` fits its 16 characters) and no column was added. Rows written before
``uncertain`` existed keep working: ``delivered`` and ``failed`` mean what they meant, and a
``sending`` row left by an older run is treated like any other interrupted one.

The table lives in its own ``DeclarativeBase`` but in the same database as the
submission ledger (SQLite at ``<out>/ledger/ledger.sqlite`` by default, any
SQLAlchemy URL allowed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import Integer, String, Text, UniqueConstraint, func, select, update
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
    status: Mapped[str] = mapped_column(String(16))  # sending, delivered, failed, uncertain
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # Chinese, for people
    first_attempt_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))
    delivered_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


# A row may be claimed for sending from these states (plus "uncertain" when resending is asked
# for, and "sending" on the outbox channel, where a second write of the same file is harmless).
_CLAIMABLE = ("failed",)


class DeliveryLedger:
    """Record and query deliveries; safe to share a database with ``evaluation.ledger.Ledger``."""

    def __init__(self, url: str):
        from evaluation.ledger import create_tables, make_engine

        self.url = url
        self.engine = make_engine(url)
        create_tables(self.engine, DeliveryBase.metadata)

    @classmethod
    def at(cls, out_dir: Path | str, url: str | None = None) -> "DeliveryLedger":
        """The delivery ledger of a report folder: the submission ledger's database unless a URL is given."""
        from evaluation.ledger import default_url

        return cls(url or default_url(out_dir))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "DeliveryLedger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    def status(self, recipient_id: str, sha256: str, channel: str) -> str | None:
        """The row's status (sending, delivered, failed, uncertain), or None when never attempted."""
        with Session(self.engine) as session:
            row = self._row(session, recipient_id, sha256, channel)
            return row.status if row is not None else None

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

    def start(self, delivery: "Delivery", now: str, *, resend_uncertain: bool = False) -> bool:
        """Claim a delivery: record it ``sending`` (one more attempt) and commit; False, changing
        nothing, when its row is in a state it may not be sent from (``delivered``; ``uncertain``
        unless ``resend_uncertain``; ``sending`` by another run)."""
        table = DeliveryRow.__table__
        key = (table.c.recipient_id == delivery.recipient.id, table.c.report_sha256 == delivery.report_sha256,
               table.c.channel == delivery.channel)
        claimable = list(_CLAIMABLE) + (["uncertain"] if resend_uncertain else []) + \
            (["sending"] if delivery.channel == "outbox" else [])
        values = dict(address=delivery.recipient.email, county_code=delivery.county_code, year=int(delivery.year),
                      version=int(delivery.version), file_name=delivery.file_name, status="sending",
                      message_id=delivery.message_id, updated_at=now)
        for _ in range(3):
            with self.engine.begin() as conn:
                claimed = conn.execute(update(table).where(*key, table.c.status.in_(claimable))
                                       .values(**values, attempts=func.coalesce(table.c.attempts, 0) + 1))
                if claimed.rowcount == 1:
                    return True
                if conn.execute(select(table.c.id).where(*key)).first() is not None:
                    return False
            try:
                with self.engine.begin() as conn:
                    conn.execute(table.insert().values(
                        recipient_id=delivery.recipient.id, report_sha256=delivery.report_sha256,
                        channel=delivery.channel, attempts=1, first_attempt_at=now, **values))
                return True
            except IntegrityError:  # inserted by another writer meanwhile: look again
                continue
        raise RuntimeError(f"could not record the delivery attempt {delivery.recipient.id} / {delivery.file_name}")

    def succeed(self, delivery: "Delivery", now: str, message_id: str | None = None) -> None:
        """Mark a started delivery ``delivered``."""
        self._finish(delivery, now, status="delivered", message_id=message_id, error=None)

    def fail(self, delivery: "Delivery", now: str, error: str) -> None:
        """Mark a started delivery ``failed`` with a Chinese reason (it may be sent again)."""
        self._finish(delivery, now, status="failed", message_id=None, error=error)

    def uncertain(self, delivery: "Delivery", now: str, error: str) -> None:
        """Mark a started delivery ``uncertain`` (outcome unknown) with a Chinese reason."""
        self._finish(delivery, now, status="uncertain", message_id=None, error=error)

    def mark_interrupted(self, channel: str, sha256s: Iterable[str], now: str, reason: str) -> int:
        """Make ``uncertain`` the ``sending`` rows of these reports over `channel`; how many.

        Call it holding the distribution lock: a row still ``sending`` then belongs to a run
        that died between recording the attempt and recording its outcome.
        """
        table = DeliveryRow.__table__
        digests = sorted(set(sha256s))
        if not digests:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(update(table).where(table.c.channel == channel, table.c.status == "sending",
                                                      table.c.report_sha256.in_(digests))
                                  .values(status="uncertain", last_error=reason, updated_at=now))
            return int(result.rowcount or 0)

    def _finish(self, delivery: "Delivery", now: str, *, status: str, message_id: str | None,
                error: str | None) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session, delivery.recipient.id, delivery.report_sha256, delivery.channel)
            if row is None:
                raise RuntimeError(f"no started delivery for {delivery.recipient.id} / {delivery.file_name}")
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

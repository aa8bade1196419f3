"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that records every message it receives.

Faults on demand: a slow server (``delay`` seconds before the final reply to DATA, so a
client can be killed mid-send), and one that drops the connection after receiving a
message's content without replying (``drop_first``: the first arrival of each Message-ID).
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller

from evaluation.distribution import SmtpSettings

SENDER = "lianshan-pingjia@longnan.example"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """aiosmtpd handler: keeps every message whose content arrived (replied to or not);
    refuses one address with 550 (or 451) if asked; slow or dropping on demand."""

    reject: str | None = None
    tempfail: str | None = None
    delay: float = 0.0  # seconds between receiving a message's content and the final reply
    drop_first: bool = False  # close without a reply the first time each Message-ID arrives
    hold_first: float = 0.0  # hold the very first reply until another client sends RCPT, at most this long
    got: list[Received] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # Message-IDs received but never answered
    overlapped: bool = False  # another client sent RCPT while the first message was held
    _gate: asyncio.Event | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.reject and address.lower() == self.reject:
            return "550 5.1.1 mailbox unavailable"
        if self.tempfail and address.lower() == self.tempfail:
            return "451 4.3.0 temporary failure, try again later"
        if self._gate is not None and not self._gate.is_set():
            self.overlapped = True
            self._gate.set()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.got.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        if self.drop_first and message["Message-ID"] not in self.dropped:
            self.dropped.append(message["Message-ID"])
            server.transport.close()  # the content is in, the client never hears whether it was accepted
            await asyncio.sleep(3600)  # cancelled by aiosmtpd when the connection is lost
        if self.hold_first and len(self.got) == 1:  # a second client arriving now would send concurrently
            self._gate = asyncio.Event()
            try:
                await asyncio.wait_for(self._gate.wait(), self.hold_first)
            except asyncio.TimeoutError:
                pass
            self._gate = None
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"

    def copies(self) -> Counter:
        """How often each (recipient address, attached file) arrived."""
        return Counter((r.rcpt_tos[0], part.get_filename()) for r in self.got for part in r.message.iter_attachments())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self, handler: Recorder):
        self.handler = handler
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        try:
            self._start()
        except Exception:  # the old port was taken meanwhile: move, settings() follows
            self.port = free_port()
            self._start()

    def _start(self) -> None:
        controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        controller.start()
        self.controller = controller

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def settings(self, **changes) -> SmtpSettings:
        base = dict(host="127.0.0.1", port=self.port, security="none", from_address=SENDER, timeout=5)
        return SmtpSettings(**{**base, **changes})


def recipients_yaml(dest: Path, port: int, rename: dict[str, str] | None = None, timeout: float = 5) -> Path:
    """config/recipients.yaml with its SMTP section pointed at a test server on 127.0.0.1:`port` (no login).

    rename: recipient id -> display name, to try names that would trouble a console or a header.
    """
    import yaml

    source = Path(__file__).resolve().parent.parent / "config" / "recipients.yaml"
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["smtp"] = {"host": "127.0.0.1", "port": port, "security": "none", "from_address": SENDER,
                      "timeout": timeout}
    for people in [*config["counties"].values(), config["city"]]:
        for person in people:
            person["name"] = (rename or {}).get(person["id"], person["name"])
    dest.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return dest

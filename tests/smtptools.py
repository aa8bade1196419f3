"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that records what it accepts."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
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
    """aiosmtpd handler: keeps every accepted message; refuses one address with 550 if asked."""

    reject: str | None = None
    tempfail: str | None = None
    got: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.reject and address.lower() == self.reject:
            return "550 5.1.1 mailbox unavailable"
        if self.tempfail and address.lower() == self.tempfail:
            return "451 4.3.0 temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.got.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


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

"""The plain values the distribution library passes around: deliveries, outcomes, errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from evaluation.distribution.recipients import ID_PATTERN, Recipient

Channel = Literal["outbox", "email"]
CHANNELS: tuple[str, ...] = ("outbox", "email")

# A report file name from a manifest: the 6-digit county (or city) code, "_", no path parts.
FILE_NAME = re.compile(r"^[0-9]{6}_[^/\\]+\.pdf$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DistributionError(ValueError):
    """A delivery cannot even be attempted (bad manifest, bad configuration); message in Chinese."""


class TransientDeliveryError(RuntimeError):
    """A send failed in a way a retry may fix (network, timeout, 4xx); already recorded as failed.

    Raised only when the message's content had not been completely sent, or the server
    refused it with a 4xx reply, so a retry cannot deliver it twice. ``reason`` is the
    Chinese explanation that was written to the delivery ledger. ``unreachable`` is True
    when the server itself could not be reached (refused, reset, timed out, unknown host,
    421), False when only this message was deferred (a 4xx for one recipient): after an
    unreachable one the orchestrator stops sending the rest.
    """

    def __init__(self, reason: str, *, recipient_id: str = "", file_name: str = "", unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.recipient_id = recipient_id
        self.file_name = file_name
        self.unreachable = unreachable


def safe_file_name(name: str) -> bool:
    """True for a manifest report name that is safe to join onto a folder."""
    return bool(FILE_NAME.match(name)) and not _CONTROL.search(name) and ".." not in name


@dataclass(frozen=True)
class Delivery:
    """One report for one recipient over one channel."""

    recipient: Recipient
    county_code: str  # the city code for the summary
    year: int
    version: int
    file_name: str
    report_sha256: str
    channel: Channel
    title: str  # e.g. 武都区2023年度两山转化绩效评价报告
    revision_lines: tuple[str, ...] = ()
    sample: bool = False  # the manifest's sample_data: the mail says the figures are sample data
    office: str = ""  # who sends it: the documents' issuer (zones.yaml city.issuer); "" for the default office
    contact: str = ""  # the contact line every mail ends with (zones.yaml city.contact)

    @property
    def message_id(self) -> str:
        """Deterministic, so a server (or a person) can recognise a re-send of the same report."""
        return f"<{self.report_sha256[:16]}.{self.recipient.id}.v{self.version}@twomountains>"

    def check(self) -> None:
        """Refuse a delivery whose names could escape the outbox or whose fields are malformed."""
        problems = []
        if not ID_PATTERN.match(self.recipient.id):
            problems.append(f"收件人标识“{self.recipient.id}”无效")
        if not safe_file_name(self.file_name):
            problems.append(f"报告文件名“{self.file_name}”不符合“6位代码_名称.pdf”的格式")
        if not SHA256.match(self.report_sha256):
            problems.append(f"报告 {self.file_name} 的 SHA-256 值无效")
        if self.channel not in CHANNELS:
            problems.append(f"未知的发送方式“{self.channel}”（应为 outbox 或 email）")
        if problems:
            raise DistributionError("；".join(problems))


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery.

    status: ``delivered`` (sent now), ``skipped`` (the ledger already showed it
    delivered; nothing sent), ``failed`` (a permanent failure; ``error`` says why, in
    Chinese), ``uncertain`` (the content went out but the outcome is unknown, or an
    earlier run was interrupted while sending it: not resent without the user's say-so)
    or ``not_attempted`` (the run stopped before it, e.g. the server became unreachable).
    Transient failures are raised as ``TransientDeliveryError`` instead.
    """

    recipient_id: str
    file_name: str
    channel: str
    status: Literal["delivered", "skipped", "failed", "uncertain", "not_attempted"]
    message_id: str | None = None
    error: str | None = None

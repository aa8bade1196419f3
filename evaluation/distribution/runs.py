"""One distribution run as plain operations: plan it, send what is planned, say what became of it.

The Prefect flow (flows/distribute.py) wraps each send in a retried task and turns the outcome into a
state and an artifact; the web app and the tests call the same functions with a plain `send`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evaluation.catalogue import Catalogue
from evaluation.distribution import describe, describe_held, make_plan, recover_interrupted
from evaluation.distribution.deliveries import DeliveryLedger
from evaluation.distribution.model import Delivery, Outcome
from evaluation.distribution.recipients import Recipients
from evaluation.errors import ExitCode
from evaluation.versions import year_dir

STATUS_ZH = {"delivered": "已送达", "skipped": "此前已送达", "failed": "失败", "uncertain": "结果不确定",
             "not_attempted": "未尝试"}


def lock_path(out_dir: Path, year: int, version: int) -> Path:
    """The lock a run holds while it plans and sends a version's deliveries."""
    return year_dir(Path(out_dir), year) / f".distribute-v{int(version)}.lock"


@dataclass
class Planned:
    """What a run will do: deliveries to send, those held back as uncertain, how many went out earlier."""

    send: list[Delivery]
    uncertain: list[Delivery]
    delivered: int
    swept: int  # rows a dead run left "sending", now "uncertain"

    def lines(self) -> list[str]:
        """The dry run's lines, in Chinese."""
        return (describe(self.send) if self.send or not self.uncertain else []) + describe_held(self.uncertain)


def plan_distribution(deliveries: DeliveryLedger, manifest: dict[str, Any], recipients: Recipients, channel: str,
                      catalogue: Catalogue, *, now: str, resend_uncertain: bool = False,
                      dry_run: bool = False) -> Planned:
    """Plan a version's deliveries over `channel` (hold its lock while planning and sending). Unless this
    is a dry run, deliveries a dead run left `sending` first become `uncertain`. Raises DistributionError."""
    swept = 0 if dry_run else recover_interrupted(manifest, deliveries, channel, now)
    plan = make_plan(manifest, recipients, deliveries, channel, catalogue, resend_uncertain=resend_uncertain)
    return Planned(plan.send, plan.uncertain, len(plan.delivered), swept)


@dataclass
class Distribution:
    """What each delivery of a run became."""

    year: int
    version: int
    channel: str
    done: list[tuple[Delivery, Outcome]]
    earlier: int  # delivered by earlier runs, not planned again
    stopped: str | None = None  # why the rest was not attempted (the server became unreachable)

    def counts(self) -> dict[str, int]:
        counts = {status: sum(1 for _, o in self.done if o.status == status) for status in STATUS_ZH}
        counts["skipped"] += self.earlier
        return counts

    def rows(self) -> list[dict[str, Any]]:
        """One row per delivery of this run, with Chinese headers (the flow's artifact, the CLI's table)."""
        return [{"收件人": f"{d.recipient.name} <{d.recipient.email}>", "报告": d.file_name, "版次": d.version,
                 "方式": self.channel, "结果": STATUS_ZH.get(o.status, o.status), "Message-ID": o.message_id or "",
                 "说明": o.error or ""} for d, o in self.done]

    def verdict(self) -> tuple[str, ExitCode, str | None]:
        """(status, exit code, Chinese message unless everything went out)."""
        counts = self.counts()
        if self.stopped is not None:
            return "unreachable", ExitCode.UNREACHABLE, (
                f"发送过程中{self.stopped.removesuffix('，稍后重试')}，重试后仍不行，已停止发送："
                f"{counts['not_attempted']} 份未尝试。请在服务器恢复后重新运行，已送达的不会重发。")
        if counts["failed"]:
            return "partial", ExitCode.REJECTED, f"{counts['failed']} 份报告未能送达"
        if counts["uncertain"]:
            return "uncertain", ExitCode.UNCERTAIN, (
                f"{counts['uncertain']} 份邮件发送结果不确定，未自动重发。请先向收件人核实是否收到；"
                "如需重发，加 --resend-uncertain 再运行（将重新发送本版全部结果不确定的邮件）。")
        if not self.done:
            return "nothing", ExitCode.OK, None
        return "sent", ExitCode.OK, None


def send_planned(planned: Planned, deliveries: DeliveryLedger, send: Callable[[Delivery], Outcome], *, year: int,
                 version: int, channel: str,
                 progress: Callable[[int, int, Delivery, Outcome], None] | None = None) -> Distribution:
    """Send each planned delivery in turn with `send` (deliver_one, or a retried task around it).

    A `send` that raises has failed (the exception's `reason`, else its text, says why); once one
    raises with `unreachable` set, the rest are not attempted. Held-back uncertain deliveries are
    reported as such, with the error last recorded for them.
    """
    done = [(d, Outcome(d.recipient.id, d.file_name, channel, "uncertain", None,
                        (deliveries.get(d.recipient.id, d.report_sha256, channel) or {}).get("last_error")
                        or "此前的发送结果不确定"))
            for d in planned.uncertain]
    stopped: str | None = None
    for i, delivery in enumerate(planned.send, 1):
        if stopped is not None:
            done.append((delivery, Outcome(delivery.recipient.id, delivery.file_name, channel, "not_attempted", None,
                                           "邮件服务器无法连接，已停止发送，本封未尝试")))
            continue
        try:
            outcome = send(delivery)
        except Exception as error:  # noqa: BLE001 - a delivery that failed, in words
            reason = getattr(error, "reason", None) or str(error)
            outcome = Outcome(delivery.recipient.id, delivery.file_name, channel, "failed", None, reason)
            if getattr(error, "unreachable", False):
                stopped = reason
        if progress is not None:
            progress(i, len(planned.send), delivery, outcome)
        done.append((delivery, outcome))
    return Distribution(year, version, channel, done, planned.delivered, stopped)

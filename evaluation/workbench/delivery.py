"""Each report of a version and each of its recipients: delivered, pending, failed (with the mail server's
answer) or uncertain, as the delivery ledger records it (read only)."""

from __future__ import annotations

from evaluation.catalogue import Catalogue
from evaluation.distribution import make_plan

STATUS_ZH = {"delivered": "已送达", "pending": "待发送", "failed": "发送失败", "uncertain": "结果不确定",
             "sending": "发送中"}


def status(deliveries, manifest: dict, recipients, catalogue: Catalogue, channel: str) -> list[dict]:
    plan = make_plan(manifest, recipients, deliveries, channel, catalogue)
    out = []
    for group, deliveries_in in (("delivered", plan.delivered), ("uncertain", plan.uncertain), ("pending", plan.send)):
        for d in deliveries_in:
            row = deliveries.get(d.recipient.id, d.report_sha256, channel) or {}
            state = row.get("status") if group != "delivered" and row.get("status") in ("failed", "sending") else group
            out.append({"code": d.county_code, "file": d.file_name, "edition": d.version,
                        "recipient": d.recipient.name, "email": d.recipient.email, "status": state,
                        "status_zh": STATUS_ZH.get(state, state), "answer": row.get("last_error") or "",
                        "when": row.get("delivered_at") or row.get("updated_at") or "",
                        "attempts": row.get("attempts") or 0})
    return sorted(out, key=lambda r: (r["code"], r["recipient"]))

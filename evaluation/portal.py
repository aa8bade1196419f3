"""What the bureaus' web portal does, as plain functions over the ledger, the catalogue and the reports
folder. The web app (package `web`) handles requests, sessions and pages and calls these; nothing here
knows about HTTP, and nothing here reads the clock (callers pass `received_at`).

    table_state      a bureau's table for a year: not received / accepted / rejected / superseded / used in vN
    submissions_of   its submission history, each with what became of it
    check_upload     an uploaded file checked at once by the same GX gate as every other source
    may_submit       whether (and as what) an accepted upload can be submitted
    submit           record it in the ledger with the account as submitter (a correction once issued)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evaluation import pipeline, versions
from evaluation.catalogue import Catalogue
from evaluation.ingest import IngestError, receive_bytes, upload_name
from evaluation.ledger import Ledger, Recorded
from evaluation.validation import Gate

KIND_NAMES = {"folder": "共享文件夹", "http": "数据接口（HTTP）", "sql": "数据库", "portal": "报送门户"}


@dataclass(frozen=True)
class TableState:
    """Where a bureau's table for a year stands, for its page."""

    department: str
    year: int
    state: str  # missing, accepted, rejected, superseded
    label: str  # Chinese, one line
    tone: str  # ok, bad, wait
    current: dict | None  # the submission in force
    latest: dict | None  # the newest submission of any outcome
    used_in: tuple[int, ...]  # versions whose reports were made from the submission in force
    issued: int | None  # the latest issued version of the year


_INPUTS: dict[str, tuple[tuple[int, int], tuple[str, ...]]] = {}  # manifest path -> (its stat, its input ids)


def _inputs_of(folder: Path) -> tuple[str, ...]:
    """The submission ids an issued version was made from, read once per manifest (an issued version never
    changes; at national scale a manifest takes a quarter of a second to parse, and every page asks)."""
    path = folder / versions.MANIFEST
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    hit = _INPUTS.get(str(path))
    if hit is None or hit[0] != key:
        ids = tuple(sid for sid in pipeline.manifest_inputs(versions.read_manifest(folder)).values() if sid)
        hit = _INPUTS[str(path)] = (key, ids)
    return hit[1]


def used_in(out_dir: Path | str, year: int) -> dict[str, list[int]]:
    """submission id -> the issued versions of `year` made from it (from their manifests)."""
    found: dict[str, list[int]] = {}
    for n in versions.versions(out_dir, year):
        for sid in _inputs_of(versions.year_dir(out_dir, year) / f"v{n}"):
            found.setdefault(sid, []).append(n)
    return found


def table_state(ledger: Ledger, out_dir: Path | str, department: str, year: int) -> TableState:
    subs = ledger.submissions(year, department)
    latest = max(subs, key=lambda s: s["received_at"], default=None)
    current = next((s for s in subs if s["status"] == "accepted" and not s["superseded_by"]), None)
    issued = (versions.versions(Path(out_dir), year) or [None])[-1]
    used = tuple(used_in(out_dir, year).get(current["id"], ())) if current else ()
    if current is None:
        if latest is not None and latest["status"] != "accepted":
            return TableState(department, year, "rejected", "最近一次报送未通过校验，尚无已采用的数据", "bad", None, latest,
                              (), issued)
        return TableState(department, year, "missing", "尚未收到", "wait", None, latest, (), issued)
    label = "已收到并采用"
    if used:
        label += f"，已用于第 {'、'.join(map(str, used))} 版评价报告"
    elif issued:
        label += f"（第 {issued} 版报告出具后收到，下次重新评价时采用）"
    else:
        label += "，等待年度评价"
    if current["supersedes"]:
        label += "（更正后的数据）"
    if latest is not None and latest["id"] != current["id"] and latest["status"] != "accepted":
        return TableState(department, year, "rejected", label + "；最近一次更正未通过校验，原数据继续有效", "bad", current,
                          latest, used, issued)
    return TableState(department, year, "accepted", label, "ok", current, latest, used, issued)


def submissions_of(ledger: Ledger, out_dir: Path | str, department: str, year: int | None = None) -> list[dict]:
    """A bureau's submissions (newest first), each with `state` (Chinese) and `used_in` (versions)."""
    subs = ledger.submissions(year, department)
    used: dict[int, dict[str, list[int]]] = {}
    out = []
    for s in sorted(subs, key=lambda s: (s["received_at"], s["year"]), reverse=True):
        versions_of = used.setdefault(s["year"], used_in(out_dir, s["year"])).get(s["id"], [])
        if s["status"] == "accepted":
            state = "已被更正" if s["superseded_by"] else "已采用"
        else:
            state = {"rejected": "校验未通过", "unreadable": "无法读取"}.get(s["status"], s["status"])
        out.append({**s, "state": state, "used_in": versions_of, "via": KIND_NAMES.get(s["kind"], s["kind"])})
    return out


@dataclass(frozen=True)
class Checked:
    """An upload checked: what the page shows and what `submit` needs."""

    status: str  # accepted, rejected, unreadable, duplicate
    name: str  # the file name as shown (never a path)
    sha256: str
    size: int
    message: str  # one sentence for unreadable / duplicate
    report: dict  # ValidationReport.html_context() (empty when unreadable)
    intake: pipeline.Intake | None = None


def check_upload(ledger: Ledger, catalogue: Catalogue, department: str, year: int, data: bytes, name: str, *,
                 gate: Gate | None = None) -> Checked:
    """Check an uploaded file at once, as `twomountains validate` does (GX suite, last year's accepted
    values for the jump check). The bytes are kept in the ledger's content store (so `submit` records
    exactly what was checked); nothing is recorded as a submission here."""
    import hashlib

    name = upload_name(name)
    sha = hashlib.sha256(data).hexdigest()
    dept_name = catalogue.departments[department].name
    try:
        received = receive_bytes(data, name, catalogue.sources[department], year)
    except IngestError as exc:
        return Checked("unreadable", name, sha, len(data), str(exc), {})
    known = ledger.submission(received.submission_id)
    if known is not None:
        when = known["received_at"][:16].replace("T", " ")
        what = {"accepted": "已采用" if not known["superseded_by"] else "已被更正", "rejected": "未通过校验",
                "unreadable": "无法读取"}.get(known["status"], known["status"])
        return Checked("duplicate", name, sha, len(data),
                       f"这个文件与 {when}（UTC）已报送的《{known['original_name']}》逐字节相同（提交编号 "
                       f"{known['id'][:12]}，{what}），无需重复提交；如需更正，请修改数据后上传新文件。", {})
    ledger.keep_bytes(received)
    intake = pipeline.Intake(department, dept_name, name, "pending", received=received)
    intake = pipeline.same_bytes_notice(ledger, intake, catalogue)
    previous = pipeline.year_values(ledger, catalogue, year - 1)
    checked = pipeline.check_one(intake, catalogue, previous=previous, gate=gate)
    if checked.report is None:  # parsed as nothing the bureau's form could be
        return Checked("unreadable", name, sha, len(data), checked.message, {}, checked)
    return Checked(checked.status, name, sha, len(data), "", checked.report.html_context(), checked)


def may_submit(ledger: Ledger, catalogue: Catalogue, out_dir: Path | str, department: str,
               year: int) -> tuple[bool, bool, str]:
    """(allowed, correction, why not): a portal source takes any accepted upload; another source's
    bureau may submit through the portal only a correction of a table already received from its source
    (else the next run would read the source and supersede it). A correction is any submission once the
    year's reports are issued: it needs a reason and re-issues what changed."""
    source = catalogue.sources[department]
    issued = versions.latest(Path(out_dir), year) is not None
    if source.kind == "portal" or ledger.current(department, year) is not None:
        return True, issued, ""
    return False, False, (f"本部门 {year} 年的数据按配置通过{KIND_NAMES.get(source.kind, source.kind)}报送，"
                          "尚未收到；门户只能在收到后提交更正。请按原方式报送，或请分析人员把数据来源改为报送门户。")


def submit(ledger: Ledger, catalogue: Catalogue, out_dir: Path | str, department: str, year: int, sha256: str,
           name: str, *, account: str, reason: str, received_at: str,
           gate: Gate | None = None) -> tuple[pipeline.Intake, Recorded | None, bool]:
    """Record an upload (its bytes from the content store, checked again against the ledger as it is now)
    with `account` as submitter: (intake, recorded, correction). A correction needs a reason."""
    allowed, correction, why = may_submit(ledger, catalogue, out_dir, department, year)
    dept_name = catalogue.departments[department].name
    if not allowed:
        return pipeline.Intake(department, dept_name, name, "refused", message=why), None, False
    if correction and not reason.strip():
        return (pipeline.Intake(department, dept_name, name, "refused",
                                message=f"{year} 年的评价报告已出具，本次提交是更正，请填写更正原因（将写入修订说明）。"),
                None, True)
    data = ledger.stored(sha256)
    received = receive_bytes(data, upload_name(name), catalogue.sources[department], year,
                             location=f"portal:{account}")
    intake = pipeline.Intake(department, dept_name, received.original_name, "pending", received=received)
    intake = pipeline.same_bytes_notice(ledger, intake, catalogue)
    previous = pipeline.year_values(ledger, catalogue, year - 1)
    checked = pipeline.check_one(intake, catalogue, previous=previous, gate=gate)
    if not checked.accepted:
        return checked, None, correction
    recorded = pipeline.record_one(ledger, checked, catalogue, received_at, reason=reason.strip(),
                                   submitted_by=account)
    return checked, recorded, correction


def report_of(submission: dict) -> list[dict]:
    """A recorded submission's findings (from the ledger), as lines for its page."""
    lines = []
    for f in json.loads(submission.get("findings") or "[]"):
        lines.append({"severity": f.get("severity", "error"),
                      "label": "错误" if f.get("severity") == "error" else "警告",
                      "rows": "、".join(map(str, f.get("rows", []))) or "整表", "column": f.get("column", ""),
                      "rule": f.get("rule", ""), "found": "、".join(f.get("found", [])),
                      "county": "", "expected": ""})
    return lines

"""Portal accounts, sign-in throttling and the audit trail, kept in the ledger's database.

- An account has a role: *bureau* (one department's tables only), *analyst* (every department) or
  *admin* (manages accounts). Passwords are stored as argon2id hashes (argon2-cffi), never as text.
- Sign-in is throttled per user name (known or not, so the answer never tells which names exist):
  after MAX_FAILURES wrong passwords in a row the name is locked for LOCK_MINUTES; and per address,
  so that trying one password on many names (spraying) is stopped too: ADDRESS_FAILURES.
- Every action of the portal and of `twomountains users` is an audit line: who, what, on what,
  when, from where, and whether it was allowed.
- Library code does not read the clock: the caller passes `now` (an aware datetime, UTC).

The tables live in their own DeclarativeBase, in the same database as the submission ledger
(SQLite under the reports folder by default, PostgreSQL with --ledger).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Boolean, Integer, String, Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from evaluation.ledger import create_tables, default_url, make_engine

ROLES = {"bureau": "部门填报人员", "analyst": "分析人员", "admin": "系统管理员"}
# the audit trail's actions and outcomes, as people read them (the table keeps the codes)
ACTIONS_ZH = {"sign-in": "登录", "sign-out": "退出登录", "upload": "上传校验", "submit": "提交", "correct": "提交更正",
              "download-form": "下载填报表", "download-file": "下载原文件", "denied": "越权访问", "csrf": "缺少安全令牌",
              "rerun": "重新评价", "account-add": "新建账户", "account-disable": "停用账户",
              "account-enable": "启用账户", "account-reset-password": "重置密码", "run": "启动年度评价",
              "download-report": "下载报告",
              "distribute": "分发报告"}
OUTCOMES_ZH = {"ok": "成功", "denied": "拒绝", "failed": "失败", "refused": "未接受", "rejected": "校验未通过",
               "locked": "已锁定"}
MAX_FAILURES = 5  # wrong passwords in a row before a user name is locked
ADDRESS_FAILURES = 20  # wrong passwords from one address (any names) before the address is locked
LOCK_MINUTES = 15
ADDRESS_LOCKED = f"从本机地址登录失败的次数过多，已暂停登录 {LOCK_MINUTES} 分钟，请稍后再试。"
MIN_PASSWORD = 10  # characters
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")


class AccountError(ValueError):
    """Something about an account the user can fix, in Chinese."""


class AccountBase(DeclarativeBase):
    pass


class AccountRow(AccountBase):
    __tablename__ = "portal_accounts"

    username: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    password_hash: Mapped[str] = mapped_column(Text)
    # changes whenever the password is set: sessions signed before a reset no longer hold
    password_stamp: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[str] = mapped_column(String(40))


class ThrottleRow(AccountBase):
    __tablename__ = "portal_sign_in_throttle"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)  # "name:<as typed, folded>" or "addr:<ip>"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[str | None] = mapped_column(String(40), nullable=True)


class AuditRow(AccountBase):
    __tablename__ = "portal_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(64))  # the account, or "-" before sign-in
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok, denied, failed, rejected
    address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class UploadRow(AccountBase):
    """A file uploaded through the portal and checked, before (and after) it is submitted. Its bytes are
    in the ledger's content store under their sha256; the report is kept as the page showed it."""

    __tablename__ = "portal_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, unguessable
    department: Mapped[str] = mapped_column(String(32), index=True)
    year: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # accepted, rejected, unreadable, duplicate
    message: Mapped[str] = mapped_column(Text, default="")  # one sentence: unreadable, duplicate
    report: Mapped[str] = mapped_column(Text, default="")  # JSON: the validation report's context
    uploaded_at: Mapped[str] = mapped_column(String(40))
    submission_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # once submitted


@dataclass(frozen=True)
class Account:
    username: str
    display_name: str
    role: str
    department: str | None
    active: bool
    password_stamp: str
    created_at: str

    @property
    def role_name(self) -> str:
        return ROLES.get(self.role, self.role)

    def may_see(self, department: str) -> bool:
        """Whether this account may see and submit `department`'s tables."""
        return self.active and (self.role == "analyst" or (self.role == "bureau" and self.department == department))


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt."""

    account: Account | None
    message: str = ""  # Chinese, for the sign-in page, when refused
    locked: bool = False


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _account(row: AccountRow) -> Account:
    return Account(row.username, row.display_name, row.role, row.department, bool(row.active), row.password_stamp,
                   row.created_at)


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current defaults (RFC 9106 low-memory profile)


class Accounts:
    """Accounts, throttling and audit in one database (use as a context manager)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        create_tables(self.engine, AccountBase.metadata)
        self._ph = _hasher()
        # a hash to verify against when the user name is unknown, so both answers take as long
        self._dummy = self._ph.hash(secrets.token_hex(16))

    @classmethod
    def at(cls, out_dir: Path | str, url: str | None = None) -> "Accounts":
        return cls(url or default_url(out_dir))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Accounts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # accounts -------------------------------------------------------------------

    def add(self, username: str, password: str, role: str, *, now: dt.datetime, department: str | None = None,
            display_name: str = "", departments: dict[str, str] | None = None) -> Account:
        """A new account. `departments`: the catalogue's department ids and names, to check `department`."""
        if not USERNAME.fullmatch(username or ""):
            raise AccountError("用户名须为 2–32 个英文字母、数字或 _ . -，并以字母或数字开头。")
        if role not in ROLES:
            raise AccountError(f"未知角色：{role}。可选：" + "、".join(f"{k}（{v}）" for k, v in ROLES.items()))
        if role == "bureau":
            if not department:
                raise AccountError("部门填报账户须指定部门（--department）。")
            if departments is not None and department not in departments:
                raise AccountError(f"未知部门：{department}。可选：" +
                                   "、".join(f"{k}（{v}）" for k, v in departments.items()))
        elif department:
            raise AccountError("只有部门填报账户（bureau）指定部门；分析人员和管理员可查看全部部门。")
        _check_password(password)
        with Session(self.engine) as session, session.begin():
            if session.get(AccountRow, username) is not None:
                raise AccountError(f"用户名 {username} 已存在。")
            row = AccountRow(username=username, display_name=(display_name or username).strip()[:64], role=role,
                             department=department if role == "bureau" else None,
                             password_hash=self._ph.hash(password), password_stamp=secrets.token_hex(8),
                             active=True, created_at=_iso(now))
            session.add(row)
            session.flush()
            return _account(row)

    def get(self, username: str) -> Account | None:
        with Session(self.engine) as session:
            row = session.get(AccountRow, username)
            return None if row is None else _account(row)

    def list(self) -> list[Account]:
        with Session(self.engine) as session:
            return [_account(r) for r in session.scalars(select(AccountRow).order_by(AccountRow.username))]

    def set_active(self, username: str, active: bool) -> Account:
        with Session(self.engine) as session, session.begin():
            row = session.get(AccountRow, username)
            if row is None:
                raise AccountError(f"没有用户名为 {username} 的账户。")
            row.active = active
            if active:  # re-enabled: it starts without the failures that may have locked it
                self._clear(session, _name_key(username))
            return _account(row)

    def reset_password(self, username: str, password: str) -> Account:
        """A new password: the account's sessions end and its sign-in lock is lifted."""
        _check_password(password)
        with Session(self.engine) as session, session.begin():
            row = session.get(AccountRow, username)
            if row is None:
                raise AccountError(f"没有用户名为 {username} 的账户。")
            row.password_hash = self._ph.hash(password)
            row.password_stamp = secrets.token_hex(8)
            self._clear(session, _name_key(username))
            return _account(row)

    # signing in -----------------------------------------------------------------

    def sign_in(self, username: str, password: str, *, now: dt.datetime, address: str = "") -> SignIn:
        """Check a password, throttled per name and per address: the answer never says whether the
        user name exists."""
        from argon2.exceptions import InvalidHashError, VerificationError

        key = _name_key(username)
        wrong = "用户名或密码不正确。"
        with Session(self.engine) as session, session.begin():
            place = session.get(ThrottleRow, _address_key(address)) if address else None
            if place is not None and place.locked_until and place.locked_until > _iso(now):
                return SignIn(None, ADDRESS_LOCKED, locked=True)
            throttle = session.get(ThrottleRow, key)
            if throttle is not None and throttle.locked_until and throttle.locked_until > _iso(now):
                until = dt.datetime.fromisoformat(throttle.locked_until)
                minutes = max(1, int((until - now).total_seconds() + 59) // 60)
                return SignIn(None, f"登录失败次数过多，该账户已暂时锁定，请 {minutes} 分钟后再试；"
                                    "如忘记密码，请联系系统管理员重置。", locked=True)
            row = session.get(AccountRow, username.strip()) if username else None
            try:
                ok = self._ph.verify(row.password_hash if row is not None else self._dummy, password or "")
            except (VerificationError, InvalidHashError):
                ok = False
            if ok and row is not None and row.active:
                self._clear(session, key)
                if self._ph.check_needs_rehash(row.password_hash):
                    row.password_hash = self._ph.hash(password)
                return SignIn(_account(row))
            if ok and row is not None:  # right password, disabled account: no failure counted
                return SignIn(None, "该账户已停用，请联系系统管理员。")
            if address:
                if place is None:
                    place = ThrottleRow(subject=_address_key(address), failures=0)
                    session.add(place)
                place.failures += 1
                if place.failures >= ADDRESS_FAILURES:
                    place.failures = 0
                    place.locked_until = _iso(now + dt.timedelta(minutes=LOCK_MINUTES))
                    return SignIn(None, ADDRESS_LOCKED, locked=True)
            if throttle is None:
                throttle = ThrottleRow(subject=key, failures=0)
                session.add(throttle)
            throttle.failures += 1
            if throttle.failures >= MAX_FAILURES:
                throttle.failures = 0
                throttle.locked_until = _iso(now + dt.timedelta(minutes=LOCK_MINUTES))
                return SignIn(None, f"连续 {MAX_FAILURES} 次密码错误，该账户已锁定 {LOCK_MINUTES} 分钟，请稍后再试；"
                                    "如忘记密码，请联系系统管理员重置。", locked=True)
            left = MAX_FAILURES - throttle.failures
            return SignIn(None, wrong + (f"再错 {left} 次将锁定 {LOCK_MINUTES} 分钟。" if left <= 2 else ""))

    @staticmethod
    def _clear(session: Session, key: str) -> None:
        """Lift the lock of a throttle key (see _name_key)."""
        throttle = session.get(ThrottleRow, key)
        if throttle is not None:
            throttle.failures, throttle.locked_until = 0, None

    # uploads --------------------------------------------------------------------

    def save_upload(self, **fields) -> str:
        """Keep a checked upload; returns its id."""
        upload_id = secrets.token_urlsafe(16)[:22]
        with Session(self.engine) as session, session.begin():
            session.add(UploadRow(id=upload_id, **fields))
        return upload_id

    def upload(self, upload_id: str) -> dict | None:
        with Session(self.engine) as session:
            row = session.get(UploadRow, str(upload_id)[:32])
            return None if row is None else {c.name: getattr(row, c.name) for c in UploadRow.__table__.columns}

    def mark_submitted(self, upload_id: str, submission_id: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(UploadRow, upload_id)
            if row is not None:
                row.submission_id = submission_id

    # audit ----------------------------------------------------------------------

    def audit(self, actor: str, action: str, *, now: dt.datetime, target: str = "", outcome: str = "ok",
              address: str = "", detail: str = "") -> None:
        with Session(self.engine) as session, session.begin():
            session.add(AuditRow(at=_iso(now), actor=(actor or "-")[:64], action=action[:48], target=target[:500],
                                 outcome=outcome[:16], address=(address or "")[:64], detail=detail[:2000]))

    def audit_lines(self, *, actor: str | None = None, action: str | None = None, limit: int = 200) -> list[dict]:
        """The latest audit lines, newest first."""
        query = select(AuditRow)
        if actor is not None:
            query = query.where(AuditRow.actor == actor)
        if action is not None:
            query = query.where(AuditRow.action == action)
        with Session(self.engine) as session:
            rows = session.scalars(query.order_by(AuditRow.id.desc()).limit(limit)).all()
            return [{c.name: getattr(r, c.name) for c in AuditRow.__table__.columns} for r in rows]


def _name_key(username: str) -> str:
    """The throttle key of a user name as typed (known or not)."""
    return "name:" + (username or "").strip().casefold()[:58]


def _address_key(address: str) -> str:
    return "addr:" + address[:59]


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 个字符。")
    if len(password) > 256:
        raise AccountError("密码不能超过 256 个字符。")

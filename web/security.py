"""Sessions, CSRF tokens and the secret they are signed with.

- The session is a signed cookie (itsdangerous, HMAC-SHA256) holding the user name, the account's
  password stamp (a password reset ends every session signed before it) and the session's CSRF
  token; it expires `session_seconds` after sign-in. The account is looked up again on every request,
  so a disabled account or a changed role takes effect at once.
- Every form carries the session's CSRF token; the sign-in form, before there is a session, carries
  the token of a short-lived signed cookie of its own. A POST without the right token is refused (403).
- The secret comes from TWOMOUNTAINS_SECRET_KEY, else a random key kept (mode 0600) beside the ledger.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_COOKIE = "tm_session"
LOGIN_COOKIE = "tm_login"
SECRET_ENV = "TWOMOUNTAINS_SECRET_KEY"


def secret_key(folder: Path) -> str:
    """The signing secret: from the environment, or kept in `folder` (created once, 0600)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env
    path = Path(folder) / "portal-secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # created once, readable by this user only; a second process finds the first one's key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48))
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key; delete it to have a new one made")
    return key


class Signer:
    def __init__(self, secret: str, session_seconds: int):
        self.sessions = URLSafeTimedSerializer(secret, salt="twomountains.portal.session")
        self.logins = URLSafeTimedSerializer(secret, salt="twomountains.portal.login")
        self.session_seconds = session_seconds

    def session(self, username: str, stamp: str) -> tuple[str, str]:
        """(cookie value, CSRF token) of a new session."""
        csrf = secrets.token_urlsafe(24)
        return self.sessions.dumps({"u": username, "p": stamp, "c": csrf}), csrf

    def read_session(self, value: str | None) -> tuple[dict | None, str]:
        """(session, problem): problem is "expired", "invalid" or ""."""
        if not value:
            return None, ""
        try:
            data = self.sessions.loads(value, max_age=self.session_seconds)
        except SignatureExpired:
            return None, "expired"
        except BadSignature:
            return None, "invalid"
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "upc"):
            return None, "invalid"
        return data, ""

    def login_token(self) -> tuple[str, str]:
        token = secrets.token_urlsafe(24)
        return self.logins.dumps(token), token

    def read_login_token(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            token = self.logins.loads(value, max_age=3600)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))

"""A throwaway PostgreSQL cluster for the ledger tests.

Uses TWOMOUNTAINS_TEST_PG_URL when set (an existing server; each test gets its own database
there). Otherwise, when the Debian `postgresql` package is installed, it runs `initdb` into a
temporary folder and starts a private server on a Unix socket (as the `postgres` user when the
tests run as root, since PostgreSQL refuses to run as root). Otherwise the tests that need it
skip, saying why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

ENV = "TWOMOUNTAINS_TEST_PG_URL"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A private server: `url(db)` is a SQLAlchemy URL, `create()` makes a fresh database."""

    def __init__(self, base: Path):
        self.bin = pg_bin()
        self.base = base
        self.data = base / "data"
        self.socket = base / "socket"
        self.port = 5432
        self.user = "postgres"
        self._as: list[str] = []

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self.socket.mkdir(parents=True)
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            entry = pwd.getpwnam("postgres")
            for path in (self.base, self.socket):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.base / "server.log"),
                  "-o", f"-k {self.socket} -c listen_addresses='' -p {self.port} -c fsync=off", "start")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket}&port={self.port}"

    def create(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self._run(str(self.bin / "createdb"), "-h", str(self.socket), "-p", str(self.port), "-U", self.user, name)
        return self.url(name)


class External:
    """An existing server named by TWOMOUNTAINS_TEST_PG_URL; each test gets a fresh database on it."""

    def __init__(self, url: str):
        self.base_url = url

    def create(self) -> str:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = "t_" + uuid.uuid4().hex[:12]
        engine = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        pass


def unavailable_reason() -> str | None:
    if os.environ.get(ENV):
        return None
    if pg_bin() is None:
        return ("PostgreSQL is not installed (apt-get install postgresql), and TWOMOUNTAINS_TEST_PG_URL "
                "names no server: the ledger's PostgreSQL tests are skipped")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the test server as"
    return None

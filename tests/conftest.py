from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"


def prefect_home(path: Path) -> Path:
    """A fresh Prefect home whose database is already migrated (a copy of the one `make setup` made in
    .prefect/): a server on an empty home spends about 10 s here on migrations before it answers."""
    import sqlite3

    path.mkdir(parents=True, exist_ok=True)
    made = REPO / ".prefect" / "prefect.db"
    if made.is_file() and not (path / "prefect.db").exists():
        source = sqlite3.connect(f"file:{made}?mode=ro", uri=True)
        target = sqlite3.connect(path / "prefect.db")
        try:
            source.backup(target)  # a consistent copy even while a demo run writes to it
        finally:
            target.close()
            source.close()
    return path


@pytest.fixture(scope="session")
def catalogue():
    from evaluation.catalogue import load_catalogue

    return load_catalogue()


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of the sample data that a test may damage."""
    dest = tmp_path / "data"
    shutil.copytree(SAMPLE, dest)
    return dest


@pytest.fixture(scope="session")
def rendered_pdfs(tmp_path_factory) -> Path:
    """The folder of PDFs rendered by this session (keyed on everything that shapes their bytes), shared
    by every pytest worker: entries are written atomically, and a damaged one is rendered again."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "rendered-pdfs"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory, rendered_pdfs):
    """One Prefect test server for the whole session (it costs about 8 s to start), and one task
    cache for the flows this worker runs (see tests.flowtools.SHARED_CACHE)."""
    from tests import flowtools

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    flowtools.SHARED_CACHE = tmp_path_factory.mktemp("task-cache")
    (flowtools.SHARED_CACHE / "rendered").symlink_to(rendered_pdfs, target_is_directory=True)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A PostgreSQL server for the session (see tests/pgtools.py); skips with the reason when there is none."""
    from tests import pgtools

    reason = pgtools.unavailable_reason()
    if reason:
        pytest.skip(reason)
    if os.environ.get(pgtools.ENV):
        yield pgtools.External(os.environ[pgtools.ENV])
        return
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="twomountains-pg-"))  # outside pytest's root-only tmp tree
    cluster = pgtools.Cluster(base)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - reported as the skip reason
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL test server: {exc} {getattr(exc, 'stderr', '')}")
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    """The ledger database a test runs against: SQLite in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres").create()


@pytest.fixture
def smtp_server():
    """Start real SMTP servers (aiosmtpd on loopback, see tests/smtptools.py): smtp_server(**behaviour)."""
    from tests.smtptools import Recorder, SmtpServer

    servers = []

    def make(**behaviour):
        server = SmtpServer(Recorder(**behaviour))
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()

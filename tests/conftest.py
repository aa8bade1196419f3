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


# Seconds each test file took in a full run on the 2-core box (`make test`, November 2026). With two
# workers the suite takes as long as the busier one: files are handed out longest first (a worker takes
# the next when it starts its last test), so the long ones do not end up together at the end. A file
# not listed here goes last; the figures need only be roughly right.
FILE_SECONDS = {
    "test_flow.py": 330, "test_scale.py": 290, "test_server.py": 240, "test_faults.py": 171,
    "test_corrections.py": 153, "test_delivery_faults.py": 82, "test_scoring.py": 77, "test_pdf.py": 47,
    "test_distribution.py": 38, "test_scorecard.py": 32, "test_ingest_bounds.py": 32, "test_ledger_trust.py": 27,
    "test_hostile.py": 26, "test_index_engine.py": 20, "test_sources.py": 13, "test_architecture.py": 10,
    "test_catalogue_ingest.py": 8, "test_uncertainty_readiness.py": 3, "test_portal.py": 140,
    "test_workbench.py": 60, "test_audit.py": 3, "test_sensitivity_paths.py": 20, "test_methods_more.py": 15, "test_gep.py": 120,
}


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, longest file first (see FILE_SECONDS)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFileFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):
            longest = max(self.workqueue, key=lambda scope: FILE_SECONDS.get(Path(scope).name, 0))
            self.workqueue.move_to_end(longest, last=False)
            super()._assign_work_unit(node)

        def _reschedule(self, node):
            # the default hands a worker its next file while it still has two tests to run; one (the test it
            # is running: a worker keeps its last test until it knows what comes next) keeps the choice open
            if not node.shutting_down and self.workqueue and self._pending_of(self.assigned_work[node]) > 1:
                return
            super()._reschedule(node)

    return LongestFileFirst(config, log)


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
    from unittest import mock

    import prefect.testing.utilities as harness

    # The harness puts its database in a fresh temporary folder; this one already holds a migrated copy
    # (see prefect_home), so its server answers without spending 10-20 s on migrations.
    seeded = prefect_home(tmp_path_factory.mktemp("prefect_db"))
    if (seeded / "prefect.db").is_file():
        (seeded / "prefect.db").rename(seeded / "prefect-test.db")  # the file name the harness uses
    with mock.patch.object(harness, "mkdtemp", lambda: str(seeded)), \
            harness.prefect_test_harness(server_startup_timeout=120):
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

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"


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
def prefect_harness(tmp_path_factory):
    """One Prefect test server for the whole session (it costs about 8 s to start)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield

"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from onnx_models import build_classifier
from pgserver import PostgresServer, find_bindir
from watchdog.utils import BaseThread

from monitor.inference import LoadedModel, load_model

SHARED_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real"


@pytest.fixture
def shared_real() -> Path:
    """The team's real microscope images; skips cleanly where ../shared is absent."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (a fresh clone has no ../shared)")
    return SHARED_REAL


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-px-tile classifier (downsample x4): a 256² image gives 4 tiles."""
    return build_classifier(
        tmp_path_factory.mktemp("models") / "tiny.onnx", tile_size=32, downsample=4
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> LoadedModel:
    """One onnxruntime session shared by the daemons of all tests (sessions are thread-safe)."""
    return load_model(tiny_model_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's packages) in a temp folder, for the whole session.

    Skips where the server binaries are absent (``scripts/ensure-postgres.sh`` installs them);
    a missing driver is an error: ``make install-dev`` installs the ``postgres`` extra."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
            "scripts/ensure-postgres.sh (apt-get install postgresql)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[postgres]' (make install-dev)")
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database on the session's server (its URL, over a Unix socket)."""
    return postgres_server.new_database()


def _ours(thread: threading.Thread) -> bool:
    """A thread of stemwatch (its names start with ``stemwatch-``) or of watchdog."""
    return thread.name.startswith("stemwatch-") or isinstance(thread, BaseThread)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """No stemwatch or watchdog thread started by a test survives it (as in watchdog's own
    tests): every daemon, pipeline and observer a test starts is stopped and joined."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    for t in threading.enumerate():
        if t not in before and _ours(t):
            t.join(max(0.0, deadline - time.monotonic()))  # threads told to stop may be ending
    leaked = [t.name for t in threading.enumerate() if t not in before and _ours(t)]
    assert not leaked, f"threads left running after the test: {leaked}"

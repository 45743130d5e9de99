"""The store's tests run on both engines: ``target`` is a SQLite file or a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database on each engine: a file path, or a database on the real server."""
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    url: str = request.getfixturevalue("postgres_url")
    return url

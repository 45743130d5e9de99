"""Fixtures of the dashboard tests: a filled, a flagged and an empty results database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dashboard_db import FilledDb, add_left_out_images, fill_database

from stemwatch import store


@pytest.fixture
def filled_db(tmp_path: Path) -> FilledDb:
    return fill_database(tmp_path / "results.db", tmp_path / "images")


@pytest.fixture
def flagged_db(filled_db: FilledDb) -> FilledDb:
    """The filled database plus wells with images left out of their series (issue 9)."""
    add_left_out_images(filled_db.path, filled_db.image_dir)
    return filled_db


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    """A database the daemon created but that holds no images yet."""
    db = tmp_path / "empty.db"
    conn = store.open_db(db)
    store.beat(conn, state="watching", detail="waiting for images", now=time.time() - 3600)
    conn.close()
    return db

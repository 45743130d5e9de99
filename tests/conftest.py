"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real"


@pytest.fixture
def shared_real() -> Path:
    """The team's real microscope images; skips cleanly where ../shared is absent."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (a fresh clone has no ../shared)")
    return SHARED_REAL

"""Configuration of the monitor daemon (one YAML file, validated)."""

from __future__ import annotations

from stemwatch.config import StrictModel


class MonitorConfig(StrictModel):
    """Placeholder; the monitor issue fills this in."""

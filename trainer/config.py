"""Configuration of training (one YAML file, validated)."""

from __future__ import annotations

from stemwatch.config import StrictModel


class TrainerConfig(StrictModel):
    """Placeholder; the trainer issue fills this in."""

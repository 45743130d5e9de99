"""The manifest of a labelled image set: the CSV the trainer reads and every writer writes.

One row per image. ``path`` (relative to the manifest's folder, or absolute) and ``label``
are required; ``plate``, ``well``, ``field``, ``experiment`` and ``hours_since_induction`` are
optional groups for splitting and per-hour metrics (empty cells when unknown). Writers may add
columns of their own after these (the synthetic microscope adds ``condition`` and ``state``);
readers ignore columns they do not know. One extra column has a meaning for readers:
``source`` (:data:`SOURCE_COLUMN`) says where an image came from; the synthetic microscope
writes :data:`SYNTHETIC_SOURCE`, so a model trained on its images says so.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REQUIRED_COLUMNS = ("path", "label")
MANIFEST_COLUMNS = (
    *REQUIRED_COLUMNS,
    "plate",
    "well",
    "field",
    "experiment",
    "hours_since_induction",
)

SOURCE_COLUMN = "source"
SYNTHETIC_SOURCE = "stemwatch synth"
"""The ``source`` of every image the synthetic microscope writes."""


def is_synthetic(source: str) -> bool:
    """Whether a ``source`` cell marks an image of the synthetic microscope."""
    return source.strip().lower().startswith(SYNTHETIC_SOURCE)


def missing_columns(header: Sequence[str] | None) -> list[str]:
    """The required columns a manifest header lacks."""
    return [c for c in REQUIRED_COLUMNS if c not in (header or ())]


def write_manifest(
    path: Path,
    rows: Iterable[Mapping[str, object]],
    *,
    extra_columns: Sequence[str] = (),
) -> Path:
    """Write ``rows`` (mappings by column name) as a manifest: :data:`MANIFEST_COLUMNS`, then
    ``extra_columns``; other keys are dropped and None becomes an empty cell."""
    columns = [*MANIFEST_COLUMNS, *(c for c in extra_columns if c not in MANIFEST_COLUMNS)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return path

"""A training set from the monitor's database: every labelled image, checked on disk.

The database already holds each image's path, plate, well, field, time and content hash; the
lab's labels (:mod:`stemwatch.store.labels`) say what the images were. :func:`build_dataset`
writes the manifest :mod:`stemwatch.core.manifest` defines, ready for ``stemwatch train``:
one row per labelled image (``excluded`` ones left out) with ``experiment`` = the plate unless
given, ``hours_since_induction`` from the plate map where the well has an induction time, and
the image's id, time and content hash. Before an image goes in,
its file must still exist and be unchanged: same size, and the same content hash as when the
daemon analysed it. Images that fail the check are left out and listed.

Grouped splits then keep each well's images together (``split.group_by: well``, the default).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stemwatch import store
from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import content_hash
from stemwatch.core.labels import CLASS_LABELS
from stemwatch.core.manifest import write_manifest
from stemwatch.core.platemap import PlateMap, induction_time_s
from stemwatch.core.times import is_clock_time

log = logging.getLogger(__name__)

EXTRA_COLUMNS = ("time_s", "time_basis", "image_id", "content_hash", "label_id", "condition")


class DatasetError(StemwatchError):
    """No usable training set can be built from the database."""


@dataclass(frozen=True)
class FileCheck:
    """Whether a recorded image's file is still the one the daemon analysed."""

    image_id: int
    path: str
    ok: bool
    reason: str = ""  # missing, changed (size), changed (content), unverified


def check_file(image: store.LabelledImage) -> FileCheck:
    """Is ``image``'s file there and unchanged (size, then content hash)?"""
    p = Path(image.path)
    try:
        size = p.stat().st_size
    except OSError:
        return FileCheck(image.image_id, image.path, False, "missing")
    if image.size is not None and size != image.size:
        return FileCheck(
            image.image_id, image.path, False, f"changed (size {image.size} -> {size} bytes)"
        )
    if image.content_hash is None:
        return FileCheck(image.image_id, image.path, True, "unverified (no content hash stored)")
    try:
        digest = content_hash(p)
    except (OSError, StemwatchError):
        return FileCheck(image.image_id, image.path, False, "missing (unreadable)")
    if digest != image.content_hash:
        return FileCheck(image.image_id, image.path, False, "changed (content hash differs)")
    return FileCheck(image.image_id, image.path, True)


@dataclass
class DatasetReport:
    """What :func:`build_dataset` wrote and left out."""

    manifest: Path
    n_images: int
    per_plate: dict[str, Counter[str]]  # plate -> label -> images written
    wells: dict[str, Counter[str]]  # plate -> label -> wells written
    left_out: list[FileCheck] = field(default_factory=list)
    unverified: int = 0
    excluded: int = 0  # images labelled excluded

    def balance_lines(self) -> list[str]:
        """Class balance per plate, as table lines."""
        lines = [f"{'plate':<16} {'undifferentiated':>24} {'differentiated':>24}"]
        for plate in sorted(self.per_plate):
            c, w = self.per_plate[plate], self.wells[plate]
            cells = [f"{c[k]} images, {w[k]} wells" for k in CLASS_LABELS]
            lines.append(f"{plate:<16} {cells[0]:>24} {cells[1]:>24}")
        return lines


PlateKey = tuple[str, str]  # (instrument, plate)


def _hours_since_induction(
    image: store.LabelledImage,
    maps: dict[PlateKey, PlateMap],
    starts: dict[PlateKey, float | None],
) -> float | None:
    key = (image.instrument, image.plate)
    m = maps.get(key)
    layout = None if m is None else m.by_well().get(image.well)
    if layout is None or image.time_s is None:
        return None
    induced = induction_time_s(layout, is_clock_time(image.time_basis), starts.get(key))
    return None if induced is None else round((image.time_s - induced) / 3600.0, 4)


def build_dataset(
    db: store.Database,
    out_dir: Path,
    *,
    plates: Sequence[str] | None = None,
    instrument: str | None = None,
    experiment: str | None = None,
    workers: int = 4,
    progress: Callable[[int], None] | None = None,
) -> DatasetReport:
    """Write ``out_dir/manifest.csv`` (and ``dataset.json``, the report) from the labelled
    images of ``db`` (of ``plates``, else every plate with labels)."""
    labelled = store.labelled_images(db, plates, include_excluded=True, instrument=instrument)
    excluded = sum(1 for i in labelled if i.label == "excluded")
    images = [i for i in labelled if i.label != "excluded"]
    if not images:
        where = f"plate(s) {', '.join(plates)}" if plates else "any plate"
        raise DatasetError(
            f"{db.source}: no labelled images of {where}; label wells in the dashboard, mark "
            "false alarms or import end-point staining (`stemwatch labels import-endpoints`)"
        )
    maps = {
        (who, p): m
        for who, p in {(i.instrument, i.plate) for i in images}
        if (m := store.plate_map(db, p, instrument=who)) is not None
    }
    starts = {(p.instrument, p.plate): p.first_time_s for p in store.list_plates(db)}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checks = []
        for chk in pool.map(check_file, images):
            checks.append(chk)
            if progress is not None:
                progress(1)
    ok = {c.image_id for c in checks if c.ok}
    left_out = [c for c in checks if not c.ok]
    unverified = sum(1 for c in checks if c.ok and c.reason)
    kept = [i for i in images if i.image_id in ok]
    if not kept:
        raise DatasetError(
            f"{db.source}: every labelled image is missing or changed on disk (first: "
            f"{left_out[0].path}: {left_out[0].reason}); are the image folders mounted?"
        )
    rows: list[dict[str, Any]] = []
    per_plate: dict[str, Counter[str]] = {}
    wells: dict[str, dict[str, set[str]]] = {}
    for i in kept:
        m = maps.get((i.instrument, i.plate))
        layout = None if m is None else m.by_well().get(i.well)
        rows.append(
            {
                "path": str(Path(i.path).resolve()),
                "label": i.label,
                "plate": i.plate,
                "well": i.well,
                "field": i.field,
                "experiment": experiment or i.plate,
                "hours_since_induction": _hours_since_induction(i, maps, starts),
                "time_s": i.time_s,
                "time_basis": i.time_basis,
                "image_id": i.image_id,
                "content_hash": i.content_hash,
                "label_id": i.label_id,
                "condition": None if layout is None else layout.condition,
            }
        )
        per_plate.setdefault(i.plate, Counter())[i.label] += 1
        wells.setdefault(i.plate, {}).setdefault(i.label, set()).add(i.well)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(out_dir / "manifest.csv", rows, extra_columns=EXTRA_COLUMNS)
    report = DatasetReport(
        manifest=manifest,
        n_images=len(rows),
        per_plate=per_plate,
        wells={p: Counter({k: len(v) for k, v in w.items()}) for p, w in wells.items()},
        left_out=left_out,
        unverified=unverified,
        excluded=excluded,
    )
    (out_dir / "dataset.json").write_text(
        json.dumps(
            {
                "database": db.source,
                "manifest": str(manifest),
                "n_images": report.n_images,
                "class_balance": {p: dict(c) for p, c in per_plate.items()},
                "wells": {p: dict(c) for p, c in report.wells.items()},
                "excluded_images": excluded,
                "unverified_images": unverified,
                "left_out": [{"path": c.path, "reason": c.reason} for c in left_out],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    for c in left_out:
        log.warning("%s: left out of the training set (%s)", c.path, c.reason)
    return report

"""Labelled images in, cached model-ready tiles out.

Inputs are a manifest CSV (:mod:`stemwatch.core.manifest`: ``path,label`` plus optional
``plate,well,field,experiment,hours_since_induction``, and ``source``, which marks images
of the synthetic microscope) or a folder with one sub-folder per class. Each image goes
through the shared reader and :func:`stemwatch.core.imaging.prepare` (the monitor's exact
preprocessing); its tiles inherit its label and groups. Decoded tiles are kept in memory so
each image is read once per run; the content hash of the bytes read is kept too, so a run
records exactly which images it saw (:meth:`TileCache.content_hash`).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemwatch.core.errors import ImageReadError, StemwatchError
from stemwatch.core.imaging import (
    IMAGE_SUFFIXES,
    NormalisationRecipe,
    TilingSpec,
    check_file,
    decode,
    hash_bytes,
    prepare,
    read_bytes,
)
from stemwatch.core.manifest import REQUIRED_COLUMNS, SOURCE_COLUMN, is_synthetic, missing_columns

log = logging.getLogger(__name__)


class DataError(StemwatchError):
    """Training data is missing, empty, mislabelled or mostly unreadable."""


@dataclass(frozen=True)
class Sample:
    """One labelled image and the groups it belongs to."""

    path: Path
    label: int
    plate: str = ""
    well: str = ""
    field: str = ""
    experiment: str = ""
    hours: float | None = None
    source: str = ""
    """Where the image came from (the manifest's ``source`` column), e.g. ``stemwatch synth``."""

    @property
    def synthetic(self) -> bool:
        return is_synthetic(self.source)

    def group(self, by: str) -> str:
        """Group key; a well is only the same well within the same experiment and plate."""
        exp = self.experiment or "-"
        plate = self.plate or "-"
        if by == "experiment":
            return self.experiment or self.path.parent.name
        if by == "plate":
            return f"{exp}/{plate}"
        if by == "well":
            if not self.well:
                return f"{exp}/{plate}/{self.path.stem}"
            return f"{exp}/{plate}/{self.well}"
        raise ValueError(f"unknown group_by {by!r}")


@dataclass
class TileSet:
    """Tiles of a set of images: ``x`` (N,1,S,S) float32, ``y`` (N,), ``image`` (N,) index into
    ``samples``."""

    x: np.ndarray
    y: np.ndarray
    image: np.ndarray
    samples: list[Sample] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def _parse_hours(text: str, where: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(
            f"{where}: hours_since_induction {text!r} is not a number; leave it empty or give "
            "hours as a number"
        ) from None


def read_manifest(path: str | Path, classes: Sequence[str]) -> list[Sample]:
    """Read a manifest CSV; labels must be names in ``classes``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: manifest not found")
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        missing = missing_columns(fields)
        if missing:
            raise DataError(
                f"{p}: manifest lacks column(s) {missing}; it needs at least "
                f"{','.join(REQUIRED_COLUMNS)} "
                f"(got columns {fields})"
            )
        rows = list(reader)
    if not rows:
        raise DataError(f"{p}: manifest is empty; it needs one row per labelled image")
    samples: list[Sample] = []
    bad_labels: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        label = (row.get("label") or "").strip()
        if label not in classes:
            bad_labels[label] = bad_labels.get(label, 0) + 1
            continue
        rel = Path((row.get("path") or "").strip())
        img = rel if rel.is_absolute() else p.parent / rel
        samples.append(
            Sample(
                path=img,
                label=list(classes).index(label),
                plate=(row.get("plate") or "").strip(),
                well=(row.get("well") or "").strip(),
                field=(row.get("field") or "").strip(),
                experiment=(row.get("experiment") or "").strip(),
                hours=_parse_hours(row.get("hours_since_induction") or "", f"{p} line {i}"),
                source=(row.get(SOURCE_COLUMN) or "").strip(),
            )
        )
    if bad_labels:
        raise DataError(
            f"{p}: labels {sorted(bad_labels)} do not match the configured classes "
            f"{list(classes)}; fix the manifest or set data.classes"
        )
    return samples


def scan_folder(folder: str | Path, classes: Sequence[str]) -> list[Sample]:
    """One sub-folder per class; plate/well come from the file name when it has them."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    subdirs = sorted(d.name for d in root.iterdir() if d.is_dir())
    unknown = [d for d in subdirs if d not in classes]
    if unknown:
        raise DataError(
            f"{root}: sub-folders {unknown} do not match the configured classes {list(classes)}; "
            "rename them or set data.classes"
        )
    samples: list[Sample] = []
    for label, name in enumerate(classes):
        files = (
            sorted(
                f
                for f in (root / name).rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if (root / name).is_dir()
            else []
        )
        for f in files:
            samples.append(Sample(path=f, label=label, **_location(f)))
    return samples


def _location(path: Path) -> dict[str, Any]:
    """Plate and well from the file name via the shared resolver, when it finds them."""
    try:
        from stemwatch.core.platemeta import resolve

        loc = resolve(path)
    except (StemwatchError, NotImplementedError, ValueError, TypeError):
        return {}
    out = {}
    if getattr(loc, "plate", None):
        out["plate"] = str(loc.plate)
    if getattr(loc, "well", None):
        out["well"] = str(loc.well)
    return out


def load_samples(
    *,
    manifest: Path | None,
    folder: Path | None,
    classes: Sequence[str],
    min_classes: int = 2,
) -> list[Sample]:
    """Samples from a manifest or a class-folder tree, checked to hold at least
    ``min_classes`` classes (training needs two; an evaluation may score one)."""
    if manifest is not None:
        samples = read_manifest(manifest, classes)
        source = str(manifest)
    elif folder is not None:
        samples = scan_folder(folder, classes)
        source = str(folder)
    else:
        raise DataError("no training data: set data.manifest or data.folder")
    if not samples:
        raise DataError(f"{source}: no images found (looked for {sorted(IMAGE_SUFFIXES)})")
    present = sorted({s.label for s in samples})
    if len(present) < min_classes:
        only = classes[present[0]]
        missing = [c for c in classes if c != only]
        raise DataError(
            f"{source}: only class {only!r} has images; training needs at least two classes "
            f"(add images of {missing})"
        )
    return samples


def provenance(samples: Sequence[Sample]) -> dict[str, Any]:
    """How many of ``samples`` the synthetic microscope made (a recorded fact of every run)."""
    n_synth = sum(s.synthetic for s in samples)
    return {
        "n_images": len(samples),
        "synthetic_images": n_synth,
        "synthetic_fraction": round(n_synth / len(samples), 4) if samples else 0.0,
    }


class TileCache:
    """Prepared tiles per image path, decoded once and kept in memory."""

    def __init__(
        self,
        tiling: TilingSpec,
        normalisation: NormalisationRecipe,
        *,
        page: int = 0,
        keep: bool = True,
    ) -> None:
        self.tiling = tiling
        self.normalisation = normalisation
        self.page = page
        self.keep = keep
        self._tiles: dict[Path, np.ndarray] = {}
        self._hashes: dict[Path, str] = {}

    def tiles(self, path: Path) -> np.ndarray:
        """(N,1,S,S) float32 tiles of ``path``; raises :class:`ImageReadError`."""
        hit = self._tiles.get(path)
        if hit is not None:
            return hit
        raw = read_bytes(path)  # read once: hashed, checked and decoded from these bytes
        checked = check_file(path, raw)
        self._hashes[path] = hash_bytes(raw)
        image = decode(checked, page=self.page)
        data = prepare(image.pixels, self.normalisation, self.tiling).data
        if self.keep:
            self._tiles[path] = data
        return data

    def content_hash(self, path: Path) -> str:
        """XXH3-128 of the file's bytes as this cache read them (reads it if it has not)."""
        if path not in self._hashes:
            self.tiles(path)
        return self._hashes[path]

    def warm(
        self, samples: Sequence[Sample], *, workers: int = 1, max_unreadable_fraction: float = 0.05
    ) -> list[Sample]:
        """Decode every sample; returns the readable ones, listing the others in the log.

        Raises :class:`DataError` when more than ``max_unreadable_fraction`` cannot be read.
        """
        failures: list[ImageReadError] = []

        def load(s: Sample) -> ImageReadError | None:
            try:
                self.tiles(s.path)
            except ImageReadError as exc:
                return exc
            return None

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(load, samples))
        good = [s for s, err in zip(samples, results, strict=True) if err is None]
        failures = [err for err in results if err is not None]
        for err in failures:
            log.warning("unreadable image skipped: %s", err)
        if failures:
            frac = len(failures) / len(samples)
            allowed = math.floor(max_unreadable_fraction * len(samples))
            if len(failures) > allowed:
                listed = "; ".join(str(e) for e in failures[:5])
                more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
                raise DataError(
                    f"{len(failures)} of {len(samples)} images ({frac:.0%}) cannot be read, above "
                    f"data.max_unreadable_fraction={max_unreadable_fraction}: {listed}{more}"
                )
        return good

    def tileset(self, samples: Sequence[Sample]) -> TileSet:
        """Stack the tiles of ``samples`` (which must be readable) into one :class:`TileSet`."""
        xs, ys, idx = [], [], []
        for i, s in enumerate(samples):
            t = self.tiles(s.path)
            xs.append(t)
            ys.append(np.full(len(t), s.label, dtype=np.int64))
            idx.append(np.full(len(t), i, dtype=np.int64))
        size = self.tiling.tile_size
        if not xs:
            return TileSet(
                np.zeros((0, 1, size, size), np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                list(samples),
            )
        return TileSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(idx), list(samples))

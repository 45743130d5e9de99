"""Kusumoto-style labels: phase-contrast blocks labelled by their paired fluorescence.

Each label-free image has an immunofluorescence image of the same field and name (e.g. a
differentiation marker). The fluorescence is thresholded (:mod:`trainer.threshold`: Otsu only
on a bimodal histogram, else relative to a control image or the image's own background, or
a fixed threshold); both images are cut into the same square blocks; a block whose stained-pixel
fraction reaches ``stained_fraction`` gets the stained class, otherwise the unstained class.

The label-free blocks are written as TIFFs (with the source's pixel size, so the trainer's
automatic downsampling applies) plus a manifest with plate, well, field and hours since
induction, taken from each image's metadata by :func:`stemwatch.core.platemeta.resolve`; a
block of an image whose well cannot be told is its own group. Each row also says which
threshold rule labelled it.

When a ground-truth mask of stained cells is present for an image (the synthetic
microscope's ``fluorescence/truth/``), each block also gets its true label (stained-cell
fraction >= ``stained_fraction``) and :func:`truth_report` compares: block accuracy,
precision / recall / F1 of stained blocks, and the fraction of stained blocks that come from
fields with no stained cell at all, each with a 95 % interval over wells.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemwatch.core.errors import PlateMetadataError, StemwatchError
from stemwatch.core.imaging import IMAGE_SUFFIXES, read_image
from stemwatch.core.intervals import Interval, bootstrap_items
from stemwatch.core.manifest import SOURCE_COLUMN, write_manifest
from stemwatch.core.optics import read_pixel_size
from stemwatch.core.platemeta import resolve
from stemwatch.core.stainmask import TRUTH_STAINED
from trainer.threshold import Threshold, ThresholdRule, binarise, choose_threshold

log = logging.getLogger(__name__)

LABEL_COLUMNS = (
    SOURCE_COLUMN,
    "source_image",
    "block_row",
    "block_col",
    "stained_fraction",
    "threshold_method",
    "threshold",
    "truth_label",
    "truth_stained_fraction",
    "field_has_stained_cell",
)
"""Columns ``stemwatch label`` adds to the manifest (truth_* empty without ground truth)."""


class LabelError(StemwatchError):
    """Phase-contrast and fluorescence images cannot be paired or do not match."""


@dataclass(frozen=True)
class LabelSettings:
    """How blocks are cut and labelled."""

    block_size: int = 256
    rule: ThresholdRule = field(default_factory=ThresholdRule)
    stained_fraction: float = 0.3
    """Minimum stained-pixel fraction of a block to call it stained."""
    stained_class: str = "differentiated"
    unstained_class: str = "undifferentiated"
    induction_h: float = 0.0
    """Hours after the time origin (experiment start, or a plate's first image) of induction."""


@dataclass(frozen=True)
class Pair:
    """A label-free image, its fluorescence image and, where known, its ground-truth mask."""

    phase: Path
    fluorescence: Path
    truth: Path | None = None


def block_fractions(mask: np.ndarray, block_size: int) -> np.ndarray:
    """Per-block fraction of True pixels; shape (rows, cols) of full blocks."""
    rows, cols = mask.shape[0] // block_size, mask.shape[1] // block_size
    if rows == 0 or cols == 0:
        return np.zeros((0, 0))
    m = mask[: rows * block_size, : cols * block_size].reshape(rows, block_size, cols, block_size)
    return np.asarray(m.mean(axis=(1, 3)))


def block_labels(mask: np.ndarray, block_size: int, stained_fraction: float) -> np.ndarray:
    """Per-block stained fraction >= ``stained_fraction``; shape (rows, cols) of full blocks."""
    return np.asarray(block_fractions(mask, block_size) >= stained_fraction)


def _index(d: Path, skip: Sequence[Path]) -> dict[str, Path]:
    """Images under ``d`` (sub-folders too, except ``skip``) by name stem; a stem twice is an
    error naming both files."""
    out: dict[str, Path] = {}
    skip_r = [s.resolve() for s in skip]
    for p in sorted(d.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rp = p.resolve()
        if any(rp.is_relative_to(s) for s in skip_r):
            continue
        if p.stem in out:
            raise LabelError(
                f"{d}: two images named {p.stem!r} ({out[p.stem]} and {p}); names pair the "
                "label-free and fluorescence images, so each must be unique"
            )
        out[p.stem] = p
    return out


def pair_images(
    phase_dir: Path,
    fluo_dir: Path,
    *,
    truth_dir: Path | None = None,
    skip: Sequence[Path] = (),
) -> list[Pair]:
    """Pair files by name stem (``A01_f1.tif`` with ``A01_f1.tif`` / ``A01_f1.png``).

    ``phase_dir`` is searched with its sub-folders (class folders of a data set), except
    ``fluo_dir`` and ``skip``; ``fluo_dir`` and ``truth_dir`` only at their top level."""
    for d, what in ((phase_dir, "label-free"), (fluo_dir, "fluorescence")):
        if not d.is_dir():
            raise LabelError(f"{d}: {what} folder not found")

    def flat(d: Path) -> dict[str, Path]:
        return {
            p.stem: p
            for p in sorted(d.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        }

    phase = _index(phase_dir, [fluo_dir, *skip])
    fluo = flat(fluo_dir)
    truth = flat(truth_dir) if truth_dir is not None and truth_dir.is_dir() else {}
    if not phase:
        raise LabelError(f"{phase_dir}: no images (TIFF/PNG/JPEG) found")
    unpaired = sorted(set(phase) - set(fluo))
    if unpaired:
        raise LabelError(
            f"{fluo_dir}: no fluorescence image for label-free image(s) "
            f"{unpaired[:5]}{' ...' if len(unpaired) > 5 else ''}; name each pair identically"
        )
    return [Pair(phase[k], fluo[k], truth.get(k)) for k in sorted(phase)]


@dataclass(frozen=True)
class Controls:
    """Control images: one for every image, or one per plate (file stem = plate name)."""

    single: np.ndarray | None = None
    by_plate: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Controls:
        if path is None:
            return cls()
        if path.is_dir():
            plates = {
                p.stem: read_image(p).pixels
                for p in sorted(path.iterdir())
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            }
            if not plates:
                raise LabelError(f"{path}: no control images (one per plate, named <plate>.tif)")
            return cls(by_plate=plates)
        if not path.is_file():
            raise LabelError(f"{path}: control image not found")
        return cls(single=read_image(path).pixels)

    def for_plate(self, plate: str) -> np.ndarray | None:
        return self.single if self.single is not None else self.by_plate.get(plate)


@dataclass(frozen=True)
class Located:
    """What the metadata says about an image: plate, well, field, time."""

    plate: str = ""
    well: str = ""
    field: str = ""
    time_s: float | None = None
    basis: str | None = None


def locate(path: Path, ome_xml: str | None) -> Located:
    """Plate, well, field and time of ``path`` by the shared resolver (OME-XML, file-name
    presets); empty when the metadata do not say (the image is then its own group)."""
    try:
        loc = resolve(path, ome_xml=ome_xml, use_mtime=False)
    except PlateMetadataError as exc:
        log.info("%s", exc)
        return Located()
    return Located(
        plate=loc.plate or "",
        well=loc.well,
        field="" if loc.field is None else str(loc.field),
        time_s=loc.time_s,
        basis=loc.time_basis,
    )


def hours_since_induction(
    located: Sequence[Located], induction_h: float
) -> tuple[list[float | None], str]:
    """Hours since induction of each image and how they were counted: elapsed time since
    the experiment start as stated, or (for dates) since the first image of the plate in this
    set, minus ``induction_h``."""
    first: dict[str, float] = {}
    for loc in located:
        if loc.basis == "epoch" and loc.time_s is not None:
            first[loc.plate] = min(first.get(loc.plate, loc.time_s), loc.time_s)
    hours: list[float | None] = []
    for loc in located:
        if loc.time_s is None:
            hours.append(None)
        elif loc.basis == "epoch":
            hours.append((loc.time_s - first[loc.plate]) / 3600.0 - induction_h)
        else:
            hours.append(loc.time_s / 3600.0 - induction_h)
    bases = {loc.basis for loc in located if loc.time_s is not None}
    how = []
    if "epoch" in bases:
        how.append("acquisition dates: hours since the first image of each plate in this set")
    if "elapsed" in bases:
        how.append("elapsed time since the experiment start")
    text = " and ".join(how) or "no image states its time"
    if how and induction_h:
        text += f", minus {induction_h:g} h (--induction-h)"
    return hours, text


@dataclass
class LabelResult:
    """What :func:`label_pairs` wrote and found."""

    manifest: Path
    report: Path
    n_blocks: int
    n_stained: int
    methods: dict[str, int]
    time_basis: str
    truth: dict[str, Interval] | None = None
    truth_counts: dict[str, int] | None = None
    images: list[dict[str, Any]] = field(default_factory=list)


def source_manifest(phase_dir: Path) -> dict[str, dict[str, str]]:
    """Rows of a manifest.csv in the label-free folder (a data set's), by image name stem."""
    path = phase_dir / "manifest.csv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {Path(r.get("path", "")).stem: r for r in csv.DictReader(fh)}


def label_pairs(
    pairs: Sequence[Pair],
    out_dir: Path,
    settings: LabelSettings | None = None,
    *,
    controls: Controls | None = None,
    source_rows: Mapping[str, Mapping[str, str]] | None = None,
) -> LabelResult:
    """Threshold, cut, label and write blocks of every pair; writes ``out_dir/manifest.csv``
    and ``out_dir/label_report.json``."""
    s = settings or LabelSettings()
    controls = controls or Controls()
    source_rows = source_rows or {}
    b = s.block_size
    images = [read_image(p.phase) for p in pairs]
    located = [locate(p.phase, im.ome_xml) for p, im in zip(pairs, images, strict=True)]
    hours, time_basis = hours_since_induction(located, s.induction_h)
    rows: list[dict[str, object]] = []
    per_image: list[dict[str, Any]] = []
    methods: dict[str, int] = {}
    for pair, image, loc, h in zip(pairs, images, located, hours, strict=True):
        phase = image.pixels
        fluo = read_image(pair.fluorescence).pixels
        if phase.shape != fluo.shape:
            raise LabelError(
                f"{pair.fluorescence}: fluorescence is {fluo.shape[1]}x{fluo.shape[0]} px but "
                f"{pair.phase.name} is {phase.shape[1]}x{phase.shape[0]} px; pairs must be the "
                "same field at the same size"
            )
        control = controls.for_plate(loc.plate)
        if control is not None and control.shape != fluo.shape:
            control = None  # a control of another size says nothing about this camera setting
        threshold = choose_threshold(fluo, s.rule, control)
        methods[threshold.method] = methods.get(threshold.method, 0) + 1
        fractions = block_fractions(binarise(fluo, threshold), b)
        if fractions.size == 0:
            raise LabelError(
                f"{pair.phase}: image {phase.shape[1]}x{phase.shape[0]} px is smaller than one "
                f"block ({b} px); lower --block-size"
            )
        truth_frac, field_stained = _truth(pair, fluo.shape, b)
        pixel = read_pixel_size(pair.phase)
        src = source_rows.get(pair.phase.stem, {})
        n_img_stained = 0
        for r in range(fractions.shape[0]):
            for c in range(fractions.shape[1]):
                stained = bool(fractions[r, c] >= s.stained_fraction)
                n_img_stained += stained
                label = s.stained_class if stained else s.unstained_class
                rel = Path(label) / f"{pair.phase.stem}_r{r:02d}_c{c:02d}.tif"
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                block = np.ascontiguousarray(phase[r * b : (r + 1) * b, c * b : (c + 1) * b])
                _write_block(out_dir / rel, block, None if pixel is None else pixel.um)
                truth_label = ""
                if truth_frac is not None:
                    t_stained = truth_frac[r, c] >= s.stained_fraction
                    truth_label = s.stained_class if t_stained else s.unstained_class
                rows.append(
                    {
                        "path": rel.as_posix(),
                        "label": label,
                        "plate": loc.plate,
                        "well": loc.well or pair.phase.stem,
                        "field": loc.field,
                        "experiment": src.get("experiment", ""),
                        "hours_since_induction": None if h is None else f"{h:g}",
                        SOURCE_COLUMN: src.get(SOURCE_COLUMN, ""),
                        "source_image": pair.phase.name,
                        "block_row": r,
                        "block_col": c,
                        "stained_fraction": f"{fractions[r, c]:.4f}",
                        "threshold_method": threshold.method,
                        "threshold": f"{threshold.value:.2f}",
                        "truth_label": truth_label,
                        "truth_stained_fraction": (
                            "" if truth_frac is None else f"{truth_frac[r, c]:.4f}"
                        ),
                        "field_has_stained_cell": (
                            "" if field_stained is None else int(field_stained)
                        ),
                    }
                )
        per_image.append(_image_entry(pair, threshold, fractions.size, n_img_stained))
        log.debug("%s: %s", pair.phase.name, threshold.describe())
    manifest = write_manifest(out_dir / "manifest.csv", rows, extra_columns=LABEL_COLUMNS)
    n_stained = sum(1 for r in rows if r["label"] == s.stained_class)
    truth, counts = truth_report(rows, s.stained_class)
    result = LabelResult(
        manifest=manifest,
        report=out_dir / "label_report.json",
        n_blocks=len(rows),
        n_stained=n_stained,
        methods=methods,
        time_basis=time_basis,
        truth=truth,
        truth_counts=counts,
        images=per_image,
    )
    _write_report(result, s)
    return result


def _write_block(path: Path, block: np.ndarray, pixel_um: float | None) -> None:
    """A block TIFF; with the source's pixel size in the resolution tags (pixels per cm)."""
    import tifffile

    if pixel_um is None:
        tifffile.imwrite(path, block)
        return
    per_cm = 1e4 / pixel_um
    tifffile.imwrite(path, block, resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")


def _truth(pair: Pair, shape: tuple[int, ...], b: int) -> tuple[np.ndarray | None, bool | None]:
    """True stained-cell fraction per block and whether the field has any stained cell."""
    if pair.truth is None:
        return None, None
    mask = read_image(pair.truth).pixels
    if mask.shape != shape:
        raise LabelError(
            f"{pair.truth}: ground-truth mask is {mask.shape[1]}x{mask.shape[0]} px, not the "
            f"{shape[1]}x{shape[0]} px of its fluorescence image"
        )
    stained = mask == TRUTH_STAINED
    return block_fractions(stained, b), bool(stained.any())


def _image_entry(pair: Pair, t: Threshold, n_blocks: int, n_stained: int) -> dict[str, Any]:
    return {
        "image": pair.phase.name,
        "fluorescence": str(pair.fluorescence),
        "method": t.method,
        "threshold": round(t.value, 3),
        "ashman_d": None if t.ashman_d is None else round(t.ashman_d, 3),
        "separation_sd": None if t.separation is None else round(t.separation, 2),
        "rule": t.describe(),
        "blocks": n_blocks,
        "stained_blocks": n_stained,
    }


def truth_report(
    rows: Sequence[Mapping[str, object]], stained_class: str
) -> tuple[dict[str, Interval] | None, dict[str, int] | None]:
    """Block labels against the ground truth, over the rows that have one: accuracy,
    precision / recall / F1 of stained blocks, and the fraction of stained blocks from fields
    with no stained cell; each with a 95 % bootstrap interval over wells (plate/well)."""
    rows = [r for r in rows if r.get("truth_label")]
    if not rows:
        return None, None
    pred = np.array([r["label"] == stained_class for r in rows])
    true = np.array([r["truth_label"] == stained_class for r in rows])
    empty = np.array([str(r["field_has_stained_cell"]) == "0" for r in rows])
    groups = [f"{r.get('plate', '')}/{r.get('well', '')}" for r in rows]
    correct = (pred == true).astype(float)
    tp = (pred & true).astype(float)

    def ratio(num: np.ndarray, den: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        def stat(w: np.ndarray) -> np.ndarray:
            d = w @ den
            return np.where(d > 0, (w @ num) / np.where(d > 0, d, 1.0), np.nan)

        return stat

    def f1(w: np.ndarray) -> np.ndarray:
        d = w @ pred.astype(float) + w @ true.astype(float)
        return np.where(d > 0, 2 * (w @ tp) / np.where(d > 0, d, 1.0), np.nan)

    stats = {
        "block_accuracy": ratio(correct, np.ones(len(rows))),
        "precision": ratio(tp, pred.astype(float)),
        "recall": ratio(tp, true.astype(float)),
        "f1": f1,
        "positives_from_unstained_fields": ratio((pred & empty).astype(float), pred.astype(float)),
    }
    counts = {
        "blocks": len(rows),
        "true_stained": int(true.sum()),
        "labelled_stained": int(pred.sum()),
        "false_positive": int((pred & ~true).sum()),
        "false_negative": int((~pred & true).sum()),
        "positives_from_unstained_fields": int((pred & empty).sum()),
        "unstained_fields_blocks": int(empty.sum()),
        "wells": len(set(groups)),
    }
    return bootstrap_items(groups, stats), counts


def _write_report(result: LabelResult, s: LabelSettings) -> None:
    def iv(i: Interval) -> dict[str, float | None]:
        return {"value": i.value, "low": i.low, "high": i.high, "n_groups": i.n_groups}

    doc = {
        "blocks": result.n_blocks,
        "stained_blocks": result.n_stained,
        "threshold_methods": result.methods,
        "time_basis": result.time_basis,
        "settings": {
            "block_size": s.block_size,
            "stained_fraction": s.stained_fraction,
            "background_k": s.rule.background_k,
            "min_ashman_d": s.rule.min_ashman_d,
            "fixed_threshold": s.rule.fixed,
            "induction_h": s.induction_h,
        },
        "ground_truth": None
        if result.truth is None
        else {"counts": result.truth_counts, **{k: iv(v) for k, v in result.truth.items()}},
        "images": result.images,
    }
    result.report.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def summary_lines(result: LabelResult) -> list[str]:
    """What ``stemwatch label`` prints."""
    methods = ", ".join(f"{k} {v}" for k, v in sorted(result.methods.items()))
    lines = [
        f"labelled {result.n_blocks} blocks, {result.n_stained} stained; threshold rule per "
        f"image: {methods} (per image in {result.report.name})",
        f"hours since induction: {result.time_basis}",
    ]
    if result.truth is not None and result.truth_counts is not None:
        c = result.truth_counts
        t = result.truth
        lines += [
            f"against the ground truth ({c['blocks']} blocks, {c['wells']} wells; 95 % "
            "intervals over wells):",
            f"  block accuracy {t['block_accuracy'].text()}",
            f"  stained blocks: precision {t['precision'].text()}, recall "
            f"{t['recall'].text()}, F1 {t['f1'].text()} ({c['false_positive']} false "
            f"positive, {c['false_negative']} false negative)",
            f"  stained blocks from fields with no stained cell: "
            f"{c['positives_from_unstained_fields']} of {c['labelled_stained']} "
            f"({t['positives_from_unstained_fields'].text()})",
        ]
    lines.append(f"manifest: {result.manifest}")
    return lines


def find_default(fluo_dir: Path, name: str) -> Path | None:
    """``fluo_dir/name`` when it exists (the synthetic microscope's truth/ and control/)."""
    p = fluo_dir / name
    return p if p.exists() else None

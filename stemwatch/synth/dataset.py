"""Labelled synthetic training / validation sets: ``out_dir/<label>/<file>.tif`` plus
``manifest.csv``.

Each experiment is one synthetic plate with ``wells_per_class`` maintenance wells (row A) and
``wells_per_class`` induced wells (row B), all induced at 0 h, imaged at ``timepoints_h``.

Labels follow the condition, as in Waisman et al. 2019: every image of an induced well is
``differentiated``, including 0 h and early hours where the morphology has not changed yet,
and every image of a maintenance well is ``undifferentiated`` (a few colonies there may
differentiate spontaneously: realistic label noise). ``hours_since_induction`` is in the
manifest so accuracy can be computed per hour, or early hours filtered out for training;
``state`` is the true mean differentiation state of the well's colonies (0..1) at that time;
``label_by="state"`` labels by that state instead (``differentiated`` when at least
:data:`~stemwatch.synth.biology.ONSET_THRESHOLD`).

Every image is an OME-TIFF that states its plate, well and pixel size (``PhysicalSizeX``), as
a microscope's export does, so the trainer derives its downsampling from the images; every
manifest row has ``source`` = :data:`~stemwatch.core.manifest.SYNTHETIC_SOURCE`, so a model
trained on them records that it never saw a real culture.

With ``fluorescence`` (a :class:`~stemwatch.synth.fluorescence.FluorescenceSpec`) every image
also gets its paired immunofluorescence image of the same name in ``out_dir/fluorescence/``
(Kusumoto et al. 2018), its ground-truth mask of stained cells in
``out_dir/fluorescence/truth/``, each plate a no-primary control image in
``out_dir/fluorescence/control/<plate>.tif``, and ``out_dir/fluorescence/truth.csv`` one row
per image (cells, stained cells, faint staining, autofluorescent colonies);
``stemwatch label out_dir out_dir/fluorescence`` pairs them by name.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np

from stemwatch.core.manifest import SOURCE_COLUMN, SYNTHETIC_SOURCE, write_manifest
from stemwatch.core.wells import well_from_index
from stemwatch.synth.biology import ONSET_THRESHOLD
from stemwatch.synth.cellline import CellLine, get_cell_line
from stemwatch.synth.difficulty import Difficulty, SynthError, get_difficulty
from stemwatch.synth.fluorescence import FluorescenceSpec, control_image, render_for
from stemwatch.synth.plate import PlatePlan, plan_plate, write_tiff
from stemwatch.synth.spec import PlateSpec

log = logging.getLogger(__name__)

LABELS = ("undifferentiated", "differentiated")
SYNTH_COLUMNS = ("condition", "state", "cell_line", SOURCE_COLUMN)
"""Columns the synthetic set adds to the manifest: the well's condition and true state, the
cell line drawn (``hipsc``, ``mesc``) and the images' source
(:data:`~stemwatch.core.manifest.SYNTHETIC_SOURCE`)."""


DEFAULT_EXPERIMENTS = 4
DEFAULT_WELLS_PER_CLASS = 10
DEFAULT_FIELDS = 2
DEFAULT_HOURS = (0.0, 6.0, 12.0, 24.0, 48.0)
DEFAULT_SIZE = 1024
"""The default set (``stemwatch synth dataset OUT``): 4 plates x 10 wells per class x 2
fields x 0/6/12/24/48 h = 800 images of 1024² px (1 µm pixels, as a camera gives them).
Enough wells that the trainer's default split (``split.test_fraction`` 0.25) holds out 10
wells per class, the fewest that give a stable figure; images large enough that each is
judged on 16 tiles (docs/training.md, "The README's path, measured")."""

FLUORESCENCE_DIR = "fluorescence"
FLUORESCENCE_TRUTH_COLUMNS = (
    "image",
    "plate",
    "well",
    "field",
    "hours_since_induction",
    "n_cells",
    "n_stained",
    "faint",
    "n_autofluorescent",
)

_Job = tuple[PlatePlan, str, int, int, Path, str | None, FluorescenceSpec | None]


def _render_to(args: _Job) -> dict[str, object] | None:
    plan, well, fld, t, path, compression, fluo = args
    write_tiff(path, plan.render(well, fld, t), plan.ome_xml(well, fld, t), compression)
    if fluo is None:
        return None
    # the paired channel: same name in fluorescence/, its ground truth in fluorescence/truth/
    f = render_for(plan, well, fld, t, fluo)
    fdir = path.parent.parent / FLUORESCENCE_DIR
    write_tiff(fdir / path.name, f.image, None, compression)
    write_tiff(fdir / "truth" / path.name, f.truth, None, compression)
    return {
        "image": path.stem,
        "plate": plan.plate,
        "well": well,
        "field": fld + 1,
        "hours_since_induction": f"{plan.times_h[t]:g}",
        "n_cells": f.n_cells,
        "n_stained": f.n_stained,
        "faint": int(f.faint),
        "n_autofluorescent": f.n_autofluorescent,
    }


def generate_dataset(
    out_dir: Path,
    *,
    n_experiments: int = DEFAULT_EXPERIMENTS,
    wells_per_class: int = DEFAULT_WELLS_PER_CLASS,
    fields_per_well: int = DEFAULT_FIELDS,
    timepoints_h: Sequence[float] = DEFAULT_HOURS,
    size: int = DEFAULT_SIZE,
    bit_depth: int = 8,
    difficulty: str | Difficulty = "default",
    seed: int = 0,
    label_by: Literal["condition", "state"] = "condition",
    pixel_size_um: float = 1.0,
    compression: str | None = None,
    workers: int = 1,
    fluorescence: FluorescenceSpec | None = None,
    modality: str = "brightfield",
    cell_line: str | CellLine = "hipsc",
) -> Path:
    """Write a labelled image set and return the path of its ``manifest.csv`` (with
    ``fluorescence``, the paired fluorescence images too: module docstring). ``cell_line``
    is what grows (:mod:`stemwatch.synth.cellline`; ``mesc``: 2i+LIF vs induced EpiLC)."""
    if label_by not in ("condition", "state"):
        raise SynthError(f"label_by={label_by!r}; use 'condition' or 'state'")
    if n_experiments < 1 or wells_per_class < 1 or fields_per_well < 1:
        raise SynthError(
            "n_experiments, wells_per_class and fields_per_well must each be at least 1 "
            f"(got {n_experiments}, {wells_per_class}, {fields_per_well})"
        )
    if any(t < 0 for t in timepoints_h):
        raise SynthError(f"timepoints_h={tuple(timepoints_h)}: hours must be >= 0")
    diff = get_difficulty(difficulty)
    line = get_cell_line(cell_line)
    out_dir = Path(out_dir)
    for label in LABELS:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
    if fluorescence is not None:
        (out_dir / FLUORESCENCE_DIR / "truth").mkdir(parents=True, exist_ok=True)
        (out_dir / FLUORESCENCE_DIR / "control").mkdir(parents=True, exist_ok=True)
    maint = [well_from_index(0, c) for c in range(wells_per_class)]
    induced = [well_from_index(1, c) for c in range(wells_per_class)]
    rows: list[dict[str, str]] = []
    jobs: list[_Job] = []
    for e in range(n_experiments):
        experiment = f"E{e + 1:02d}"
        plate = f"SYN{seed % 1000:03d}{experiment}"
        exp_seed = int(np.random.default_rng([seed, 17, e]).integers(0, 2**31 - 1))
        plan = plan_plate(
            PlateSpec(
                wells=maint + induced,
                n_fields=fields_per_well,
                times_h=timepoints_h,
                size=size,
                bit_depth=bit_depth,
                seed=exp_seed,
                plate_name=plate,
                difficulty=diff,
                induced=induced,
                induction_h=0.0,
                pixel_size_um=pixel_size_um,
                modality=modality,
                cell_line=line,
            )
        )
        if fluorescence is not None:
            control = out_dir / FLUORESCENCE_DIR / "control" / f"{plate}.tif"
            write_tiff(control, control_image(plan), None, compression)
        for well in maint + induced:
            cond = plan.wells[well].condition
            for t, hours in enumerate(plan.times_h):
                state = plan.mean_state(well, t)
                if label_by == "condition":
                    label = LABELS[cond == "induced"]
                else:
                    label = LABELS[state >= ONSET_THRESHOLD]
                for fld in range(fields_per_well):
                    rel = Path(label) / f"{plate}_{well}_f{fld + 1}_{hours:05.1f}h.tif"
                    jobs.append((plan, well, fld, t, out_dir / rel, compression, fluorescence))
                    rows.append(
                        {
                            "path": rel.as_posix(),
                            "label": label,
                            "plate": plate,
                            "well": well,
                            "field": str(fld + 1),
                            "experiment": experiment,
                            "hours_since_induction": f"{hours:g}",
                            "condition": cond,
                            "state": f"{state:.4f}",
                            "cell_line": line.name,
                            SOURCE_COLUMN: SYNTHETIC_SOURCE,
                        }
                    )
    if workers <= 1:
        truths = [_render_to(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            truths = list(pool.map(_render_to, jobs, chunksize=4))
    if fluorescence is not None:
        _write_truth(out_dir / FLUORESCENCE_DIR / "truth.csv", [r for r in truths if r])
    manifest = write_manifest(out_dir / "manifest.csv", rows, extra_columns=SYNTH_COLUMNS)
    log.info("dataset: %d images in %s", len(rows), out_dir)
    return manifest


def _write_truth(path: Path, rows: Sequence[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=FLUORESCENCE_TRUTH_COLUMNS)
        wr.writeheader()
        wr.writerows(rows)

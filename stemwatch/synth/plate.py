"""Synthetic plates: a plan (wells, conditions, colonies, fields, stage drift, times) and its
rendering into OME-TIFF files with Incucyte-style names plus a ground-truth table.

File names follow the Incucyte export convention that :mod:`stemwatch.core.platemeta` parses with
its ``incucyte`` preset: ``{plate}_{well}_{field}_{YYYY}y{MM}m{DD}d_{HH}h{MM}m.tif`` with the
well unpadded (``A1``) and the field 1-based. The OME-XML inside each file is authoritative
(Plate/Well/WellSample/ImageRef, AcquisitionDate = experiment start, Plane DeltaT = seconds
since then).

Every image is drawn from its own random stream seeded by (seed, well, field, time point), so
the same seed gives the same bytes whatever the order or the number of worker processes.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from stemwatch.core.wells import (
    PLATE_FORMATS,
    infer_layout,
    normalise_well,
    parse_well,
    plate_format,
    row_label,
)
from stemwatch.synth.biology import (
    Condition,
    Well,
    make_well,
    true_onset_h,
    views_for_field,
    well_mean_state,
)
from stemwatch.synth.cellline import CellLine, get_cell_line
from stemwatch.synth.difficulty import Difficulty, SynthError, get_difficulty
from stemwatch.synth.ome import plate_image_xml
from stemwatch.synth.render import render_field
from stemwatch.synth.spec import PlateSpec

log = logging.getLogger(__name__)

GROUND_TRUTH_COLUMNS = (
    "plate",
    "well",
    "condition",
    "induction_h",
    "true_onset_h",
    "n_colonies",
    "n_spontaneous",
)


@dataclass(frozen=True)
class WellTruth:
    """What really happened in one well (hours since the experiment started)."""

    plate: str
    well: str
    condition: Condition
    induction_h: float | None
    true_onset_h: float | None
    n_colonies: int
    n_spontaneous: int


@dataclass(frozen=True)
class PlateTruth:
    """The result of :func:`generate_plate`: ground truth and what was written where."""

    plate: str
    out_dir: Path
    wells: tuple[WellTruth, ...]
    files: tuple[Path, ...]
    ground_truth_csv: Path
    times_h: tuple[float, ...]

    def well(self, name: str) -> WellTruth:
        key = normalise_well(name)
        for w in self.wells:
            if w.well == key:
                return w
        raise KeyError(name)


@dataclass(frozen=True)
class PlatePlan:
    """Everything about a synthetic plate except the pixels, which :meth:`render` draws."""

    plate: str
    n_rows: int
    n_cols: int
    wells: dict[str, Well]
    n_fields: int
    times_h: tuple[float, ...]
    size: int
    bit_depth: int
    pixel_size_um: float
    difficulty: Difficulty
    seed: int
    start: datetime
    drift_um: np.ndarray
    field_origins_um: dict[int, tuple[float, float]] = field(default_factory=dict)
    modality: str = "brightfield"
    cell_line: CellLine = field(default_factory=lambda: get_cell_line("hipsc"))

    @property
    def well_names(self) -> list[str]:
        return list(self.wells)

    def acquired(self, t: int) -> datetime:
        return self.start + timedelta(hours=self.times_h[t])

    def filename(self, well: str, fld: int, t: int) -> str:
        """Incucyte-style: ``SYN001_A1_1_2026y01m05d_09h00m.tif`` (field 1-based)."""
        row, col = parse_well(well)
        when = self.acquired(t)
        return (
            f"{self.plate}_{row_label(row)}{col + 1}_{fld + 1}_"
            f"{when:%Y}y{when:%m}m{when:%d}d_{when:%H}h{when:%M}m.tif"
        )

    def origin(self, well: str, fld: int, t: int) -> tuple[float, float]:
        """Top-left of the field in well coordinates, with stage drift at time point ``t``."""
        ox, oy = self.field_origins_um[fld]
        rng = np.random.default_rng([self.seed, 7, _well_key(well), fld, t])
        jx, jy = rng.normal(0.0, 1.0, 2)
        dx, dy = self.drift_um[t]
        return ox + float(dx + jx), oy + float(dy + jy)

    def render(self, well: str, fld: int, t: int, *, take: int = 0) -> np.ndarray:
        """The image of ``well``, field ``fld`` (0-based), time point ``t`` (0-based).

        ``take`` > 0 images the same specimen again (new optics draws and noise)."""
        w = self.wells[normalise_well(well)]
        views = views_for_field(
            w, self.times_h[t], self.origin(well, fld, t), self.size, self.pixel_size_um
        )
        key = [self.seed, 11, _well_key(well), fld, t] + ([take] if take else [])
        rng = np.random.default_rng(key)
        return render_field(
            views,
            self.size,
            rng,
            self.difficulty,
            bit_depth=self.bit_depth,
            pixel_size_um=self.pixel_size_um,
            modality=self.modality,
            look=self.cell_line.look,
        )

    def ome_xml(self, well: str, fld: int, t: int) -> str:
        row, col = parse_well(well)
        return plate_image_xml(
            plate=self.plate,
            row=row,
            column=col,
            field=fld,
            timepoint=t,
            n_rows=self.n_rows,
            n_columns=self.n_cols,
            size_x=self.size,
            size_y=self.size,
            pixel_type="uint8" if self.bit_depth == 8 else "uint16",
            significant_bits=8 if self.bit_depth == 8 else 12,
            delta_t_s=self.times_h[t] * 3600.0,
            started=self.start,
            acquired=self.acquired(t),
            image_name=self.filename(well, fld, t),
            pixel_size_um=self.pixel_size_um,
        )

    def encode(
        self, well: str, fld: int, t: int, compression: str | None = None, *, take: int = 0
    ) -> bytes:
        """The complete OME-TIFF file of one image, as bytes (acquire writes these in chunks)."""
        import io

        buf = io.BytesIO()
        img = self.render(well, fld, t, take=take)
        write_tiff(buf, img, self.ome_xml(well, fld, t), compression)
        return buf.getvalue()

    def truth(self) -> tuple[WellTruth, ...]:
        return tuple(
            WellTruth(
                plate=self.plate,
                well=name,
                condition=w.condition,
                induction_h=w.induction_h,
                true_onset_h=true_onset_h(w),
                n_colonies=len(w.colonies),
                n_spontaneous=w.n_spontaneous,
            )
            for name, w in self.wells.items()
        )

    def mean_state(self, well: str, t: int) -> float:
        """Mean differentiation state of the well's colonies at time point ``t``."""
        return well_mean_state(self.wells[normalise_well(well)], self.times_h[t])


def _well_key(well: str) -> int:
    row, col = parse_well(well)
    return row * 100 + col


def write_tiff(
    target: Path | object, img: np.ndarray, ome_xml: str | None, compression: str | None
) -> None:
    """Write one plane; with ``ome_xml`` it becomes the first page's ImageDescription."""
    import tifffile

    tifffile.imwrite(
        target,  # type: ignore[arg-type]
        img,
        photometric="minisblack",
        description=ome_xml,
        metadata=None,
        compression=compression,
    )


def plate_wells(wells: int | Sequence[str]) -> tuple[int, int, list[str]]:
    """Rows, columns and well names for a plate format (6 ... 1536) or an explicit list (on
    the smallest standard plate holding it)."""
    if isinstance(wells, int):
        if wells not in PLATE_FORMATS:
            raise SynthError(
                f"wells={wells} is not a plate format; use one of "
                f"{', '.join(map(str, PLATE_FORMATS))} or a list of well names"
            )
        layout = plate_format(wells)
        return layout.rows, layout.cols, layout.wells()
    try:
        names = [normalise_well(str(w)) for w in wells]
    except ValueError as exc:
        raise SynthError(f"wells: {exc}") from None
    if not names:
        raise SynthError("wells: the list is empty; name at least one well like 'A01'")
    layout = infer_layout(names)
    return layout.rows, layout.cols, names


def plan_plate(spec: PlateSpec) -> PlatePlan:
    """Lay out a plate: which wells are induced and when, their colonies, fields and drift."""
    diff = get_difficulty(spec.difficulty)
    line = get_cell_line(spec.cell_line)
    rows, cols, names = plate_wells(spec.wells)
    times = spec.timeline_h
    n_fields, size, seed, interval_h = spec.n_fields, spec.size, spec.seed, spec.interval_h
    if spec.induced is not None:
        induced_set = set(spec.induced)
    elif isinstance(spec.wells, int):
        induced_set = {n for n in names if parse_well(n)[1] % 2 == 1}
    else:
        induced_set = set(names[1::2])
    duration = max(times) if times else 0.0
    fov_um = size * spec.pixel_size_um
    step = 1.6 * fov_um
    grid = int(np.ceil(np.sqrt(n_fields)))
    origins = {f: ((f % grid) * step, (f // grid) * step) for f in range(n_fields)}
    margin = 0.6 * fov_um
    regions = [
        (x - margin, y - margin, fov_um + 2 * margin, fov_um + 2 * margin)
        for x, y in origins.values()
    ]
    plate_rng = np.random.default_rng([seed, 3])
    drift = np.cumsum(plate_rng.normal(0.0, spec.drift_um, (len(times), 2)), axis=0)
    drift[0] = 0.0
    candidates = [
        k * interval_h for k in range(max(1, int(duration / 3 / max(interval_h, 1e-9)) + 1))
    ]
    well_models: dict[str, Well] = {}
    for name in names:
        rng = np.random.default_rng([seed, 5, _well_key(name)])
        cond: Condition = "induced" if name in induced_set else "maintenance"
        ind: float | None = None
        if cond == "induced":
            ind = (
                float(spec.induction_h)
                if spec.induction_h is not None
                else float(rng.choice(candidates))
            )
        well_models[name] = make_well(
            rng,
            name,
            cond,
            ind,
            diff,
            regions_um=regions,
            duration_h=duration,
            growth=line.growth,
            cell_line=line.name,
        )
    return PlatePlan(
        plate=spec.plate_name,
        n_rows=rows,
        n_cols=cols,
        wells=well_models,
        n_fields=n_fields,
        times_h=times,
        size=size,
        bit_depth=spec.bit_depth,
        pixel_size_um=spec.pixel_size_um,
        difficulty=diff,
        seed=seed,
        start=spec.start,
        drift_um=drift,
        field_origins_um=origins,
        modality=spec.modality,
        cell_line=line,
    )


def write_ground_truth(path: Path, truth: Sequence[WellTruth]) -> Path:
    """``ground_truth.csv``: one row per well; empty cells where there is no value."""
    with path.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(GROUND_TRUTH_COLUMNS)
        for w in truth:
            wr.writerow(
                [
                    w.plate,
                    w.well,
                    w.condition,
                    "" if w.induction_h is None else f"{w.induction_h:g}",
                    "" if w.true_onset_h is None else f"{w.true_onset_h:g}",
                    w.n_colonies,
                    w.n_spontaneous,
                ]
            )
    return path


_worker_plan: dict[str, PlatePlan] = {}
"""In a worker process of :func:`write_timepoints`: the plan it was started with."""


def _init_worker(plan: PlatePlan) -> None:
    # the plan goes to each worker once, at its start (inherited where processes fork): sent
    # with every chunk of jobs it cost ~0.2 CPU-s to pickle and unpickle per chunk for 96
    # wells (7.5 MB), ~20 CPU-s per time point
    _worker_plan["plan"] = plan


_Job = tuple[str, int, int, Path, str | None]
"""Well, field, time point (0-based), output folder, compression."""


def _write_one(plan: PlatePlan, job: _Job) -> Path:
    well, fld, t, out_dir, compression = job
    path = out_dir / plan.filename(well, fld, t)
    write_tiff(path, plan.render(well, fld, t), plan.ome_xml(well, fld, t), compression)
    return path


def _write_job(job: _Job) -> Path:
    return _write_one(_worker_plan["plan"], job)


def write_timepoints(
    plan: PlatePlan,
    times: Sequence[int],
    out_dir: Path,
    *,
    compression: str | None = None,
    workers: int = 1,
) -> Generator[list[Path], None, None]:
    """Render and write every well and field of each time point in ``times`` (0-based), one
    list of paths per time point as it completes; with ``workers`` > 1 one pool of processes
    serves them all (each builds its texture caches once)."""
    jobs: dict[int, list[_Job]] = {
        t: [(w, f, t, out_dir, compression) for w in plan.well_names for f in range(plan.n_fields)]
        for t in times
    }
    if workers <= 1:
        for t in times:
            yield [_write_one(plan, j) for j in jobs[t]]
        return
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(plan,)
    ) as pool:
        for t in times:
            yield list(pool.map(_write_job, jobs[t], chunksize=4))


def write_timepoint(
    plan: PlatePlan,
    t: int,
    out_dir: Path,
    *,
    compression: str | None = None,
    workers: int = 1,
) -> list[Path]:
    """Render and write every well and field of time point ``t``."""
    with closing(
        write_timepoints(plan, [t], out_dir, compression=compression, workers=workers)
    ) as written:
        return next(written)


def generate_plate(out_dir: Path, spec: PlateSpec, *, workers: int = 1) -> PlateTruth:
    """Write a plate time-lapse as OME-TIFFs plus ``ground_truth.csv`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_plate(spec)
    files: list[Path] = []
    n_t = len(plan.times_h)
    written = write_timepoints(
        plan, range(n_t), out_dir, compression=spec.compression, workers=workers
    )
    for t, paths in enumerate(written):
        files += paths
        log.info("plate %s: time point %d/%d written", plan.plate, t + 1, n_t)
    truth = plan.truth()
    gt = write_ground_truth(out_dir / "ground_truth.csv", truth)
    return PlateTruth(
        plate=plan.plate,
        out_dir=out_dir,
        wells=truth,
        files=tuple(files),
        ground_truth_csv=gt,
        times_h=plan.times_h,
    )

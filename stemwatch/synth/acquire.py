"""Live acquisition: a plate time-lapse written into a folder on the instrument's schedule.

Sped up by ``speedup`` (6 h between passes at ``speedup=3600`` is 6 s), and written the way
real instruments write:

- at the start of every pass ``burst`` files land at once;
- the rest follow spread over half the interval, each written one of three ways, drawn per file
  with the seed: *chunked* (the final name appears at once and grows in ``n_chunks`` pieces
  over ``chunk_span_s`` seconds), *rename* (written under ``<name>.part`` and renamed into
  place: watchdog sees only a moved event) or *direct* (one write);
- a ``rewrite_fraction`` of files is written again, in place and in chunks, later in the pass
  (a re-acquired image: new noise, so new bytes).

Every completed write is a :class:`WriteRecord`; with ``log_path`` each is also appended as
one JSON line, so a test can check that every image was recorded exactly once and each
rewritten one twice. The plate is a :class:`~stemwatch.synth.spec.PlateSpec`, the writing
an :class:`AcquisitionSpec`. :func:`acquire` runs in the caller's thread and stops early, between
files, when ``stop`` is set; :func:`acquire_in_thread` runs it in a background thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from stemwatch.synth.difficulty import SynthError
from stemwatch.synth.plate import PlatePlan, WellTruth, plan_plate, write_ground_truth
from stemwatch.synth.spec import PlateSpec

log = logging.getLogger(__name__)

WriteMode = Literal["burst", "chunked", "rename", "direct", "rewrite"]


@dataclass(frozen=True)
class WriteRecord:
    """One completed write of a final file."""

    path: str
    well: str
    field: int
    timepoint: int
    mode: WriteMode
    rewrite: bool
    size: int
    wall_s: float


@dataclass
class AcquisitionResult:
    """What :func:`acquire` wrote, in order, and the plate's ground truth."""

    out_dir: Path
    plan: PlatePlan
    truth: tuple[WellTruth, ...]
    records: list[WriteRecord] = field(default_factory=list)
    stopped_early: bool = False

    def final_paths(self) -> set[Path]:
        return {Path(r.path) for r in self.records}

    def rewritten(self) -> set[Path]:
        return {Path(r.path) for r in self.records if r.rewrite}


class _Clock:
    """Sleeps that end early when ``stop`` is set."""

    def __init__(self, stop: threading.Event | None) -> None:
        self.stop = stop or threading.Event()

    def sleep_until(self, t: float) -> bool:
        """Sleep until monotonic time ``t``; False if stopped."""
        dt = t - time.monotonic()
        if dt > 0:
            return not self.stop.wait(dt)
        return not self.stop.is_set()


def _write_chunked(path: Path, data: bytes, n_chunks: int, span_s: float, clock: _Clock) -> None:
    step = max(1, -(-len(data) // n_chunks))
    t0 = time.monotonic()
    with path.open("wb") as fh:
        for i, start in enumerate(range(0, len(data), step)):
            fh.write(data[start : start + step])
            fh.flush()
            if start + step < len(data):
                # a slow writer finishes its file even when asked to stop
                time.sleep(max(0.0, t0 + span_s * (i + 1) / n_chunks - time.monotonic()))


def _write_renamed(path: Path, data: bytes, temp_suffix: str) -> None:
    tmp = path.with_name(path.name + temp_suffix)
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class AcquisitionSpec:
    """How a live acquisition writes its files (module docstring); the plate is a PlateSpec.

    ``interval_s`` (real seconds between passes) overrides ``interval_h * 3600 / speedup``.
    Invalid values raise :class:`SynthError` naming the field, when the spec is made.
    """

    speedup: float = 3600.0
    interval_s: float | None = None
    burst: int = 3
    chunked_fraction: float = 0.3
    rename_fraction: float = 0.3
    rewrite_fraction: float = 0.05
    n_chunks: int = 4
    chunk_span_s: float = 0.3
    temp_suffix: str = ".part"

    def __post_init__(self) -> None:
        if self.interval_s is None and self.speedup <= 0:
            raise SynthError(f"speedup={self.speedup}; use a positive factor like 3600")
        if self.interval_s is not None and self.interval_s < 0:
            raise SynthError(f"interval_s={self.interval_s}; use a non-negative number of seconds")
        for name in ("chunked_fraction", "rename_fraction", "rewrite_fraction"):
            frac = getattr(self, name)
            if not 0.0 <= frac <= 1.0:
                raise SynthError(f"{name}={frac}; use a fraction between 0 and 1")
        if self.chunked_fraction + self.rename_fraction > 1.0:
            raise SynthError(
                f"chunked_fraction + rename_fraction = "
                f"{self.chunked_fraction + self.rename_fraction:g} > 1; the two together are "
                "at most 1 (the rest are direct writes)"
            )
        if self.n_chunks < 1:
            raise SynthError(f"n_chunks={self.n_chunks}; use at least 1")

    def pass_interval_s(self, interval_h: float) -> float:
        """Real seconds between passes for a plate imaged every ``interval_h`` hours."""
        if self.interval_s is not None:
            return self.interval_s
        return interval_h * 3600.0 / self.speedup


def acquire(
    out_dir: Path,
    plate: PlateSpec,
    acquisition: AcquisitionSpec = AcquisitionSpec(),
    *,
    ground_truth: bool = True,
    log_path: Path | None = None,
    stop: threading.Event | None = None,
) -> AcquisitionResult:
    """Write ``plate`` into ``out_dir`` live, the way ``acquisition`` says; returns what was
    written. With ``ground_truth`` the plate's ``ground_truth.csv`` is written first."""
    acq = acquisition
    interval_s = acq.pass_interval_s(plate.interval_h)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_plate(plate)
    truth = plan.truth()
    result = AcquisitionResult(out_dir=out_dir, plan=plan, truth=truth)
    if ground_truth:
        write_ground_truth(out_dir / "ground_truth.csv", truth)
    clock = _Clock(stop)
    rng = np.random.default_rng([plate.seed, 23])
    log_fh = log_path.open("a") if log_path is not None else None
    t_start = time.monotonic()

    def record(path: Path, job: tuple[str, int, int], mode: WriteMode, rewrite: bool) -> None:
        well, fld, t = job
        rec = WriteRecord(
            path=str(path),
            well=well,
            field=fld + 1,
            timepoint=t,
            mode=mode,
            rewrite=rewrite,
            size=path.stat().st_size,
            wall_s=round(time.monotonic() - t_start, 4),
        )
        result.records.append(rec)
        log.debug("wrote %s (%s%s)", path.name, mode, ", rewrite" if rewrite else "")
        if log_fh is not None:
            log_fh.write(json.dumps(asdict(rec)) + "\n")
            log_fh.flush()

    overran: list[float] = []  # how long each pass that overran its interval took
    behind = 0.0  # how late the latest pass started
    try:
        jobs = [(w, f) for w in plan.well_names for f in range(plan.n_fields)]
        for t in range(len(plan.times_h)):
            pass_start = t_start + t * interval_s
            if not clock.sleep_until(pass_start):
                result.stopped_early = True
                break
            began = time.monotonic()  # later than pass_start when an earlier pass overran
            behind = began - pass_start
            log.info("pass %d/%d of plate %s", t + 1, len(plan.times_h), plan.plate)
            modes = rng.choice(
                ["chunked", "rename", "direct"],
                size=len(jobs),
                p=[
                    acq.chunked_fraction,
                    acq.rename_fraction,
                    1.0 - acq.chunked_fraction - acq.rename_fraction,
                ],
            )
            rewrites = rng.random(len(jobs)) < acq.rewrite_fraction
            n_burst = min(acq.burst, len(jobs))
            # the burst: several complete files land at once
            blobs = [plan.encode(w, f, t, plate.compression) for w, f in jobs[:n_burst]]
            for (w, f), data in zip(jobs[:n_burst], blobs, strict=True):
                path = out_dir / plan.filename(w, f, t)
                path.write_bytes(data)
            for w, f in jobs[:n_burst]:
                record(out_dir / plan.filename(w, f, t), (w, f, t), "burst", False)
            rest = jobs[n_burst:]
            spread = 0.5 * interval_s / max(1, len(rest))
            stopped = False
            for i, (w, f) in enumerate(rest):
                if not clock.sleep_until(pass_start + (i + 1) * spread):
                    stopped = True
                    break
                path = out_dir / plan.filename(w, f, t)
                data = plan.encode(w, f, t, plate.compression)
                mode = str(modes[n_burst + i])
                if mode == "chunked":
                    _write_chunked(path, data, acq.n_chunks, acq.chunk_span_s, clock)
                elif mode == "rename":
                    _write_renamed(path, data, acq.temp_suffix)
                else:
                    path.write_bytes(data)
                record(path, (w, f, t), mode, False)  # type: ignore[arg-type]
            # re-acquisitions: the same file written again later in the pass, new noise
            for j in np.nonzero(rewrites)[0]:
                if stopped or not clock.sleep_until(time.monotonic() + min(0.2, spread)):
                    stopped = True
                    break
                w, f = jobs[int(j)]
                path = out_dir / plan.filename(w, f, t)
                if not path.exists():
                    continue
                data = plan.encode(w, f, t, plate.compression, take=1)
                _write_chunked(path, data, acq.n_chunks, acq.chunk_span_s, clock)
                record(path, (w, f, t), "rewrite", True)
            if stopped:
                result.stopped_early = True
                break
            took = time.monotonic() - began
            if took > interval_s and t + 1 < len(plan.times_h):
                overran.append(took)
                if len(overran) == 1:
                    log.warning(
                        "pass %d took %.1f s, longer than the %.1f s between passes: writing "
                        "cannot keep up, so the next passes start late; give the passes more "
                        "time (a longer interval between passes) or write less (fewer wells or "
                        "fields, smaller images)",
                        t + 1,
                        took,
                        interval_s,
                    )
    finally:
        if log_fh is not None:
            log_fh.close()
    if len(overran) > 1:
        log.warning(
            "%d of %d passes took longer than the %.1f s between passes (up to %.1f s); the "
            "last pass started %.1f s behind its schedule",
            len(overran),
            len(plan.times_h) - 1,
            interval_s,
            max(overran),
            behind,
        )
    return result


class AcquisitionThread(threading.Thread):
    """:func:`acquire` in a daemon thread; ``stop()`` ends it between files."""

    def __init__(
        self,
        out_dir: Path,
        plate: PlateSpec,
        acquisition: AcquisitionSpec,
        **kwargs: Any,
    ) -> None:
        super().__init__(name="synth-acquire", daemon=True)
        self.out_dir = Path(out_dir)
        self.plate = plate
        self.acquisition = acquisition
        self.kwargs = kwargs
        self.stop_event = threading.Event()
        self.result: AcquisitionResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = acquire(
                self.out_dir, self.plate, self.acquisition, stop=self.stop_event, **self.kwargs
            )
        except BaseException as exc:  # reported to the caller through .error
            self.error = exc
            log.exception("synthetic acquisition failed")

    def stop(self, timeout: float | None = 10.0) -> AcquisitionResult | None:
        self.stop_event.set()
        self.join(timeout)
        return self.result


def acquire_in_thread(
    out_dir: Path,
    plate: PlateSpec,
    acquisition: AcquisitionSpec = AcquisitionSpec(),
    **kwargs: Any,
) -> AcquisitionThread:
    """Start :func:`acquire` in a background thread and return it (``.stop()``, ``.join()``,
    ``.result``, ``.error``); ``kwargs`` are acquire's ``ground_truth`` and ``log_path``."""
    th = AcquisitionThread(out_dir, plate, acquisition, **kwargs)
    th.start()
    return th

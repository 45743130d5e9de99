"""What a synthetic plate is, written once: :class:`PlateSpec`.

:func:`~stemwatch.synth.plate.plan_plate`, :func:`~stemwatch.synth.plate.generate_plate`,
:func:`~stemwatch.synth.acquire.acquire`, ``stemwatch synth``, the demo and the onset
evaluator all take one. How a live acquisition writes the files (bursts, chunks, renames,
rewrites, speed) is :class:`~stemwatch.synth.acquire.AcquisitionSpec`, apart from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from stemwatch.core.wells import PLATE_FORMATS, normalise_well
from stemwatch.synth.cellline import CellLine, get_cell_line
from stemwatch.synth.difficulty import Difficulty, SynthError
from stemwatch.synth.render import check_modality, check_pixel_size

DEFAULT_START = datetime(2026, 1, 5, 9, 0)


@dataclass(frozen=True)
class PlateSpec:
    """A plate time-lapse: layout, conditions, time line, optics and file format.

        ``wells`` is a plate format (6, 12, 24, 48, 96, 384, 1536) or a list of well names.
        ``induced`` lists the induced wells; by default every other column of a plate format is
        induced (A01 maintenance, A02 induced, ...), for an explicit list every other well.
        ``induction_h`` is the induction time of every induced well, else each draws a multiple of
        ``interval_h`` in the first third of the run. The time points are ``times_h`` when given,
        else ``n_timepoints`` every ``interval_h`` hours from 0. ``pixel_size_um`` is 0.5-2 (the
    range the renderer draws cells at their size; render finer and bin down for coarser images).
    Invalid values raise
        :class:`SynthError` naming the field, when the spec is made.
    """

    wells: int | Sequence[str] = 96
    n_fields: int = 2
    n_timepoints: int = 8
    interval_h: float = 6.0
    times_h: Sequence[float] | None = None
    size: int = 512
    bit_depth: int = 16
    pixel_size_um: float = 1.0
    seed: int = 0
    plate_name: str = "SYN001"
    difficulty: str | Difficulty = "default"
    induced: Sequence[str] | None = None
    induction_h: float | None = None
    start: datetime = DEFAULT_START
    drift_um: float = 4.0
    compression: str | None = None
    """TIFF compression of the written files (tifffile's names: zlib, lzw, zstd, ...)."""
    modality: str = "brightfield"
    """How the fields are imaged: ``brightfield`` or ``phase`` (contrast)."""
    cell_line: str | CellLine = "hipsc"
    """What grows in the wells: ``hipsc`` (human iPSC) or ``mesc`` (mouse ESC, 2i+LIF ->
    EpiLC); see :mod:`stemwatch.synth.cellline`."""

    def __post_init__(self) -> None:
        # sequences become tuples, so a spec is immutable and hashable
        if isinstance(self.wells, int):
            if self.wells not in PLATE_FORMATS:
                raise SynthError(
                    f"wells={self.wells} is not a plate format; use one of "
                    f"{', '.join(map(str, PLATE_FORMATS))} or a list of well names"
                )
        else:
            try:
                wells = tuple(normalise_well(str(w)) for w in self.wells)
            except ValueError as exc:
                raise SynthError(f"wells: {exc}") from None
            if not wells:
                raise SynthError("wells: the list is empty; name at least one well like 'A01'")
            object.__setattr__(self, "wells", wells)
        if self.times_h is not None:
            object.__setattr__(self, "times_h", tuple(float(t) for t in self.times_h))
        if self.induced is not None:
            try:
                induced = tuple(normalise_well(str(w)) for w in self.induced)
            except ValueError as exc:
                raise SynthError(f"induced: {exc}") from None
            object.__setattr__(self, "induced", induced)
        if self.bit_depth not in (8, 16):
            raise SynthError(f"bit_depth={self.bit_depth} is not supported; use 8 or 16")
        if self.size < 32:
            raise SynthError(f"size={self.size} is too small; use at least 32 pixels")
        if self.n_fields < 1:
            raise SynthError(f"n_fields={self.n_fields}; use at least 1")
        if self.times_h is None and self.n_timepoints < 1:
            raise SynthError(f"n_timepoints={self.n_timepoints}; use at least 1")
        if self.interval_h <= 0:
            raise SynthError(f"interval_h={self.interval_h}; use a positive number of hours")
        check_pixel_size(self.pixel_size_um)
        check_modality(self.modality)
        get_cell_line(self.cell_line)  # raises SynthError naming the line and the choices

    @property
    def timeline_h(self) -> tuple[float, ...]:
        """The hours of the time points since the experiment started."""
        if self.times_h is not None:
            return tuple(self.times_h)
        return tuple(float(i * self.interval_h) for i in range(self.n_timepoints))

    def replace(self, **changes: Any) -> PlateSpec:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)

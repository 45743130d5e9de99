"""Plate geometry: which standard format a set of wells belongs to, and the full well grid."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from stemwatch.core.platemeta import well_from_index

# Standard multiwell formats: wells -> (rows, columns).
FORMATS: dict[int, tuple[int, int]] = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
    1536: (32, 48),
}

_WELL_RE = re.compile(r"^([A-Z]{1,2})(\d{1,3})$")


@dataclass(frozen=True)
class PlateLayout:
    """A plate of ``rows`` x ``cols`` wells; rows are letters (A, B, ...), columns 1-based."""

    rows: int
    cols: int

    @property
    def n_wells(self) -> int:
        return self.rows * self.cols

    @property
    def name(self) -> str:
        return f"{self.n_wells}-well" if self.n_wells in FORMATS else f"{self.rows}x{self.cols}"

    def row_labels(self) -> list[str]:
        return [row_label(r) for r in range(self.rows)]

    def wells(self) -> list[str]:
        """Every well of the plate in row-major order, normalised (``A01``)."""
        return [well_from_index(r, c) for r in range(self.rows) for c in range(self.cols)]


def row_label(row: int) -> str:
    """Zero-based row index to its letter(s): 0 -> 'A', 26 -> 'AA'."""
    return well_from_index(row, 0)[:-2]


def parse_well(well: str) -> tuple[int, int]:
    """``'B03'`` -> zero-based ``(1, 2)``; raises ValueError for anything else."""
    m = _WELL_RE.match(well.strip().upper())
    if not m:
        raise ValueError(f"{well!r} is not a well name like 'A01' or 'B12'")
    letters, number = m.groups()
    row = 0
    for ch in letters:
        row = row * 26 + (ord(ch) - ord("A") + 1)
    col = int(number)
    if col < 1:
        raise ValueError(f"{well!r} is not a well name: columns start at 1 (A01)")
    return row - 1, col - 1


def infer_layout(wells: Iterable[str]) -> PlateLayout:
    """The smallest standard plate format holding every well; an odd extent becomes its own
    layout. No wells gives a 96-well plate (the common case, for an empty view)."""
    max_r, max_c = -1, -1
    for w in wells:
        r, c = parse_well(w)
        max_r, max_c = max(max_r, r), max(max_c, c)
    if max_r < 0:
        return PlateLayout(*FORMATS[96])
    for rows, cols in sorted(FORMATS.values()):
        if max_r < rows and max_c < cols:
            return PlateLayout(rows, cols)
    return PlateLayout(max_r + 1, max_c + 1)

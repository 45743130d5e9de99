"""The well grid of multiwell plates: well names, row letters and standard plate formats.

One parser for every component: the plate-metadata resolver normalises instrument names with
it, the synthetic microscope lays out plates with it and the dashboard draws plates with it.
Wells are ``A01``-style names; rows run ``A``-``Z`` then ``AA``-``AF`` and columns 1-48, so
every well fits the largest standard plate (1536 wells). Indices are zero-based.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_ROWS = 32  # 1536-well plates: A..Z, AA..AF
MAX_COLS = 48

# Standard multiwell formats: wells -> (rows, columns).
PLATE_FORMATS: dict[int, tuple[int, int]] = {
    6: (2, 3),
    12: (3, 4),
    24: (4, 6),
    48: (6, 8),
    96: (8, 12),
    384: (16, 24),
    1536: (32, 48),
}

_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,2})\s*$")


def parse_well(text: str) -> tuple[int, int]:
    """``'B03'`` (or ``'b3'``, ``' B 3 '``) -> zero-based ``(1, 2)``; ValueError otherwise."""
    m = _WELL_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a well name like 'A01' or 'B12'")
    row = row_index(m.group(1))
    col = int(m.group(2)) - 1
    if row is None or not 0 <= col < MAX_COLS:
        raise ValueError(f"{text!r} is not a well name: rows run A..AF, columns 1..{MAX_COLS}")
    return row, col


def normalise_well(text: str) -> str:
    """``'a1'``, ``'A1'`` and ``'A01'`` all become ``'A01'``; raises ValueError otherwise."""
    return well_from_index(*parse_well(text))


def row_index(letters: str) -> int | None:
    """'A' -> 0, 'Z' -> 25, 'AA' -> 26, 'AF' -> 31; None outside a 1536-well plate."""
    idx = 0
    for ch in letters.upper():
        if not "A" <= ch <= "Z":
            return None
        idx = idx * 26 + (ord(ch) - ord("A") + 1)
    idx -= 1
    return idx if 0 <= idx < MAX_ROWS else None


def row_label(row: int) -> str:
    """Zero-based row index to its letter(s): 0 -> 'A', 26 -> 'AA'."""
    if row < 0:
        raise ValueError(f"row must be >= 0, got {row}")
    letters = ""
    r = row
    while True:
        letters = chr(ord("A") + r % 26) + letters
        r = r // 26 - 1
        if r < 0:
            return letters


def well_from_index(row: int, col: int) -> str:
    """Zero-based row and column to a well name: (0, 0) -> 'A01', (26, 47) -> 'AA48'."""
    if row < 0 or col < 0:
        raise ValueError(f"row and column must be >= 0, got ({row}, {col})")
    return f"{row_label(row)}{col + 1:02d}"


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
        standard = PLATE_FORMATS.get(self.n_wells) == (self.rows, self.cols)
        return f"{self.n_wells}-well" if standard else f"{self.rows}x{self.cols}"

    def row_labels(self) -> list[str]:
        return [row_label(r) for r in range(self.rows)]

    def wells(self) -> list[str]:
        """Every well of the plate in row-major order, normalised (``A01``)."""
        return [well_from_index(r, c) for r in range(self.rows) for c in range(self.cols)]


def plate_format(n_wells: int) -> PlateLayout:
    """The standard plate with ``n_wells`` wells; ValueError naming the formats otherwise."""
    if n_wells not in PLATE_FORMATS:
        raise ValueError(
            f"{n_wells} wells is not a standard plate format; use one of "
            f"{', '.join(map(str, PLATE_FORMATS))}"
        )
    return PlateLayout(*PLATE_FORMATS[n_wells])


def infer_layout(wells: Iterable[str]) -> PlateLayout:
    """The smallest standard plate format holding every well (ValueError for a name that is
    not a well). No wells gives a 96-well plate (the common case, for an empty view)."""
    max_r, max_c = -1, -1
    for w in wells:
        r, c = parse_well(w)
        max_r, max_c = max(max_r, r), max(max_c, c)
    if max_r < 0:
        return PlateLayout(*PLATE_FORMATS[96])
    for rows, cols in sorted(PLATE_FORMATS.values()):
        if max_r < rows and max_c < cols:
            return PlateLayout(rows, cols)
    raise AssertionError("unreachable: every parsed well fits a 1536-well plate")

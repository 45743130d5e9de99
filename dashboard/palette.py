"""The dashboard's colours and marks, shared by the page's SVG drawings
(:mod:`dashboard.drawing`), the Altair charts of the other views (:mod:`dashboard.plots`) and
the plate PNG (:mod:`dashboard.export`). Pure; imports nothing heavy.
"""

from __future__ import annotations

import math

PROB_TITLE = "P(differentiated)"
NO_DATA_COLOR = "#e6e6e6"
ONSET_COLOR = "#d62728"
LINE_COLOR = "#1f77b4"  # a well's mean, band and smoothed line
DOT_COLOR = "#555555"  # single fields
EXCLUDED_COLOR = "#e6550d"  # left out of the series: outside the training domain, bad frames
EXCLUDED_MARKS = {"domain": "OOD", "quality": "bad"}
# text on a well coloured below this probability is white (the dark end of viridis)
DARK_BELOW = 0.6

# viridis at 0, 1/8, ..., 1 (matplotlib's table): interpolated linearly in between
VIRIDIS_STOPS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)


def viridis(p: float) -> tuple[int, int, int]:
    """The viridis colour of ``p`` in [0, 1] (clipped)."""
    x = min(1.0, max(0.0, float(p))) * (len(VIRIDIS_STOPS) - 1)
    i = min(int(x), len(VIRIDIS_STOPS) - 2)
    lo, hi = VIRIDIS_STOPS[i], VIRIDIS_STOPS[i + 1]
    r, g, b = (round(a + (x - i) * (b - a)) for a, b in zip(lo, hi, strict=True))
    return (r, g, b)


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as a tuple."""
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def probability_colour(p: float | None) -> str:
    """A well's fill: viridis of ``p``, grey where there is none (not imaged)."""
    if p is None or not math.isfinite(p):
        return NO_DATA_COLOR
    return hex_colour(viridis(p))

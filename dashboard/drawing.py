"""The plate page's two figures drawn on the server as SVG: the plate heatmap and one well's
probability over time.

The page used to draw both with Vega (Altair): the browser then loads, compiles and runs
Vega's JavaScript, which with Streamlit's data grid was most of the first render on 2 cores
(issue 13, docs/monitor-benchmark.md). Here the figures are plain SVG text, which the browser
only parses and paints; :mod:`dashboard.blocks` puts them on the page and makes the wells
clickable. Pure functions from the frames of :mod:`dashboard.data` to strings (every value
from the database escaped), tested directly; :func:`read_plate` and :func:`read_series` read
the drawn values back (each mark carries its data in ``data-`` attributes).

What each figure shows, and how it describes itself:

- the plate: one cell per well of the layout coloured by its latest P(differentiated) on the
  viridis scale (grey: not imaged), a red ring where an onset was detected, a black frame
  around the selected well, a white cell with a dashed orange frame and ``OOD`` or ``bad``
  where the well's newest images stay out of its series, the value in each cell up to 96
  wells (and the plate map's condition where there is room), row and column labels and a
  colour bar. Each cell says what it is on hover (``data-tip``) and to a screen reader
  (``aria-label``: ``Well: B02; P(differentiated): 0.92; ...``);
- a well's curve: the mean over its fields as a line with a ±1 SD band, the detector's
  smoothed series dashed, each field's value as a dot, images left out of the series as
  orange ✕ (outside the training domain, at the probability that did not count) or ▲ at 0
  (bad frames), an optional dotted threshold and a red rule at the onset. It stretches to
  its column's width: time is placed in percent of the plot's width, and the band and lines
  are drawn in a nested SVG scaled to it (their strokes do not scale).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable
from typing import Any
from xml.etree import ElementTree

import pandas as pd

from dashboard.palette import (
    DARK_BELOW,
    DOT_COLOR,
    EXCLUDED_COLOR,
    EXCLUDED_MARKS,
    LINE_COLOR,
    ONSET_COLOR,
    PROB_TITLE,
    VIRIDIS_STOPS,
    hex_colour,
    probability_colour,
)
from stemwatch.core.wells import PlateLayout

# cell side (px) per plate width: every layout from 6 to 384 wells fits the plate column of a
# 1280 px laptop with the sidebar open (tests/dashboard/test_dashboard_layouts.py checks it)
CELL_PX = {2: 72, 3: 72, 4: 64, 6: 56, 8: 44, 12: 34, 24: 26}
ROW_LABELS_W = 24  # left of the plate: A, B, ...
COL_LABELS_H = 18  # above the plate: 1, 2, ...
LEGEND_H = 48
LABELS_MAX_WELLS = 96  # the value in each cell up to this many wells
CONDITION_MIN_CELL = 44  # the plate map's condition under the value from this cell side (px)

# a well's curve: plot height (px), margins and the nested SVG's width in its own units
PLOT_H = 270
PLOT_TOP = 16
X_AXIS_H = 44
Y_AXIS_W = 52
VIEW_W = 1000.0
LINE_POINTS_MAX = 60  # a marker (with its tooltip) per time point up to this many points


def cell_px(layout: PlateLayout) -> int:
    """The side of one well's cell for ``layout``."""
    return CELL_PX.get(layout.cols, max(16, min(72, 620 // max(1, layout.cols))))


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _tip(text: str) -> str:
    """A tooltip's text as an attribute value: its line breaks as character references (an
    XML reader would turn literal ones into spaces)."""
    return _esc(text).replace("\n", "&#10;")


def _num(x: object) -> float | None:
    """A finite float, else None (NaN, None, missing)."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt(x: object, spec: str, missing: str = "none") -> str:
    v = _num(x)
    return missing if v is None else format(v, spec)


def _g(x: float) -> str:
    """A compact exact-enough number for ``data-`` attributes."""
    return format(x, ".6g")


def well_description(row: object, *, conditions: bool) -> list[tuple[str, str]]:
    """What a well's cell says on hover and to a screen reader: (title, value) pairs."""

    def get(name: str) -> object:
        return getattr(row, name)

    lines = [("Well", str(get("well")))]
    if conditions:
        lines.append(("Condition", str(getattr(row, "condition", "") or "none")))
    lines += [
        (PROB_TITLE, _fmt(get("probability"), ".2f")),
        ("Images", str(int(_num(get("n_images")) or 0))),
        ("Last image (h)", _fmt(get("last_h"), ".1f")),
        ("Status", str(get("status"))),
    ]
    left_out = str(getattr(row, "left_out", "") or "")
    if left_out:
        lines.append(("Left out", left_out))
    return lines


def plate_svg(
    grid: pd.DataFrame,
    layout: PlateLayout,
    *,
    selected: str | None = None,
    cell: int = 0,
    pickable: bool = True,
) -> str:
    """The plate heatmap as one ``<svg class="sw-plate">``; ``grid``: rows of
    :func:`dashboard.data.plate_grid` (``well``, ``row_label``, ``col``, ``probability``,
    ``n_images``, ``onset``, ``last_h``, ``status``; optionally ``excluded``, ``left_out``,
    ``condition``). ``pickable``: each cell is a button (``data-well``) that
    :mod:`dashboard.blocks` turns into a pick; the selected one is ``aria-pressed``."""
    cell = cell or cell_px(layout)
    rows = layout.row_labels()
    row_of = {name: i for i, name in enumerate(rows)}
    plate_w, plate_h = cell * layout.cols, cell * layout.rows
    width, height = ROW_LABELS_W + plate_w + 4, COL_LABELS_H + plate_h + LEGEND_H
    conditions = "condition" in grid.columns and bool(grid["condition"].astype(bool).any())
    labels = layout.n_wells <= LABELS_MAX_WELLS
    font = 10 if cell < 40 else 11
    ring_r = cell * math.sqrt(0.55 / math.pi)
    out = [
        f'<svg class="sw-plate" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="group" '
        f'aria-label="{_esc(layout.name)} plate, wells coloured by {PROB_TITLE}" '
        f'data-cols="{layout.cols}" data-rows="{layout.rows}">'
    ]
    for c in range(1, layout.cols + 1):
        x = ROW_LABELS_W + (c - 0.5) * cell
        out.append(
            f'<text class="ax" x="{x:g}" y="{COL_LABELS_H - 5}" text-anchor="middle">{c}</text>'
        )
    for r, name in enumerate(rows):
        y = COL_LABELS_H + (r + 0.5) * cell
        out.append(
            f'<text class="ax" x="{ROW_LABELS_W - 7}" y="{y:g}" text-anchor="end" '
            f'dominant-baseline="central">{_esc(name)}</text>'
        )
    frame = ""
    focus_well = selected if selected in set(grid["well"]) else None
    for row in grid.itertuples(index=False):
        well = str(row.well)
        x = ROW_LABELS_W + (int(row.col) - 1) * cell
        y = COL_LABELS_H + row_of[str(row.row_label)] * cell
        cx, cy = x + cell / 2, y + cell / 2
        p = _num(row.probability)
        kind = str(getattr(row, "excluded", "") or "")
        onset = bool(row.onset)
        desc = well_description(row, conditions=conditions)
        label = "; ".join(f"{k}: {v}" for k, v in desc)
        tip = "\n".join(f"{k}: {v}" for k, v in desc)
        attrs = (
            f'class="sw-well" data-well="{_esc(well)}" data-p="{"" if p is None else _g(p)}" '
            f'data-onset="{int(onset)}" data-excluded="{_esc(kind)}" '
            f'data-row="{row_of[str(row.row_label)]}" data-col="{int(row.col) - 1}" '
            f'aria-label="{_esc(label)}"'
        )
        if pickable:
            focus = well == (focus_well or grid["well"].iloc[0])
            attrs += (
                f' role="button" tabindex="{0 if focus else -1}" '
                f'aria-pressed="{"true" if well == selected else "false"}"'
            )
        else:
            attrs += ' role="img"'
        out.append(f'<g {attrs} data-tip="{_tip(tip)}">')
        box = f'x="{x + 1:g}" y="{y + 1:g}" width="{cell - 2}" height="{cell - 2}" rx="4"'
        if kind:
            out.append(
                f'<rect class="c" {box} fill="white" stroke="{EXCLUDED_COLOR}" stroke-width="3" '
                'stroke-dasharray="4 3"/>'
            )
        else:
            out.append(f'<rect class="c" {box} fill="{probability_colour(p)}"/>')
        if labels and kind:
            out.append(
                f'<text class="v" x="{cx:g}" y="{cy:g}" text-anchor="middle" '
                f'dominant-baseline="central" font-size="{font}" font-weight="bold" '
                f'fill="{EXCLUDED_COLOR}">'
                f"{EXCLUDED_MARKS.get(kind, kind)}</text>"
            )
        elif labels and p is not None:
            ink = "white" if p < DARK_BELOW else "black"
            out.append(
                f'<text class="v" x="{cx:g}" y="{cy:g}" text-anchor="middle" '
                f'dominant-baseline="central" font-size="{font}" fill="{ink}">{p:.2f}</text>'
            )
        condition = str(getattr(row, "condition", "") or "")
        if conditions and condition and cell >= CONDITION_MIN_CELL:
            ink = "white" if p is not None and p < DARK_BELOW and not kind else "black"
            out.append(
                f'<text class="cond" x="{cx:g}" y="{cy + cell * 0.3:g}" text-anchor="middle" '
                f'dominant-baseline="central" font-size="8" fill="{ink}">'
                f"{_esc(_clip(condition, (cell - 4) // 5))}</text>"
            )
        if onset:
            out.append(
                f'<circle class="ring" cx="{cx:g}" cy="{cy:g}" r="{ring_r:.1f}" fill="none" '
                f'stroke="{ONSET_COLOR}" stroke-width="3"/>'
            )
        out.append("</g>")
        if well == selected:
            frame = (
                f'<rect class="sel" {box} fill="none" stroke="black" stroke-width="3" '
                'pointer-events="none"/>'
            )
    out.append(frame)
    out.append(_colour_bar(ROW_LABELS_W, COL_LABELS_H + plate_h + 10, min(260, plate_w)))
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(1, n - 1)] + "…"


def _colour_bar(x: float, y: float, w: float) -> str:
    stops = "".join(
        f'<stop offset="{i / (len(VIRIDIS_STOPS) - 1):.3f}" stop-color="{hex_colour(c)}"/>'
        for i, c in enumerate(VIRIDIS_STOPS)
    )
    ticks = "".join(
        f'<text class="ax" x="{x + v * w:g}" y="{y + 36}" text-anchor="middle">{v:.1f}</text>'
        for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    )
    return (
        f'<g class="legend" aria-hidden="true"><defs><linearGradient id="sw-viridis">{stops}'
        f'</linearGradient></defs><text class="ax" x="{x}" y="{y + 8}" font-weight="bold">'
        f'{PROB_TITLE}</text><rect x="{x}" y="{y + 14}" width="{w:g}" height="10" '
        f'fill="url(#sw-viridis)"/>{ticks}</g>'
    )


def nice_ticks(hi: float, n: int = 8) -> list[float]:
    """Round tick values from 0 to ``hi`` (about ``n`` of them)."""
    if hi <= 0:
        return [0.0]
    raw = hi / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(hi / step + 1e-9) + 1)]


def series_svg(
    series: pd.DataFrame,
    fields: pd.DataFrame,
    *,
    well: str = "",
    onset_h: float | None = None,
    threshold: float | None = None,
    x_title: str = "Time (h)",
    show_smoothed: bool = True,
    excluded: pd.DataFrame | None = None,
) -> str:
    """P(differentiated) over time for one well as ``<div class="sw-series">`` (a y-axis SVG
    and the plot's SVG side by side).

    ``series``: ``time_h``, ``mean``, ``lower``, ``upper``, ``smoothed``, ``n``;
    ``fields``: ``time_h``, ``probability``, ``field``;
    ``excluded``: ``time_h``, ``y``, ``field``, ``kind``, ``why``
    (:func:`dashboard.data.excluded_points`)."""
    series = series.dropna(subset=["time_h", "mean"]).sort_values("time_h")
    fields = fields.dropna(subset=["time_h", "probability"])
    left_out = (
        excluded.dropna(subset=["time_h"])
        if excluded is not None and not excluded.empty
        else pd.DataFrame(columns=["time_h", "y", "field", "kind", "why"])
    )
    times = [1.0, *series["time_h"], *fields["time_h"], *left_out["time_h"]]
    if onset_h is not None:
        times.append(onset_h)
    x_dom = float(max(times)) * 1.03
    total_h = PLOT_TOP + PLOT_H + X_AXIS_H

    def xp(t: float) -> str:  # percent of the plot's width
        return f"{100.0 * t / x_dom:.3f}%"

    def xv(t: float) -> str:  # the nested SVG's units
        return f"{VIEW_W * t / x_dom:.2f}"

    def yv(p: float) -> str:  # inside the nested SVG
        return f"{(1.0 - min(1.0, max(0.0, p))) * PLOT_H:.2f}"

    def yo(p: float) -> str:  # the plot's own units
        return f"{PLOT_TOP + (1.0 - min(1.0, max(0.0, p))) * PLOT_H:.1f}"

    summary = _series_summary(series, well=well, onset_h=onset_h, n_left_out=len(left_out))
    out = [
        f'<div class="sw-series" role="group" data-well="{_esc(well)}" '
        f'aria-label="{_esc(summary)}">',
        # the y axis: ticks and title, fixed width
        f'<svg class="sw-yaxis" width="{Y_AXIS_W}" height="{total_h}" aria-hidden="true">',
        f'<text class="axt" transform="rotate(-90)" x="{-(PLOT_TOP + PLOT_H / 2):g}" y="12" '
        f'text-anchor="middle">{PROB_TITLE}</text>',
    ]
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(
            f'<text class="ax" x="{Y_AXIS_W - 6}" y="{yo(v)}" text-anchor="end" '
            f'dominant-baseline="central">{v:.1f}</text>'
        )
    out.append("</svg>")
    out.append(f'<svg class="sw-plot" height="{total_h}" data-xmax="{_g(x_dom)}">')
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(f'<line x1="0" x2="100%" y1="{yo(v)}" y2="{yo(v)}" stroke="#e8e8e8"/>')
    # band and lines: scaled to the plot's width, strokes kept at their size
    out.append(
        f'<svg x="0" y="{PLOT_TOP}" width="100%" height="{PLOT_H}" '
        f'viewBox="0 0 {VIEW_W:g} {PLOT_H}" preserveAspectRatio="none" overflow="visible">'
    )
    if len(series):
        ts, los, his = list(series["time_h"]), list(series["lower"]), list(series["upper"])
        upper = " ".join(f"{xv(t)},{yv(u)}" for t, u in zip(ts, his, strict=True))
        lower = " ".join(f"{xv(t)},{yv(v)}" for t, v in zip(ts[::-1], los[::-1], strict=True))
        band_data = " ".join(
            f"{_g(t)},{_g(lo)},{_g(hi)}"
            for t, lo, hi in zip(series["time_h"], series["lower"], series["upper"], strict=True)
        )
        out.append(
            f'<polygon class="band" points="{upper} {lower}" fill="{LINE_COLOR}" '
            f'fill-opacity="0.25" data-tlu="{band_data}"/>'
        )
        smooth = series.dropna(subset=["smoothed"])
        if show_smoothed and len(smooth):
            out.append(
                _polyline("smoothed", smooth["time_h"], smooth["smoothed"], xv, yv)
                + 'stroke-dasharray="5 3" stroke-opacity="0.7" stroke-width="1.5"/>'
            )
        out.append(
            _polyline("mean", series["time_h"], series["mean"], xv, yv) + 'stroke-width="2"/>'
        )
    out.append("</svg>")
    # dots: each field's value (over the line's markers: their tooltips say more)
    long = len(series) > LINE_POINTS_MAX
    means = dict(zip(series["time_h"], series["mean"], strict=True)) if long else {}
    for t, f, p in zip(fields["time_h"], fields["field"], fields["probability"], strict=True):
        tip = f"Time (h): {t:.1f}\nField: {f}\n{PROB_TITLE}: {p:.2f}"
        if t in means:
            tip += f"\nWell mean: {means[t]:.2f}"
        out.append(
            f'<circle class="dot" cx="{xp(t)}" cy="{yo(p)}" r="3" fill="{DOT_COLOR}" '
            f'fill-opacity="0.55" data-tfp="{_g(t)},{_esc(f)},{_g(p)}" data-tip="{_tip(tip)}"/>'
        )
    if not long:
        for r in series.itertuples(index=False):
            desc = (
                f"Time (h): {r.time_h:.1f}; Mean: {r.mean:.2f}; Lower: {r.lower:.2f}; "
                f"Upper: {r.upper:.2f}; Fields: {r.n}"
            )
            out.append(
                f'<circle class="mk" cx="{xp(r.time_h)}" cy="{yo(r.mean)}" r="3.5" '
                f'fill="{LINE_COLOR}" aria-label="{_esc(desc)}" '
                f'data-tip="{_tip(desc.replace("; ", chr(10)))}"/>'
            )
    for r in left_out.itertuples(index=False):
        glyph = "▲" if r.kind == "quality" else "✕"
        desc = f"Time (h): {r.time_h:.1f}; Field: {r.field}; Left out: {r.why}"
        out.append(
            f'<text class="left-out" x="{xp(r.time_h)}" y="{yo(r.y)}" text-anchor="middle" '
            f'dominant-baseline="central" font-size="15" fill="{EXCLUDED_COLOR}" '
            f'data-kind="{_esc(r.kind)}" data-ty="{_g(r.time_h)},{_g(r.y)}" '
            f'aria-label="{_esc(desc)}" data-tip="{_tip(desc.replace("; ", chr(10)))}">'
            f"{glyph}</text>"
        )
    if threshold is not None:
        out.append(
            f'<line class="threshold" x1="0" x2="100%" y1="{yo(threshold)}" y2="{yo(threshold)}" '
            f'stroke="#888888" stroke-dasharray="1 3" data-y="{_g(threshold)}"/>'
        )
    if onset_h is not None:
        right = onset_h / x_dom > 0.8
        out.append(
            f'<line class="onset" x1="{xp(onset_h)}" x2="{xp(onset_h)}" y1="{PLOT_TOP}" '
            f'y2="{PLOT_TOP + PLOT_H}" stroke="{ONSET_COLOR}" stroke-width="2" '
            f'data-t="{_g(onset_h)}"/>'
            f'<text class="onset-label" x="{xp(onset_h)}" dx="{-4 if right else 4}" '
            f'y="{PLOT_TOP + 10}" text-anchor="{"end" if right else "start"}" '
            f'fill="{ONSET_COLOR}" font-weight="bold">onset {onset_h:.1f} h</text>'
        )
    # the x axis
    base = PLOT_TOP + PLOT_H
    out.append(f'<line x1="0" x2="100%" y1="{base}" y2="{base}" stroke="#888888"/>')
    for t in nice_ticks(x_dom / 1.03):
        out.append(
            f'<line x1="{xp(t)}" x2="{xp(t)}" y1="{base}" y2="{base + 5}" stroke="#888888"/>'
            f'<text class="ax" x="{xp(t)}" y="{base + 17}" text-anchor="middle">{t:g}</text>'
        )
    out.append(
        f'<text class="axt" x="50%" y="{base + 37}" text-anchor="middle">{_esc(x_title)}</text>'
    )
    out.append("</svg></div>")
    return "".join(out)


def _polyline(
    kind: str,
    ts: Iterable[float],
    ys: Iterable[float],
    xv: Callable[[float], str],
    yv: Callable[[float], str],
) -> str:
    ts, ys = list(ts), list(ys)
    pts = " ".join(f"{xv(t)},{yv(y)}" for t, y in zip(ts, ys, strict=True))
    data = " ".join(f"{_g(t)},{_g(y)}" for t, y in zip(ts, ys, strict=True))
    return (
        f'<polyline class="{kind}" points="{pts}" data-ty="{data}" fill="none" '
        f'stroke="{LINE_COLOR}" vector-effect="non-scaling-stroke" '
    )


def _series_summary(
    series: pd.DataFrame, *, well: str, onset_h: float | None, n_left_out: int
) -> str:
    """The chart in one sentence, for a screen reader."""
    who = f"well {well}" if well else "the well"
    if series.empty:
        text = f"{PROB_TITLE} of {who} over time: no time point yet"
    else:
        t0, t1 = series["time_h"].iloc[0], series["time_h"].iloc[-1]
        text = (
            f"{PROB_TITLE} of {who} over time: {len(series)} time points from {t0:.1f} to "
            f"{t1:.1f} h, latest mean {series['mean'].iloc[-1]:.2f}"
        )
    text += "; no onset" if onset_h is None else f"; onset at {onset_h:.1f} h"
    if n_left_out:
        text += f"; {n_left_out} image{'s' if n_left_out != 1 else ''} left out"
    return text


# -- reading a drawing back (tests, and anyone checking what the page shows) ----------------


def _tree(markup: str) -> ElementTree.Element:
    """A drawing parsed (they are well-formed XML); SVG's namespace dropped from the tags."""
    root = ElementTree.fromstring(markup)
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
    return root


def _classed(root: ElementTree.Element, tag: str, cls: str) -> list[ElementTree.Element]:
    return [e for e in root.iter(tag) if cls in e.get("class", "").split()]


def read_plate(svg: str) -> pd.DataFrame:
    """The wells of a :func:`plate_svg` drawing, one row each: ``well``, ``probability`` (NaN:
    none), ``onset`` (a red ring), ``excluded``, ``dashed`` (its frame), ``selected`` (the
    black frame), ``text`` (the value or mark in the cell), ``condition`` (under it),
    ``label`` (its accessible description) and the lines of its tooltip by their titles
    (``Status``, ``Left out``, ...)."""
    root = _tree(svg)
    frame = _classed(root, "rect", "sel")
    selected = None
    rows = []
    for g in _classed(root, "g", "sw-well"):
        rect = g.find("rect")
        value, cond = _classed(g, "text", "v"), _classed(g, "text", "cond")
        box = (rect.get("x"), rect.get("y")) if rect is not None else None
        if frame and box == (frame[0].get("x"), frame[0].get("y")):
            selected = g.get("data-well")
        tip = dict(line.split(": ", 1) for line in g.get("data-tip", "").split("\n") if line)
        rows.append(
            {
                "well": g.get("data-well"),
                "probability": float(g.get("data-p") or "nan"),
                "onset": g.find("circle") is not None,
                "excluded": g.get("data-excluded", ""),
                "dashed": rect is not None and rect.get("stroke-dasharray") is not None,
                "text": (value[0].text or "") if value else "",
                "condition": (cond[0].text or "") if cond else "",
                "label": g.get("aria-label", ""),
                **tip,
            }
        )
    out = pd.DataFrame(rows)
    out["selected"] = out["well"] == selected
    return out


def _pairs(text: str) -> list[tuple[float, ...]]:
    return [tuple(float(v) for v in p.split(",")) for p in text.split()]


def read_series(drawing: str) -> dict[str, Any]:
    """The marks of a :func:`series_svg` drawing in data units: ``mean`` and ``smoothed``
    (time, value) pairs, ``band`` (time, lower, upper), ``dots`` (time, field, value),
    ``left_out`` (time, y, kind, why), ``onset_h`` and ``threshold`` (None where not drawn),
    ``onset_label``, ``markers`` (how many of the mean's markers), ``x_title`` and
    ``label`` (the chart's description)."""
    root = _tree(drawing)

    def one(tag: str, cls: str) -> ElementTree.Element | None:
        found = _classed(root, tag, cls)
        return found[0] if found else None

    mean, smooth, band = (
        one("polyline", "mean"),
        one("polyline", "smoothed"),
        one("polygon", "band"),
    )
    onset, threshold, onset_label = (
        one("line", "onset"),
        one("line", "threshold"),
        one("text", "onset-label"),
    )
    axis_titles = [t.text for t in _classed(root, "text", "axt")]
    return {
        "mean": _pairs(mean.get("data-ty", "")) if mean is not None else [],
        "smoothed": _pairs(smooth.get("data-ty", "")) if smooth is not None else [],
        "band": _pairs(band.get("data-tlu", "")) if band is not None else [],
        "dots": [
            (float(t), f, float(p))
            for t, f, p in (
                d.get("data-tfp", "").split(",") for d in _classed(root, "circle", "dot")
            )
        ],
        "left_out": [
            (
                *_pairs(e.get("data-ty", ""))[0],
                e.get("data-kind"),
                e.get("aria-label", "").rpartition("Left out: ")[2],
            )
            for e in _classed(root, "text", "left-out")
        ],
        "onset_h": float(onset.get("data-t", "nan")) if onset is not None else None,
        "onset_label": onset_label.text if onset_label is not None else None,
        "threshold": float(threshold.get("data-y", "nan")) if threshold is not None else None,
        "markers": len(_classed(root, "circle", "mk")),
        "x_title": axis_titles[-1] if axis_titles else None,
        "label": root.get("aria-label", ""),
    }

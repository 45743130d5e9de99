"""The plate view as a PNG file (for a lab notebook or a slide), drawn with Pillow.

A pure function of the heatmap's rows (:func:`dashboard.data.plate_grid`): wells coloured by
P(differentiated) on the viridis scale the dashboard uses, grey where not imaged, white with an
orange frame and ``OOD`` or ``bad`` where the well's newest images stay out of its series
(outside the model's training domain, bad frames), a red ring where an onset was detected, the
value in each well up to 96 wells, a colour bar and a title.
"""

from __future__ import annotations

import io

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from dashboard.palette import (
    EXCLUDED_COLOR,
    EXCLUDED_MARKS,
    NO_DATA_COLOR,
    ONSET_COLOR,
    rgb,
    viridis,
)
from stemwatch.core.wells import PlateLayout

NO_DATA = rgb(NO_DATA_COLOR)
ONSET = rgb(ONSET_COLOR)
EXCLUDED = rgb(EXCLUDED_COLOR)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def plate_png(grid: pd.DataFrame, layout: PlateLayout, *, title: str = "") -> bytes:
    """The plate as a PNG: one disc per well of ``layout`` (rows from ``plate_grid``)."""
    cell = max(28, min(96, 1152 // layout.cols))
    margin_l, margin_t = 36, 56 + cell // 3
    legend_h = 64
    width = margin_l + cell * layout.cols + 16
    height = margin_t + cell * layout.rows + legend_h
    im = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(im)
    small, label = _font(max(10, cell // 4)), _font(14)
    if title:
        draw.text((margin_l, 12), title, fill="black", font=_font(18))
    for c in range(layout.cols):
        x = margin_l + c * cell + cell / 2
        draw.text((x, margin_t - 6), str(c + 1), fill="black", font=label, anchor="mb")
    for r, name in enumerate(layout.row_labels()):
        y = margin_t + r * cell + cell / 2
        draw.text((margin_l - 10, y), name, fill="black", font=label, anchor="rm")
    pad = max(2, cell // 12)
    for row in grid.itertuples(index=False):
        x0 = margin_l + (int(row.col) - 1) * cell
        y0 = margin_t + layout.row_labels().index(str(row.row_label)) * cell
        box = (x0 + pad, y0 + pad, x0 + cell - pad, y0 + cell - pad)
        p = row.probability
        mark = EXCLUDED_MARKS.get(str(getattr(row, "excluded", "")), "")
        colour = "white" if mark else NO_DATA if pd.isna(p) else viridis(float(p))
        draw.ellipse(box, fill=colour, outline=EXCLUDED if mark else None, width=max(2, cell // 16))
        if bool(row.onset):
            draw.ellipse(box, outline=ONSET, width=max(2, cell // 12))
        if layout.n_wells <= 96 and mark:
            draw.text(
                ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                mark,
                fill=EXCLUDED,
                font=small,
                anchor="mm",
            )
        elif layout.n_wells <= 96 and not pd.isna(p):
            ink = "white" if float(p) < 0.6 else "black"
            draw.text(
                ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                f"{float(p):.2f}",
                fill=ink,
                font=small,
                anchor="mm",
            )
    # colour bar
    bar_x0, bar_y0 = margin_l, margin_t + cell * layout.rows + 14
    bar_w = min(260, cell * layout.cols)
    for i in range(bar_w):
        draw.line([(bar_x0 + i, bar_y0), (bar_x0 + i, bar_y0 + 12)], fill=viridis(i / (bar_w - 1)))
    draw.text((bar_x0, bar_y0 + 16), "0", fill="black", font=label)
    draw.text((bar_x0 + bar_w, bar_y0 + 16), "1", fill="black", font=label, anchor="ra")
    draw.text(
        (bar_x0 + bar_w + 12, bar_y0 - 2),
        "P(differentiated); grey: not imaged; red ring: onset",
        fill="black",
        font=label,
    )
    if "excluded" in grid and (grid["excluded"] != "").any():
        draw.text(
            (bar_x0 + bar_w + 12, bar_y0 + 16),
            "OOD: latest images outside the model's training domain; bad: latest frames "
            "blank, saturated or NaN (not coloured as a probability)",
            fill=EXCLUDED,
            font=label,
        )
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()

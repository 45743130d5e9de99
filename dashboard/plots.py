"""Altair charts of the dashboard: the plate heatmap, one well's probability over time, groups
of wells compared, and the instrument's throughput and queue.

Pure functions from DataFrames to charts (no Streamlit, no database), tested directly.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from stemwatch.core.wells import PlateLayout

PROB_TITLE = "P(differentiated)"
WELL_PICK = "well_pick"  # name of the click selection on the plate heatmap
NO_DATA_COLOR = "#e6e6e6"
ONSET_COLOR = "#d62728"
EXCLUDED_COLOR = "#e6550d"  # left out of the series: outside the training domain, bad frames
EXCLUDED_MARKS = {"domain": "OOD", "quality": "bad"}
# cell side (px) per plate width: every layout from 6 to 384 wells fits the plate column of a
# 1280 px laptop with the sidebar open (tests/dashboard/test_dashboard_layouts.py checks it)
# longer well series draw their mean line without a marker per time point (issue 13: the
# browser's drawing of SVG marks is most of the first render)
LINE_POINTS_MAX = 60
CELL_PX = {2: 72, 3: 72, 4: 64, 6: 56, 8: 44, 12: 34, 24: 26}


def cell_px(layout: PlateLayout) -> int:
    """The side of one well's cell for ``layout``."""
    return CELL_PX.get(layout.cols, max(16, min(72, 620 // max(1, layout.cols))))


def plate_heatmap(
    grid: pd.DataFrame,
    layout: PlateLayout,
    *,
    selected: str | None = None,
    cell: int = 0,
) -> alt.LayerChart:
    """Wells as a grid coloured by the latest P(differentiated); wells with an onset get a red
    ring, the selected well a black frame; clicking a well selects it (``WELL_PICK``). A well
    whose newest images all stay out of its series (``excluded``: ``domain``, ``quality``) is
    not coloured as a probability: white with a dashed orange frame and ``OOD`` or ``bad``.

    ``grid`` has one row per well of the layout with columns ``well``, ``row_label``, ``col``,
    ``probability`` (NaN where not imaged or excluded), ``n_images``, ``onset`` (bool),
    ``onset_h``, ``last_h`` and ``status``; optionally ``excluded`` and ``left_out`` (images
    left out of the series) and ``condition`` (from the plate map: in the tooltip, and under the
    probability where the cells have room).
    """
    cell = cell or cell_px(layout)
    if "excluded" not in grid:
        grid = grid.assign(excluded="", left_out="")
    marks = grid["excluded"].map(lambda k: EXCLUDED_MARKS.get(str(k), ""))
    df = grid.assign(
        selected=grid["well"] == selected,
        label=grid["probability"]
        .map(lambda p: "" if pd.isna(p) else f"{p:.2f}")
        .where(marks == "", marks),
        dark=grid["probability"].fillna(1.0) < 0.6,
        flagged=grid["excluded"] != "",
    )
    x = alt.X(
        "col:O",
        title=None,
        sort=list(range(1, layout.cols + 1)),
        scale=alt.Scale(domain=list(range(1, layout.cols + 1))),
        axis=alt.Axis(orient="top", labelAngle=0, labelFontSize=12, ticks=False, domain=False),
    )
    y = alt.Y(
        "row_label:O",
        title=None,
        scale=alt.Scale(domain=layout.row_labels()),
        axis=alt.Axis(labelAngle=0, labelFontSize=12, ticks=False, domain=False),
    )
    tooltip = [
        alt.Tooltip("well:N", title="Well"),
        alt.Tooltip("probability:Q", title=PROB_TITLE, format=".2f"),
        alt.Tooltip("n_images:Q", title="Images"),
        alt.Tooltip("last_h:Q", title="Last image (h)", format=".1f"),
        alt.Tooltip("status:N", title="Status"),
        alt.Tooltip("left_out:N", title="Left out"),
    ]
    conditions = "condition" in df.columns and bool(df["condition"].astype(bool).any())
    if conditions:  # the plate map's (issue 10)
        tooltip.insert(1, alt.Tooltip("condition:N", title="Condition"))
    pick = alt.selection_point(name=WELL_PICK, fields=["well"], on="click", clear=False)
    base = alt.Chart(df).encode(x=x, y=y)
    # one rect per well (a 384-well plate draws 384 marks, not a grey one under each coloured
    # one: the browser's drawing of the page is most of its first render, issue 13)
    cells = (
        # invalid=None: a well without a probability is drawn (grey), not filtered out
        base.mark_rect(cornerRadius=4, stroke="white", strokeWidth=1, invalid=None)
        .encode(
            color=alt.condition(
                "!isValid(datum.probability) || !isFinite(datum.probability)",
                alt.value(NO_DATA_COLOR),
                alt.Color(
                    "probability:Q",
                    title=PROB_TITLE,
                    scale=alt.Scale(scheme="viridis", domain=[0, 1]),
                    legend=alt.Legend(
                        orient="bottom",
                        direction="horizontal",
                        gradientLength=min(260, cell * layout.cols),
                        titleFontSize=12,
                        labelFontSize=11,
                    ),
                ),
            ),
            tooltip=tooltip,
        )
        .add_params(pick)
    )
    excluded = (
        alt.Chart(df[df["flagged"]] if df["flagged"].any() else df.head(0))
        .encode(x=x, y=y)
        .mark_rect(
            cornerRadius=4,
            fill="white",
            stroke=EXCLUDED_COLOR,
            strokeWidth=3,
            strokeDash=[4, 3],
        )
        .encode(tooltip=tooltip)
    )
    ring = (
        base.transform_filter("datum.onset")
        .mark_point(
            shape="circle",
            filled=False,
            color=ONSET_COLOR,
            strokeWidth=3,
            size=cell * cell * 0.55,
            aria=False,  # the cell under it describes the well
        )
        .encode(tooltip=tooltip)
    )
    frame = base.transform_filter("datum.selected").mark_rect(
        filled=False, stroke="black", strokeWidth=3, cornerRadius=4, aria=False
    )
    layers: list[alt.Chart] = [cells, excluded, ring, frame]
    if layout.n_wells <= 96:
        font = 10 if cell < 40 else 11
        text = (
            base.transform_filter("!datum.flagged")
            .mark_text(fontSize=font, aria=False)
            .encode(
                text="label:N",
                color=alt.condition("datum.dark", alt.value("white"), alt.value("black")),
                tooltip=tooltip,
            )
        )
        marked = (
            base.transform_filter("datum.flagged")
            .mark_text(fontSize=font, fontWeight="bold", color=EXCLUDED_COLOR, aria=False)
            .encode(text="label:N", tooltip=tooltip)
        )
        layers.extend([text, marked])
    if conditions and cell >= 44:  # room for the condition under the probability
        layers.append(
            base.mark_text(fontSize=8, dy=cell * 0.3, limit=cell - 4, aria=False).encode(
                text="condition:N",
                color=alt.condition("datum.dark", alt.value("white"), alt.value("black")),
                tooltip=tooltip,
            )
        )
    return alt.LayerChart(
        layer=layers,
        width=cell * layout.cols,
        height=cell * layout.rows,
        autosize=alt.AutoSizeParams(type="pad"),  # cells keep their size; legend adds below
    )


def well_series_chart(
    series: pd.DataFrame,
    fields: pd.DataFrame,
    *,
    onset_h: float | None = None,
    threshold: float | None = None,
    x_title: str = "Time (h)",
    title: str = "",
    show_smoothed: bool = True,
    excluded: pd.DataFrame | None = None,
) -> alt.LayerChart:
    """P(differentiated) over time for one well: the mean line with its uncertainty band,
    the detector's smoothed series (dashed, with ``show_smoothed``), the per-field points, an
    optional dotted decision threshold and a red rule at the onset; images left out of the
    series (``excluded``) as orange crosses at the probability that did not count (outside
    the model's training domain) or orange triangles at 0 (bad frames), each saying why.

    ``series``: ``time_h``, ``mean``, ``lower``, ``upper``, ``smoothed``, ``n``;
    ``fields``: ``time_h``, ``probability``, ``field``;
    ``excluded``: ``time_h``, ``y``, ``field``, ``kind``, ``why``
    (:func:`dashboard.data.excluded_points`).
    """
    left_out = excluded if excluded is not None else pd.DataFrame()
    times = [
        1.0,
        *series["time_h"].dropna(),
        *fields["time_h"].dropna(),
        *(left_out["time_h"].dropna() if not left_out.empty else []),
    ]
    if onset_h is not None:
        times.append(onset_h)
    x_max = float(max(times))
    x = alt.X("time_h:Q", title=x_title, scale=alt.Scale(domain=[0, x_max * 1.03], nice=False))
    y_scale = alt.Scale(domain=[0, 1])
    band = (
        alt.Chart(series)
        .mark_area(opacity=0.25, color="#1f77b4", aria=False)
        .encode(
            x=x,
            y=alt.Y("lower:Q", title=PROB_TITLE, scale=y_scale),
            y2="upper:Q",
        )
    )
    line = (
        alt.Chart(series)
        # a marker per time point only where they stay apart (a 200-point series would add
        # 200 SVG marks; the field dots carry the mean in their tooltip instead)
        .mark_line(point=len(series) <= LINE_POINTS_MAX, color="#1f77b4", strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("mean:Q", title=PROB_TITLE, scale=y_scale),
            tooltip=[
                alt.Tooltip("time_h:Q", title="Time (h)", format=".1f"),
                alt.Tooltip("mean:Q", title="Mean", format=".2f"),
                alt.Tooltip("lower:Q", title="Lower", format=".2f"),
                alt.Tooltip("upper:Q", title="Upper", format=".2f"),
                alt.Tooltip("n:Q", title="Fields"),
            ],
        )
    )
    dot_tips = [
        alt.Tooltip("time_h:Q", title="Time (h)", format=".1f"),
        alt.Tooltip("field:N", title="Field"),
        alt.Tooltip("probability:Q", title=PROB_TITLE, format=".2f"),
    ]
    if len(series) > LINE_POINTS_MAX and not fields.empty:
        means = series[["time_h", "mean"]].drop_duplicates("time_h")
        fields = fields.merge(means, on="time_h", how="left")
        dot_tips.append(alt.Tooltip("mean:Q", title="Well mean", format=".2f"))
    points = (
        alt.Chart(fields)
        # aria=False: no accessible description per dot (Vega formats one for each of a long
        # series' hundreds of dots while drawing the page; the tooltips stay)
        .mark_circle(size=36, opacity=0.55, color="#555555", aria=False)
        .encode(x=x, y=alt.Y("probability:Q", scale=y_scale), tooltip=dot_tips)
    )
    smooth = (
        alt.Chart(series.dropna(subset=["smoothed"]))
        .mark_line(strokeDash=[5, 3], color="#1f77b4", opacity=0.7, aria=False)
        .encode(x=x, y=alt.Y("smoothed:Q", scale=y_scale))
    )
    layers: list[alt.Chart] = (
        [band, smooth, line, points] if show_smoothed else [band, line, points]
    )
    if not left_out.empty:
        layers.append(
            alt.Chart(left_out)
            .mark_point(filled=True, size=90, color=EXCLUDED_COLOR, opacity=0.9)
            .encode(
                x=x,
                y=alt.Y("y:Q", scale=y_scale),
                shape=alt.Shape(
                    "kind:N",
                    scale=alt.Scale(domain=["domain", "quality"], range=["cross", "triangle-up"]),
                    legend=None,
                ),
                tooltip=[
                    alt.Tooltip("time_h:Q", title="Time (h)", format=".1f"),
                    alt.Tooltip("field:N", title="Field"),
                    alt.Tooltip("why:N", title="Left out"),
                ],
            )
        )
    if threshold is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"y": [threshold]}))
            .mark_rule(strokeDash=[1, 3], color="#888888")
            .encode(y="y:Q")
        )
    if onset_h is not None:
        rule = pd.DataFrame({"time_h": [onset_h], "label": [f"onset {onset_h:.1f} h"]})
        layers.append(
            alt.Chart(rule).mark_rule(color=ONSET_COLOR, strokeWidth=2).encode(x="time_h:Q")
        )
        layers.append(
            alt.Chart(rule)
            .mark_text(align="left", dx=4, dy=-6, color=ONSET_COLOR, fontWeight="bold")
            .encode(x="time_h:Q", y=alt.value(8), text="label:N")
        )
    return alt.LayerChart(layer=layers, height=300, title=title or alt.Undefined)


def compare_chart(curves: pd.DataFrame, *, x_title: str = "Time (h)") -> alt.LayerChart:
    """Groups of wells on one chart: each group's mean P(differentiated) with its ±1 SD band
    across wells, one colour per group.

    ``curves``: ``group``, ``time_h``, ``mean``, ``lower``, ``upper``, ``n_wells``
    (:func:`dashboard.data.group_curves`).
    """
    order = list(dict.fromkeys(curves["group"]))
    colour = alt.Color("group:N", title="Group", sort=order, legend=alt.Legend(orient="top"))
    x = alt.X("time_h:Q", title=x_title)
    y_scale = alt.Scale(domain=[0, 1])
    band = (
        alt.Chart(curves)
        .mark_area(opacity=0.2)
        .encode(
            x=x, y=alt.Y("lower:Q", title=PROB_TITLE, scale=y_scale), y2="upper:Q", color=colour
        )
    )
    line = (
        alt.Chart(curves)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("mean:Q", title=PROB_TITLE, scale=y_scale),
            color=colour,
            tooltip=[
                alt.Tooltip("group:N", title="Group"),
                alt.Tooltip("time_h:Q", title="Time (h)", format=".1f"),
                alt.Tooltip("mean:Q", title="Mean", format=".2f"),
                alt.Tooltip("lower:Q", title="-1 SD", format=".2f"),
                alt.Tooltip("upper:Q", title="+1 SD", format=".2f"),
                alt.Tooltip("n_wells:Q", title="Wells"),
            ],
        )
    )
    return alt.LayerChart(layer=[band, line], height=360)


def throughput_chart(frame: pd.DataFrame) -> alt.Chart:
    """Images scored and failed per hour (stacked bars)."""
    long = frame.melt(id_vars="start", value_vars=["scored", "failed"], var_name="what")
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("start:T", title="Hour", timeUnit="yearmonthdatehours"),
            y=alt.Y("value:Q", title="Images", stack=True),
            color=alt.Color(
                "what:N",
                title=None,
                scale=alt.Scale(domain=["scored", "failed"], range=["#1f77b4", ONSET_COLOR]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("start:T", title="Hour", format="%Y-%m-%d %H:00"),
                alt.Tooltip("what:N", title="What"),
                alt.Tooltip("value:Q", title="Images"),
            ],
        )
        .properties(height=200)
    )


def queue_chart(frame: pd.DataFrame) -> alt.Chart:
    """The daemon's queue (images found, not yet analysed) at each heartbeat."""
    return (
        alt.Chart(frame.dropna(subset=["queued"]))
        .mark_line(interpolate="step-after", point=len(frame) < 60)
        .encode(
            x=alt.X("at:T", title="Time"),
            y=alt.Y("queued:Q", title="Queued images"),
            tooltip=[
                alt.Tooltip("at:T", title="At", format="%Y-%m-%d %H:%M:%S"),
                alt.Tooltip("queued:Q", title="Queued"),
                alt.Tooltip("state:N", title="State"),
            ],
        )
        .properties(height=200)
    )

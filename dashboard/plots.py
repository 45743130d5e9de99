"""Altair charts of the dashboard's other views: groups of wells compared, and the
instrument's throughput and queue.

The plate page draws its heatmap and the well's curve as SVG on the server
(:mod:`dashboard.drawing`): Vega's JavaScript was most of its first render (issue 13). Pure
functions from DataFrames to charts (no Streamlit, no database), tested directly.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.palette import ONSET_COLOR, PROB_TITLE


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

"""The plate view: figures, the plate heatmap (click a well), exports, onsets, open alerts,
then the chosen well (:mod:`dashboard.views.well`)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, export, figures, lab, plots, reads
from dashboard.context import Context
from dashboard.views import alerts, well
from stemwatch import store

PLATE_CHART_KEY = "plate_chart"
SIDE_BY_SIDE_MAX_COLS = 12  # up to 96 wells the onsets and alerts sit beside the plate


def render(ctx: Context) -> None:
    plate = ctx.summary
    if plate is None:
        st.warning(f"Plate {ctx.plate} is no longer in the database.")
        return
    tb = ctx.time_base()
    who = plate.instrument  # a plate belongs to the instrument that imaged it
    version = reads.stamp(ctx.db_path)
    ov = reads.plate_overview(ctx.db_path, version, plate.plate, who, model_hash=ctx.model_hash)
    plate_map = reads.plate_map(ctx.db_path, version, plate.plate, who)
    grid, layout = data.plate_grid(ov.wells, tb, ov.flags)
    grid = lab.with_conditions(grid, plate_map)
    with data.reading(ctx.db_path) as db:
        daemon = data.daemon_status(store.last_heartbeat(db, instrument=who), now=time.time())
        several = len(store.list_instruments(db)) > 1

    st.title(f"Plate {plate.plate} · differentiation monitor")
    last = tb.hours(plate.last_time_s)
    st.caption(
        (f"Instrument **{who}** · " if several else "")
        + (
            f"{layout.name} plate · latest image at {last:.1f} h · "
            f"updated {data.age_text(time.time() - plate.last_update_at)}"
            if last is not None and plate.last_update_at is not None
            else f"{layout.name} plate"
        )
    )
    _figures(plate, ov, daemon)

    imaged = [w.well for w in ov.wells if w.n_timepoints > 0 or w.n_images > 0]
    chosen = _selected_well(imaged, ov.onsets)
    if layout.cols <= SIDE_BY_SIDE_MAX_COLS:
        left, right = st.columns([3, 2], gap="medium")
    else:
        left = right = st.container()
    with left:
        st.subheader("Plate view")
        st.altair_chart(
            plots.plate_heatmap(grid, layout, selected=chosen),
            on_select="rerun",
            selection_mode=plots.WELL_PICK,
            key=PLATE_CHART_KEY,
            width="content",
        )
        st.caption(
            "Colour: latest P(differentiated) of each well (grey: not imaged yet). "
            "Red ring: onset of differentiation detected. Click a well to inspect it."
            + (f" {lab.map_caption(plate_map)}." if plate_map is not None else "")
            + (" Shown: a re-analysis, not the daemon's model." if ctx.model_hash else "")
            + excluded_caption(grid)
        )
        _exports(ctx, plate, grid, layout, tb)
    with right:
        r1, r2 = st.columns(2) if right is left else (st.container(), st.container())
        with r1:
            _onsets_table(ov.onsets, tb)
        with r2:
            alerts.alert_list(ctx, plate=plate, limit=200, height=420, show=8)
    st.divider()
    if chosen is None:
        st.info("No well has analysed images yet.")
        return
    st.selectbox("Well", imaged, key="well")
    well.render_well(ctx, plate, chosen, ov.onsets)


def excluded_caption(grid: pd.DataFrame) -> str:
    """The heatmap's words for wells whose newest images stay out of their series."""
    kinds = set(grid["excluded"]) - {""}
    if not kinds:
        return ""
    parts = []
    if "domain" in kinds:
        parts.append("**OOD**: its latest images lie outside the model's training domain")
    if "quality" in kinds:
        parts.append("**bad**: its latest frames are blank, saturated or NaN")
    return (
        " Orange dashed frame, not coloured as a probability: "
        + "; ".join(parts)
        + ". Such images are left out of the well's series and of onset detection."
    )


def _figures(plate: store.PlateSummary, ov: reads.PlateOverview, daemon: data.DaemonStatus) -> None:
    c = ov.counts
    st.html(
        figures.row(
            [
                figures.Figure("Wells imaged", plate.n_wells),
                figures.Figure(
                    "Images analysed",
                    c.done,
                    "Current image files of this plate with a result. A file the microscope "
                    "wrote again (a re-acquisition) counts once, as its latest version.",
                ),
                figures.Figure(
                    "Queued",
                    "–" if daemon.queued is None else daemon.queued,
                    "Images the plate's instrument's daemon has found and not yet analysed (all "
                    "its plates), from its last heartbeat; – while it is not running.",
                ),
                figures.Figure("Failed", c.failed),
                figures.Figure("Wells with onset", len({o.well for o in ov.onsets})),
            ]
        )
    )
    out = sum(f.n_out_of_domain for f in ov.flags)
    bad = sum(f.n_quality for f in ov.flags)
    if out or bad:
        what = []
        if out:
            what.append(f"{out} outside the model's training domain")
        if bad:
            what.append(f"{bad} bad frame{'s' if bad != 1 else ''} (blank, saturated or NaN)")
        st.warning(
            f"{out + bad} image{'s' if out + bad != 1 else ''} of this plate "
            f"{'are' if out + bad != 1 else 'is'} left out of the wells' series and of onset "
            f"detection: {', '.join(what)}. See the Instrument page and "
            "docs/domain-check.md.",
            icon="⚠️",
        )
    if c.superseded:
        st.caption(
            f"{c.superseded} earlier version{'s' if c.superseded != 1 else ''} of images were "
            "replaced by a re-acquisition (the microscope wrote the file again); only the "
            "latest counts. The daemon's own tally on the Instrument page counts every "
            "version it processed."
        )


def _exports(
    ctx: Context,
    plate: store.PlateSummary,
    grid: pd.DataFrame,
    layout: Any,
    tb: data.TimeBase,
) -> None:
    """Downloads: the plate as PNG, per-well time courses and onsets as CSV (made on click)."""
    db_path, name, who = ctx.db_path, plate.plate, plate.instrument
    # files of a facility's plates say which instrument's plate they hold
    stem = f"{who}-{name}" if ctx.several_instruments else name
    title = f"Plate {name} ({who})" if ctx.several_instruments else f"Plate {name}"

    def courses() -> str:
        version = reads.stamp(db_path)
        with data.reading(db_path) as db:
            model = store.current_model(db, instrument=who)
        points = reads.plate_series(db_path, version, name, who, model_hash=ctx.model_hash)
        return data.courses_csv(points, tb, model_name=None if model is None else model.name)

    def onsets() -> str:
        found = reads.all_onsets(
            db_path, reads.stamp(db_path), name, who, model_hash=ctx.model_hash
        )
        return data.onsets_csv(found, tb)

    def png() -> bytes:
        return export.plate_png(grid, layout, title=title)

    row = st.container(horizontal=True)  # one block, not a column block per button
    row.download_button(
        "Plate (PNG)", png, file_name=f"{stem}-plate.png", mime="image/png", key="dl_png"
    )
    row.download_button(
        "Time courses (CSV)",
        courses,
        file_name=f"{stem}-time-courses.csv",
        mime="text/csv",
        key="dl_courses",
        help="P(differentiated) per well and time point, with SD, SEM, fields, smoothed",
    )
    row.download_button(
        "Onsets (CSV)",
        onsets,
        file_name=f"{stem}-onsets.csv",
        mime="text/csv",
        key="dl_onsets",
        help="every onset of the plate, reset ones marked",
    )


def _onsets_table(onsets: list[store.OnsetRecord], tb: data.TimeBase) -> None:
    st.subheader("Onsets on this plate")
    if not onsets:
        st.caption("No onset detected yet.")
        return
    rows = [
        {
            "Well": o.well,
            "Onset (h)": tb.hours(o.onset_time_s),
            "Detected at (h)": tb.hours(o.detected_time_s),
            "Smoothed P": o.probability,
        }
        for o in sorted(onsets, key=lambda o: (o.onset_time_s or 0.0, o.well))
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        height=min(36 + 35 * len(rows), 280),
        column_config={
            "Onset (h)": st.column_config.NumberColumn(format="%.1f"),
            "Detected at (h)": st.column_config.NumberColumn(format="%.1f"),
            "Smoothed P": st.column_config.NumberColumn(format="%.2f"),
        },
    )


def _selected_well(imaged: list[str], onsets: list[store.OnsetRecord]) -> str | None:
    """The well to show: a click on the heatmap wins, then the select box (or ``?well=``),
    then the well with the most recently detected onset, then the first imaged well. Syncs
    the select box's state (before the box is drawn in this run)."""
    picked = _picked_from_chart(st.session_state.get(PLATE_CHART_KEY))
    if picked and picked != st.session_state.get("_last_pick") and picked in imaged:
        st.session_state["well"] = picked
    st.session_state["_last_pick"] = picked
    if st.session_state.get("well") not in imaged:
        asked = st.query_params.get("well")
        onset_wells = [o.well for o in onsets if o.well in imaged]
        if asked in imaged:
            st.session_state["well"] = asked
        else:
            st.session_state["well"] = (onset_wells or imaged)[0] if imaged else None
    chosen = st.session_state.get("well")
    return str(chosen) if chosen else None


def _picked_from_chart(state: Any) -> str | None:
    try:
        points = state["selection"][plots.WELL_PICK]
    except (KeyError, TypeError):
        return None
    if isinstance(points, list) and points and isinstance(points[0], dict):
        picked = points[0].get("well")
        return str(picked) if picked else None
    return None

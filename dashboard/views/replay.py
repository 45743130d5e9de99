"""Replay: the plate as it was at any time point, and playing forward."""

from __future__ import annotations

import streamlit as st

from dashboard import blocks, data, drawing, reads
from dashboard.context import Context
from stemwatch import store

STEP_S = 1.0  # seconds per time point while playing


def render(ctx: Context) -> None:
    plate = ctx.summary
    if plate is None:
        st.warning(f"Plate {ctx.plate} is no longer in the database.")
        return
    st.title(f"Replay · plate {plate.plate}")
    if ctx.several_instruments:
        st.caption(f"Instrument **{plate.instrument}**")
    tb = ctx.time_base()
    version = reads.stamp(ctx.db_path)
    points = reads.plate_series(
        ctx.db_path, version, plate.plate, plate.instrument, model_hash=ctx.model_hash
    )
    times = data.replay_times(points, tb)
    if not times:
        st.info("No analysed time point yet.")
        return
    if st.session_state.get("replay_plate") != ctx.plate:  # another plate: start over
        st.session_state["replay_plate"] = ctx.plate
        st.session_state["replay_idx"] = len(times) - 1
        st.session_state["replay_playing"] = False
    st.session_state["replay_idx"] = min(int(st.session_state.get("replay_idx", 0)), len(times) - 1)
    playing = bool(st.session_state.get("replay_playing"))
    st.button(
        "⏸ Pause" if playing else "▶ Play",
        key="replay_play",
        on_click=_toggle_play,
        args=(len(times),),
        help=f"steps through the time points, one every {STEP_S:g} s",
    )
    st.session_state["_replay_full_run"] = True  # this frame shows the time point as it is
    onsets = reads.all_onsets(
        ctx.db_path, version, plate.plate, plate.instrument, model_hash=ctx.model_hash
    )
    st.fragment(run_every=STEP_S if playing else None)(_frame)(ctx, times, points, onsets)


def _toggle_play(n_times: int) -> None:
    playing = not st.session_state.get("replay_playing")
    if playing and int(st.session_state.get("replay_idx", 0)) >= n_times - 1:
        st.session_state["replay_idx"] = 0  # at the end: play from the start
    st.session_state["replay_playing"] = playing


def _frame(
    ctx: Context,
    times: list[float],
    points: list[store.SeriesPoint],
    onsets: list[store.OnsetRecord],
) -> None:
    """One frame; while playing, each timer run of the fragment steps one time point on."""
    if st.session_state.pop("_replay_full_run", False):
        pass
    elif st.session_state.get("replay_playing"):
        idx = int(st.session_state.get("replay_idx", 0))
        if idx >= len(times) - 1:
            st.session_state["replay_playing"] = False
            st.rerun(scope="app")  # the button says Play again, the timer stops
        st.session_state["replay_idx"] = idx + 1
    idx = st.select_slider(
        "Time point",
        options=list(range(len(times))),
        format_func=lambda i: f"{times[i]:.1f} h",
        key="replay_idx",
    )
    at_h = times[int(idx)]
    tb = ctx.time_base()
    grid, layout = data.replay_grid(points, onsets, tb, at_h)
    n_flagged = int(grid["onset"].sum())
    st.markdown(
        f"**{tb.label.replace(' (h)', '')}: {at_h:.1f} h** · time point {int(idx) + 1} of "
        f"{len(times)} · onset flagged in {n_flagged} well{'s' if n_flagged != 1 else ''} by then"
    )
    blocks.figure(drawing.plate_svg(grid, layout, pickable=False), key="replay_chart")
    st.caption(
        "Each well's P(differentiated) at its latest image up to this time; red ring: the "
        "detector had flagged an onset by then (reset ones included)."
    )

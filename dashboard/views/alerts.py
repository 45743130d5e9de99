"""Alerts: every instrument's alerts, newest first, with acknowledge; onset alerts in the
plate's hours."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import context, data, reads
from dashboard.context import Context
from stemwatch import store

MAX_ALERTS = 200


def render(ctx: Context) -> None:
    st.title("Alerts")
    st.toggle("Show acknowledged alerts", key="alerts_all")
    alert_list(ctx, plate=None, limit=MAX_ALERTS, show_all=bool(st.session_state.get("alerts_all")))


def alert_list(
    ctx: Context,
    *,
    plate: store.PlateSummary | None,
    limit: int,
    show_all: bool = False,
    height: int | None = None,
    show: int | None = None,
) -> None:
    """Alerts (of ``plate`` and its instrument's own, or every instrument's when None) as
    cards with an Acknowledge button; onset alerts say when the onset began in the plate's
    hours, like the charts (issue 13, item 7)."""
    who = None if plate is None else plate.instrument
    try:
        with data.reading(ctx.db_path) as db:
            alerts = store.list_alerts(
                db, limit=limit, unacknowledged_only=not show_all, instrument=who
            )
    except store.StoreError as exc:
        st.error(f"Cannot read alerts: {exc}")
        return
    if plate is not None:
        alerts = [a for a in alerts if a.plate in (None, plate.plate)]
    n_open = sum(a.acknowledged_at is None for a in alerts)
    st.subheader(f"Alerts ({n_open} open)")
    context.show_write_error()
    if not alerts:
        st.caption("No open alerts." if not show_all else "No alerts.")
        return
    if show is not None and len(alerts) > show:
        st.caption(f"The newest {show} of {len(alerts)}; all of them on the Alerts view.")
        alerts = alerts[:show]
    version = reads.stamp(ctx.db_path)
    onsets: dict[tuple[str, str], list[store.OnsetRecord]] = {}
    box = st.container(height=height) if height and len(alerts) > 3 else st.container()
    now = time.time()
    for a in alerts:
        text = a.message
        if a.kind == "onset" and a.plate:
            key = (a.instrument, a.plate)
            if key not in onsets:
                onsets[key] = reads.all_onsets(ctx.db_path, version, a.plate, a.instrument)
            text = data.onset_alert_text(a, onsets[key], ctx.time_base_of(a.plate, a.instrument))
        with box, st.container(border=True):
            colour = "red" if a.kind == "onset" else "orange"
            # a facility's alerts say whose they are
            shown_who = a.instrument if ctx.several_instruments and plate is None else None
            where = " ".join(x for x in (a.plate, a.well) if x)
            if shown_who:
                where = f"{shown_who} · {where}" if where else shown_who
            head = f":{colour}-badge[{a.kind}] " + (f"**{where}** · " if where else "")
            st.markdown(f"{head}raised {data.age_text(now - a.created_at)}  \n{text}")
            if a.acknowledged_at is None:
                st.button(
                    "Acknowledge",
                    key=f"ack_{a.id}",
                    on_click=context.acknowledge,
                    args=(ctx.db_path, a.id),
                )
            else:
                st.caption(
                    f"✓ acknowledged by {a.acknowledged_by}, "
                    f"{data.age_text(now - a.acknowledged_at)}"
                )

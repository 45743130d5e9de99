"""Alerts: every instrument's alerts, newest first, with acknowledge; onset alerts in the
plate's hours."""

from __future__ import annotations

import time

import streamlit as st

from dashboard import context, data, reads
from dashboard.context import Context
from stemwatch import store

MAX_ALERTS = 200
ACK_PICK_KEY = "ack_pick"  # the plate page's choice of the alert to acknowledge


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
    more = ""
    if show is not None and len(alerts) > show:
        more = f"The newest {show} of {len(alerts)}; all of them on the Alerts view."
        alerts = alerts[:show]
    version = reads.stamp(ctx.db_path)
    onsets: dict[tuple[str, str], list[store.OnsetRecord]] = {}
    now = time.time()
    lines: list[tuple[store.AlertRecord, str]] = []
    for a in alerts:
        text = a.message
        if a.kind == "onset" and a.plate:
            key = (a.instrument, a.plate)
            if key not in onsets:
                onsets[key] = reads.all_onsets(ctx.db_path, version, a.plate, a.instrument)
            text = data.onset_alert_text(a, onsets[key], ctx.time_base_of(a.plate, a.instrument))
        colour = "red" if a.kind == "onset" else "orange"
        # a facility's alerts say whose they are
        shown_who = a.instrument if ctx.several_instruments and plate is None else None
        where = " ".join(x for x in (a.plate, a.well) if x)
        if shown_who:
            where = f"{shown_who} · {where}" if where else shown_who
        head = f":{colour}-badge[{a.kind}] " + (f"**{where}** · " if where else "")
        lines.append((a, f"{head}raised {data.age_text(now - a.created_at)}  \n{text}"))
    if show is not None:
        _compact(ctx, lines, more, height=height)
        return
    box = st.container(height=height) if height and len(alerts) > 3 else st.container()
    for a, line in lines:
        with box, st.container(border=True):
            st.markdown(line)
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


def _compact(
    ctx: Context,
    lines: list[tuple[store.AlertRecord, str]],
    more: str,
    *,
    height: int | None,
) -> None:
    """The alerts as one list and one Acknowledge control (a box and a button) instead of a
    card and a button per alert: 4 elements instead of 3 per alert on the plate page, whose
    first render is mostly the browser's work per element (issue 13)."""
    text = "\n".join(f"- {line}" for _, line in lines) + (f"\n\n*{more}*" if more else "")
    box = st.container(height=height) if height and len(lines) > 3 else st.container()
    box.markdown(text)
    open_ = {a.id: a for a, _ in lines if a.acknowledged_at is None}
    if not open_:
        return
    if st.session_state.get(ACK_PICK_KEY) not in open_:
        st.session_state[ACK_PICK_KEY] = next(iter(open_))
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.selectbox(
            "Alert to acknowledge",
            list(open_),
            key=ACK_PICK_KEY,
            format_func=lambda i: _short(open_[i]),
            label_visibility="collapsed",
        )
        st.button(
            "Acknowledge",
            key="ack_picked",
            on_click=_acknowledge_picked,
            args=(ctx.db_path,),
        )


def _short(a: store.AlertRecord) -> str:
    where = " ".join(x for x in (a.plate, a.well) if x)
    return f"{a.kind}{' · ' + where if where else ''} (#{a.id})"


def _acknowledge_picked(db_path: str) -> None:
    picked = st.session_state.get(ACK_PICK_KEY)
    if picked is not None:
        context.acknowledge(db_path, int(picked))

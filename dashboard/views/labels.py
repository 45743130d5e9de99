"""Labels: what the lab says a well was, onset alerts marked as false alarms, undo (issue 10).

A well is labelled differentiated, undifferentiated or excluded, as a whole or from a time
point on; an onset alert marked as a false alarm labels the well's images over the alert's
window as undifferentiated. Every label records who (the sidebar's name) and when and can be
undone; nothing is deleted. ``stemwatch dataset from-db`` turns the labels into a training set.
"""

from __future__ import annotations

import streamlit as st

from dashboard import context, data, lab, reads
from dashboard.context import Context
from stemwatch import store
from stemwatch.core.labels import LABELS, Label

WHOLE_WELL = "the whole well"
DONE_KEY = "_label_done"


def render(ctx: Context) -> None:
    summary = ctx.summary
    if summary is None:
        st.warning(f"Plate {ctx.plate} is no longer in the database.")
        return
    tb = ctx.time_base()
    version = reads.stamp(ctx.db_path)
    st.title(f"Labels · plate {summary.plate}")
    st.caption(
        "What the lab knows about its wells, for training a model of its own "
        "(`stemwatch dataset from-db`). Each label records who gave it (the sidebar's name) "
        "and when; undo keeps it in the history, marked undone. End-point staining comes in "
        "with `stemwatch labels import-endpoints`."
    )
    context.show_write_error()
    if done := st.session_state.pop(DONE_KEY, None):
        st.success(done)
    ov = reads.plate_overview(ctx.db_path, version, summary.plate, summary.instrument)
    imaged = [w.well for w in ov.wells if w.n_images > 0]
    left, right = st.columns(2, gap="large")
    with left:
        _label_form(ctx, summary, imaged, tb)
    with right:
        _false_alarms(ctx, summary)
    st.divider()
    _history(ctx, summary, tb)


def _label_form(
    ctx: Context, summary: store.PlateSummary, imaged: list[str], tb: data.TimeBase
) -> None:
    st.subheader("Label a well")
    if not imaged:
        st.info("No well of this plate has images yet.")
        return
    if st.session_state.get("lab_well") not in imaged:
        wanted = st.session_state.get("well")
        st.session_state["lab_well"] = wanted if wanted in imaged else imaged[0]
    well = str(st.selectbox("Well", imaged, key="lab_well"))
    with data.reading(ctx.db_path) as db:
        images = store.images_for_well(db, summary.plate, well, instrument=summary.instrument)
    starts = lab.time_point_starts(images)
    choices = [WHOLE_WELL, *(f"from {tb.hours(t) or 0.0:.1f} h on" for t in starts)]
    st.radio("Label", LABELS, key="lab_label", horizontal=True)
    picked = str(st.selectbox("Images", choices, key="lab_from"))
    st.text_input("Note", key="lab_note", placeholder="optional: why")
    start = None if picked == WHOLE_WELL else starts[choices.index(picked) - 1]
    st.button(
        "Record label",
        key="lab_record",
        type="primary",
        on_click=_record,
        args=(ctx.db_path, summary.plate, summary.instrument, well, start),
    )


def _record(db_path: str, plate: str, instrument: str, well: str, start: float | None) -> None:
    """Button callback: record the form's label as :func:`context.acting_user`."""
    label: Label = st.session_state.get("lab_label", LABELS[0])
    try:
        stored = lab.label_well(
            db_path,
            plate,
            well,
            label,
            by=context.acting_user(),
            from_time_s=start,
            note=str(st.session_state.get("lab_note") or "") or None,
            instrument=instrument,
        )
    except store.StoreError as exc:
        st.session_state[context.WRITE_ERROR_KEY] = f"Could not label {plate} {well}: {exc}"
        return
    st.session_state["lab_note"] = ""
    st.session_state[DONE_KEY] = (
        f"Label #{stored.id}: {well} {stored.label} (by {stored.created_by})"
    )


def _false_alarms(ctx: Context, summary: store.PlateSummary) -> None:
    st.subheader("Onset alerts")
    with data.reading(ctx.db_path) as db:
        alerts = [
            a
            for a in store.list_alerts(db, limit=1000, instrument=summary.instrument)
            if a.kind == "onset" and a.plate == summary.plate
        ]
        marks = store.false_alarms(db)
    if not alerts:
        st.caption("No onset alert on this plate.")
        return
    st.caption(
        "Mark an alert as a false alarm when the well was not differentiating: its images "
        "from the onset the alert reported to its detection are labelled undifferentiated, "
        "and the alert is acknowledged."
    )
    for a in alerts[:30]:
        row = st.columns([1, 5, 2], vertical_alignment="center")
        row[0].markdown(f"**{a.well}**")
        row[1].caption(a.message)
        marked = lab.false_alarm_text(a, marks)
        if marked:
            row[2].caption(marked)
        else:
            row[2].button(
                "False alarm",
                key=f"fa_{a.id}",
                on_click=_false_alarm,
                args=(ctx.db_path, a.id, a.well or ""),
            )


def _false_alarm(db_path: str, alert_id: int, well: str) -> None:
    """Button callback: mark an onset alert as a false alarm."""
    try:
        stored = lab.mark_false_alarm(db_path, alert_id, by=context.acting_user())
    except store.StoreError as exc:
        st.session_state[context.WRITE_ERROR_KEY] = f"Could not mark alert {alert_id}: {exc}"
        return
    st.session_state[DONE_KEY] = (
        f"Alert {alert_id} marked as a false alarm: {well} undifferentiated (label #{stored.id})"
    )


def _history(ctx: Context, summary: store.PlateSummary, tb: data.TimeBase) -> None:
    st.subheader("Labels of this plate")
    with data.reading(ctx.db_path) as db:
        labels = store.list_labels(db, summary.plate, instrument=summary.instrument)
    if not labels:
        st.caption("No label yet.")
        return
    st.dataframe(
        lab.labels_frame(labels, tb),
        hide_index=True,
        column_config={
            "From (h)": st.column_config.NumberColumn(format="%.1f"),
            "To (h)": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    active = [x.id for x in labels if x.active]
    if not active:
        return
    if st.session_state.get("lab_undo") not in active:
        st.session_state["lab_undo"] = active[0]
    c = st.columns([2, 1], vertical_alignment="bottom")
    c[0].selectbox(
        "Undo label",
        active,
        key="lab_undo",
        format_func=lambda i: f"#{i}",
        help="The label stays in the history, marked undone; the labels it covered apply again.",
    )
    c[1].button("Undo", key="lab_undo_btn", on_click=_undo, args=(ctx.db_path,))


def _undo(db_path: str) -> None:
    """Button callback: undo the chosen label as :func:`context.acting_user`."""
    label_id = st.session_state.get("lab_undo")
    if label_id is None:
        return
    try:
        lab.undo_label(db_path, int(label_id), by=context.acting_user())
    except store.StoreError as exc:
        st.session_state[context.WRITE_ERROR_KEY] = f"Could not undo label #{label_id}: {exc}"
        return
    st.session_state[DONE_KEY] = f"Label #{label_id} undone"

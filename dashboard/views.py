"""The dashboard page: sidebar, plate view, per-well view and alerts (Streamlit).

Every render opens the database read-only through :mod:`dashboard.data` and closes it again;
the only write is acknowledging an alert (and resetting a well's onset), each on a short-lived
writable connection. The live part of the page is a fragment re-run every few seconds.
"""

from __future__ import annotations

import argparse
import getpass
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, plots, thumbs
from stemwatch import store

DB_ENV = "STEMWATCH_DB"
REFRESH_CHOICES: dict[str, float | None] = {
    "off": None,
    "5 s": 5.0,
    "10 s": 10.0,
    "30 s": 30.0,
    "1 min": 60.0,
}
MAX_IMAGE_ROWS = 30
PLATE_CHART_KEY = "plate_chart"

HOW_TO_START = """
**Start the monitoring daemon** on the microscope's output folder; it creates this database
and fills it as images arrive:

```bash
stemwatch watch /path/to/microscope/output --db {db}
# or with a config file: stemwatch config monitor --example > monitor.yaml
stemwatch watch --config monitor.yaml --db {db}
```
"""


def database_argument(argv: list[str]) -> str:
    """``--db`` from the script's arguments, else ``$STEMWATCH_DB``, else empty."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=None)
    known, _ = parser.parse_known_args(argv)
    return str(known.db or os.environ.get(DB_ENV, ""))


# ------------------------------------------------------------------------------------------
# Page
# ------------------------------------------------------------------------------------------


def render(default_db: str) -> None:
    """The whole page."""
    st.set_page_config(page_title="stemwatch", page_icon="🔬", layout="wide")
    with st.sidebar:
        st.header("stemwatch")
        db_path = st.text_input(
            "Database",
            value=default_db,
            key="db_path",
            help="SQLite file of `stemwatch watch`, or a facility's postgresql:// URL",
        ).strip()
        refresh_label = st.selectbox(
            "Auto-refresh",
            list(REFRESH_CHOICES),
            index=2,
            key="refresh",
            help="How often the page re-reads the database",
        )
    run_every = REFRESH_CHOICES[str(refresh_label)]

    if not db_path:
        st.title("Stem cell differentiation monitor")
        st.info("No database given. " + HOW_TO_START.format(db="results.db"))
        return
    try:
        with data.reading(db_path) as db:
            plates = store.list_plates(db)
    except data.DatabaseMissingError:
        st.title("Stem cell differentiation monitor")
        st.info(f"There is no database at `{db_path}` yet.\n" + HOW_TO_START.format(db=db_path))
        st.fragment(run_every=run_every)(_reload_when_plates_change)(db_path, ())
        return
    except store.StoreError as exc:
        st.title("Stem cell differentiation monitor")
        st.error(f"Cannot read the database: {exc}")
        return

    choices = data.plate_choices(plates)  # grouped by instrument where several share it
    names = list(choices)
    plate_name: str | None = None
    if names:
        if st.session_state.get("plate") not in names:
            st.session_state["plate"] = names[0]
        onsets_per_plate = {name: p.n_onsets for name, p in choices.items()}
        with st.sidebar:
            plate_name = st.selectbox(
                "Plate",
                names,
                key="plate",
                format_func=lambda n: _plate_label(n, onsets_per_plate.get(n, 0)),
            )
            st.text_input(
                "Acknowledge as",
                key="ack_by",
                placeholder="your name",
                help="Recorded with each alert you acknowledge and each onset you reset",
            )
    with st.sidebar:
        st.fragment(run_every=run_every)(_daemon_panel)(db_path)
        if st.button("Refresh now", help="Re-read everything, including the plate list"):
            st.rerun()

    if plate_name is None:
        st.title("Stem cell differentiation monitor")
        st.info(
            "The database exists but holds no analysed images yet. Is the daemon running and "
            "watching the right folder? The sidebar shows its last heartbeat.\n"
            + HOW_TO_START.format(db=db_path)
        )
        st.fragment(run_every=run_every)(_reload_when_plates_change)(db_path, ())
        _alerts_section(db_path)
        return
    st.fragment(run_every=run_every)(_live_view)(db_path, plate_name, tuple(names))


def _reload_when_plates_change(db_path: str, known: tuple[str, ...]) -> None:
    """Re-run the whole page (sidebar included) once the daemon has created the database or
    a plate appeared or vanished; otherwise do nothing."""
    try:
        with data.reading(db_path) as db:
            names = tuple(data.plate_choices(store.list_plates(db)))
    except store.StoreError:
        return
    if names != known:
        st.rerun(scope="app")


def _plate_label(name: str, n_onsets: int) -> str:
    return f"{name}  ({n_onsets} onset{'' if n_onsets == 1 else 's'})"


def _acting_user() -> str:
    """Who acknowledges or resets: the sidebar's name, else the server's user."""
    name = str(st.session_state.get("ack_by") or "").strip()
    if name:
        return name
    try:
        return f"{getpass.getuser()} (dashboard)"
    except (KeyError, OSError):
        return "dashboard"


# ------------------------------------------------------------------------------------------
# Sidebar: daemon heartbeat, model and provider
# ------------------------------------------------------------------------------------------


def _daemon_panel(db_path: str) -> None:
    try:
        with data.reading(db_path) as db:
            beats = store.heartbeats(db)
            models = {
                hb.instrument: store.current_model(db, instrument=hb.instrument) for hb in beats
            }
            latest = store.current_model(db)
    except store.StoreError as exc:
        st.subheader("Daemon")
        st.warning(f"cannot read heartbeat: {exc}")
        return
    if len(beats) <= 1:  # one instrument: its daemon and model
        hb = beats[0] if beats else None
        _daemon_status(hb, models.get(hb.instrument) if hb else latest)
        return
    st.subheader(f"Daemons ({len(beats)} instruments)")
    for hb in beats:
        status = data.daemon_status(hb, now=time.time())
        model = models.get(hb.instrument)
        st.markdown(
            f"**{hb.instrument}** {_BADGES[status.state]} {data.age_text(status.age_s)}"
            + (
                f"  \n`{model.name or model.model_hash[:12]}` on `{model.provider}`"
                if model
                else ""
            )
        )


_BADGES = {
    "alive": ":green-badge[● alive]",
    "stale": ":orange-badge[● stale]",
    "stopped": ":gray-badge[● stopped]",
    "never": ":gray-badge[● never started]",
}


def _daemon_status(hb: store.Heartbeat | None, model: store.ModelRecord | None) -> None:
    st.subheader("Daemon")
    status = data.daemon_status(hb, now=time.time())
    badge = _BADGES[status.state]
    st.markdown(f"{badge} last heartbeat {data.age_text(status.age_s)}")
    if status.detail:
        st.caption(status.detail + (f" on {status.host}" if status.host else ""))
    if status.state == "stale":
        st.caption("No heartbeat for a while: is `stemwatch watch` still running?")
    st.subheader("Model")
    if model is None:
        st.caption("no model registered yet")
    else:
        st.markdown(f"**{model.name or 'unnamed'}**  \n`{model.model_hash[:12]}`")
        st.markdown(f"provider: `{model.provider or 'unknown'}`")


# ------------------------------------------------------------------------------------------
# Main: counts, plate view, well view, alerts
# ------------------------------------------------------------------------------------------


def _live_view(db_path: str, plate_name: str, known_plates: tuple[str, ...]) -> None:
    _reload_when_plates_change(db_path, known_plates)
    try:
        with data.reading(db_path) as db:
            plate = data.plate_choices(store.list_plates(db)).get(plate_name)
            if plate is None:
                st.warning(f"Plate {plate_name} is no longer in the database.")
                return
            _plate_and_well(db, db_path, plate)
    except store.StoreError as exc:
        st.error(f"Cannot read the database: {exc}")


def _plate_and_well(db: store.Database, db_path: str, plate: store.PlateSummary) -> None:
    tb = data.time_base(plate)
    who = plate.instrument
    wells = store.well_summary(db, plate.plate, instrument=who)
    grid, layout = data.plate_grid(wells, tb)
    onsets = store.list_onsets(db, plate.plate, include_reset=False, instrument=who)
    c = store.counts(db, plate.plate, instrument=who)
    daemon = data.daemon_status(store.last_heartbeat(db, instrument=who), now=time.time())

    st.title(f"Plate {plate.plate} · differentiation monitor")
    last = tb.hours(plate.last_time_s)
    st.caption(
        f"{layout.name} plate · latest image at {last:.1f} h · "
        f"updated {data.age_text(time.time() - plate.last_update_at)}"
        if last is not None and plate.last_update_at is not None
        else f"{layout.name} plate"
    )
    if len(store.list_instruments(db)) > 1:
        st.caption(f"Instrument **{who}**")
    m = st.columns(5)
    m[0].metric("Wells imaged", plate.n_wells)
    m[1].metric("Images analysed", c.done)
    m[2].metric(
        "Queued",
        "–" if daemon.queued is None else daemon.queued,
        help="Images the daemon has found and not yet analysed (all plates), from its last "
        "heartbeat; – while it is not running.",
    )
    m[3].metric("Failed", c.failed)
    m[4].metric("Wells with onset", len({o.well for o in onsets}))

    imaged = [w.well for w in wells if w.n_timepoints > 0 or w.n_images > 0]
    well = _selected_well(imaged, onsets)

    left, right = st.columns([5, 7], gap="large")
    with left:
        st.subheader("Plate view")
        chart = plots.plate_heatmap(grid, layout, selected=well)
        st.altair_chart(
            chart,
            on_select="rerun",
            selection_mode=plots.WELL_PICK,
            key=PLATE_CHART_KEY,
            width="content",
        )
        st.caption(
            "Colour: latest P(differentiated) of each well (grey: not imaged yet). "
            "Red ring: onset of differentiation detected. Click a well to inspect it."
        )
        if imaged:
            st.selectbox("Well", imaged, key="well")
        _alerts_section(db_path)
        _onsets_table(onsets, tb)
    with right:
        if well is None:
            st.info("No well has analysed images yet.")
        else:
            _well_view(db, db_path, plate.plate, well, tb, instrument=who)


def _onsets_table(onsets: list[store.OnsetRecord], tb: data.TimeBase) -> None:
    st.markdown("**Onsets on this plate**")
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
    """The well to show: a click on the heatmap wins, then the select box, then the well with
    the most recently detected onset, then the first imaged well. Syncs the select box's state
    (before the box is drawn in this run)."""
    picked = _picked_from_chart(st.session_state.get(PLATE_CHART_KEY))
    if picked and picked != st.session_state.get("_last_pick") and picked in imaged:
        st.session_state["well"] = picked
    st.session_state["_last_pick"] = picked
    if st.session_state.get("well") not in imaged:
        onset_wells = [o.well for o in onsets if o.well in imaged]
        st.session_state["well"] = (onset_wells or imaged)[0] if imaged else None
    well = st.session_state.get("well")
    return str(well) if well else None


def _picked_from_chart(state: Any) -> str | None:
    try:
        points = state["selection"][plots.WELL_PICK]
    except (KeyError, TypeError):
        return None
    if isinstance(points, list) and points and isinstance(points[0], dict):
        well = points[0].get("well")
        return str(well) if well else None
    return None


def _well_view(
    db: store.Database,
    db_path: str,
    plate: str,
    well: str,
    tb: data.TimeBase,
    *,
    instrument: str | None = None,
) -> None:
    series = data.series_frame(store.well_series(db, plate, well, instrument=instrument), tb)
    images = data.images_frame(store.images_for_well(db, plate, well, instrument=instrument), tb)
    onset = data.active_onset(
        store.list_onsets(db, plate, include_reset=False, instrument=instrument), plate, well
    )
    onset_h = None if onset is None else tb.hours(onset.onset_time_s)

    st.subheader(f"Well {well}")
    m = st.columns(3)
    latest = series["mean"].iloc[-1] if not series.empty else None
    m[0].metric("Latest P(differentiated)", "–" if latest is None else f"{latest:.2f}")
    m[1].metric("Onset", "none" if onset is None else f"at {onset_h or 0:.1f} h")
    m[2].metric("Images", len(images))

    fields = images.dropna(subset=["probability", "time_h"])
    chart = plots.well_series_chart(
        series,
        fields[["time_h", "probability", "field"]],
        onset_h=onset_h,
        x_title=tb.label,
    )
    st.altair_chart(chart, key=f"series_{plate}_{well}")
    st.caption(
        "Line: the well's P(differentiated) over its fields, band ± 1 SD across fields; "
        "dots: single fields; dashed: smoothed (what the onset detector follows); "
        "red rule: estimated onset."
    )
    if onset is not None:
        with st.popover(f"Reset onset of {well}"):
            st.markdown(
                f"Closes the onset of **{well}** and re-arms its detector, e.g. after "
                "passaging or re-plating. The detector fires again only once the well's "
                "probability has fallen and risen again; the history stays in the database."
            )
            st.button(
                f"Reset {well}",
                key=f"reset_{plate}_{well}",
                type="primary",
                on_click=_reset_onset,
                args=(db_path, plate, well, instrument),
            )
    _images_table(db, images)


def _images_table(db: store.Database, images: pd.DataFrame) -> None:
    st.markdown("**Images behind this well** (newest first)")
    if images.empty:
        st.caption("no images")
        return
    shown = images.tail(MAX_IMAGE_ROWS).iloc[::-1]
    any_cam = bool(shown["has_cam"].any())
    rows = []
    for r in shown.itertuples(index=False):
        thumb = _image_thumb(str(r.path), _int_or_none(r.mtime_ns))
        notes = [] if thumb is not None else ["image file missing or unreadable"]
        if r.status != "done":
            notes.append(str(r.status))
        row = {
            "Time (h)": r.time_h,
            "Field": r.field,
            "P(diff.)": r.probability,
            "Image": thumbs.data_uri(thumb),
        }
        if any_cam:
            cam = store.cam_png(db, int(r.image_id)) if r.has_cam else None
            row["Activation"] = thumbs.data_uri(_cam_thumb(cam) if cam else None)
        row["File"] = Path(str(r.path)).name
        row["Note"] = "; ".join(notes)
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table["Note"].any():
        table = table.drop(columns="Note")
    st.dataframe(
        table,
        hide_index=True,
        row_height=72,
        column_config={
            "Time (h)": st.column_config.NumberColumn(format="%.1f", width="small"),
            "Field": st.column_config.NumberColumn(width="small"),
            "P(diff.)": st.column_config.ProgressColumn(
                format="%.2f", min_value=0, max_value=1, width="small"
            ),
            "Image": st.column_config.ImageColumn(width="small"),
            "Activation": st.column_config.ImageColumn(
                width="small",
                help="Activation map: where in the image the model saw differentiation "
                "(dark: little, yellow: much)",
            ),
            "File": st.column_config.TextColumn(width="medium", help="double-click to see all"),
        },
    )
    notes = []
    if not any_cam:
        notes.append("no activation maps stored for these images")
    if len(images) > MAX_IMAGE_ROWS:
        notes.append(f"showing the latest {MAX_IMAGE_ROWS} of {len(images)} images")
    if notes:
        st.caption("; ".join(notes))


@st.cache_data(max_entries=4096, show_spinner=False)
def _image_thumb(path: str, mtime_ns: int | None) -> bytes | None:
    """Cached per file version (``mtime_ns`` is part of the key)."""
    return thumbs.image_thumbnail(path)


@st.cache_data(max_entries=4096, show_spinner=False)
def _cam_thumb(png: bytes) -> bytes | None:
    return thumbs.resize_png(png)


def _int_or_none(x: Any) -> int | None:
    return None if x is None or pd.isna(x) else int(x)


def _alerts_section(db_path: str) -> None:
    try:
        with data.reading(db_path) as db:
            open_alerts = store.list_alerts(db, limit=50, unacknowledged_only=True)
            show_all = bool(st.session_state.get("alerts_all"))
            alerts = store.list_alerts(db, limit=50) if show_all else open_alerts
    except store.StoreError as exc:
        st.error(f"Cannot read alerts: {exc}")
        return
    st.subheader(f"Alerts ({len(open_alerts)} open)")
    st.toggle("Show acknowledged alerts", key="alerts_all")
    if msg := st.session_state.pop("_write_error", None):
        st.error(msg)
    if not alerts:
        st.caption("No open alerts.")
        return
    box = st.container(height=420) if len(alerts) > 3 else st.container()
    for a in alerts:
        with box, st.container(border=True):
            colour = "red" if a.kind == "onset" else "orange"
            where = " ".join(x for x in (a.plate, a.well) if x)
            head = f":{colour}-badge[{a.kind}] " + (f"**{where}** · " if where else "")
            st.markdown(f"{head}{_when(a.created_at)}  \n{a.message}")
            if a.acknowledged_at is None:
                st.button(
                    "Acknowledge", key=f"ack_{a.id}", on_click=_acknowledge, args=(db_path, a.id)
                )
            else:
                st.caption(f"✓ acknowledged by {a.acknowledged_by}, {_when(a.acknowledged_at)}")


def _when(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _acknowledge(db_path: str, alert_id: int) -> None:
    by = _acting_user()
    try:
        data.acknowledge(db_path, alert_id, by=by)
    except store.StoreError as exc:
        st.session_state["_write_error"] = f"Could not acknowledge alert {alert_id}: {exc}"


def _reset_onset(db_path: str, plate: str, well: str, instrument: str | None = None) -> None:
    by = _acting_user()
    try:
        data.reset_onset(db_path, plate, well, by=by, instrument=instrument)
    except store.StoreError as exc:
        st.session_state["_write_error"] = f"Could not reset the onset of {plate} {well}: {exc}"

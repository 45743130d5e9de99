"""The page around the views: the database from the command line, the sidebar (view, plate,
daemons, refresh), the empty and error states, and the auto-refresh.

The database is the one ``stemwatch dashboard --db PATH|URL`` was started with (or
``$STEMWATCH_DB``, set by whoever starts the server); a visitor cannot choose another. A
facility's PostgreSQL database holds several instruments: the plate chooser names each plate's
instrument and the sidebar shows every instrument's daemon. The view, plate and well are in
the address (``?view=compare&plate=P1&well=B02``), so a page can be bookmarked and shared.
"""

from __future__ import annotations

import argparse
import os
import time

import streamlit as st

from dashboard import data, figures, reads
from dashboard.context import Context
from dashboard.registry import VIEWS, View, by_key
from dashboard.views import alerts, models
from stemwatch import store

DB_ENV = "STEMWATCH_DB"
REFRESH_CHOICES: dict[str, float | None] = {
    "off": None,
    "5 s": 5.0,
    "10 s": 10.0,
    "30 s": 30.0,
    "1 min": 60.0,
}
TITLE = "Stem cell differentiation monitor"
PAGE_ICON = "🔬"
# less empty space above the title, a smaller title: more plate on a 1280 x 800 laptop
COMPACT_CSS = """
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
h1 { font-size: 2rem !important; }
"""


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


def _shown(db_path: str) -> str:
    """The database as the page names it (a URL without its password)."""
    try:
        return store.parse_target(db_path).display if db_path else ""
    except store.StoreError:
        return db_path


def main(argv: list[str]) -> None:
    """The whole page."""
    st.set_page_config(page_title="stemwatch", page_icon=PAGE_ICON, layout="wide")
    st.html(f"<style>{COMPACT_CSS}{figures.CSS}</style>")
    db_path = database_argument(argv)
    shown = _shown(db_path)
    view = _sidebar_head()
    run_every = REFRESH_CHOICES[str(st.session_state.get("refresh", "10 s"))]
    if not db_path:
        st.title(TITLE)
        st.error(
            "No database: start the dashboard with `stemwatch dashboard --db PATH` "
            "(the database `stemwatch watch` writes, or a facility's postgresql:// URL)."
        )
        return
    try:
        plates = tuple(reads.plates(db_path, reads.stamp(db_path)))
    except data.DatabaseMissingError:
        st.title(TITLE)
        st.info(f"There is no database at `{shown}` yet.\n" + HOW_TO_START.format(db=shown))
        st.fragment(run_every=run_every)(_reload_when_plates_change)(db_path, ())
        return
    except store.StoreError as exc:
        st.title(TITLE)
        st.error(f"Cannot read the database: {exc}")
        return

    plate = _sidebar_plate(plates)
    shown_model = models.choose_model(db_path, data.plate_choices(plates).get(plate or ""))
    with st.sidebar:
        st.fragment(run_every=run_every)(_daemon_panel)(db_path)
        if st.button("Refresh now", help="Re-read everything, including the plate list"):
            st.rerun()
    ctx = Context(
        db_path=db_path, plates=plates, plate=plate, run_every=run_every, model_hash=shown_model
    )
    _sync_address(view, plate)

    if view.needs_plate and plate is None:
        st.title(TITLE)
        st.info(
            "The database exists but holds no analysed images yet. Is the daemon running and "
            "watching the right folder? The sidebar shows its last heartbeat.\n"
            + HOW_TO_START.format(db=shown)
        )
        st.fragment(run_every=run_every)(_reload_when_plates_change)(db_path, ())
        alerts.alert_list(ctx, plate=None, limit=50)
        return
    if view.live:
        st.fragment(run_every=run_every)(_live)(view, ctx)
    else:
        view.render(ctx)


def _sidebar_head() -> View:
    """The view chooser and the refresh interval (first in the sidebar); the chosen view."""
    keys = [v.key for v in VIEWS]
    if st.session_state.get("view") not in keys:
        asked = st.query_params.get("view")
        st.session_state["view"] = asked if asked in keys else keys[0]
    with st.sidebar:
        st.header("stemwatch")
        key = st.radio(
            "View",
            keys,
            key="view",
            format_func=lambda k: by_key(k).title,
            captions=[v.help for v in VIEWS],
            label_visibility="collapsed",
        )
        st.selectbox(
            "Auto-refresh",
            list(REFRESH_CHOICES),
            index=2,
            key="refresh",
            help="How often the page re-reads the database",
        )
    return by_key(str(key))


def _sidebar_plate(plates: tuple[store.PlateSummary, ...]) -> str | None:
    """The plate chooser: every instrument's plates, grouped by instrument (named
    ``instrument · plate`` where several share the database); the chosen entry."""
    choices = data.plate_choices(plates)
    names = list(choices)
    if not names:
        return None
    if st.session_state.get("plate") not in names:
        asked = st.query_params.get("plate")
        st.session_state["plate"] = asked if asked in names else names[0]
    onsets = {name: p.n_onsets for name, p in choices.items()}
    with st.sidebar:
        chosen = st.selectbox(
            "Plate",
            names,
            key="plate",
            format_func=lambda n: (
                f"{n}  ({onsets.get(n, 0)} onset{'' if onsets.get(n) == 1 else 's'})"
            ),
        )
        st.text_input(
            "Acknowledge as",
            key="ack_by",
            placeholder="your name",
            help="Recorded with each alert you acknowledge and each onset you reset",
        )
    return str(chosen)


def _sync_address(view: View, plate: str | None) -> None:
    """The address says which view, plate and well are shown."""
    want = {"view": view.key}
    if plate:
        want["plate"] = plate
    # Until the plate view has chosen a well (it reads ``?well=`` when it does), keep the one the
    # address asks for: rewriting it first would open the default well instead.
    well = st.session_state.get("well") or st.query_params.get("well")
    if view.key == "plate" and well:
        want["well"] = str(well)
    if dict(st.query_params) != want:
        st.query_params.from_dict(want)


def _live(view: View, ctx: Context) -> None:
    """One auto-refreshed run of a live view: the plate list first (a new plate re-runs the
    whole page, sidebar included), then the view."""
    _reload_when_plates_change(ctx.db_path, tuple(ctx.choices))
    try:
        view.render(ctx)
    except store.StoreError as exc:
        st.error(f"Cannot read the database: {exc}")


def _reload_when_plates_change(db_path: str, known: tuple[str, ...]) -> None:
    """Re-run the whole page once the daemon has created the database or a plate appeared or
    vanished; otherwise do nothing."""
    try:
        names = tuple(data.plate_choices(reads.plates(db_path, reads.stamp(db_path))))
    except store.StoreError:
        return
    if names != known:
        st.rerun(scope="app")


def _daemon_panel(db_path: str) -> None:
    """Each instrument's daemon in a few words (details on the Instrument view)."""
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
    now = time.time()
    lines = []
    for hb in beats:
        status = data.daemon_status(hb, now=now)
        model = models.get(hb.instrument)
        queued = f" · {status.queued} queued" if status.queued is not None and status.queued else ""
        lines.append(
            f"**{hb.instrument}** {BADGES[status.state]} {data.age_text(status.age_s)}{queued}"
            + (
                f"  \n`{model.name or model.model_hash[:12]}` on `{model.provider or 'unknown'}`"
                if model
                else ""
            )
        )
    st.markdown("\n\n".join(lines))  # one element for all of them


BADGES = {
    "alive": ":green-badge[● alive]",
    "stale": ":orange-badge[● stale]",
    "stopped": ":gray-badge[● stopped]",
    "never": ":gray-badge[● never started]",
}


def _daemon_status(hb: store.Heartbeat | None, model: store.ModelRecord | None) -> None:
    """The daemon's state, queue and model in one element (the sidebar is part of every
    page's first render)."""
    st.subheader("Daemon")
    status = data.daemon_status(hb, now=time.time())
    lines = [f"{BADGES[status.state]} last heartbeat {data.age_text(status.age_s)}"]
    if status.queued is not None:
        lines.append(f"{status.queued} image{'s' if status.queued != 1 else ''} queued")
    if status.state == "stale":
        lines.append("No heartbeat for a while: is `stemwatch watch` still running?")
    if model is None:
        lines.append("no model registered yet")
    else:
        lines.append(f"model **{model.name or 'unnamed'}** on `{model.provider or 'unknown'}`")
    st.markdown("  \n".join(lines))

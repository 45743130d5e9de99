"""The page around the views: the database from the command line, the sidebar (view, plate,
daemon, refresh), the empty and error states, and the auto-refresh.

The database is the one ``stemwatch dashboard --db PATH`` was started with (or
``$STEMWATCH_DB``, set by whoever starts the server); a visitor cannot choose another. The
view, plate and well are in the address (``?view=compare&plate=P1&well=B02``), so a page can
be bookmarked and shared.
"""

from __future__ import annotations

import argparse
import os
import time

import streamlit as st

from dashboard import data, reads
from dashboard.context import Context
from dashboard.registry import VIEWS, View, by_key
from dashboard.views import alerts
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
# less empty space above the title, a smaller title: more plate on a 1280 x 800 laptop
COMPACT_CSS = """<style>
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
h1 { font-size: 2rem !important; }
</style>"""

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


def main(argv: list[str]) -> None:
    """The whole page."""
    st.set_page_config(page_title="stemwatch", page_icon="🔬", layout="wide")
    st.html(COMPACT_CSS)
    db_path = database_argument(argv)
    view = _sidebar_head()
    run_every = REFRESH_CHOICES[str(st.session_state.get("refresh", "10 s"))]
    if not db_path:
        st.title(TITLE)
        st.error(
            "No database: start the dashboard with `stemwatch dashboard --db PATH` "
            "(the database `stemwatch watch` writes)."
        )
        return
    try:
        plates = tuple(reads.plates(db_path, reads.stamp(db_path)))
    except data.DatabaseMissingError:
        st.title(TITLE)
        st.info(f"There is no database at `{db_path}` yet.\n" + HOW_TO_START.format(db=db_path))
        st.fragment(run_every=run_every)(_reload_when_plates_change)(db_path, ())
        return
    except store.StoreError as exc:
        st.title(TITLE)
        st.error(f"Cannot read the database: {exc}")
        return

    plate = _sidebar_plate(plates)
    with st.sidebar:
        st.fragment(run_every=run_every)(_daemon_panel)(db_path)
        if st.button("Refresh now", help="Re-read everything, including the plate list"):
            st.rerun()
    ctx = Context(db_path=db_path, plates=plates, plate=plate, run_every=run_every)
    _sync_address(view, plate)

    if view.needs_plate and plate is None:
        st.title(TITLE)
        st.info(
            "The database exists but holds no analysed images yet. Is the daemon running and "
            "watching the right folder? The sidebar shows its last heartbeat.\n"
            + HOW_TO_START.format(db=db_path)
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
    names = [p.plate for p in plates]
    if not names:
        return None
    if st.session_state.get("plate") not in names:
        asked = st.query_params.get("plate")
        st.session_state["plate"] = asked if asked in names else names[0]
    onsets = {p.plate: p.n_onsets for p in plates}
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
    well = st.session_state.get("well")
    if view.key == "plate" and well:
        want["well"] = str(well)
    if dict(st.query_params) != want:
        st.query_params.from_dict(want)


def _live(view: View, ctx: Context) -> None:
    """One auto-refreshed run of a live view: the plate list first (a new plate re-runs the
    whole page, sidebar included), then the view."""
    _reload_when_plates_change(ctx.db_path, tuple(p.plate for p in ctx.plates))
    try:
        view.render(ctx)
    except store.StoreError as exc:
        st.error(f"Cannot read the database: {exc}")


def _reload_when_plates_change(db_path: str, known: tuple[str, ...]) -> None:
    """Re-run the whole page once the daemon has created the database or a plate appeared or
    vanished; otherwise do nothing."""
    try:
        names = tuple(p.plate for p in reads.plates(db_path, reads.stamp(db_path)))
    except store.StoreError:
        return
    if names != known:
        st.rerun(scope="app")


def _daemon_panel(db_path: str) -> None:
    """The daemon's state in a few words (details on the Instrument view)."""
    st.subheader("Daemon")
    try:
        with data.reading(db_path) as db:
            hb = store.last_heartbeat(db)
            model = store.current_model(db)
    except store.StoreError as exc:
        st.warning(f"cannot read heartbeat: {exc}")
        return
    status = data.daemon_status(hb, now=time.time())
    badge = {
        "alive": ":green-badge[● alive]",
        "stale": ":orange-badge[● stale]",
        "stopped": ":gray-badge[● stopped]",
        "never": ":gray-badge[● never started]",
    }[status.state]
    st.markdown(f"{badge} last heartbeat {data.age_text(status.age_s)}")
    if status.queued is not None:
        st.caption(f"{status.queued} image{'s' if status.queued != 1 else ''} queued")
    if status.state == "stale":
        st.caption("No heartbeat for a while: is `stemwatch watch` still running?")
    if model is None:
        st.caption("no model registered yet")
    else:
        st.markdown(f"model **{model.name or 'unnamed'}** on `{model.provider or 'unknown'}`")

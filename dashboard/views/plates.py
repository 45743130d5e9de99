"""Plates: every instrument's plates (running or finished, wells, images, onsets), and the
images that got no plate or well, each with its reason."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.context import Context
from stemwatch import store

MAX_UNPLACED = 200


def render(ctx: Context) -> None:
    st.title("Plates")
    now = time.time()
    try:
        with data.reading(ctx.db_path) as db:
            daemons = {
                hb.instrument: data.daemon_status(hb, now=now) for hb in store.heartbeats(db)
            }
            unplaced = store.unplaced_images(db, limit=MAX_UNPLACED)
            n_unplaced = store.count_unplaced(db)
    except store.StoreError as exc:
        st.error(f"Cannot read the database: {exc}")
        return
    table = data.plates_frame(ctx.plates, daemons, now=now)
    if table.empty:
        st.info("No plate has analysed images yet.")
    else:
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "Last image (h)": st.column_config.NumberColumn(format="%.1f"),
                "Status": st.column_config.TextColumn(
                    help="running: its instrument's daemon is alive and an image of the plate "
                    "arrived within the last hour (or two of its passes); else finished"
                ),
            },
        )
        st.caption("Choose a plate in the sidebar to open it.")
    st.subheader(f"Images without a plate or well ({n_unplaced})")
    if not unplaced:
        st.caption("Every analysed image was placed on a plate and well.")
        return
    st.dataframe(unplaced_frame(unplaced, with_instrument=ctx.several_instruments), hide_index=True)
    st.caption(
        "Their plate or well could not be told from the file name or metadata; they are kept "
        "in the database, not shown on any plate. Fix the naming or the `plate:` settings of "
        "the monitor config, then touch the files to have them analysed again."
        + (f" Showing the latest {MAX_UNPLACED}." if n_unplaced > MAX_UNPLACED else "")
    )


def unplaced_frame(
    images: list[store.ImageRecord], *, with_instrument: bool = False
) -> pd.DataFrame:
    """The unplaced images, each with its reason (and its instrument, in a facility)."""
    now = time.time()
    frame = pd.DataFrame(
        [
            {
                "Instrument": i.instrument,
                "File": Path(i.path).name,
                "Folder": str(Path(i.path).parent),
                "Status": i.status,
                "Reason": i.unplaced_reason
                or i.error
                or "no plate or well resolved (reason not recorded by this daemon version)",
                "Updated": data.age_text(now - i.updated_at),
            }
            for i in images
        ]
    )
    return frame if with_instrument else frame.drop(columns="Instrument", errors="ignore")

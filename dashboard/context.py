"""What every view gets from the page shell, and the dashboard's few writes.

The database is chosen on the command line (``stemwatch dashboard --db PATH|URL``), never by
a visitor. The dashboard writes only when a person acknowledges an alert, resets a well's
onset, labels a well, marks a false alarm or undoes a label, each on a short-lived writable
connection.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

import streamlit as st

from dashboard import data
from stemwatch import store

WRITE_ERROR_KEY = "_write_error"


@dataclass(frozen=True)
class Context:
    """The page's database, its plates, the chosen plate and the refresh interval.

    ``plate`` is the sidebar's choice: the plate's name where one instrument wrote the
    database, ``instrument · plate`` where several share it (:func:`data.plate_choices`; two
    instruments may image plates of the same name). Views read through the chosen
    :attr:`summary`, whose ``plate`` and ``instrument`` name it in the store."""

    db_path: str
    plates: tuple[store.PlateSummary, ...]
    plate: str | None
    run_every: float | None
    model_hash: str | None = None  # the model the plate is shown through (None: the daemon's)

    @property
    def choices(self) -> dict[str, store.PlateSummary]:
        """Every plate under its choice (the sidebar's entries, in its order)."""
        return data.plate_choices(self.plates)

    @property
    def several_instruments(self) -> bool:
        return len({p.instrument for p in self.plates}) > 1

    @property
    def summary(self) -> store.PlateSummary | None:
        return None if self.plate is None else self.choices.get(self.plate)

    def find(self, plate: str | None, instrument: str) -> store.PlateSummary | None:
        """The summary of ``instrument``'s plate ``plate``."""
        return next(
            (p for p in self.plates if p.plate == plate and p.instrument == instrument), None
        )

    def time_base(self, choice: str | None = None) -> data.TimeBase:
        """The time base of the chosen plate (or of the plate ``choice`` names)."""
        name = choice or self.plate
        return data.time_base(None if name is None else self.choices.get(name))

    def time_base_of(self, plate: str | None, instrument: str) -> data.TimeBase:
        return data.time_base(self.find(plate, instrument))


def acting_user() -> str:
    """Who acknowledges or resets: the sidebar's name, else the server's user."""
    name = str(st.session_state.get("ack_by") or "").strip()
    if name:
        return name
    try:
        return f"{getpass.getuser()} (dashboard)"
    except (KeyError, OSError):
        return "dashboard"


def acknowledge(db_path: str, alert_id: int) -> None:
    """Button callback: acknowledge an alert as :func:`acting_user`."""
    try:
        data.acknowledge(db_path, alert_id, by=acting_user())
    except store.StoreError as exc:
        st.session_state[WRITE_ERROR_KEY] = f"Could not acknowledge alert {alert_id}: {exc}"


def reset_onset(db_path: str, plate: str, well: str, instrument: str) -> None:
    """Button callback: close the well's onset episode on ``instrument``'s plate and re-arm
    its detector."""
    try:
        data.reset_onset(db_path, plate, well, by=acting_user(), instrument=instrument)
    except store.StoreError as exc:
        st.session_state[WRITE_ERROR_KEY] = f"Could not reset the onset of {plate} {well}: {exc}"


def show_write_error() -> None:
    """The error of the last write, once."""
    if msg := st.session_state.pop(WRITE_ERROR_KEY, None):
        st.error(msg)

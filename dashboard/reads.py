"""The dashboard's reads of the database, cached per database state.

Every function opens the database read-only through :func:`dashboard.data.reading`, reads
through :mod:`stemwatch.store` and closes it again. The cached ones take the database's
:func:`stamp` (:func:`stemwatch.store.change_stamp`: size and modification time of a SQLite
file and its write-ahead log, the write-ahead-log position of a PostgreSQL server): a render on
an unchanged database reuses the last answer, a commit by a daemon invalidates it.

A facility database holds several instruments, and two of them may image plates of the same
name: every read about one plate names its instrument (:attr:`store.PlateSummary.instrument`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard import data
from stemwatch import store
from stemwatch.core.platemap import PlateMap

Stamp = tuple[object, ...]


def stamp(db_path: str) -> Stamp:
    """What changes when anything is committed. A server that cannot be asked gets a stamp
    of its own (nothing cached: the read itself then says what is wrong)."""
    try:
        return store.change_stamp(db_path)
    except store.StoreError:
        return ("unreadable", time.monotonic_ns())


@st.cache_data(max_entries=32, show_spinner=False)
def plates(db_path: str, version: Stamp) -> list[store.PlateSummary]:
    """Every instrument's plates, by instrument then name."""
    with data.reading(db_path) as db:
        return store.list_plates(db)


@dataclass(frozen=True)
class PlateOverview:
    """What the plate page draws before a well is chosen."""

    wells: list[store.WellSummary]
    onsets: list[store.OnsetRecord]  # not reset
    counts: store.Counts
    flags: list[store.WellFlags]  # wells with images left out (out of domain, bad frames)


@st.cache_data(max_entries=32, show_spinner=False)
def plate_overview(
    db_path: str, version: Stamp, plate: str, instrument: str, *, model_hash: str | None = None
) -> PlateOverview:
    """``model_hash``: the model the plate is shown through (None: the daemon's)."""
    with data.reading(db_path) as db:
        m = model_hash
        return PlateOverview(
            wells=store.well_summary(db, plate, instrument=instrument, model_hash=m),
            onsets=store.list_onsets(
                db, plate, include_reset=False, instrument=instrument, model_hash=m
            ),
            counts=store.counts(db, plate, instrument=instrument),
            flags=store.well_flags(db, plate, instrument=instrument, model_hash=m),
        )


@st.cache_data(max_entries=16, show_spinner=False)
def plate_series(
    db_path: str, version: Stamp, plate: str, instrument: str, *, model_hash: str | None = None
) -> list[store.SeriesPoint]:
    with data.reading(db_path) as db:
        return store.plate_series(db, plate, instrument=instrument, model_hash=model_hash)


@st.cache_data(max_entries=16, show_spinner=False)
def all_onsets(
    db_path: str, version: Stamp, plate: str, instrument: str, *, model_hash: str | None = None
) -> list[store.OnsetRecord]:
    """Every onset of the plate, reset ones too (the replay and the CSV export)."""
    with data.reading(db_path) as db:
        return store.list_onsets(db, plate, instrument=instrument, model_hash=model_hash)


@dataclass(frozen=True)
class WellDetail:
    series: list[store.SeriesPoint]
    images: list[store.ImageRecord]


@st.cache_data(max_entries=64, show_spinner=False)
def well_detail(
    db_path: str,
    version: Stamp,
    plate: str,
    well: str,
    instrument: str,
    *,
    model_hash: str | None = None,
) -> WellDetail:
    with data.reading(db_path) as db:
        return WellDetail(
            store.well_series(db, plate, well, instrument=instrument, model_hash=model_hash),
            store.images_for_well(db, plate, well, instrument=instrument, model_hash=model_hash),
        )


@st.cache_data(max_entries=16, show_spinner=False)
def plate_map(db_path: str, version: Stamp, plate: str, instrument: str) -> PlateMap | None:
    """The plate's map (issue 10), None where none was imported."""
    with data.reading(db_path) as db:
        return store.plate_map(db, plate, instrument=instrument)


@st.cache_data(max_entries=16, show_spinner=False)
def plate_models(
    db_path: str, version: Stamp, plate: str, instrument: str
) -> list[store.PlateModel]:
    """The models with a series on the plate, the daemon's first."""
    with data.reading(db_path) as db:
        return store.plate_models(db, plate, instrument=instrument)


@dataclass(frozen=True)
class DomainFlags:
    """What the Instrument page says about images left out of the series."""

    plates: list[store.DomainSummary]
    newest: list[store.ImageRecord]  # the newest flagged images
    alerts: list[store.AlertRecord]  # domain alerts, newest first


@st.cache_data(max_entries=8, show_spinner=False)
def domain_flags(db_path: str, version: Stamp, instrument: str | None, limit: int) -> DomainFlags:
    with data.reading(db_path) as db:
        return DomainFlags(
            plates=store.domain_summary(db, instrument=instrument),
            newest=store.flagged_images(db, instrument=instrument, limit=limit),
            alerts=store.list_alerts(db, kind="domain", instrument=instrument, limit=limit),
        )


@st.cache_data(max_entries=8, show_spinner=False)
def watched_folders(db_path: str, version: Stamp, instrument: str) -> tuple[str, ...]:
    """The folders ``instrument``'s daemon watched: its images are shown only from under
    these."""
    with data.reading(db_path) as db:
        return tuple(f.path for f in store.watched_folders(db, instrument=instrument))


@st.cache_data(max_entries=8, show_spinner=False)
def bundled_card(model_hash: str) -> str | None:
    """The model card of the bundled model, when the daemon runs it (matched by hash)."""
    from stemwatch.core.errors import StemwatchError
    from stemwatch.core.modelfile import bundled_model_path, file_sha256

    try:
        path = bundled_model_path()
    except StemwatchError:
        return None
    card = Path(path).with_suffix(".md")
    if not card.is_file() or file_sha256(path) != model_hash:
        return None
    return card.read_text(encoding="utf-8")

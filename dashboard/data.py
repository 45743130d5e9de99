"""From the store's read API to the tables the dashboard draws.

Everything here reads through the named query functions of :mod:`stemwatch.store` (no SQL;
the dashboard imports only the store and the core) and returns plain pandas frames or small
dataclasses; tested directly on real databases. Times become hours: experiment time where
the images carried it (OME DeltaT, a time token in the file name), else hours since the
plate's first image (acquisition dates, file modification times), as the stored time basis
says.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stemwatch import store
from stemwatch.core.times import is_clock_time
from stemwatch.core.wells import PlateLayout, infer_layout, parse_well, row_label


class DatabaseMissingError(store.StoreError):
    """The database does not exist (yet): the daemon has not been started on it."""


@contextmanager
def reading(path: str | Path) -> Iterator[store.Database]:
    """A read-only connection for one page render (a SQLite file, or a facility's PostgreSQL
    URL: every instrument's plates); :class:`DatabaseMissingError` if the file, or the schema
    on the server, is absent; :class:`stemwatch.store.StoreError` if it is not a usable
    stemwatch database."""
    target = store.parse_target(path)
    if target.engine == "sqlite" and not Path(target.location).is_file():
        raise DatabaseMissingError(f"{target.location}: database not found")
    try:
        db = store.open_db(target.location, readonly=True)
    except store.StoreMissingError as exc:
        raise DatabaseMissingError(str(exc)) from None
    with db:
        yield db


def acknowledge(path: str | Path, alert_id: int, *, by: str) -> None:
    """The dashboard's write: mark an alert as seen by ``by``."""
    with store.open_db(path) as db:
        store.acknowledge_alert(db, alert_id, by=by)


def reset_onset(
    path: str | Path, plate: str, well: str, *, by: str, instrument: str | None = None
) -> int:
    """Close the well's onset episode and re-arm its detector; returns the new episode.
    ``instrument``: the plate's (a facility database may hold plates of the same name)."""
    with store.open_db(path) as db:
        return store.reset_well(db, plate, well, by=by, instrument=instrument)


def plates_by_instrument(
    plates: Sequence[store.PlateSummary],
) -> dict[str, list[store.PlateSummary]]:
    """Every instrument's plates (as :func:`stemwatch.store.list_plates` returns them),
    grouped by instrument, instruments and plates by name."""
    out: dict[str, list[store.PlateSummary]] = {}
    for p in sorted(plates, key=lambda p: (p.instrument, p.plate)):
        out.setdefault(p.instrument, []).append(p)
    return out


def plate_choices(plates: Sequence[store.PlateSummary]) -> dict[str, store.PlateSummary]:
    """The plate picker's entries, grouped by instrument: the plate's name where one
    instrument wrote the database, ``instrument · plate`` where several share it (a facility
    database; two instruments may image plates of the same name)."""
    groups = plates_by_instrument(plates)
    several = len(groups) > 1
    return {
        (f"{p.instrument} · {p.plate}" if several else p.plate): p
        for group in groups.values()
        for p in group
    }


@dataclass(frozen=True)
class TimeBase:
    """How a plate's ``time_s`` values become hours on the axes."""

    origin_s: float
    label: str

    def hours(self, time_s: float | None) -> float | None:
        return None if time_s is None else (time_s - self.origin_s) / 3600.0


def time_base(plate: store.PlateSummary | None) -> TimeBase:
    """Experiment hours when the plate's times are elapsed time, else (wall-clock times) hours
    since its first image."""
    first = None if plate is None else plate.first_time_s
    if plate is None or first is None or not is_clock_time(plate.time_basis):
        return TimeBase(0.0, "Time (h)")
    return TimeBase(first, "Time since first image (h)")


def plate_grid(
    wells: Sequence[store.WellSummary], tb: TimeBase
) -> tuple[pd.DataFrame, PlateLayout]:
    """One row per well of the plate's layout (imaged or not) for the heatmap."""
    layout = infer_layout(w.well for w in wells)
    by_well = {w.well: w for w in wells}
    rows = []
    for name in layout.wells():
        r, c = parse_well(name)
        w = by_well.get(name)
        prob = None if w is None else w.last_probability
        if w is None or w.n_images == 0:
            status = "not imaged"
        elif w.onset:
            status = f"onset at {tb.hours(w.onset_time_s) or 0:.1f} h"
        else:
            status = "no onset"
        rows.append(
            {
                "well": name,
                "row_label": row_label(r),
                "col": c + 1,
                "probability": np.nan if prob is None else float(prob),
                "sd": np.nan if w is None or w.last_sd is None else float(w.last_sd),
                "n_images": 0 if w is None else w.n_images,
                "last_h": np.nan if w is None else _nan(tb.hours(w.last_time_s)),
                "onset": bool(w is not None and w.onset),
                "onset_h": np.nan if w is None else _nan(tb.hours(w.onset_time_s)),
                "status": status,
            }
        )
    return pd.DataFrame(rows), layout


def series_frame(points: Sequence[store.SeriesPoint], tb: TimeBase) -> pd.DataFrame:
    """Mean P(differentiated) per time point with a ±1 SD band across fields (SEM where the
    SD is unknown), clipped to [0, 1]."""
    rows = []
    for p in points:
        spread = p.sd if p.sd is not None else (p.sem or 0.0)
        rows.append(
            {
                "time_h": _nan(tb.hours(p.time_s)),
                "timepoint": p.timepoint,
                "mean": p.probability,
                "lower": max(0.0, p.probability - spread),
                "upper": min(1.0, p.probability + spread),
                "smoothed": np.nan if p.smoothed is None else p.smoothed,
                "n": p.n_fields,
            }
        )
    cols = ["time_h", "timepoint", "mean", "lower", "upper", "smoothed", "n"]
    return pd.DataFrame(rows, columns=cols)


def images_frame(images: Sequence[store.ImageRecord], tb: TimeBase) -> pd.DataFrame:
    """The images behind one well, by time then field, with their latest prediction."""
    rows = [
        {
            "image_id": i.id,
            "time_h": _nan(tb.hours(i.time_s)),
            "timepoint": i.timepoint,
            "field": i.field,
            "probability": np.nan if i.probability is None else i.probability,
            "tile_sd": np.nan if i.tile_sd is None else i.tile_sd,
            "n_tiles": i.n_tiles,
            "status": i.status if not i.error else f"{i.status}: {i.error}",
            "path": i.path,
            "mtime_ns": i.mtime_ns,
            "has_cam": i.has_cam,
        }
        for i in images
    ]
    cols = [
        "image_id",
        "time_h",
        "timepoint",
        "field",
        "probability",
        "tile_sd",
        "n_tiles",
        "status",
        "path",
        "mtime_ns",
        "has_cam",
    ]
    return pd.DataFrame(rows, columns=cols)


def active_onset(
    onsets: Sequence[store.OnsetRecord], plate: str, well: str
) -> store.OnsetRecord | None:
    """The well's onset that has not been reset, if any (latest episode)."""
    live = [o for o in onsets if o.plate == plate and o.well == well and o.active]
    return max(live, key=lambda o: o.episode) if live else None


@dataclass(frozen=True)
class DaemonStatus:
    """What the sidebar says about the daemon."""

    state: str  # "alive", "stale", "stopped" or "never"
    age_s: float | None
    detail: str
    host: str | None
    queued: int | None = None  # images found and not yet analysed, while it is alive


def daemon_status(hb: store.Heartbeat | None, *, now: float) -> DaemonStatus:
    """Alive, stale or stopped by the heartbeat's own rule (:meth:`store.Heartbeat.liveness`,
    the same as `stemwatch status`)."""
    if hb is None:
        return DaemonStatus("never", None, "", None)
    state = hb.liveness(now)
    detail = " · ".join(s for s in (hb.state, hb.detail) if s)
    queued = hb.queued if state == "alive" else None
    return DaemonStatus(state, hb.age_s(now), detail, hb.host, queued)


def age_text(seconds: float | None) -> str:
    """``42 s``, ``5 min``, ``3.2 h``, ``2.0 d`` ago."""
    if seconds is None:
        return "never"
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s ago"
    if s < 5400:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} d ago"


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)

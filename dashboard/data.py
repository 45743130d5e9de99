"""From the store's read API to the tables the dashboard draws.

Everything here reads through the named query functions of :mod:`stemwatch.store` (no SQL;
the dashboard imports only the store and the core) and returns plain pandas frames or small
dataclasses; tested directly on real databases. Times become hours: experiment time where
the images carried it (OME DeltaT, a time token in the file name), else hours since the
plate's first image (acquisition dates, file modification times), as the stored time basis
says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stemwatch import store
from stemwatch.core.times import is_clock_time
from stemwatch.core.wells import PlateLayout, infer_layout, parse_well, row_label

RUNNING_WITHIN_S = 3600.0  # a plate is running while images arrived this recently...
RUNNING_PASSES = 2.0  # ...or within this many of its own passes (slow time-lapses)


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


def excluded_note(flags: store.WellFlags | None) -> str:
    """What of a well stays out of its series, in words ("" when nothing does)."""
    if flags is None or not flags.n_excluded:
        return ""
    parts = []
    if flags.n_out_of_domain:
        parts.append(f"{flags.n_out_of_domain} outside the model's training domain")
    if flags.n_quality:
        parts.append(f"{flags.n_quality} bad frame{'s' if flags.n_quality != 1 else ''}")
    n = flags.n_excluded
    return f"{n} image{'s' if n != 1 else ''} left out: " + ", ".join(parts)


def latest_excluded(flags: store.WellFlags | None) -> tuple[str, str]:
    """``(kind, status)`` of a well whose newest images all stay out of its series: kind
    ``domain`` (outside the model's training domain) or ``quality`` (blank, saturated,
    all-NaN), and the status line; ``("", "")`` otherwise."""
    if flags is None or not flags.latest_excluded:
        return "", ""
    n = flags.n_latest
    if flags.n_latest_out_of_domain:
        score = (
            "" if flags.latest_score is None else f"; domain score up to {flags.latest_score:.1f}"
        )
        return "domain", (
            f"latest images outside the model's training domain "
            f"({flags.n_latest_out_of_domain} of {n}{score})"
        )
    return "quality", f"latest frames not analysed ({flags.latest_quality or 'bad frames'})"


def plate_grid(
    wells: Sequence[store.WellSummary],
    tb: TimeBase,
    flags: Iterable[store.WellFlags] = (),
) -> tuple[pd.DataFrame, PlateLayout]:
    """One row per well of the plate's layout (imaged or not) for the heatmap.

    A well whose newest images all stay out of its series (``flags``: outside the model's
    training domain, bad frames) gets no ``probability`` (its colour would be an older time
    point's, or a reading the model cannot make): ``excluded`` says why, ``last_counted`` keeps
    the last value that counted."""
    layout = infer_layout(w.well for w in wells)
    by_well = {w.well: w for w in wells}
    flagged = {f.well: f for f in flags}
    rows = []
    for name in layout.wells():
        r, c = parse_well(name)
        w = by_well.get(name)
        prob = None if w is None else w.last_probability
        kind, why = latest_excluded(flagged.get(name))
        if w is None or w.n_images == 0:
            status = "not imaged"
        elif kind:
            status = why
        elif w.onset:
            status = f"onset at {tb.hours(w.onset_time_s) or 0:.1f} h"
        else:
            status = "no onset"
        if kind and w is not None and w.onset:
            status += f"; onset at {tb.hours(w.onset_time_s) or 0:.1f} h"
        rows.append(
            {
                "well": name,
                "row_label": row_label(r),
                "col": c + 1,
                "probability": np.nan if prob is None or kind else float(prob),
                "last_counted": np.nan if prob is None else float(prob),
                "sd": np.nan if w is None or w.last_sd is None else float(w.last_sd),
                "n_images": 0 if w is None else w.n_images,
                "last_h": np.nan if w is None else _nan(tb.hours(w.last_time_s)),
                "onset": bool(w is not None and w.onset),
                "onset_h": np.nan if w is None else _nan(tb.hours(w.onset_time_s)),
                "status": status,
                "excluded": kind,
                "left_out": excluded_note(flagged.get(name)),
            }
        )
    return pd.DataFrame(rows), layout


def series_frame(points: Sequence[store.SeriesPoint], tb: TimeBase) -> pd.DataFrame:
    """Mean P(differentiated) per time point with a ±1 SD band (across fields; across the
    tiles of the one field where a well has one; SEM where the SD is unknown), clipped to
    [0, 1]. ``n`` is the number of fields."""
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


def excluded_reason(image: store.ImageRecord) -> str:
    """Why an image stays out of its well's series ("" when it counts): a bad frame's reason,
    or that it lies outside the model's training domain (with its domain score)."""
    if image.quality is not None:
        return f"not analysed: {image.quality}"
    if image.out_of_domain:
        score = "" if image.domain_score is None else f" (domain score {image.domain_score:.1f})"
        return f"outside the model's training domain{score}"
    return ""


def images_frame(images: Sequence[store.ImageRecord], tb: TimeBase) -> pd.DataFrame:
    """The images behind one well, by time then field, with their latest prediction;
    ``excluded``: why one stays out of the series ("" when it counts)."""
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
            "domain_score": np.nan if i.domain_score is None else i.domain_score,
            "excluded": excluded_reason(i),
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
        "domain_score",
        "excluded",
    ]
    return pd.DataFrame(rows, columns=cols)


def excluded_points(images: pd.DataFrame) -> pd.DataFrame:
    """The images a well's chart marks as left out (rows of :func:`images_frame` with a
    time): ``kind`` ``domain`` (drawn at the probability the model gave, which did not count)
    or ``quality`` (no probability: drawn at 0), with ``why``."""
    out = images[(images["excluded"] != "") & images["time_h"].notna()]
    kind = np.where(out["excluded"].str.startswith("not analysed"), "quality", "domain")
    y = np.where(kind == "quality", 0.0, out["probability"].fillna(0.0))
    return pd.DataFrame(
        {
            "time_h": out["time_h"].to_numpy(),
            "y": y,
            "field": out["field"].to_numpy(),
            "kind": kind,
            "why": out["excluded"].to_numpy(),
        }
    )


def domain_frame(summaries: Sequence[store.DomainSummary], *, now: float) -> pd.DataFrame:
    """One row per plate with images left out (outside the model's domain, bad frames)."""
    rows = [
        {
            "Plate": d.plate,
            "Images": d.n_images,
            "Domain-scored": d.n_scored,
            "Outside the domain": d.n_out_of_domain,
            "Bad frames": d.n_quality,
            "Last flagged": None
            if d.last_flagged_at is None
            else age_text(now - d.last_flagged_at),
        }
        for d in summaries
    ]
    cols = ["Plate", "Images", "Domain-scored", "Outside the domain", "Bad frames", "Last flagged"]
    return pd.DataFrame(rows, columns=cols)


def flagged_frame(images: Sequence[store.ImageRecord], *, now: float) -> pd.DataFrame:
    """The newest images left out, with where they are and why."""
    rows = [
        {
            "File": Path(i.path).name,
            "Plate": i.plate,
            "Well": i.well,
            "Field": i.field,
            "Why": excluded_reason(i),
            "When": age_text(now - i.updated_at),
        }
        for i in images
    ]
    return pd.DataFrame(rows, columns=["File", "Plate", "Well", "Field", "Why", "When"])


def band_caption(series: pd.DataFrame) -> str:
    """What the band of a well's chart spans, as the data says (issue 13, item 6)."""
    if series.empty:
        return "band: none"
    n = series["n"]
    if (n >= 2).all():
        return "band ± 1 SD across fields"
    if (n <= 1).all():
        return "band ± 1 SD across the tiles of the well's one field"
    return "band ± 1 SD across fields (across tiles at time points with one field)"


def smoothing_visible(series: pd.DataFrame, *, tolerance: float = 0.01) -> bool:
    """Whether the detector's smoothed line differs visibly from the mean (else it is drawn
    under the mean and the caption must not promise it)."""
    both = series.dropna(subset=["smoothed", "mean"])
    return bool(len(both) and (both["smoothed"] - both["mean"]).abs().max() > tolerance)


def active_onset(
    onsets: Sequence[store.OnsetRecord], plate: str, well: str
) -> store.OnsetRecord | None:
    """The well's onset that has not been reset, if any (latest episode)."""
    live = [o for o in onsets if o.plate == plate and o.well == well and o.active]
    return max(live, key=lambda o: o.episode) if live else None


def onset_alert_text(
    alert: store.AlertRecord, onsets: Sequence[store.OnsetRecord], tb: TimeBase
) -> str:
    """An onset alert told in the plate's hours, the same clock as the charts: when the onset
    began and when the detector saw it (the stored message, written for e-mail, may give a
    date). Falls back to the stored message when the onset is not found."""
    mine = [
        o
        for o in onsets
        if o.plate == alert.plate and o.well == alert.well and o.detected_at <= alert.created_at + 5
    ]
    if not mine:
        return alert.message
    o = max(mine, key=lambda o: o.detected_at)
    unit = "h" if tb.origin_s == 0.0 else "h after the first image"
    began, seen = tb.hours(o.onset_time_s), tb.hours(o.detected_time_s)
    parts = [f"Differentiation onset in well {o.well}"]
    if began is not None:
        parts.append(f" began at {began:.1f} {unit}")
    if seen is not None:
        parts.append(f", detected at {seen:.1f} h")
    if o.probability is not None:
        parts.append(f" (smoothed P {o.probability:.2f})")
    if o.reset_at is not None:
        parts.append(f"; reset by {o.reset_by}")
    return "".join(parts) + "."


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


# ------------------------------------------------------------------------------------------
# Plates list
# ------------------------------------------------------------------------------------------


def plate_running(plate: store.PlateSummary, daemon: DaemonStatus, *, now: float) -> bool:
    """Running: the daemon is alive and the plate's last image arrived within the last hour,
    or within two of its own passes (wall clock) for slow time-lapses."""
    if daemon.state != "alive" or plate.last_update_at is None:
        return False
    window = RUNNING_WITHIN_S
    if plate.first_arrival_at is not None and plate.n_timepoints > 1:
        pace = (plate.last_update_at - plate.first_arrival_at) / (plate.n_timepoints - 1)
        window = max(window, RUNNING_PASSES * pace)
    return now - plate.last_update_at <= window


def plates_frame(
    plates: Sequence[store.PlateSummary], daemons: Mapping[str, DaemonStatus], *, now: float
) -> pd.DataFrame:
    """One row per plate: running or finished (by its instrument's daemon in ``daemons``),
    wells, images, failures, onsets, last image; the instrument first where several share the
    database."""
    several = len({p.instrument for p in plates}) > 1
    never = DaemonStatus("never", None, "", None)
    rows = []
    for p in plates:
        tb = time_base(p)
        running = plate_running(p, daemons.get(p.instrument, never), now=now)
        rows.append(
            {
                "Instrument": p.instrument,
                "Plate": p.plate,
                "Status": "running" if running else "finished",
                "Wells": p.n_wells,
                "Time points": p.n_timepoints,
                "Images": p.n_images - p.n_failed,
                "Failed": p.n_failed,
                "Onsets": p.n_onsets,
                "Last image (h)": _nan(tb.hours(p.last_time_s)),
                "Updated": age_text(None if p.last_update_at is None else now - p.last_update_at),
            }
        )
    cols = [
        "Instrument",
        "Plate",
        "Status",
        "Wells",
        "Time points",
        "Images",
        "Failed",
        "Onsets",
        "Last image (h)",
        "Updated",
    ]
    return pd.DataFrame(rows, columns=cols if several else cols[1:])


# ------------------------------------------------------------------------------------------
# Compare: groups of wells (by hand today, from a plate map's conditions later)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WellGroup:
    """Wells compared as one curve: a condition, a treatment, a hand-picked set; members may
    come from several plates."""

    name: str
    members: tuple[tuple[str, str], ...]  # (plate, well)

    @classmethod
    def of(cls, name: str, plate: str, wells: Iterable[str]) -> WellGroup:
        return cls(name, tuple((plate, w) for w in wells))


def groups_from_conditions(plate: str, conditions: Mapping[str, str]) -> list[WellGroup]:
    """One group per condition, from a well -> condition mapping (a plate map), in order of
    first appearance."""
    by: dict[str, list[str]] = {}
    for well, condition in conditions.items():
        by.setdefault(condition, []).append(well)
    return [WellGroup.of(c, plate, sorted(ws)) for c, ws in by.items()]


def onset_groups(plate: str, wells: Sequence[store.WellSummary]) -> list[WellGroup]:
    """The default comparison before plate maps exist: wells with an onset against the rest."""
    imaged = [w for w in wells if w.n_timepoints > 0]
    hit = [w.well for w in imaged if w.onset]
    rest = [w.well for w in imaged if not w.onset]
    groups = [WellGroup.of("onset detected", plate, hit), WellGroup.of("no onset", plate, rest)]
    return [g for g in groups if g.members]


def group_curves(
    groups: Sequence[WellGroup],
    series: Mapping[str, Sequence[store.SeriesPoint]],
    time_bases: Mapping[str, TimeBase],
) -> pd.DataFrame:
    """Per group and time point: the mean P(differentiated) over its wells with a ±1 SD band
    across wells (clipped to [0, 1]) and the number of wells. ``series`` holds each plate's
    points (:func:`stemwatch.store.plate_series`). Time points are matched by the instrument's
    index where known, else by time rounded to 0.1 h; x is their mean time."""
    by_well: dict[tuple[str, str], list[store.SeriesPoint]] = {}
    for plate, points in series.items():
        for p in points:
            by_well.setdefault((plate, p.well), []).append(p)
    rows = []
    for g in groups:
        acc: dict[float, list[tuple[float, float]]] = {}
        for plate, well in g.members:
            tb = time_bases.get(plate, TimeBase(0.0, "Time (h)"))
            for p in by_well.get((plate, well), ()):
                h = tb.hours(p.time_s)
                key = float(p.timepoint) if p.timepoint is not None else round(h or 0.0, 1)
                acc.setdefault(key, []).append((np.nan if h is None else h, p.probability))
        for key in sorted(acc):
            hours, probs = zip(*acc[key], strict=True)
            mean = float(np.mean(probs))
            sd = float(np.std(probs, ddof=1)) if len(probs) > 1 else 0.0
            rows.append(
                {
                    "group": g.name,
                    "time_h": float(np.nanmean(hours)) if not np.isnan(hours).all() else key,
                    "mean": mean,
                    "lower": max(0.0, mean - sd),
                    "upper": min(1.0, mean + sd),
                    "n_wells": len(probs),
                }
            )
    return pd.DataFrame(rows, columns=["group", "time_h", "mean", "lower", "upper", "n_wells"])


# ------------------------------------------------------------------------------------------
# Replay: the plate as it was at a time point
# ------------------------------------------------------------------------------------------


def replay_times(points: Sequence[store.SeriesPoint], tb: TimeBase) -> list[float]:
    """The plate's time points in hours (each pass once: times within 0.05 h are one)."""
    hours = sorted(h for p in points if (h := tb.hours(p.time_s)) is not None)
    out: list[float] = []
    for h in hours:
        if not out or h - out[-1] > 0.05:
            out.append(h)
    return out


def replay_grid(
    points: Sequence[store.SeriesPoint],
    onsets: Sequence[store.OnsetRecord],
    tb: TimeBase,
    at_h: float,
) -> tuple[pd.DataFrame, PlateLayout]:
    """The plate heatmap's rows as the plate was at ``at_h`` hours: each well's latest point
    up to then, and an onset only where the detector had flagged it by then."""
    tol = 0.05  # a pass takes minutes: a well imaged within 3 min of at_h belongs to it
    last: dict[str, store.SeriesPoint] = {}
    count: dict[str, int] = {}
    for p in points:
        h = tb.hours(p.time_s)
        if h is not None and h <= at_h + tol:
            last[p.well] = p  # points come in time order per well
            count[p.well] = count.get(p.well, 0) + 1
    flagged: dict[str, store.OnsetRecord] = {}
    for o in onsets:
        seen = tb.hours(o.detected_time_s if o.detected_time_s is not None else o.onset_time_s)
        if seen is not None and seen <= at_h + tol:
            flagged.setdefault(o.well, o)
    summaries = [
        store.WellSummary(
            plate=p.plate,
            well=w,
            n_images=p.n_fields * count[w],
            n_timepoints=count[w],
            last_timepoint=p.timepoint,
            last_time_s=p.time_s,
            last_probability=p.probability,
            last_sd=p.sd,
            last_smoothed=p.smoothed,
            onset=w in flagged,
            onset_time_s=flagged[w].onset_time_s if w in flagged else None,
            episode=0,
        )
        for w, p in last.items()
    ]
    grid, _ = plate_grid(summaries, tb)
    layout = infer_layout(p.well for p in points)
    if len(grid) != layout.n_wells:  # wells not imaged by then still get their cell
        grid, _ = plate_grid(
            [*summaries, *_unimaged(points, set(last))],
            tb,
        )
    return grid, layout


def _unimaged(points: Sequence[store.SeriesPoint], seen: set[str]) -> list[store.WellSummary]:
    wells = sorted({p.well for p in points} - seen)
    if not points:
        return []
    plate = points[0].plate
    return [
        store.WellSummary(plate, w, 0, 0, None, None, None, None, None, False, None, 0)
        for w in wells
    ]


# ------------------------------------------------------------------------------------------
# Exports
# ------------------------------------------------------------------------------------------


def courses_csv(
    points: Sequence[store.SeriesPoint], tb: TimeBase, *, model_name: str | None = None
) -> str:
    """Per-well time courses as CSV: one row per well and time point."""
    rows = [
        {
            "plate": p.plate,
            "well": p.well,
            "timepoint": p.timepoint,
            "time_h": tb.hours(p.time_s),
            "p_differentiated": p.probability,
            "sd": p.sd,
            "sem": p.sem,
            "n_fields": p.n_fields,
            "n_tiles": p.n_tiles,
            "smoothed": p.smoothed,
            "model_hash": p.model_hash,
            "model": model_name,
        }
        for p in points
    ]
    cols = [
        "plate",
        "well",
        "timepoint",
        "time_h",
        "p_differentiated",
        "sd",
        "sem",
        "n_fields",
        "n_tiles",
        "smoothed",
        "model_hash",
        "model",
    ]
    return pd.DataFrame(rows, columns=cols).to_csv(index=False, float_format="%.6g")


def onsets_csv(onsets: Sequence[store.OnsetRecord], tb: TimeBase) -> str:
    """Onsets as CSV (reset ones too, marked), with times in the plate's hours."""
    rows = [
        {
            "plate": o.plate,
            "well": o.well,
            "episode": o.episode,
            "onset_h": tb.hours(o.onset_time_s),
            "detected_h": tb.hours(o.detected_time_s),
            "smoothed_p": o.probability,
            "detected_at_utc": pd.Timestamp(o.detected_at, unit="s", tz="UTC").isoformat(),
            "reset_by": o.reset_by,
            "reset_at_utc": None
            if o.reset_at is None
            else pd.Timestamp(o.reset_at, unit="s", tz="UTC").isoformat(),
            "model_hash": o.model_hash,
        }
        for o in sorted(onsets, key=lambda o: (o.plate, o.well, o.episode))
    ]
    cols = [
        "plate",
        "well",
        "episode",
        "onset_h",
        "detected_h",
        "smoothed_p",
        "detected_at_utc",
        "reset_by",
        "reset_at_utc",
        "model_hash",
    ]
    return pd.DataFrame(rows, columns=cols).to_csv(index=False, float_format="%.6g")


# ------------------------------------------------------------------------------------------
# Instrument page
# ------------------------------------------------------------------------------------------


def throughput_frame(bins: Sequence[store.ThroughputBin]) -> pd.DataFrame:
    """Images scored and failed per bin, for a chart (bin start as a local time)."""
    return pd.DataFrame(
        {
            "start": [pd.Timestamp(b.start, unit="s", tz="UTC").tz_convert(None) for b in bins],
            "scored": [b.scored for b in bins],
            "failed": [b.failed for b in bins],
        }
    )


def queue_frame(samples: Sequence[store.HeartbeatSample]) -> pd.DataFrame:
    """The daemon's queue at each logged heartbeat."""
    return pd.DataFrame(
        {
            "at": [pd.Timestamp(s.at, unit="s", tz="UTC").tz_convert(None) for s in samples],
            "queued": [np.nan if s.queued is None else s.queued for s in samples],
            "state": [s.state or "" for s in samples],
        }
    )


@dataclass(frozen=True)
class ModelCard:
    """What the instrument page says about the daemon's model (from its stored metadata)."""

    name: str
    model_hash: str
    provider: str
    facts: dict[str, str] = field(default_factory=dict)
    card_text: str | None = None


def model_card(model: store.ModelRecord, card_text: str | None = None) -> ModelCard:
    """The model's name, provider and key facts from the metadata the daemon stored with it
    (architecture, classes, tiling, training, held-out metrics); ``card_text``: its model card
    where the dashboard can find it (the bundled model's)."""
    import json

    try:
        meta = json.loads(model.metadata_json or "{}")
    except ValueError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    facts: dict[str, str] = {}
    if meta.get("architecture"):
        facts["architecture"] = _short(meta["architecture"])
    if meta.get("class_names"):
        pos = meta.get("positive_class")
        facts["classes"] = ", ".join(
            f"{c} (tracked)" if c == pos else str(c) for c in meta["class_names"]
        )
    tiling = meta.get("tiling")
    if isinstance(tiling, dict) and tiling.get("tile_size"):
        facts["tiles"] = (
            f"{tiling['tile_size']} px after downsampling x{tiling.get('downsample', 1)}, "
            f"at most {tiling.get('max_tiles', '?')} per image"
        )
    if isinstance(meta.get("temperature"), (int, float)):
        facts["calibration temperature"] = f"{meta['temperature']:.3g}"
    training = meta.get("training")
    if isinstance(training, dict):
        split = training.get("split") if isinstance(training.get("split"), dict) else {}
        parts = [
            f"{training['n_train_images']} training images" if "n_train_images" in training else "",
            f"{training['epochs']} epochs" if "epochs" in training else "",
            f"split {split.get('name')} by {split.get('group_by')}" if split else "",
        ]
        if any(parts):
            facts["training"] = ", ".join(p for p in parts if p)
    metrics = meta.get("metrics")
    if isinstance(metrics, dict):
        for k, v in metrics.items():
            if isinstance(v, float) and ("accuracy" in k or k.endswith(("f1", "auc", "loss"))):
                facts[k.replace("_", " ")] = f"{v:.3f}"
    for key in ("created", "stemwatch_version"):
        if meta.get(key):
            facts[key.replace("_", " ")] = _short(meta[key])
    return ModelCard(
        name=model.name or "unnamed",
        model_hash=model.model_hash,
        provider=model.provider or "unknown",
        facts=facts,
        card_text=card_text,
    )


def _short(v: object) -> str:
    text = str(v) if not isinstance(v, float) else f"{v:.4g}"
    return text if len(text) <= 80 else text[:77] + "..."


def image_allowed(path: str | os.PathLike[str], folders: Iterable[str]) -> bool:
    """Whether the dashboard may read the file at ``path``: it resolves (links followed) to
    somewhere under one of the watched ``folders`` recorded in the database."""
    try:
        real = os.path.realpath(os.fspath(path))
    except (OSError, ValueError):
        return False
    for folder in folders:
        root = os.path.realpath(folder)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False

"""Per-well onset of differentiation: an online detector and its database glue.

The detector (:class:`OnsetDetector`) is pure: it takes one aggregated probability at a time,
smooths it with an exponentially weighted moving average (EWMA) and flags onset once the
smoothed value stays at or above ``on_threshold`` for ``k`` consecutive time points. It then
stays latched (no flapping, one event per episode) until the well is reset; after a reset it
re-arms only once the smoothed value has fallen below ``off_threshold`` (hysteresis), so a
well that is still differentiated does not fire again straight away.

The onset time estimate is the start of the rise: walking back from the detection through
the raw values that stayed at or above ``off_threshold``, the earliest such time point.

:func:`update_well` aggregates a well's stored predictions, replays the detector over the
well's series (cheap: tens of points) and stores the series and any new onset event;
:func:`reset_well` (the dashboard's button) closes the episode and re-arms the well.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from stemwatch import store
from stemwatch.core.aggregate import (
    FieldObservation,
    WellPoint,
    aggregate_fields,
    group_timepoints,
)
from stemwatch.core.config import StrictModel

log = logging.getLogger(__name__)


EPOCH_THRESHOLD_S = 1e8  # ~3 years: larger experiment times are wall-clock (file mtime)


def describe_time(time_s: float | None) -> str:
    """Experiment time for people: ``36.0 h``, or a date when it is a wall-clock time."""
    if time_s is None:
        return "?"
    if time_s >= EPOCH_THRESHOLD_S:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(time_s))
    return f"{time_s / 3600:.1f} h"


class OnsetParams(StrictModel):
    """Detector parameters (also the shape of a per-plate override)."""

    on_threshold: float = Field(
        0.55,
        ge=0.0,
        le=1.0,
        description="Smoothed well probability at or above which a time point counts as "
        "differentiated.",
    )
    off_threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="After a reset the well re-arms only once its smoothed probability falls\n"
        "below this (hysteresis); also bounds the walk back to the onset time estimate.",
    )
    k: int = Field(
        2, ge=1, description="Consecutive time points at or above on_threshold to flag onset."
    )
    alpha: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="EWMA weight of the newest time point (1 = no smoothing; lower it for\n"
        "noisy models, at the cost of delay; see docs/onset-detection.md).",
    )
    aggregate: Literal["mean", "median"] = Field(
        "median",
        description="How fields combine into the well's probability: median resists an\n"
        "outlier field (debris), mean uses all information.",
    )
    time_tolerance_s: float = Field(
        600.0,
        gt=0.0,
        description="Images without a time-point index whose times lie within this many\n"
        "seconds belong to the same time point.",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> OnsetParams:
        if self.off_threshold > self.on_threshold:
            raise ValueError(
                f"off_threshold ({self.off_threshold}) must not exceed on_threshold "
                f"({self.on_threshold}); lower off_threshold"
            )
        return self


class OnsetConfig(OnsetParams):
    """Onset detection: default parameters plus per-plate overrides."""

    plates: dict[str, OnsetParams] = Field(
        default_factory=dict,
        description="Per-plate overrides, keyed by plate name; only the fields given there\n"
        "replace the defaults above, e.g. {PLATE7: {k: 1}}.",
    )

    def params_for(self, plate: str) -> OnsetParams:
        """The effective parameters of ``plate``: defaults, overridden field by field."""
        base = {name: getattr(self, name) for name in OnsetParams.model_fields}
        override = self.plates.get(plate)
        if override is not None:
            for name in override.model_fields_set:
                base[name] = getattr(override, name)
        return OnsetParams.model_validate(base)


@dataclass(frozen=True)
class Detection:
    """What the detector reports when it fires."""

    onset_index: int
    onset_key: float
    detected_index: int
    detected_key: float
    smoothed: float


class OnsetDetector:
    """EWMA + k-in-a-row hysteresis detector; feed it one observation at a time."""

    def __init__(self, params: OnsetParams) -> None:
        self.params = params
        self.smoothed: float | None = None
        self.run = 0
        self.armed = True
        self.fired = False
        self._history: list[tuple[int, float, float]] = []  # (index, key, raw) since arming

    def reset(self) -> None:
        """Close the episode: disarmed until the smoothed value drops below off_threshold."""
        self.fired = False
        self.armed = False
        self.run = 0
        self._history = []

    def step(self, value: float, *, index: int, key: float) -> Detection | None:
        """Take the next time point (``key`` orders time; ``index`` names the point)."""
        p = self.params
        s = value if self.smoothed is None else p.alpha * value + (1 - p.alpha) * self.smoothed
        self.smoothed = s
        if self.fired:
            return None
        if not self.armed:
            if s < p.off_threshold:
                self.armed = True
                self._history = [(index, key, value)]
            return None
        self._history.append((index, key, value))
        if s >= p.on_threshold:
            self.run += 1
        else:
            self.run = 0
        if self.run < p.k:
            return None
        self.fired = True
        onset_index, onset_key = self._walk_back()
        return Detection(onset_index, onset_key, index, key, s)

    def _walk_back(self) -> tuple[int, float]:
        """Earliest point of the trailing stretch of raw values >= off_threshold."""
        run_start = len(self._history) - self.run
        start = run_start
        while start > 0 and self._history[start - 1][2] >= self.params.off_threshold:
            start -= 1
        index, key, _ = self._history[start]
        return index, key


@dataclass(frozen=True)
class OnsetEvent:
    """A stored onset: the estimate of when it began and when it was detected."""

    id: int
    plate: str
    well: str
    episode: int
    onset_time_s: float | None
    onset_timepoint: int | None
    detected_time_s: float | None
    detected_timepoint: int | None
    probability: float
    detected_at: float


@dataclass(frozen=True)
class SeriesRow:
    """One aggregated time point of a well, as stored."""

    timepoint: int | None
    time_s: float | None
    key: float
    point: WellPoint
    smoothed: float


def build_series(
    observations: Sequence[FieldObservation], params: OnsetParams
) -> list[tuple[int | None, float | None, float, WellPoint]]:
    """(timepoint, time_s, key, WellPoint) per time point, in time order (pure)."""
    out = []
    for g in group_timepoints(observations, time_tolerance_s=params.time_tolerance_s):
        try:
            point = aggregate_fields(g.fields, params.aggregate)
        except ValueError:
            continue
        out.append((g.timepoint, g.time_s, g.key, point))
    return out


def run_detector(
    values: Sequence[float],
    keys: Sequence[float],
    params: OnsetParams,
    *,
    rearm_after_key: float | None = None,
) -> tuple[list[float], Detection | None]:
    """Replay the detector; the smoothed series and the current episode's detection.

    ``rearm_after_key``: the well was reset after the point with this key; detections up to
    it belong to earlier episodes and are ignored.
    """
    det = OnsetDetector(params)
    smoothed: list[float] = []
    found: Detection | None = None
    reset_done = rearm_after_key is None
    for i, (v, k) in enumerate(zip(values, keys, strict=True)):
        if not reset_done and rearm_after_key is not None and k > rearm_after_key:
            det.reset()
            found = None
            reset_done = True
        d = det.step(v, index=i, key=k)
        smoothed.append(det.smoothed if det.smoothed is not None else v)
        if d is not None:
            found = d
    if not reset_done:
        found = None  # reset after the last point: nothing in this episode yet
    return smoothed, found


def _observations(conn: sqlite3.Connection, plate: str, well: str) -> list[FieldObservation]:
    return [
        FieldObservation(
            field=img.field,
            probability=float(img.probability),
            tile_sd=img.tile_sd,
            n_tiles=img.n_tiles,
            timepoint=img.timepoint,
            time_s=img.time_s,
        )
        for img in store.images_for_well(conn, plate, well)
        if img.status == "done" and img.probability is not None
    ]


def update_well(
    conn: sqlite3.Connection,
    plate: str,
    well: str,
    config: OnsetConfig,
    *,
    now: float | None = None,
) -> OnsetEvent | None:
    """Recompute ``plate``/``well``'s series, run the detector, store a new onset if any.

    Returns the new :class:`OnsetEvent`, or None (no onset, or this episode's onset was
    already stored). Safe to call after every image of the well.
    """
    params = config.params_for(plate)
    t = time.time() if now is None else now
    series = build_series(_observations(conn, plate, well), params)

    def do(c: sqlite3.Connection) -> OnsetEvent | None:
        state = c.execute(
            "SELECT episode, rearm_after_key FROM well_state WHERE plate = ? AND well = ?",
            (plate, well),
        ).fetchone()
        episode = int(state["episode"]) if state else 0
        rearm = state["rearm_after_key"] if state else None
        smoothed, det = run_detector(
            [p.probability for _, _, _, p in series],
            [k for _, _, k, _ in series],
            params,
            rearm_after_key=rearm,
        )
        c.execute("DELETE FROM well_series WHERE plate = ? AND well = ?", (plate, well))
        c.executemany(
            "INSERT INTO well_series (plate, well, seq, timepoint, time_s, probability, sd, sem, "
            "n_fields, n_tiles, smoothed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    plate,
                    well,
                    i,
                    tp,
                    ts,
                    p.probability,
                    p.sd,
                    p.sem,
                    p.n_fields,
                    p.n_tiles,
                    smoothed[i],
                    t,
                )
                for i, (tp, ts, _, p) in enumerate(series)
            ],
        )
        if det is None:
            return None
        if c.execute(
            "SELECT 1 FROM onsets WHERE plate = ? AND well = ? AND episode = ?",
            (plate, well, episode),
        ).fetchone():
            return None
        onset_tp, onset_ts, _, _ = series[det.onset_index]
        det_tp, det_ts, _, _ = series[det.detected_index]
        cur = c.execute(
            "INSERT INTO onsets (plate, well, episode, onset_time_s, onset_timepoint, "
            "detected_time_s, detected_timepoint, detected_at, probability) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (plate, well, episode, onset_ts, onset_tp, det_ts, det_tp, t, det.smoothed),
        )
        return OnsetEvent(
            id=int(cur.lastrowid or 0),
            plate=plate,
            well=well,
            episode=episode,
            onset_time_s=onset_ts,
            onset_timepoint=onset_tp,
            detected_time_s=det_ts,
            detected_timepoint=det_tp,
            probability=det.smoothed,
            detected_at=t,
        )

    event = store.write_transaction(conn, do)
    if event is not None:
        log.info(
            "onset in %s %s (episode %d): began ~%s, detected at %s, smoothed p=%.2f",
            plate,
            well,
            event.episode,
            event.onset_time_s,
            event.detected_time_s,
            event.probability,
        )
    return event


def reset_well(
    conn: sqlite3.Connection, plate: str, well: str, by: str, *, now: float | None = None
) -> int:
    """Close the well's current episode (its onset is marked reset) and re-arm it.

    The detector ignores everything up to the well's latest time point and fires again only
    after the probability has dropped below ``off_threshold`` and risen again. Returns the new
    episode number. Needs a writable connection.
    """
    t = time.time() if now is None else now

    def do(c: sqlite3.Connection) -> int:
        last = c.execute(
            "SELECT max(coalesce(time_s, timepoint)) FROM well_series WHERE plate = ? AND well = ?",
            (plate, well),
        ).fetchone()[0]
        c.execute(
            "UPDATE onsets SET reset_at = ?, reset_by = ? "
            "WHERE plate = ? AND well = ? AND reset_at IS NULL",
            (t, by, plate, well),
        )
        c.execute(
            "INSERT INTO well_state (plate, well, episode, rearm_after_key, reset_at, reset_by) "
            "VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (plate, well) DO UPDATE SET "
            "episode = episode + 1, rearm_after_key = excluded.rearm_after_key, "
            "reset_at = excluded.reset_at, reset_by = excluded.reset_by",
            (plate, well, last, t, by),
        )
        return int(
            c.execute(
                "SELECT episode FROM well_state WHERE plate = ? AND well = ?", (plate, well)
            ).fetchone()[0]
        )

    episode: int = store.write_transaction(conn, do)
    log.info("%s %s reset by %s; now episode %d", plate, well, by, episode)
    return episode

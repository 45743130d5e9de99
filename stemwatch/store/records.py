"""What goes into the store and what comes out of it: plain frozen dataclasses.

Callers build the write-side records (:class:`FileVersion`, :class:`Prediction`,
:class:`TimePoint`, :class:`NewOnset`) and get the read-side ones back; none of them knows
which database engine holds the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from stemwatch.core.platemeta import TimeBasis

# -- liveness: the one rule for "is the daemon alive" -----------------------------------------

STALE_HEARTBEATS = 3  # a daemon that missed this many heartbeats in a row looks dead
MIN_STALE_AFTER_S = 30.0  # ...but never sooner than this (a busy writer beats a bit late)
LEGACY_HEARTBEAT_INTERVAL_S = 10.0  # heartbeats written before v3 carry no interval

Liveness = Literal["alive", "stale", "stopped"]


# -- write side --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileVersion:
    """One version of an image file: its path and what tells versions apart.

    Two versions are the same when both content hashes are known and equal, else when size
    and modification time are equal.
    """

    path: str
    size: int | None
    mtime_ns: int | None
    content_hash: str | None = None


@dataclass(frozen=True)
class Prediction:
    """A model's output for one image."""

    model_hash: str
    probability: float
    tile_mean: float | None = None
    tile_sd: float | None = None
    n_tiles: int | None = None
    cam_png: bytes | None = None  # activation-map thumbnail


@dataclass(frozen=True)
class TimePoint:
    """One aggregated time point of a well's series, as the onset detector computed it."""

    timepoint: int | None
    time_s: float | None
    probability: float
    sd: float | None
    sem: float | None
    n_fields: int
    n_tiles: int
    smoothed: float | None


@dataclass(frozen=True)
class NewOnset:
    """An onset the detector found in a well's current episode (not yet stored)."""

    onset_time_s: float | None
    onset_timepoint: int | None
    detected_time_s: float | None
    detected_timepoint: int | None
    probability: float  # smoothed value at detection
    time_basis: TimeBasis | None = None


# -- read side ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WellState:
    """A well's detector state: its episode (0, +1 per reset) and where the episode began."""

    episode: int = 0
    rearm_after_key: float | None = None  # the reset came after the point with this time key


@dataclass(frozen=True)
class PlateSummary:
    plate: str
    n_wells: int
    n_images: int
    n_failed: int
    first_time_s: float | None
    last_time_s: float | None
    last_update_at: float | None
    n_onsets: int
    time_basis: TimeBasis | None = None  # the basis of most of its images' times
    instrument: str = ""  # the instrument that imaged it (a plate belongs to one)
    first_arrival_at: float | None = None  # when its first image was recorded (wall clock)
    n_timepoints: int = 0  # distinct time points (or times) among its images


@dataclass(frozen=True)
class WellSummary:
    plate: str
    well: str
    n_images: int
    n_timepoints: int
    last_timepoint: int | None
    last_time_s: float | None
    last_probability: float | None
    last_sd: float | None
    last_smoothed: float | None
    onset: bool
    onset_time_s: float | None
    episode: int
    instrument: str = ""


@dataclass(frozen=True)
class SeriesPoint:
    plate: str
    well: str
    seq: int
    timepoint: int | None
    time_s: float | None
    probability: float
    sd: float | None
    sem: float | None
    n_fields: int
    n_tiles: int
    smoothed: float | None
    model_hash: str = ""


@dataclass(frozen=True)
class OnsetRecord:
    """A stored onset event: when it began, when it was detected, whether it was reset."""

    id: int
    plate: str
    well: str
    episode: int
    onset_time_s: float | None
    onset_timepoint: int | None
    detected_time_s: float | None
    detected_at: float
    probability: float | None
    reset_at: float | None = None
    reset_by: str | None = None
    detected_timepoint: int | None = None
    model_hash: str = ""
    time_basis: TimeBasis | None = None
    instrument: str = ""

    @property
    def active(self) -> bool:
        return self.reset_at is None


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str
    plate: str | None
    well: str | None
    message: str
    created_at: float
    channel_results: dict[str, str] = field(default_factory=dict)
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    instrument: str = ""  # the daemon that raised it


@dataclass(frozen=True)
class HeldBackAlert:
    """A delivery a channel's rate limit held back (summarised in its next message)."""

    delivery_id: int
    created_at: float
    message: str


@dataclass(frozen=True)
class AlertCondition:
    """An instrument condition (``stall``, ``failures``, ``disk:<path>``) and its episode."""

    key: str
    active: bool
    since: float | None
    alert_id: int | None


@dataclass(frozen=True)
class RecentFailures:
    """Failed images updated since some time, and the latest failure of all."""

    count: int
    last_path: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    plate: str | None
    well: str | None
    field: int | None
    timepoint: int | None
    time_s: float | None
    status: str
    error: str | None
    attempts: int
    size: int | None
    mtime_ns: int | None
    content_hash: str | None
    superseded_by: int | None
    updated_at: float
    probability: float | None = None
    model_hash: str | None = None
    tile_mean: float | None = None
    tile_sd: float | None = None
    n_tiles: int | None = None
    has_cam: bool = False
    time_basis: TimeBasis | None = None
    instrument: str = ""
    unplaced_reason: str | None = None  # why it has no plate or well (when it has none)


@dataclass(frozen=True)
class Heartbeat:
    """A daemon's last heartbeat (one per instrument). Owns the rule for whether the daemon
    is alive."""

    pid: int | None
    host: str | None
    state: str | None
    detail: str | None
    at: float
    interval_s: float | None = None  # the daemon's heartbeat interval
    queued: int | None = None  # images it had found and not yet analysed
    instrument: str = ""

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.at

    @property
    def stale_after_s(self) -> float:
        """A heartbeat older than this means the daemon is gone: three missed heartbeats,
        at least 30 s."""
        interval = self.interval_s or LEGACY_HEARTBEAT_INTERVAL_S
        return max(MIN_STALE_AFTER_S, STALE_HEARTBEATS * interval)

    def liveness(self, now: float | None = None, *, stale_after_s: float | None = None) -> Liveness:
        """``stopped`` when the daemon said so, ``stale`` when it stopped beating, else
        ``alive``. ``stale_after_s`` overrides :attr:`stale_after_s`."""
        if self.state == "stopped":
            return "stopped"
        limit = self.stale_after_s if stale_after_s is None else stale_after_s
        return "alive" if self.age_s(now) <= limit else "stale"

    def alive(self, now: float | None = None, *, stale_after_s: float | None = None) -> bool:
        return self.liveness(now, stale_after_s=stale_after_s) == "alive"


@dataclass(frozen=True)
class HeartbeatSample:
    """One logged heartbeat of an instrument's daemon: when, its state, and its queue then."""

    at: float
    state: str | None
    queued: int | None
    instrument: str = ""


@dataclass(frozen=True)
class WatchedFolder:
    """A folder an instrument's daemon watched on this database (the dashboard serves that
    instrument's images only from under its folders)."""

    path: str
    first_seen: float
    last_seen: float
    instrument: str = ""


@dataclass(frozen=True)
class ThroughputBin:
    """Images scored and images that failed in one time bin (wall clock ``start``)."""

    start: float
    scored: int
    failed: int


@dataclass(frozen=True)
class Counts:
    """Current images done and failed (of one plate, or all), and older versions superseded."""

    done: int = 0
    failed: int = 0
    superseded: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed


@dataclass(frozen=True)
class ModelRecord:
    model_hash: str
    name: str | None
    metadata_json: str | None
    provider: str | None
    first_seen: float
    last_seen: float
    instrument: str = ""  # the instrument that used it (providers differ per machine)

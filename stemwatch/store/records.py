"""What goes into the store and what comes out of it: plain frozen dataclasses.

Callers build the write-side records (:class:`FileVersion`, :class:`Prediction`,
:class:`TimePoint`, :class:`NewOnset`) and get the read-side ones back; none of them knows
which database engine holds the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from stemwatch.core.labels import Label
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
    and modification time are equal (and the inode change time, when both know it).
    """

    path: str
    size: int | None
    mtime_ns: int | None
    content_hash: str | None = None
    ctime_ns: int | None = None


@dataclass(frozen=True)
class RecordedVersion:
    """A file version that needs no processing now, and why: ``done``, ``failed`` (with the
    time a transient failure is due again, ``retry_at``) or ``skipped`` (``skip_kind``)."""

    image_id: int | None
    status: str
    retry_at: float | None = None
    skip_kind: str | None = None


@dataclass(frozen=True)
class MovedImage:
    """A current record with the same content as a file found at another path."""

    image_id: int
    path: str
    plate: str | None
    well: str | None


@dataclass(frozen=True)
class SkippedCount:
    """How many files were skipped on purpose for one reason, and one of them."""

    kind: str
    reason: str
    count: int
    example_path: str | None = None


@dataclass(frozen=True)
class Prediction:
    """A model's output for one image."""

    model_hash: str
    probability: float
    tile_mean: float | None = None
    tile_sd: float | None = None
    n_tiles: int | None = None
    cam_png: bytes | None = None  # activation-map thumbnail
    domain_score: float | None = None  # distance from the training domain / threshold
    out_of_domain: bool | None = None  # None: the model carries no domain description


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
    channel: int | None = None
    channel_name: str | None = None
    z: int | None = None
    retry_at: float | None = None  # a transient failure is read again after this time
    unplaced_reason: str | None = None  # why it has no plate or well (when it has none)
    quality: str | None = None
    """Why the frame was not analysed (blank, saturated, all-NaN); None when it was."""
    domain_score: float | None = None
    """The prediction's distance from its model's training domain over the model's threshold
    (above 1: out of the domain); None when the model has no domain description."""
    out_of_domain: bool | None = None

    @property
    def flagged(self) -> bool:
        """Marked: a bad frame, or out of its model's training domain (never in a series)."""
        return self.quality is not None or bool(self.out_of_domain)


@dataclass(frozen=True)
class DomainSummary:
    """A plate's frames that were not analysed or lay outside the model's training domain
    (each current image counted once, through its latest prediction)."""

    plate: str
    n_images: int
    n_scored: int  # with a domain score (the model carries a domain description)
    n_out_of_domain: int
    n_quality: int  # blank, saturated or all-NaN frames
    last_flagged_at: float | None
    instrument: str = ""


@dataclass(frozen=True)
class WellFlags:
    """A well's images that stay out of its series (bad frames, out of the model's training
    domain), in all and among its newest time point's images."""

    well: str
    n_latest: int  # analysed images at the well's newest time point
    n_latest_out_of_domain: int
    n_latest_quality: int
    n_out_of_domain: int  # all current images of the well
    n_quality: int
    latest_quality: str | None = None  # a bad-frame reason at the newest time point
    latest_score: float | None = None  # the highest domain score at the newest time point
    instrument: str = ""

    @property
    def n_excluded(self) -> int:
        return self.n_out_of_domain + self.n_quality

    @property
    def latest_excluded(self) -> bool:
        """Every image of the newest time point stays out of the series: the well's latest
        state is unknown (its colour would be an older time point's)."""
        flagged = self.n_latest_out_of_domain + self.n_latest_quality
        return self.n_latest > 0 and flagged >= self.n_latest


@dataclass(frozen=True)
class DomainWindow:
    """The newest domain-scored images of a plate under one model: how many lay outside."""

    n_scored: int
    n_out_of_domain: int
    median_out_score: float | None = None  # median domain score of the ones outside

    @property
    def fraction_out(self) -> float:
        return self.n_out_of_domain / self.n_scored if self.n_scored else 0.0


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


@dataclass(frozen=True)
class ModelSwitch:
    """The daemon took ``model_hash`` into use (at start, on SIGHUP, file replaced)."""

    id: int
    at: float
    model_hash: str
    previous_hash: str | None
    reason: str
    detail: str = ""
    instrument: str = ""  # whose daemon switched


# -- plate maps and labels (a lab's own model) -----------------------------------------------


@dataclass(frozen=True)
class PlateMapImport:
    """One import of a plate's map (the latest is the plate's map)."""

    id: int
    plate: str
    source: str | None
    imported_by: str
    imported_at: float
    n_wells: int
    instrument: str = ""


@dataclass(frozen=True)
class NewLabel:
    """A label to record: what ``plate``/``well`` was from ``from_time_s`` to ``to_time_s``
    (None: open on that side), in the well's time basis."""

    plate: str
    well: str
    label: Label
    source: str  # dashboard, false-alarm, endpoint, cli
    from_time_s: float | None = None
    to_time_s: float | None = None
    time_basis: TimeBasis | None = None
    note: str | None = None
    marker: str | None = None
    stained_fraction: float | None = None
    alert_id: int | None = None
    onset_id: int | None = None
    instrument: str | None = None  # None: the instrument that imaged the plate


@dataclass(frozen=True)
class LabelRecord:
    """A stored label: who said what about a well, when, and whether it still stands."""

    id: int
    plate: str
    well: str
    label: Label
    source: str
    from_time_s: float | None
    to_time_s: float | None
    time_basis: TimeBasis | None
    created_by: str
    created_at: float
    note: str | None = None
    marker: str | None = None
    stained_fraction: float | None = None
    alert_id: int | None = None
    onset_id: int | None = None
    superseded_by: int | None = None
    undone_by: str | None = None
    undone_at: float | None = None
    instrument: str = ""

    @property
    def active(self) -> bool:
        """Not undone (a superseded label is active but a later one covers it)."""
        return self.undone_at is None

    def covers(self, time_s: float | None) -> bool:
        """Whether an image at ``time_s`` lies in this label's window (an image without a
        time only in a window open on both sides)."""
        if time_s is None:
            return self.from_time_s is None and self.to_time_s is None
        if self.from_time_s is not None and time_s < self.from_time_s:
            return False
        return self.to_time_s is None or time_s <= self.to_time_s

    def contains(self, other: LabelRecord) -> bool:
        """Whether this label's window contains ``other``'s whole window."""
        lo = self.from_time_s is None or (
            other.from_time_s is not None and self.from_time_s <= other.from_time_s
        )
        hi = self.to_time_s is None or (
            other.to_time_s is not None and self.to_time_s >= other.to_time_s
        )
        return lo and hi


@dataclass(frozen=True)
class LabelledImage:
    """A current analysed image with the label that applies to it (for training sets)."""

    image_id: int
    path: str
    content_hash: str | None
    size: int | None
    plate: str
    well: str
    field: int | None
    timepoint: int | None
    time_s: float | None
    time_basis: TimeBasis | None
    label: Label
    label_id: int
    instrument: str = ""


# -- re-analysis and comparison ----------------------------------------------------------------


@dataclass(frozen=True)
class ImageToScore:
    """A recorded image a model has not scored yet: what a re-analysis worker needs."""

    image_id: int
    path: str
    content_hash: str | None
    size: int | None
    plate: str | None
    well: str | None
    instrument: str = ""
    channel: int | None = None  # the plane the daemon analysed (1-based), when it chose one
    z: int | None = None


@dataclass(frozen=True)
class PlateModel:
    """A model with a series on a plate (the daemon's, or a re-analysis)."""

    model_hash: str
    name: str | None
    n_wells: int
    daemon: bool  # the current model of the plate's instrument's daemon


@dataclass(frozen=True)
class Reanalysis:
    """One ``stemwatch reanalyse`` run: its model, scope, who and when, and how far it got."""

    id: int
    model_hash: str
    name: str | None
    metadata_json: str | None
    plates: str | None  # comma-separated; None: every plate
    instrument: str | None  # None: every instrument
    started_by: str
    started_at: float
    finished_at: float | None = None
    planned: int | None = None
    scored: int | None = None
    unscorable: int | None = None
    interrupted: bool | None = None

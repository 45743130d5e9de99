"""Per-well onset of differentiation: an online detector, and the step that runs it per well.

The detector (:class:`OnsetDetector`) is pure: it takes one aggregated probability at a time,
smooths it with an exponentially weighted moving average (EWMA) and flags onset once the
smoothed value stays at or above ``on_threshold`` for ``k`` consecutive time points. It then
stays latched (no flapping, one event per episode) until the well is reset; after a reset it
re-arms only once the smoothed value has fallen below ``off_threshold`` (hysteresis), so a
well that is still differentiated does not fire again straight away.

The onset time estimate is the start of the rise: walking back from the detection through
the raw values that stayed at or above ``off_threshold``, the earliest such time point.

:func:`analyse_well` turns a well's image predictions and detector state into its series and
any onset (pure); :func:`update_well` reads them from the store, analyses, and hands the
result back to the store, which replaces the series and records a new onset atomically. The
dashboard's reset is :func:`stemwatch.store.reset_well`.
"""

from __future__ import annotations

import logging
from collections import Counter
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
from stemwatch.core.platemeta import TimeBasis

log = logging.getLogger(__name__)


class OnsetParams(StrictModel):
    """Detector parameters (also the shape of a per-plate override)."""

    on_threshold: float = Field(
        0.80,
        ge=0.0,
        le=1.0,
        description="Smoothed well probability at or above which a time point counts as\n"
        "differentiated (0.80 with k 2 and no smoothing: chosen for the bundled model on\n"
        "wells of 2 or more fields; with 1 field per well 0.75 with k 3 is quieter; a lab's\n"
        "own model needs its own, see docs/onset-detection.md).",
    )
    off_threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="After a reset the well re-arms only once its smoothed probability falls\n"
        "below this (hysteresis); also bounds the walk back to the onset time estimate.",
    )
    k: int = Field(
        2,
        ge=1,
        description="Consecutive time points at or above on_threshold to flag onset (2: a\n"
        "false alarm needs two bad visits in a row; 1 is one interval sooner and noisier,\n"
        "see docs/onset-detection.md).",
    )
    alpha: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="EWMA weight of the newest time point (1 = no smoothing; lower is\n"
        "quieter and later; k already keeps one bad visit from firing, see\n"
        "docs/onset-detection.md).",
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
    """EWMA + k-in-a-row hysteresis detector; feed it one observation at a time.

    Its state is a few numbers, whatever the length of the series: the walk back to the start
    of the rise is kept up to date as points arrive (the start of the trailing stretch of raw
    values >= ``off_threshold``), so a copy (:meth:`copy`) is cheap and replaying from a
    saved state gives the same result as replaying the whole series.
    """

    def __init__(self, params: OnsetParams) -> None:
        self.params = params
        self.smoothed: float | None = None
        self.run = 0
        self.armed = True
        self.fired = False
        # (index, key) of the first point of the trailing stretch of raw values at or above
        # off_threshold since arming (None: the last raw value was below it, or none yet)
        self._stretch: tuple[int, float] | None = None
        self._run_onset: tuple[int, float] | None = None  # the current run's onset estimate

    def copy(self) -> OnsetDetector:
        """An independent detector in the same state."""
        other = OnsetDetector.__new__(OnsetDetector)
        other.__dict__.update(self.__dict__)
        return other

    def reset(self) -> None:
        """Close the episode: disarmed until the smoothed value drops below off_threshold."""
        self.fired = False
        self.armed = False
        self.run = 0
        self._stretch = None
        self._run_onset = None

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
                self._stretch = (index, key) if value >= p.off_threshold else None
            return None
        if s >= p.on_threshold:
            self.run += 1
            if self.run == 1:  # the rise starts here or at the stretch of high raw values before
                self._run_onset = self._stretch or (index, key)
        else:
            self.run = 0
        if value >= p.off_threshold:
            self._stretch = self._stretch or (index, key)
        else:
            self._stretch = None
        if self.run < p.k:
            return None
        self.fired = True
        onset_index, onset_key = self._run_onset or (index, key)
        return Detection(onset_index, onset_key, index, key, s)


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


class Replay:
    """The detector replayed over a well's series in the current episode, one point at a time.

    ``rearm_after_key``: the well was reset after the point with this key; the detector is
    reset before the first later point, and detections up to it belong to earlier episodes.
    :meth:`copy` saves the state (a few numbers): stepping on from a copy is replaying.
    """

    def __init__(self, params: OnsetParams, rearm_after_key: float | None = None) -> None:
        self.detector = OnsetDetector(params)
        self.rearm_after_key = rearm_after_key
        self.reset_done = rearm_after_key is None
        self._found: Detection | None = None

    def copy(self) -> Replay:
        other = Replay.__new__(Replay)
        other.__dict__.update(self.__dict__)
        other.detector = self.detector.copy()
        return other

    def step(self, value: float, *, index: int, key: float) -> float:
        """Take the next point; its smoothed value."""
        if not self.reset_done and self.rearm_after_key is not None and key > self.rearm_after_key:
            self.detector.reset()
            self._found = None
            self.reset_done = True
        d = self.detector.step(value, index=index, key=key)
        if d is not None:
            self._found = d
        smoothed = self.detector.smoothed
        return smoothed if smoothed is not None else value

    @property
    def found(self) -> Detection | None:
        """The current episode's detection (None before the reset point is passed)."""
        return self._found if self.reset_done else None


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
    replay = Replay(params, rearm_after_key)
    smoothed = [
        replay.step(v, index=i, key=k) for i, (v, k) in enumerate(zip(values, keys, strict=True))
    ]
    return smoothed, replay.found


@dataclass(frozen=True)
class WellAnalysis:
    """A well's series (one aggregated point per time point) and the onset found, if any."""

    series: list[store.TimePoint]
    onset: store.NewOnset | None


def is_scored(image: store.ImageRecord) -> bool:
    """Whether an image counts in its well's series: analysed, with a probability, neither a
    bad frame (``quality``) nor out of the model's training domain."""
    return (
        image.status == "done"
        and image.probability is not None
        and image.quality is None
        and not image.out_of_domain
    )


def observation(image: store.ImageRecord) -> FieldObservation:
    """A scored image as one field of its well at its time point."""
    return FieldObservation(
        field=image.field,
        probability=float(image.probability or 0.0),
        tile_sd=image.tile_sd,
        n_tiles=image.n_tiles,
        timepoint=image.timepoint,
        time_s=image.time_s,
        channel=image.channel,
        z=image.z,
    )


def analyse_well(
    images: Sequence[store.ImageRecord], state: store.WellState, params: OnsetParams
) -> WellAnalysis:
    """Aggregate a well's scored images per time point and replay the detector (pure).

    ``state`` says which episode is current: detections before its re-arm point belong to
    closed episodes and are ignored. Images outside the model's training domain (and frames
    that were not analysed, which have no probability) are left out: their probability says
    nothing about the cells.
    """
    scored = [i for i in images if is_scored(i)]
    observations = [observation(i) for i in scored]
    points = build_series(observations, params)
    smoothed, det = run_detector(
        [p.probability for _, _, _, p in points],
        [k for _, _, k, _ in points],
        params,
        rearm_after_key=state.rearm_after_key,
    )
    series = [time_point(tp, ts, p, smoothed[i]) for i, (tp, ts, _, p) in enumerate(points)]
    if det is None:
        return WellAnalysis(series, None)
    onset_tp, onset_ts, _, _ = points[det.onset_index]
    det_tp, det_ts, _, _ = points[det.detected_index]
    onset = store.NewOnset(
        onset_time_s=onset_ts,
        onset_timepoint=onset_tp,
        detected_time_s=det_ts,
        detected_timepoint=det_tp,
        probability=det.smoothed,
        time_basis=majority_time_basis(scored),
    )
    return WellAnalysis(series, onset)


def time_point(
    timepoint: int | None, time_s: float | None, point: WellPoint, smoothed: float
) -> store.TimePoint:
    """One point of the stored series."""
    return store.TimePoint(
        timepoint=timepoint,
        time_s=time_s,
        probability=point.probability,
        sd=point.sd,
        sem=point.sem,
        n_fields=point.n_fields,
        n_tiles=point.n_tiles,
        smoothed=smoothed,
    )


def majority_time_basis(images: Sequence[store.ImageRecord]) -> TimeBasis | None:
    bases = Counter(i.time_basis for i in images if i.time_basis is not None)
    return bases.most_common(1)[0][0] if bases else None


def update_well(
    db: store.Database,
    plate: str,
    well: str,
    config: OnsetConfig,
    *,
    model_hash: str,
    instrument: str | None = None,
    now: float | None = None,
) -> store.OnsetRecord | None:
    """Recompute ``model_hash``'s series of ``plate``/``well`` from its predictions, run the
    detector, store the series and a new onset if any. ``instrument``: whose plate it is
    (default: the handle's instrument, see :mod:`stemwatch.store.instruments`).

    Returns the new :class:`~stemwatch.store.OnsetRecord`, or None (no onset, or this
    episode's onset was already stored). Safe to call after every image of the well.
    """
    state = store.well_state(db, plate, well, instrument=instrument)
    images = store.images_for_well(db, plate, well, model_hash=model_hash, instrument=instrument)
    result = analyse_well(images, state, config.params_for(plate))
    event = store.save_well_analysis(
        db,
        plate,
        well,
        model_hash=model_hash,
        series=result.series,
        onset=result.onset,
        episode=state.episode,
        instrument=instrument,
        now=now,
    )
    log_onset(event)
    return event


def log_onset(event: store.OnsetRecord | None) -> None:
    """Say that a new onset was stored (nothing when ``event`` is None)."""
    if event is not None:
        log.info(
            "onset in %s %s (episode %d): began ~%s, detected at %s, smoothed p=%.2f",
            event.plate,
            event.well,
            event.episode,
            event.onset_time_s,
            event.detected_time_s,
            event.probability or 0.0,
        )

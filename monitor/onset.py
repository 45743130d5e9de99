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
        3,
        ge=1,
        description="Consecutive time points at or above on_threshold to flag onset (3: a\n"
        "false alarm needs three bad visits in a row; 2 is one interval sooner and noisier,\n"
        "see docs/onset-detection.md).",
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


@dataclass(frozen=True)
class WellAnalysis:
    """A well's series (one aggregated point per time point) and the onset found, if any."""

    series: list[store.TimePoint]
    onset: store.NewOnset | None


def analyse_well(
    images: Sequence[store.ImageRecord], state: store.WellState, params: OnsetParams
) -> WellAnalysis:
    """Aggregate a well's scored images per time point and replay the detector (pure).

    ``state`` says which episode is current: detections before its re-arm point belong to
    closed episodes and are ignored. Images outside the model's training domain (and frames
    that were not analysed, which have no probability) are left out: their probability says
    nothing about the cells.
    """
    scored = [
        i
        for i in images
        if i.status == "done"
        and i.probability is not None
        and i.quality is None
        and not i.out_of_domain
    ]
    observations = [
        FieldObservation(
            field=i.field,
            probability=float(i.probability or 0.0),
            tile_sd=i.tile_sd,
            n_tiles=i.n_tiles,
            timepoint=i.timepoint,
            time_s=i.time_s,
            channel=i.channel,
            z=i.z,
        )
        for i in scored
    ]
    points = build_series(observations, params)
    smoothed, det = run_detector(
        [p.probability for _, _, _, p in points],
        [k for _, _, k, _ in points],
        params,
        rearm_after_key=state.rearm_after_key,
    )
    series = [
        store.TimePoint(
            timepoint=tp,
            time_s=ts,
            probability=p.probability,
            sd=p.sd,
            sem=p.sem,
            n_fields=p.n_fields,
            n_tiles=p.n_tiles,
            smoothed=smoothed[i],
        )
        for i, (tp, ts, _, p) in enumerate(points)
    ]
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
        time_basis=_time_basis(scored),
    )
    return WellAnalysis(series, onset)


def _time_basis(images: Sequence[store.ImageRecord]) -> TimeBasis | None:
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
    if event is not None:
        log.info(
            "onset in %s %s (episode %d): began ~%s, detected at %s, smoothed p=%.2f",
            plate,
            well,
            event.episode,
            event.onset_time_s,
            event.detected_time_s,
            event.probability or 0.0,
        )
    return event

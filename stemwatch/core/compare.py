"""Two models side by side on the same images: agreement, onsets, accuracy, onset figures.

:func:`compare_models` is pure: it takes a :class:`ComparisonInput` (the store assembles one
with :func:`stemwatch.store.comparison_input`) and returns a :class:`ModelComparison` that
``stemwatch compare`` prints as a table and the dashboard shows. What it reports:

- **agreement** on the images both models scored: the fraction on the same side of the
  decision threshold, the mean absolute difference of the probabilities, their correlation;
  and the fraction of wells where both or neither flagged an onset;
- **onsets that differ**: each well where one model found an onset and the other did not, or
  both did at different times, with the difference in hours (B minus A);
- **accuracy on labelled wells** (when the lab labelled any): both models' image accuracy and
  balanced accuracy against the labels, with 95 % intervals from a bootstrap over wells, and
  the paired difference. Only wells that *neither* model saw in training or validation count
  (the split each model carries in its metadata), so no figure includes training images;
  the wells left out, and why, are reported;
- **onset figures by the plate map** (when plates are mapped): induced wells detected and the
  median delay from induction, false alarms per 100 maintenance wells, with intervals.

A yes/no per well (same onset call, detected, a false alarm) gets an exact binomial interval
over wells (:func:`~stemwatch.core.intervals.binomial`): a bootstrap would report [1, 1] for
12 wells of 12 detected, as if 12 wells settled it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from stemwatch.core.intervals import (
    Interval,
    balanced_accuracy,
    binomial,
    bootstrap_sums,
    bootstrap_values,
    ratio,
)
from stemwatch.core.labels import Label
from stemwatch.core.platemap import PlateMap, induction_time_s
from stemwatch.core.wells import normalise_well

WellKey = tuple[str, str]  # (plate, well)


@dataclass(frozen=True)
class ImagePair:
    """One image with both models' probabilities (None: that model has not scored it)."""

    image_id: int
    plate: str
    well: str
    time_s: float | None
    a: float | None
    b: float | None


@dataclass(frozen=True)
class OnsetTimes:
    """A model's first onset in a well (times on the well's clock)."""

    onset_time_s: float | None
    detected_time_s: float | None


@dataclass(frozen=True)
class SeenWells:
    """The wells a model saw in training or validation (from the split in its metadata)."""

    wells: frozenset[WellKey] = frozenset()
    plates: frozenset[str] = frozenset()  # whole plates (split by plate or experiment)
    known: bool = True  # False: the model carries no split; its training wells are unknown

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        return key in self.wells or key[0] in self.plates


@dataclass(frozen=True)
class ModelSide:
    """What the comparison knows about one model."""

    model_hash: str
    name: str
    onsets: Mapping[WellKey, OnsetTimes] = field(default_factory=dict)
    scored_wells: frozenset[WellKey] = frozenset()
    seen: SeenWells = field(default_factory=SeenWells)


@dataclass(frozen=True)
class ComparisonInput:
    """Everything :func:`compare_models` needs, read from the store."""

    a: ModelSide
    b: ModelSide
    pairs: Sequence[ImagePair]
    labels: Mapping[int, Label] = field(default_factory=dict)  # image id -> label
    plate_maps: Mapping[str, PlateMap] = field(default_factory=dict)
    plate_starts: Mapping[str, float | None] = field(default_factory=dict)
    clock: Mapping[str, bool] = field(default_factory=dict)  # plate -> wall-clock times?


@dataclass(frozen=True)
class OnsetDifference:
    plate: str
    well: str
    a: OnsetTimes | None
    b: OnsetTimes | None

    @property
    def kind(self) -> str:
        if self.a is None:
            return "only B"
        if self.b is None:
            return "only A"
        return "both"

    @property
    def onset_shift_h(self) -> float | None:
        """B's onset estimate minus A's, hours (both found one)."""
        if self.a is None or self.b is None:
            return None
        if self.a.onset_time_s is None or self.b.onset_time_s is None:
            return None
        return (self.b.onset_time_s - self.a.onset_time_s) / 3600.0

    @property
    def detection_shift_h(self) -> float | None:
        """B's detection time minus A's, hours (both found one)."""
        if self.a is None or self.b is None:
            return None
        if self.a.detected_time_s is None or self.b.detected_time_s is None:
            return None
        return (self.b.detected_time_s - self.a.detected_time_s) / 3600.0


@dataclass(frozen=True)
class Accuracy:
    """A model's accuracy against the lab's labels on the eligible wells."""

    accuracy: Interval
    balanced_accuracy: Interval
    n_images: int
    n_wells: int


@dataclass(frozen=True)
class OnsetFigures:
    """A model's onsets judged by the plate map's roles."""

    induced_detected: Interval  # fraction of induced wells with an onset
    median_delay_h: Interval  # detection minus induction, over detected induced wells
    false_alarms_per_100: Interval  # maintenance wells with an onset, per 100
    n_induced: int
    n_maintenance: int


@dataclass(frozen=True)
class ModelComparison:
    a: ModelSide
    b: ModelSide
    threshold: float
    n_both: int
    n_only_a: int
    n_only_b: int
    image_agreement: Interval
    mean_abs_difference: float | None
    correlation: float | None
    well_agreement: Interval  # both or neither flagged an onset, over wells scored by both
    onset_differences: list[OnsetDifference]
    accuracy_a: Accuracy | None = None
    accuracy_b: Accuracy | None = None
    accuracy_difference: Interval | None = None  # B minus A, paired over the same wells
    labelled_wells_left_out: dict[str, int] = field(default_factory=dict)  # reason -> wells
    onsets_a: OnsetFigures | None = None
    onsets_b: OnsetFigures | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# What a model saw in training
# --------------------------------------------------------------------------------------------


def seen_wells(training: Mapping[str, object] | None) -> SeenWells:
    """The wells a model trained or validated on, from its metadata's ``training.split``
    (groups ``experiment/plate/well``, ``experiment/plate`` or ``experiment``)."""
    split = (training or {}).get("split")
    if not isinstance(split, Mapping) or "group_by" not in split:
        return SeenWells(known=False)
    by = split.get("group_by")
    wells: set[WellKey] = set()
    plates: set[str] = set()
    for part in ("train", "val"):
        groups = split.get(part, {})
        names = groups.get("groups", []) if isinstance(groups, Mapping) else []
        for g in names:
            bits = str(g).split("/")
            if by == "well" and len(bits) >= 2:
                try:
                    wells.add((bits[-2], normalise_well(bits[-1])))
                except ValueError:
                    continue  # an image without a well was its own group: no well to exclude
            elif by == "plate":
                plates.add(bits[-1])
            elif by == "experiment":
                plates.add(bits[-1])  # stemwatch dataset from-db: experiment = plate
    return SeenWells(frozenset(wells), frozenset(plates), True)


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _well_rows(
    values: Iterable[tuple[WellKey, Sequence[float]]],
) -> tuple[list[WellKey], np.ndarray]:
    keys: list[WellKey] = []
    rows: list[Sequence[float]] = []
    for k, r in values:
        keys.append(k)
        rows.append(r)
    return keys, np.asarray(rows, dtype=float).reshape(len(rows), -1)


def _accuracy(
    pairs: Sequence[ImagePair],
    labels: Mapping[int, Label],
    side: str,
    threshold: float,
    seed: int,
) -> Accuracy:
    by_well: dict[WellKey, list[float]] = {}
    for p in pairs:
        prob = p.a if side == "a" else p.b
        truth = labels[p.image_id]
        assert prob is not None
        positive = truth == "differentiated"
        said = prob >= threshold
        r = by_well.setdefault((p.plate, p.well), [0.0] * 6)
        r[0] += said == positive  # correct
        r[1] += 1  # images
        r[2] += positive and said  # true positives
        r[3] += positive  # positives
        r[4] += (not positive) and (not said)  # true negatives
        r[5] += not positive  # negatives
    _, rows = _well_rows(by_well.items())
    return Accuracy(
        accuracy=bootstrap_sums(rows[:, :2], ratio, seed=seed),
        balanced_accuracy=bootstrap_sums(rows[:, 2:], balanced_accuracy, seed=seed),
        n_images=len(pairs),
        n_wells=len(by_well),
    )


def _per_100(fraction: Interval) -> Interval:
    def scaled(v: float | None) -> float | None:
        return None if v is None else 100.0 * v

    f = fraction
    return Interval(scaled(f.value), scaled(f.low), scaled(f.high), f.n_groups, f.level)


def _onset_figures(side: ModelSide, inp: ComparisonInput, seed: int) -> OnsetFigures | None:
    detected: list[bool] = []
    delays: list[float] = []
    alarms: list[bool] = []
    for plate, m in inp.plate_maps.items():
        clock = inp.clock.get(plate, False)
        start = inp.plate_starts.get(plate)
        for layout in m.wells:
            key = (plate, layout.well)
            if key not in side.scored_wells:
                continue
            onset = side.onsets.get(key)
            if layout.role == "induced":
                detected.append(onset is not None)
                induced_at = induction_time_s(layout, clock, start)
                if onset and onset.detected_time_s is not None and induced_at is not None:
                    delays.append((onset.detected_time_s - induced_at) / 3600.0)
            elif layout.role == "maintenance":
                alarms.append(onset is not None)
    if not detected and not alarms:
        return None
    fa = binomial(sum(alarms), len(alarms))
    return OnsetFigures(
        induced_detected=binomial(sum(detected), len(detected)),
        median_delay_h=bootstrap_values(delays, seed=seed),
        false_alarms_per_100=_per_100(fa),
        n_induced=len(detected),
        n_maintenance=len(alarms),
    )


def compare_models(
    inp: ComparisonInput, *, threshold: float = 0.5, seed: int = 0
) -> ModelComparison:
    """Compare model A and model B on ``inp`` (see the module's docstring)."""
    both = [p for p in inp.pairs if p.a is not None and p.b is not None]
    only_a = sum(1 for p in inp.pairs if p.a is not None and p.b is None)
    only_b = sum(1 for p in inp.pairs if p.b is not None and p.a is None)
    notes: list[str] = []

    # image agreement (interval over wells)
    agree_rows: dict[WellKey, list[float]] = {}
    for p in both:
        assert p.a is not None and p.b is not None
        r = agree_rows.setdefault((p.plate, p.well), [0.0, 0.0])
        r[0] += (p.a >= threshold) == (p.b >= threshold)
        r[1] += 1
    _, rows = _well_rows(agree_rows.items())
    image_agreement = (
        bootstrap_sums(rows, ratio, seed=seed) if both else Interval(None, None, None, 0)
    )
    a_arr = np.array([p.a for p in both], dtype=float)
    b_arr = np.array([p.b for p in both], dtype=float)
    mad = float(np.mean(np.abs(a_arr - b_arr))) if both else None

    # onsets, over wells both models scored
    common = sorted(inp.a.scored_wells & inp.b.scored_wells)
    same_call = sum((k in inp.a.onsets) == (k in inp.b.onsets) for k in common)
    well_agreement = binomial(same_call, len(common))
    differences: list[OnsetDifference] = []
    for k in common:
        oa, ob = inp.a.onsets.get(k), inp.b.onsets.get(k)
        if oa is None and ob is None:
            continue
        d = OnsetDifference(k[0], k[1], oa, ob)
        if d.kind == "both" and (d.onset_shift_h or 0.0) == 0 and (d.detection_shift_h or 0.0) == 0:
            continue
        differences.append(d)
    differences.sort(
        key=lambda d: (d.kind == "both", -abs(d.detection_shift_h or 0.0), d.plate, d.well)
    )

    out = ModelComparison(
        a=inp.a,
        b=inp.b,
        threshold=threshold,
        n_both=len(both),
        n_only_a=only_a,
        n_only_b=only_b,
        image_agreement=image_agreement,
        mean_abs_difference=mad,
        correlation=_correlation(a_arr, b_arr),
        well_agreement=well_agreement,
        onset_differences=differences,
        notes=notes,
    )

    # accuracy on labelled wells neither model saw
    labelled = [p for p in both if p.image_id in inp.labels]
    if labelled:
        left_out: dict[str, set[WellKey]] = {}
        eligible: list[ImagePair] = []
        for p in labelled:
            key = (p.plate, p.well)
            reasons = [
                f"seen by {side.name} in training/validation"
                for side in (inp.a, inp.b)
                if key in side.seen
            ]
            if reasons:
                for why in reasons:
                    left_out.setdefault(why, set()).add(key)
            else:
                eligible.append(p)
        for side in (inp.a, inp.b):
            if not side.seen.known:
                notes.append(
                    f"{side.name} carries no training split: its training wells are unknown, "
                    "so its accuracy may include wells it was trained on"
                )
        acc_a = _accuracy(eligible, inp.labels, "a", threshold, seed) if eligible else None
        acc_b = _accuracy(eligible, inp.labels, "b", threshold, seed) if eligible else None
        diff = None
        if eligible:
            per_well: dict[WellKey, list[float]] = {}
            for p in eligible:
                assert p.a is not None and p.b is not None
                truth = inp.labels[p.image_id] == "differentiated"
                r = per_well.setdefault((p.plate, p.well), [0.0, 0.0, 0.0])
                r[0] += (p.a >= threshold) == truth
                r[1] += (p.b >= threshold) == truth
                r[2] += 1
            _, dr = _well_rows(per_well.items())
            diff = bootstrap_sums(dr, lambda s: (s[:, 1] - s[:, 0]) / s[:, 2], seed=seed)
            if acc_a is not None and acc_a.n_wells < 10:
                notes.append(
                    f"only {acc_a.n_wells} labelled well(s) were seen by neither model: the "
                    "accuracy intervals are wide; label more wells for a stable figure"
                )
        else:
            notes.append(
                "every labelled well was seen in training or validation by one of the models: "
                "no accuracy can be reported without leaking training images"
            )
        out = replace(
            out,
            accuracy_a=acc_a,
            accuracy_b=acc_b,
            accuracy_difference=diff,
            labelled_wells_left_out={r: len(w) for r, w in left_out.items()},
        )
    if inp.plate_maps:
        out = replace(
            out,
            onsets_a=_onset_figures(inp.a, inp, seed),
            onsets_b=_onset_figures(inp.b, inp, seed),
        )
    return out


def describe_shift(hours: float | None) -> str:
    """``+6.0 h`` / ``-3.0 h`` / ``n/a``."""
    if hours is None or not math.isfinite(hours):
        return "n/a"
    return f"{hours:+.1f} h"

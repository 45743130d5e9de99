"""The onset detector's delay-versus-false-alarm curve, on plates a real model scored.

Every image of many synthetic plates (:mod:`stemwatch.synth`, which knows each well's true
onset) is rendered and scored by an exported ONNX model exactly as the monitor scores it
(:func:`stemwatch.core.imaging.prepare` with the model's recipe, the model's tile
probabilities, :func:`stemwatch.core.aggregate.score_image`). The probabilities are kept in a
cache file (:class:`ScoredPlates`, ``.npz``) so the curve can be redrawn, and the rules
changed, without scoring again.

Rules are :class:`monitor.onset.OnsetParams` replayed by the monitor's own
:func:`monitor.onset.run_detector`: the detector over a grid of its parameters, and the
naive rules (one threshold on the raw or on the EWMA-smoothed well probability, ``k = 1``).
Per rule (:func:`rule_figures`): false alarms per 100 maintenance wells (a maintenance well
flagged at any time), the median detection delay after the true onset (in hours and in
imaging intervals; an induced well never flagged counts as an infinite delay, so misses
cannot flatter the median) and the fraction of induced wells flagged, each with a 95 %
interval from a bootstrap over wells (:mod:`stemwatch.core.intervals`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.onset import OnsetParams, run_detector
from stemwatch.core.aggregate import (
    AggregateMethod,
    FieldObservation,
    aggregate_fields,
    score_image,
)
from stemwatch.core.intervals import Interval, bootstrap_sums, bootstrap_values, ratio
from stemwatch.synth.spec import PlateSpec

MISSED = 1e9
"""The delay (hours) of an induced well the rule never flagged: larger than any real delay."""

CACHE_VERSION = 1


@dataclass(frozen=True)
class ScoredPlates:
    """Per-image probabilities of rendered plates, ``probs[well, time, field]`` (NaN: no
    tile), with each well's ground truth (hours since the plate's first image)."""

    probs: np.ndarray
    times_h: np.ndarray
    plate: np.ndarray
    well: np.ndarray
    induced: np.ndarray
    induction_h: np.ndarray
    true_onset_h: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_wells(self) -> int:
        return int(self.probs.shape[0])

    @property
    def interval_h(self) -> float:
        """The imaging interval (median gap between time points)."""
        return float(np.median(np.diff(self.times_h))) if len(self.times_h) > 1 else math.nan

    def every(self, step: int) -> ScoredPlates:
        """Every ``step``-th time point from the first: the same wells imaged less often."""
        if step < 1:
            raise ValueError(f"step={step}; use 1 or more")
        return ScoredPlates(
            self.probs[:, ::step],
            self.times_h[::step],
            self.plate,
            self.well,
            self.induced,
            self.induction_h,
            self.true_onset_h,
            {**self.meta, "every": step * int(self.meta.get("every", 1))},
        )

    def first_fields(self, n: int) -> ScoredPlates:
        """The same wells seen through their first ``n`` fields only (a smaller set-up)."""
        if not 1 <= n <= self.probs.shape[2]:
            raise ValueError(f"n={n}; use 1 to {self.probs.shape[2]} (the fields scored)")
        return ScoredPlates(
            self.probs[:, :, :n],
            self.times_h,
            self.plate,
            self.well,
            self.induced,
            self.induction_h,
            self.true_onset_h,
            {**self.meta, "fields": n},
        )

    def concat(self, other: ScoredPlates) -> ScoredPlates:
        if not np.array_equal(self.times_h, other.times_h):
            raise ValueError("plates with different time points cannot be pooled")
        return ScoredPlates(
            probs=np.concatenate([self.probs, other.probs]),
            times_h=self.times_h,
            plate=np.concatenate([self.plate, other.plate]),
            well=np.concatenate([self.well, other.well]),
            induced=np.concatenate([self.induced, other.induced]),
            induction_h=np.concatenate([self.induction_h, other.induction_h]),
            true_onset_h=np.concatenate([self.true_onset_h, other.true_onset_h]),
            meta=self.meta,
        )

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                probs=self.probs.astype(np.float32),
                times_h=self.times_h,
                plate=self.plate.astype(str),
                well=self.well.astype(str),
                induced=self.induced,
                induction_h=self.induction_h,
                true_onset_h=self.true_onset_h,
                meta=np.array(json.dumps({**self.meta, "cache_version": CACHE_VERSION})),
            )
        return path

    @classmethod
    def load(cls, path: Path) -> ScoredPlates:
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(
                probs=z["probs"].astype(np.float64),
                times_h=z["times_h"],
                plate=z["plate"],
                well=z["well"],
                induced=z["induced"],
                induction_h=z["induction_h"],
                true_onset_h=z["true_onset_h"],
                meta=json.loads(str(z["meta"])),
            )


# -- scoring: the real path, plate by plate ---------------------------------------------------


def plate_specs(plate: PlateSpec, n_plates: int) -> list[PlateSpec]:
    """``n_plates`` plates like ``plate``: seeds ``plate.seed * 1000 + k``, names ``SIM<seed>``."""
    seeds = [plate.seed * 1000 + k for k in range(n_plates)]
    return [plate.replace(seed=s, plate_name=f"SIM{s:04d}") for s in seeds]


def score_plate(
    spec: PlateSpec, model_paths: Sequence[str], part: tuple[int, int] = (0, 1)
) -> list[ScoredPlates]:
    """Render every image of one plate once and score it with each model (one result each).

    ``part = (i, n)`` keeps the ``i``-th of ``n`` equal runs of its wells (in plate order),
    so a plate can be shared among processes: every image has its own random stream, so the
    parts pooled in order equal the whole plate."""
    from monitor.inference import load_model
    from stemwatch.core.imaging import prepare
    from stemwatch.synth.biology import true_onset_h
    from stemwatch.synth.plate import plan_plate

    models = [load_model(Path(p)) for p in model_paths]
    plan = plan_plate(spec)
    i_part, n_parts = part
    if not 0 <= i_part < n_parts:
        raise ValueError(f"part={part}; use (i, n) with 0 <= i < n")
    all_names = plan.well_names
    lo, hi = (len(all_names) * i_part) // n_parts, (len(all_names) * (i_part + 1)) // n_parts
    names = all_names[lo:hi]
    n_t, n_f = len(plan.times_h), plan.n_fields
    probs = np.full((len(models), len(names), n_t, n_f), np.nan)
    for w, name in enumerate(names):
        for t in range(n_t):
            for f in range(n_f):
                img = plan.render(name, f, t)
                for m, model in enumerate(models):
                    meta = model.metadata
                    tiles = prepare(img, meta.normalisation, meta.tiling)
                    if len(tiles.data):
                        probs[m, w, t, f] = score_image(model.predict(tiles.data)).probability
    wells = [plan.wells[n] for n in names]
    common = {
        "times_h": np.asarray(plan.times_h, dtype=float),
        "plate": np.array([plan.plate] * len(names)),
        "well": np.array(names),
        "induced": np.array([w.condition == "induced" for w in wells]),
        "induction_h": np.array([_nan(w.induction_h) for w in wells]),
        "true_onset_h": np.array([_nan(true_onset_h(w)) for w in wells]),
    }
    return [
        ScoredPlates(probs[m], **common, meta={"model_sha256": model.model_hash})
        for m, model in enumerate(models)
    ]


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _score_job(args: tuple[PlateSpec, tuple[str, ...], tuple[int, int]]) -> list[ScoredPlates]:
    return score_plate(*args)


def score_plates(
    plate: PlateSpec,
    n_plates: int,
    model_paths: Sequence[str],
    *,
    workers: int = 1,
    parts: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[ScoredPlates]:
    """:func:`score_plate` over :func:`plate_specs`, pooled per model (``workers`` processes,
    each plate cut into ``parts`` runs of wells so the processes stay busy to the end; the
    result depends on neither)."""
    jobs = [
        (spec, tuple(model_paths), (i, parts))
        for spec in plate_specs(plate, n_plates)
        for i in range(parts)
    ]
    results: list[list[ScoredPlates]] = []
    if workers <= 1:
        for i, job in enumerate(jobs):
            results.append(_score_job(job))
            if progress:
                progress(i + 1, len(jobs))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, res in enumerate(pool.map(_score_job, jobs)):
                results.append(res)
                if progress:
                    progress(i + 1, len(jobs))
    pooled = []
    for m in range(len(model_paths)):
        out = results[0][m]
        for r in results[1:]:
            out = out.concat(r[m])
        pooled.append(out)
    return pooled


# -- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A named set of detector parameters; ``family`` groups a threshold sweep."""

    name: str
    family: str
    params: OnsetParams


def detector_rule(on: float, k: int, alpha: float = 1.0, off: float = 0.35) -> Rule:
    """The detector with these parameters (``off`` capped at ``on``)."""
    params = OnsetParams(
        on_threshold=on, off_threshold=min(off, on), k=k, alpha=alpha, aggregate="median"
    )
    return Rule(f"detector on {on:.2f} k {k} alpha {alpha:g}", detector_family(k, alpha), params)


def detector_family(k: int, alpha: float) -> str:
    return f"detector k={k}" + ("" if alpha == 1.0 else f", EWMA {alpha:g}")


def naive_rule(threshold: float, *, alpha: float = 1.0) -> Rule:
    """Flag the first time the well's mean probability (EWMA-smoothed with ``alpha`` < 1)
    reaches ``threshold``: the detector with ``k = 1`` and no hysteresis."""
    params = OnsetParams(
        on_threshold=threshold, off_threshold=threshold, k=1, alpha=alpha, aggregate="mean"
    )
    family = naive_family(alpha)
    return Rule(f"{family} >= {threshold:.2f}", family, params)


def naive_family(alpha: float) -> str:
    return "naive, raw" if alpha == 1.0 else f"naive, smoothed (EWMA {alpha:g})"


# -- outcomes and figures ----------------------------------------------------------------------


def well_series(
    probs: np.ndarray, times_h: np.ndarray, aggregate: AggregateMethod
) -> tuple[list[float], list[float]]:
    """A well's (values, hours): its fields combined per time point as the monitor combines
    them (:func:`aggregate_fields`); time points without a usable field are left out."""
    values: list[float] = []
    keys: list[float] = []
    for t_h, row in zip(times_h, probs, strict=True):
        fields = [FieldObservation(field=f, probability=float(p)) for f, p in enumerate(row)]
        if any(math.isfinite(o.probability) for o in fields):
            values.append(aggregate_fields(fields, aggregate).probability)
            keys.append(float(t_h))
    return values, keys


def detection_hours(
    series: Sequence[tuple[list[float], list[float]]], params: OnsetParams
) -> np.ndarray:
    """When ``params`` first flags each well (hours; NaN: never), replaying the monitor's
    detector over each (values, hours) series."""
    out = np.full(len(series), np.nan)
    for i, (values, keys) in enumerate(series):
        _, det = run_detector(values, keys, params)
        if det is not None:
            out[i] = det.detected_key
    return out


@dataclass(frozen=True)
class Counts:
    """Per-well outcomes of one rule: ``flagged`` per maintenance well, ``delay_h`` per
    induced well whose true onset lies within the run (:data:`MISSED` when never flagged;
    negative when flagged before the true onset)."""

    flagged: np.ndarray
    delay_h: np.ndarray
    induced_outside: int
    """Induced wells left out: their true onset is after the last image (or never)."""


def count_outcomes(
    detected_h: np.ndarray,
    induced: np.ndarray,
    true_onset_h: np.ndarray,
    last_time_h: float,
) -> Counts:
    """False alarms and delays from per-well detection times (pure)."""
    detected_h = np.asarray(detected_h, dtype=float)
    induced = np.asarray(induced, dtype=bool)
    onset = np.asarray(true_onset_h, dtype=float)
    flagged = np.isfinite(detected_h[~induced])
    inside = induced & np.isfinite(onset) & (onset <= last_time_h)
    delay = np.where(np.isfinite(detected_h[inside]), detected_h[inside] - onset[inside], MISSED)
    return Counts(flagged, delay, int(induced.sum() - inside.sum()))


@dataclass(frozen=True)
class RuleFigures:
    """One rule's point on the curve, with 95 % intervals over wells (None: not computed)."""

    rule: Rule
    interval_h: float
    false_alarms: float
    """Per 100 maintenance wells."""
    median_delay_h: float
    detected: float
    n_maintenance: int
    n_induced: int
    false_alarms_ci: Interval | None = None
    delay_ci: Interval | None = None
    detected_ci: Interval | None = None

    @property
    def median_delay_intervals(self) -> float:
        return self.median_delay_h / self.interval_h


def rule_figures(
    rule: Rule, counts: Counts, interval_h: float, *, intervals: bool = False, seed: int = 0
) -> RuleFigures:
    """The figures of ``rule`` from its :class:`Counts`; with ``intervals``, bootstrap 95 %
    intervals over wells (false alarms over maintenance wells, delay and detected fraction
    over induced wells)."""
    n_m, n_i = len(counts.flagged), len(counts.delay_h)
    fa = 100.0 * float(counts.flagged.mean()) if n_m else math.nan
    delay = float(np.median(counts.delay_h)) if n_i else math.nan
    hit = counts.delay_h < MISSED
    detected = float(hit.mean()) if n_i else math.nan
    if not intervals:
        return RuleFigures(rule, interval_h, fa, delay, detected, n_m, n_i)
    ones_m = np.ones(n_m)
    fa_ci = bootstrap_sums(np.column_stack([counts.flagged * 100.0, ones_m]), ratio, seed=seed)
    delay_ci = bootstrap_values(counts.delay_h.tolist(), _median, seed=seed)
    det_ci = bootstrap_sums(np.column_stack([hit.astype(float), np.ones(n_i)]), ratio, seed=seed)
    return RuleFigures(rule, interval_h, fa, delay, detected, n_m, n_i, fa_ci, delay_ci, det_ci)


def _median(v: np.ndarray) -> float:
    return float(np.median(v))


@dataclass
class Evaluation:
    """Scored wells made ready for many rules: each well's series per aggregate method."""

    wells: ScoredPlates
    _series: dict[str, list[tuple[list[float], list[float]]]] = field(default_factory=dict)

    def series(self, aggregate: AggregateMethod) -> list[tuple[list[float], list[float]]]:
        if aggregate not in self._series:
            self._series[aggregate] = [
                well_series(self.wells.probs[i], self.wells.times_h, aggregate)
                for i in range(self.wells.n_wells)
            ]
        return self._series[aggregate]

    def counts(self, rule: Rule) -> Counts:
        detected = detection_hours(self.series(rule.params.aggregate), rule.params)
        w = self.wells
        return count_outcomes(detected, w.induced, w.true_onset_h, float(w.times_h[-1]))

    def figures(self, rule: Rule, *, intervals: bool = False) -> RuleFigures:
        return rule_figures(rule, self.counts(rule), self.wells.interval_h, intervals=intervals)


# -- comparing rules ---------------------------------------------------------------------------


def pareto_front(points: Sequence[RuleFigures]) -> list[RuleFigures]:
    """The points no other point beats on both false alarms and median delay (ties kept
    once), sorted by false alarms."""
    ordered = sorted(points, key=lambda p: (p.false_alarms, p.median_delay_h))
    front: list[RuleFigures] = []
    best = math.inf
    for p in ordered:
        if p.median_delay_h < best:
            front.append(p)
            best = p.median_delay_h
    return front


def fastest_within(points: Sequence[RuleFigures], max_false_alarms: float) -> RuleFigures | None:
    """The rule with the shortest median delay among those with at most ``max_false_alarms``
    per 100 maintenance wells (ties: fewer false alarms, then the first given); None if none."""
    ok = [p for p in points if p.false_alarms <= max_false_alarms + 1e-9]
    if not ok:
        return None
    return min(ok, key=lambda p: (p.median_delay_h, p.false_alarms))


def choose_default(
    points: Sequence[RuleFigures],
    *,
    max_false_alarms: float = 1.0,
    max_delay_intervals: float = 2.0,
) -> tuple[RuleFigures, str] | None:
    """The tuning rule, and which branch chose it.

    1. ``target``: the fastest rule within both limits;
    2. ``fewest false alarms in time``: when none meets both, the rule with the fewest false
       alarms among those whose median delay is within ``max_delay_intervals`` (detection
       stays timely, false alarms are cut as far as they go);
    3. ``fastest quiet``: when no rule is that fast, the fastest within ``max_false_alarms``.
    None only for an empty ``points``.
    """
    timely = [p for p in points if p.median_delay_intervals <= max_delay_intervals + 1e-9]
    quiet = fastest_within(timely, max_false_alarms)
    if quiet is not None:
        return quiet, "target"
    if timely:
        return min(timely, key=lambda p: (p.false_alarms, p.median_delay_h)), (
            "fewest false alarms in time"
        )
    best = fastest_within(points, max_false_alarms)
    if best is not None:
        return best, "fastest quiet"
    if points:
        return min(points, key=lambda p: (p.false_alarms, p.median_delay_h)), "fewest false alarms"
    return None


def format_delay(hours: float, interval_h: float) -> str:
    """``7.5 h (1.2 int.)``, or ``never`` for a median over mostly missed wells."""
    if not math.isfinite(hours) or hours >= MISSED / 2:
        return "never"
    return f"{hours:.1f} h ({hours / interval_h:.1f} int.)"


def format_interval(ci: Interval | None, fmt: str = ".1f", *, delay: bool = False) -> str:
    """``[lo, hi]`` of an interval; a delay bound from a mostly-missed resample reads ``never``."""
    if ci is None or ci.low is None or ci.high is None:
        return "[n/a]"

    def one(x: float) -> str:
        return "never" if delay and x >= MISSED / 2 else format(x, fmt)

    return f"[{one(ci.low)}, {one(ci.high)}]"

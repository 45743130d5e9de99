"""Evaluating the onset detector on simulated plates with known onset times.

The plates come from the synthetic microscope's biology (:func:`stemwatch.synth.plate.plan_plate`:
colonies, induction times, spontaneous differentiation in maintenance wells, ground-truth
``true_onset_h``) without rendering pixels. Each field's model probability is simulated from
the area-weighted differentiation state of the colonies it sees, through a noise model in
logit space (:class:`NoiseModel`): a per-well offset (seeding density, illumination), a
per-image term (focus, contrast) and occasional outlier fields (debris, bubbles) scored as
differentiated. :func:`fit_noise_model` calibrates that model from (state, probability)
pairs measured with a real model on rendered synth images, when one is available.

Figures (:func:`evaluate`): median detection delay after the true onset over detected induced
wells, the fraction detected, and false alarms per 100 maintenance wells (a maintenance well
flagged at any time), for the detector and for a naive single-threshold rule.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.onset import OnsetParams, run_detector
from stemwatch.core.aggregate import FieldObservation, aggregate_fields, score_image
from stemwatch.core.wells import plate_format
from stemwatch.synth.spec import PlateSpec

SIMULATED_PLATE = PlateSpec(wells=96, n_fields=3, interval_h=3.0, n_timepoints=25)
"""Plates the noise-model simulation draws by default: 96 wells, 3 fields, every 3 h for 72 h."""
SCORED_PLATE = PlateSpec(wells=96, n_fields=2, interval_h=6.0, n_timepoints=10, size=256)
"""Plates a real model scores by default: 2 fields every 6 h for 54 h at 256 px."""
CALIBRATION_PLATE = PlateSpec(
    wells=plate_format(96).wells()[:12],
    n_fields=2,
    times_h=(0, 6, 12, 18, 24, 30, 36, 42),
    size=512,
    seed=7,
)
"""The rendered plate the noise model is calibrated on by default (12 wells, 2 fields, 8 times)."""


@dataclass(frozen=True)
class NoiseModel:
    """Field probability = sigmoid(intercept + slope * state + well offset + image noise).

    Defaults are assumptions (not calibrated): a maintenance field scores ~0.08, a field
    whose colonies are half differentiated ~0.7, per-image noise sd 0.8 logits, per-well
    offset sd 0.6 logits; 2 % of images are outlier fields (debris) and 1 % of well visits
    are glitches (autofocus failure, condensation: every field of the well at that time
    point), both scored uniformly in [0.6, 1].
    """

    intercept: float = -2.5
    slope: float = 7.0
    image_sd: float = 0.8
    well_sd: float = 0.6
    outlier_rate: float = 0.02
    glitch_rate: float = 0.01
    calibrated: bool = False

    def probability(
        self, state: np.ndarray, rng: np.random.Generator, well_offset: float
    ) -> np.ndarray:
        """Field probabilities for ``state[time, field]``."""
        logit = self.intercept + self.slope * state + well_offset
        logit = logit + rng.normal(0.0, self.image_sd, state.shape)
        p = 1.0 / (1.0 + np.exp(-logit))
        bad = np.less(rng.random(state.shape), self.outlier_rate)
        glitch = np.less(rng.random(state.shape[0]), self.glitch_rate)
        bad = bad | glitch[:, None]
        return np.where(bad, rng.uniform(0.6, 1.0, state.shape), p)


@dataclass(frozen=True)
class SimulatedWell:
    """One well's simulated per-field probabilities, ``probs[time, field]``."""

    plate: str
    well: str
    condition: str
    true_onset_h: float | None
    times_h: tuple[float, ...]
    probs: np.ndarray


def field_states(plan: object, well: str) -> np.ndarray:
    """Area-weighted mean differentiation state seen by each field: ``[time, field]``."""
    from stemwatch.synth.biology import views_for_field
    from stemwatch.synth.plate import PlatePlan

    assert isinstance(plan, PlatePlan)
    w = plan.wells[well]
    out = np.zeros((len(plan.times_h), plan.n_fields))
    for t, t_h in enumerate(plan.times_h):
        for f in range(plan.n_fields):
            views = views_for_field(w, t_h, plan.origin(well, f, t), plan.size, plan.pixel_size_um)
            area = np.array([v.radius**2 for v in views])
            d = np.array([v.d for v in views])
            out[t, f] = float((area * d).sum() / area.sum()) if area.sum() > 0 else 0.0
    return out


def simulate_plates(
    n_plates: int, plate: PlateSpec = SIMULATED_PLATE, *, noise: NoiseModel | None = None
) -> list[SimulatedWell]:
    """Simulated per-field probability series for ``n_plates`` plates like ``plate``.

    Plate ``k`` is ``plate`` with seed ``plate.seed * 1000 + k`` and name ``SIM<seed>``.
    """
    from stemwatch.synth.biology import true_onset_h
    from stemwatch.synth.plate import plan_plate

    noise = noise or NoiseModel()
    out: list[SimulatedWell] = []
    for spec in _plates(plate, n_plates):
        plan = plan_plate(spec)
        rng = np.random.default_rng([spec.seed, 99])
        for name, w in plan.wells.items():
            states = field_states(plan, name)
            offset = float(rng.normal(0.0, noise.well_sd))
            out.append(
                SimulatedWell(
                    plate=plan.plate,
                    well=name,
                    condition=w.condition,
                    true_onset_h=true_onset_h(w),
                    times_h=plan.times_h,
                    probs=noise.probability(states, rng, offset),
                )
            )
    return out


def _plates(plate: PlateSpec, n_plates: int) -> list[PlateSpec]:
    seeds = [plate.seed * 1000 + k for k in range(n_plates)]
    return [plate.replace(seed=s, plate_name=f"SIM{s:04d}") for s in seeds]


def detect(well: SimulatedWell, params: OnsetParams) -> tuple[float, float] | None:
    """(onset estimate h, detection time h) of the first onset in ``well``, or None."""
    values: list[float] = []
    keys: list[float] = []
    for t_h, row in zip(well.times_h, well.probs, strict=True):
        fields = [FieldObservation(field=f, probability=float(p)) for f, p in enumerate(row)]
        if any(math.isfinite(o.probability) for o in fields):  # else: no usable field
            values.append(aggregate_fields(fields, params.aggregate).probability)
            keys.append(t_h)
    _, det = run_detector(values, keys, params)
    if det is None:
        return None
    return det.onset_key, det.detected_key


@dataclass(frozen=True)
class EvalResult:
    """Detector figures on a set of simulated wells."""

    name: str
    n_induced: int
    n_maintenance: int
    detected_fraction: float
    median_delay_h: float | None
    p90_delay_h: float | None
    median_onset_error_h: float | None
    false_alarms_per_100: float

    def line(self) -> str:
        def h(x: float | None) -> str:
            return "n/a" if x is None else f"{x:5.1f} h"

        return (
            f"{self.name:<34} detected {100 * self.detected_fraction:5.1f}% of "
            f"{self.n_induced} induced; median delay {h(self.median_delay_h)} "
            f"(p90 {h(self.p90_delay_h)}); onset estimate error {h(self.median_onset_error_h)}; "
            f"false alarms {self.false_alarms_per_100:5.1f} per 100 maintenance wells "
            f"(n={self.n_maintenance})"
        )


def evaluate(wells: Iterable[SimulatedWell], params: OnsetParams, name: str) -> EvalResult:
    """Delay, detection rate and false alarms of ``params`` on ``wells``.

    Induced wells without a true onset within the run are left out of the delay figures; a
    detection before the true onset counts with a negative delay.
    """
    delays: list[float] = []
    onset_errors: list[float] = []
    n_induced = n_maint = false_alarms = 0
    for w in wells:
        found = detect(w, params)
        if w.condition == "maintenance":
            n_maint += 1
            false_alarms += found is not None
        elif w.true_onset_h is not None and w.true_onset_h <= w.times_h[-1]:
            n_induced += 1
            if found is not None:
                delays.append(found[1] - w.true_onset_h)
                onset_errors.append(abs(found[0] - w.true_onset_h))
    return EvalResult(
        name=name,
        n_induced=n_induced,
        n_maintenance=n_maint,
        detected_fraction=len(delays) / n_induced if n_induced else 0.0,
        median_delay_h=statistics.median(delays) if delays else None,
        p90_delay_h=float(np.percentile(delays, 90)) if delays else None,
        median_onset_error_h=statistics.median(onset_errors) if onset_errors else None,
        false_alarms_per_100=100.0 * false_alarms / n_maint if n_maint else 0.0,
    )


def naive_params(threshold: float = 0.5) -> OnsetParams:
    """The naive rule: the first time the well's mean probability reaches ``threshold``."""
    return OnsetParams(
        on_threshold=threshold, off_threshold=threshold, k=1, alpha=1.0, aggregate="mean"
    )


def fit_noise_model(
    states: Sequence[float] | np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    wells: Sequence[str],
) -> NoiseModel:
    """Calibrate :class:`NoiseModel` from a real model's outputs on rendered synth images.

    ``states``: each image's area-weighted colony state (:func:`field_states`);
    ``probabilities``: the model's output; ``wells``: the image's well (for the per-well
    offset). Outliers are images whose logit residual exceeds 4 robust sds.
    """
    s = np.asarray(states, dtype=float)
    p = np.clip(np.asarray(probabilities, dtype=float), 1e-4, 1 - 1e-4)
    logit = np.log(p / (1 - p))
    slope, intercept = np.polyfit(s, logit, 1)
    resid = logit - (intercept + slope * s)
    mad = float(np.median(np.abs(resid - np.median(resid)))) * 1.4826 or 1e-3
    outlier = np.abs(resid) > 4 * mad
    by_well: dict[str, list[float]] = {}
    for r, w, o in zip(resid, wells, outlier, strict=True):
        if not o:
            by_well.setdefault(w, []).append(float(r))
    well_means = [statistics.fmean(v) for v in by_well.values() if v]
    well_sd = statistics.stdev(well_means) if len(well_means) > 1 else 0.0
    within = [r - statistics.fmean(v) for v in by_well.values() for r in v]
    image_sd = statistics.stdev(within) if len(within) > 1 else mad
    return NoiseModel(
        intercept=float(intercept),
        slope=float(slope),
        image_sd=float(image_sd),
        well_sd=float(math.sqrt(max(0.0, well_sd**2 - image_sd**2 / 3))),
        outlier_rate=float(outlier.mean()),
        calibrated=True,
    )


def score_plates_with_model(
    model_path: str, n_plates: int, plate: PlateSpec = SCORED_PLATE
) -> list[SimulatedWell]:
    """Per-field probabilities from a real exported model on rendered synth plates.

    No noise model: every image of ``n_plates`` plates like ``plate`` (seeds and names as in
    :func:`simulate_plates`) is rendered by the synthetic microscope and scored the way the
    daemon scores it (``prepare`` with the model's recipe, :func:`score_image`).
    """
    from pathlib import Path

    from monitor.inference import load_model
    from stemwatch.core.imaging import prepare
    from stemwatch.synth.biology import true_onset_h
    from stemwatch.synth.plate import plan_plate

    model = load_model(Path(model_path))
    out: list[SimulatedWell] = []
    for spec in _plates(plate, n_plates):
        plan = plan_plate(spec)
        times = plan.times_h
        for name, w in plan.wells.items():
            probs = np.full((len(times), plan.n_fields), np.nan)
            for t in range(len(times)):
                for f in range(plan.n_fields):
                    tiles = prepare(
                        plan.render(name, f, t),
                        model.metadata.normalisation,
                        model.metadata.tiling,
                    )
                    if len(tiles.data):
                        probs[t, f] = score_image(model.predict(tiles.data)).probability
            out.append(SimulatedWell(plan.plate, name, w.condition, true_onset_h(w), times, probs))
    return out


def calibrate_with_model(
    model_path: str, plate: PlateSpec = CALIBRATION_PLATE
) -> tuple[NoiseModel, int]:
    """Fit :class:`NoiseModel` to a real exported model's outputs on rendered synth images.

    Renders every image of ``plate`` (the default: 12 wells x 2 fields x 8 time points, about
    0.2 s each at 512 px), scores each the way the daemon does (``prepare`` with the model's
    recipe, :func:`score_image`) and fits the link from colony state to probability. Returns
    the model and the number of images used.
    """
    from pathlib import Path

    from monitor.inference import load_model
    from stemwatch.core.imaging import prepare
    from stemwatch.synth.plate import plan_plate

    model = load_model(Path(model_path))
    plan = plan_plate(plate)
    states: list[float] = []
    probs: list[float] = []
    wells: list[str] = []
    for name in plan.wells:
        field_state = field_states(plan, name)
        for t in range(len(plan.times_h)):
            for f in range(plan.n_fields):
                tiles = prepare(
                    plan.render(name, f, t), model.metadata.normalisation, model.metadata.tiling
                )
                if len(tiles.data) == 0:
                    continue
                states.append(float(field_state[t, f]))
                probs.append(score_image(model.predict(tiles.data)).probability)
                wells.append(name)
    return fit_noise_model(states, probs, wells), len(probs)

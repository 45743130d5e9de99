"""The onset evaluator: simulated plates with known onsets, figures, noise-model fitting."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from monitor.onset import OnsetParams
from stemwatch.evaluation.onset_eval import (
    NoiseModel,
    SimulatedWell,
    calibrate_with_model,
    evaluate,
    fit_noise_model,
    naive_params,
    score_plates_with_model,
    simulate_plates,
)
from stemwatch.synth.spec import PlateSpec


def well(condition: str, probs: list[float], onset: float | None = None) -> SimulatedWell:
    times = tuple(float(6 * i) for i in range(len(probs)))
    arr = np.array([[p, p] for p in probs])
    return SimulatedWell("P", "A01", condition, onset, times, arr)


def test_figures_on_hand_made_wells() -> None:
    wells = [
        well("induced", [0.1, 0.1, 0.3, 0.7, 0.9, 0.9], onset=12.0),
        well("induced", [0.1, 0.1, 0.1, 0.1, 0.8, 0.9], onset=18.0),
        well("maintenance", [0.1, 0.9, 0.1, 0.1, 0.1, 0.1]),  # one glitch
        well("maintenance", [0.1] * 6),
    ]
    params = OnsetParams(on_threshold=0.55, off_threshold=0.35, k=2, alpha=1.0)
    r = evaluate(wells, params, "det")
    assert (r.n_induced, r.n_maintenance, r.detected_fraction) == (2, 2, 1.0)
    assert r.median_delay_h == pytest.approx((12.0 + 12.0) / 2)  # detected at 24 h and 30 h
    assert r.false_alarms_per_100 == 0.0
    naive = evaluate(wells, naive_params(0.5), "naive")
    assert naive.false_alarms_per_100 == 50.0  # the glitch
    assert naive.median_delay_h == pytest.approx((6.0 + 6.0) / 2)


def test_simulated_plate_has_ground_truth_and_detector_is_robust() -> None:
    plate = PlateSpec(wells=24, n_fields=2, interval_h=6.0, n_timepoints=9, seed=3)
    wells = simulate_plates(1, plate)
    assert len(wells) == 24 and wells[0].probs.shape == (9, 2)
    induced = [w for w in wells if w.condition == "induced"]
    assert induced and all(w.true_onset_h is not None for w in induced)
    assert all(w.true_onset_h is None for w in wells if w.condition == "maintenance")
    glitchy = NoiseModel(glitch_rate=0.2)
    noisy = simulate_plates(1, plate, noise=glitchy)
    det = evaluate(noisy, OnsetParams(), "det")
    naive = evaluate(noisy, naive_params(0.5), "naive")
    assert naive.false_alarms_per_100 > det.false_alarms_per_100
    assert det.detected_fraction > 0.8


def test_fit_noise_model_recovers_the_link() -> None:
    rng = np.random.default_rng(0)
    truth = NoiseModel(intercept=-2.0, slope=6.0, image_sd=0.5, well_sd=0.0, outlier_rate=0.0)
    states = rng.uniform(0, 1, 600)
    wells = [f"W{i % 20}" for i in range(600)]
    probs = truth.probability(states[:, None], rng, 0.0)[:, 0]
    fitted = fit_noise_model(states, probs, wells)
    assert fitted.calibrated
    assert fitted.intercept == pytest.approx(-2.0, abs=0.2)
    assert fitted.slope == pytest.approx(6.0, abs=0.4)
    assert fitted.image_sd == pytest.approx(0.5, abs=0.1)


def test_real_model_scoring_and_calibration_run_end_to_end(tiny_model_path: Path) -> None:
    """A tiny real ONNX model on rendered synth images (what --direct/--calibrate do)."""
    plate = PlateSpec(wells=6, n_fields=1, interval_h=24.0, n_timepoints=2, size=128)
    wells = score_plates_with_model(str(tiny_model_path), 1, plate)
    assert len(wells) == 6
    assert all(w.probs.shape == (2, 1) for w in wells)
    assert all(0.0 <= p <= 1.0 for w in wells for p in w.probs.ravel())
    assert {w.condition for w in wells} == {"maintenance", "induced"}
    noise, n = calibrate_with_model(
        str(tiny_model_path),
        PlateSpec(wells=["A01", "A02"], n_fields=1, times_h=(0, 24), size=128, seed=7),
    )
    assert n == 4 and noise.calibrated
    assert all(map(math.isfinite, (noise.intercept, noise.slope, noise.image_sd)))

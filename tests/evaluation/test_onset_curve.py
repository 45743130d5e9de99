"""The onset curve's evaluation logic on hand-made series, and the real scoring path once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from monitor.onset import OnsetParams
from stemwatch.evaluation.onset_curve import (
    MISSED,
    Evaluation,
    Rule,
    RuleFigures,
    ScoredPlates,
    choose_default,
    count_outcomes,
    detector_rule,
    fastest_within,
    format_delay,
    naive_rule,
    pareto_front,
    rule_figures,
    score_plates,
)
from stemwatch.synth.spec import PlateSpec

NAN = math.nan


def plates(rows: list[tuple[bool, float, list[float]]], interval_h: float = 6.0) -> ScoredPlates:
    """Hand-made wells: (induced, true onset h, probability per time point), one field."""
    n_t = len(rows[0][2])
    return ScoredPlates(
        probs=np.array([[[p] for p in r[2]] for r in rows], dtype=float),
        times_h=np.arange(n_t) * interval_h,
        plate=np.array(["P"] * len(rows)),
        well=np.array([f"A{i + 1:02d}" for i in range(len(rows))]),
        induced=np.array([r[0] for r in rows]),
        induction_h=np.array([0.0 if r[0] else NAN for r in rows]),
        true_onset_h=np.array([r[1] for r in rows]),
    )


def test_counting_false_alarms_delays_misses_and_wells_outside_the_run() -> None:
    detected = np.array([12.0, NAN, 30.0, NAN, 6.0, NAN, NAN])
    induced = np.array([False, False, True, True, True, True, False])
    onset = np.array([NAN, NAN, 18.0, 12.0, 12.0, 90.0, NAN])
    c = count_outcomes(detected, induced, onset, last_time_h=48.0)
    assert c.flagged.tolist() == [True, False, False]  # maintenance wells in order
    # induced: 12 h late, never flagged, 6 h early; the one with its onset after 48 h is out
    assert c.delay_h.tolist() == [12.0, MISSED, -6.0]
    assert c.induced_outside == 1

    f = rule_figures(naive_rule(0.5), c, interval_h=6.0)
    assert f.false_alarms == pytest.approx(100 / 3)
    assert f.median_delay_h == 12.0  # of -6, 12 and a miss
    assert f.detected == pytest.approx(2 / 3)


def test_a_miss_counts_as_infinite_delay_so_misses_cannot_flatter_the_median() -> None:
    c = count_outcomes(
        np.array([6.0, NAN, NAN]), np.array([True, True, True]), np.array([0.0, 0.0, 0.0]), 48.0
    )
    f = rule_figures(naive_rule(0.9), c, interval_h=6.0)
    assert f.median_delay_h == MISSED
    assert format_delay(f.median_delay_h, 6.0) == "never"
    assert format_delay(9.0, 6.0) == "9.0 h (1.5 int.)"


def test_intervals_bracket_the_point_and_narrow_with_more_wells() -> None:
    rng = np.random.default_rng(1)

    def figures(n: int) -> RuleFigures:
        flagged = rng.random(n) < 0.1
        detected = np.concatenate([np.where(flagged, 10.0, NAN), rng.uniform(6, 30, n)])
        induced = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
        onset = np.concatenate([np.full(n, NAN), np.zeros(n)])
        c = count_outcomes(detected, induced, onset, 72.0)
        return rule_figures(naive_rule(0.5), c, 6.0, intervals=True)

    small, large = figures(40), figures(800)
    for f in (small, large):
        assert f.false_alarms_ci is not None and f.delay_ci is not None
        assert f.false_alarms_ci.low is not None and f.false_alarms_ci.high is not None
        assert f.false_alarms_ci.low <= f.false_alarms <= f.false_alarms_ci.high
        assert f.delay_ci.low is not None and f.delay_ci.high is not None
        assert f.delay_ci.low <= f.median_delay_h <= f.delay_ci.high
        assert f.n_maintenance == f.n_induced
    assert large.false_alarms_ci is not None and small.false_alarms_ci is not None
    assert (large.false_alarms_ci.width or 0) < (small.false_alarms_ci.width or 0)


def test_detector_and_naive_rules_on_hand_made_series() -> None:
    wells = plates(
        [
            (False, NAN, [0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1]),  # one glitch
            (False, NAN, [0.1, 0.2, 0.1, 0.2, 0.1, 0.2, 0.1]),
            (False, NAN, [0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 0.7]),  # persistent: both flag it
            (True, 12.0, [0.1, 0.1, 0.3, 0.7, 0.9, 0.9, 0.9]),  # crosses 0.5 at 18 h
            (True, 18.0, [0.1, 0.1, 0.1, 0.1, 0.8, 0.9, 0.9]),  # crosses at 24 h
            (True, 30.0, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2]),  # never
        ]
    )
    ev = Evaluation(wells)
    naive = ev.figures(naive_rule(0.5))
    assert naive.false_alarms == pytest.approx(200 / 3)
    assert ev.counts(naive_rule(0.5)).delay_h.tolist() == [6.0, 6.0, MISSED]
    det = ev.figures(detector_rule(0.5, k=2))
    assert det.false_alarms == pytest.approx(100 / 3)  # the glitch is absorbed
    assert ev.counts(detector_rule(0.5, k=2)).delay_h.tolist() == [12.0, 12.0, MISSED]
    assert det.median_delay_h == 12.0 and det.median_delay_intervals == 2.0
    smoothed = ev.counts(naive_rule(0.5, alpha=0.5))  # EWMA 0.5: 0.1, 0.1, 0.2, 0.45, 0.675
    assert smoothed.delay_h.tolist()[0] == 24.0 - 12.0
    assert smoothed.flagged.tolist() == [False, False, True]

    every12 = Evaluation(wells.every(2))
    assert wells.every(2).interval_h == 12.0
    assert every12.counts(detector_rule(0.5, k=2)).delay_h.tolist() == [24.0, 18.0, MISSED]


def point(fa: float, delay: float, name: str = "r") -> RuleFigures:
    rule = Rule(name, "f", OnsetParams())
    return RuleFigures(rule, 6.0, fa, delay, 1.0, 100, 100)


def test_front_and_choice_at_an_equal_false_alarm_rate() -> None:
    pts = [point(5.0, 6.0, "a"), point(1.0, 12.0, "b"), point(1.0, 9.0, "c"), point(0.0, 30.0, "d")]
    pts.append(point(8.0, 7.0, "e"))  # beaten by a
    assert [p.rule.name for p in pareto_front(pts)] == ["d", "c", "a"]
    best = fastest_within(pts, 1.0)
    assert best is not None and best.rule.name == "c"
    # delays here are 1, 2, 1.5, 5 and 1.17 imaging intervals of 6 h
    assert choose_default(pts, max_false_alarms=1.0) == (pts[2], "target")
    # no rule within 0.5 false alarms is in time: the quietest of those in time
    assert choose_default(pts, max_false_alarms=0.5) == (pts[2], "fewest false alarms in time")
    assert choose_default(pts, max_false_alarms=5.0, max_delay_intervals=1.0) == (
        pts[0],
        "target",
    )
    assert choose_default(pts, max_false_alarms=0.5, max_delay_intervals=0.5) == (
        pts[3],
        "fastest quiet",
    )
    assert fastest_within(pts, -1.0) is None


def test_cache_round_trip(tmp_path: Path) -> None:
    wells = plates([(False, NAN, [0.1, 0.2]), (True, 6.0, [0.3, NAN])])
    path = wells.save(tmp_path / "c" / "s.npz")
    back = ScoredPlates.load(path)
    np.testing.assert_allclose(back.probs, wells.probs, rtol=1e-6)  # float32 on disk
    np.testing.assert_array_equal(back.true_onset_h, wells.true_onset_h)
    assert back.well.tolist() == ["A01", "A02"] and back.induced.tolist() == [False, True]
    assert back.meta["cache_version"] == 1


def test_scores_come_from_the_real_model_on_rendered_plates(tiny_model_path: Path) -> None:
    spec = PlateSpec(wells=["A01", "A02", "B01", "B02"], n_fields=1, n_timepoints=3, size=256)
    one, again = score_plates(spec, 2, [str(tiny_model_path), str(tiny_model_path)])
    assert one.probs.shape == (8, 3, 1)
    assert np.isfinite(one.probs).all() and ((one.probs >= 0) & (one.probs <= 1)).all()
    np.testing.assert_array_equal(one.probs, again.probs)
    assert set(one.plate) == {"SIM0000", "SIM0001"}
    assert one.induced.sum() == 4
    assert np.isnan(one.true_onset_h[~one.induced]).all()
    assert one.meta["model_sha256"]


def test_a_plate_cut_into_parts_scores_as_the_whole(tiny_model_path: Path) -> None:
    spec = PlateSpec(wells=["A01", "A02", "B01", "B02", "C01"], n_fields=2, n_timepoints=2)
    spec = spec.replace(size=256)
    (whole,) = score_plates(spec, 1, [str(tiny_model_path)])
    (cut,) = score_plates(spec, 1, [str(tiny_model_path)], parts=3, workers=2)
    np.testing.assert_array_equal(cut.probs, whole.probs)
    assert cut.well.tolist() == whole.well.tolist() == ["A01", "A02", "B01", "B02", "C01"]
    one = whole.first_fields(1)
    assert one.probs.shape == (5, 2, 1) and one.meta["fields"] == 1
    np.testing.assert_array_equal(one.probs[..., 0], whole.probs[..., 0])
    with pytest.raises(ValueError, match="use 1 to 2"):
        whole.first_fields(3)

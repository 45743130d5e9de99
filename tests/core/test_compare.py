"""Comparing two models (pure): agreement, onset differences, accuracy only on wells neither
model trained on, onset figures by the plate map; bootstrap intervals over wells."""

from __future__ import annotations

import numpy as np
import pytest

from stemwatch.core.compare import (
    ComparisonInput,
    ImagePair,
    ModelSide,
    OnsetTimes,
    compare_models,
    seen_wells,
)
from stemwatch.core.intervals import Interval, bootstrap_sums, bootstrap_values, ratio
from stemwatch.core.platemap import PlateMap, WellLayout

H = 3600.0


def test_bootstrap_over_groups() -> None:
    rng = np.random.default_rng(0)
    correct = rng.integers(0, 11, size=40)  # 40 wells of 10 images
    rows = np.stack([correct, np.full(40, 10)], axis=1)
    iv = bootstrap_sums(rows, ratio)
    assert iv.value == pytest.approx(correct.sum() / 400)
    assert iv.low is not None and iv.high is not None and iv.low < iv.value < iv.high
    assert iv.n_groups == 40 and iv.width is not None and 0.05 < iv.width < 0.4
    one = bootstrap_sums(rows[:1], ratio)
    assert (one.low, one.high, one.n_groups) == (None, None, 1)
    assert bootstrap_sums(np.zeros((0, 2)), ratio).value is None
    med = bootstrap_values([1.0, 2.0, 3.0, 4.0, 100.0])
    assert med.value == 3.0 and med.low is not None and med.low >= 1.0
    assert Interval(0.5, 0.25, 0.75, 4).text(".2f") == "0.50 [0.25, 0.75]"
    assert Interval(None, None, None, 0).text() == "n/a"
    assert Interval(6.0, None, None, 1).text(".1f", unit=" h") == "6.0 h [n/a]"


def test_seen_wells_from_the_split() -> None:
    split = {
        "group_by": "well",
        "train": {"groups": ["P1/P1/A01", "P1/P1/A2", "E/P2/img-without-well"]},
        "val": {"groups": ["P1/P1/B01"]},
        "test": {"groups": ["P1/P1/C01"]},
    }
    seen = seen_wells({"split": split})
    assert ("P1", "A01") in seen and ("P1", "A02") in seen and ("P1", "B01") in seen
    assert ("P1", "C01") not in seen  # held out: fair to evaluate on
    by_plate = seen_wells({"split": {"group_by": "plate", "train": {"groups": ["E1/P9"]}}})
    assert ("P9", "H12") in by_plate and ("P1", "A01") not in by_plate
    assert not seen_wells({}).known and not seen_wells(None).known


def pair(i: int, well: str, a: float | None, b: float | None, plate: str = "P") -> ImagePair:
    return ImagePair(i, plate, well, i * H, a, b)


def test_comparison_figures() -> None:
    wells = ["A01", "A02", "A03", "A04"]
    pairs = []
    labels = {}
    i = 0
    for w, truth in zip(wells, ["undifferentiated", "differentiated"] * 2, strict=True):
        for _ in range(5):
            positive = truth == "differentiated"
            a = 0.8 if positive else 0.2  # A is right everywhere
            b = 0.8 if w != "A02" else 0.2  # B says differentiated except in A02
            pairs.append(pair(i, w, a, b))
            labels[i] = truth
            i += 1
    pairs.append(pair(99, "A04", 0.9, None))  # only A scored this one
    scored = frozenset(("P", w) for w in wells)
    side_a = ModelSide(
        "a" * 64,
        "A",
        onsets={("P", "A02"): OnsetTimes(6 * H, 12 * H), ("P", "A04"): OnsetTimes(6 * H, 12 * H)},
        scored_wells=scored,
    )
    side_b = ModelSide(
        "b" * 64,
        "B",
        onsets={("P", "A04"): OnsetTimes(12 * H, 24 * H), ("P", "A03"): OnsetTimes(0, 6 * H)},
        scored_wells=scored,
        seen=seen_wells({"split": {"group_by": "well", "train": {"groups": ["P/P/A03"]}}}),
    )
    layout = PlateMap(
        "P",
        (
            WellLayout("A01", role="maintenance"),
            WellLayout("A02", role="induced", induction_s=0.0, induction_basis="elapsed"),
            WellLayout("A03", role="maintenance"),
            WellLayout("A04", role="induced", induction_s=6 * H, induction_basis="elapsed"),
        ),
    )
    c = compare_models(
        ComparisonInput(
            side_a,
            side_b,
            pairs,
            labels=labels,
            plate_maps={"P": layout},
            plate_starts={"P": 0.0},
            clock={"P": False},
        )
    )
    assert (c.n_both, c.n_only_a, c.n_only_b) == (20, 1, 0)
    # B disagrees with A everywhere but in A04: 5 of 20
    assert c.image_agreement.value == pytest.approx(0.25)
    assert c.mean_abs_difference == pytest.approx(0.45)
    # onset calls agree on A01 only (neither) and A04 (both): 2 of 4 wells
    assert c.well_agreement.value == pytest.approx(0.5)
    diffs = {(d.well, d.kind): d for d in c.onset_differences}
    assert set(diffs) == {("A02", "only A"), ("A03", "only B"), ("A04", "both")}
    assert diffs[("A04", "both")].onset_shift_h == 6.0
    assert diffs[("A04", "both")].detection_shift_h == 12.0
    # accuracy: A03 was in B's training set: left out for both models
    assert c.labelled_wells_left_out == {"seen by B in training/validation": 1}
    assert c.accuracy_a is not None and c.accuracy_b is not None
    assert c.accuracy_a.n_wells == 3 and c.accuracy_a.accuracy.value == 1.0
    assert c.accuracy_b.accuracy.value == pytest.approx(5 / 15)  # right only on A04
    assert c.accuracy_difference is not None
    assert c.accuracy_difference.value == pytest.approx(5 / 15 - 1.0)
    assert any("wide" in n for n in c.notes)
    # onset figures by role
    assert c.onsets_a is not None and c.onsets_b is not None
    assert c.onsets_a.induced_detected.value == 1.0
    assert c.onsets_a.median_delay_h.value == pytest.approx(9.0)  # 12 h and 6 h after induction
    assert c.onsets_a.false_alarms_per_100.value == 0.0
    # every well alike is still an uncertain figure: the exact interval over 2 wells
    detected = c.onsets_a.induced_detected
    assert detected.low == pytest.approx(0.158, abs=1e-3) and detected.high == 1.0
    alarms = c.onsets_a.false_alarms_per_100
    assert alarms.low == 0.0 and alarms.high == pytest.approx(84.2, abs=0.1)
    assert c.onsets_b.induced_detected.value == 0.5
    assert c.onsets_b.false_alarms_per_100.value == 50.0  # A03 of 2 maintenance wells


def test_every_labelled_well_seen_reports_no_accuracy() -> None:
    side = ModelSide("a" * 64, "A", scored_wells=frozenset({("P", "A01")}), seen=seen_wells(None))
    seen = seen_wells({"split": {"group_by": "well", "train": {"groups": ["P/P/A01"]}}})
    trained = ModelSide("b" * 64, "B", scored_wells=frozenset({("P", "A01")}), seen=seen)
    c = compare_models(
        ComparisonInput(side, trained, [pair(0, "A01", 0.9, 0.9)], labels={0: "differentiated"})
    )
    assert c.accuracy_a is None and c.accuracy_b is None
    assert any("without leaking training images" in n for n in c.notes)
    assert any(n.startswith("A carries no training split") for n in c.notes)

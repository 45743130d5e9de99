"""The writer's per-well updates (monitor.wellseries) give exactly the full recomputation's
series and onsets, one image at a time, on random series: in order and out of order, with
rewrites of a field, blank frames, images out of the model's domain, resets from the dashboard
and restarts of the daemon; and the detector's constant-size state finds the same onsets as the
walk back over its whole history did."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from monitor.onset import Detection, OnsetConfig, OnsetDetector, OnsetParams
from monitor.wellseries import WellSeries
from stemwatch import store
from stemwatch.core.platemeta import ImageLocation

MODEL = "m"


class WalkBackDetector:
    """The detector as it was before its state became constant-size (the reference): it kept
    every point since arming and walked back through them when it fired."""

    def __init__(self, params: OnsetParams) -> None:
        self.params = params
        self.smoothed: float | None = None
        self.run = 0
        self.armed = True
        self.fired = False
        self._history: list[tuple[int, float, float]] = []

    def reset(self) -> None:
        self.fired, self.armed, self.run, self._history = False, False, 0, []

    def step(self, value: float, *, index: int, key: float) -> Detection | None:
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
        self.run = self.run + 1 if s >= p.on_threshold else 0
        if self.run < p.k:
            return None
        self.fired = True
        start = len(self._history) - self.run
        while start > 0 and self._history[start - 1][2] >= p.off_threshold:
            start -= 1
        index0, key0, _ = self._history[start]
        return Detection(index0, key0, index, key, s)


@pytest.mark.parametrize("seed", range(40))
def test_constant_size_detector_equals_the_walk_back(seed: int) -> None:
    rng = random.Random(seed)
    on = rng.uniform(0.4, 0.8)
    params = OnsetParams(
        on_threshold=on,
        off_threshold=rng.uniform(0.1, on),
        k=rng.randint(1, 4),
        alpha=rng.choice([1.0, 0.7, 0.3]),
    )
    new, ref = OnsetDetector(params), WalkBackDetector(params)
    fired = 0
    level = 0.1
    for i in range(300):
        if rng.random() < 0.08:  # the culture switches between states; noise around them
            level = 0.9 - level
        v = min(1.0, max(0.0, rng.gauss(level, 0.25)))
        if rng.random() < 0.03:  # a reset from the dashboard
            new.reset()
            ref.reset()
        if rng.random() < 0.05:  # a copy carries on exactly where its original was
            new = new.copy()
        a, b = new.step(v, index=i, key=float(i)), ref.step(v, index=i, key=float(i))
        assert a == b and new.smoothed == ref.smoothed
        fired += a is not None
    assert fired > 0  # the comparison covered detections, not only silence


# -- the writer's per-well updates against the full recomputation -------------------------------


def _scenario(rng: random.Random) -> list[dict[str, Any]]:
    """Images of one well: time points (by index, or by time only), fields, a rise, noise;
    arrivals mostly in order, some late, some fields rewritten under another name."""
    by_index = rng.random() < 0.7
    n_tp, n_fields = rng.randint(4, 14), rng.randint(1, 4)
    rise = rng.randint(1, n_tp)
    images = []
    for tp in range(n_tp):
        level = 0.15 if tp < rise else 0.8
        for f in range(n_fields):
            if rng.random() < 0.1:
                continue  # a missing field
            images.append(
                {
                    "tp": tp if by_index else None,
                    "time_s": 3600.0 * tp + rng.uniform(0, 300),
                    "field": f,
                    "p": min(1.0, max(0.0, rng.gauss(level, 0.2))),
                    "out": rng.random() < 0.05,  # out of the model's domain: not in the series
                }
            )
    for i in range(len(images) - 1):  # late arrivals: swap neighbours now and then
        if rng.random() < 0.12:
            images[i], images[i + 1] = images[i + 1], images[i]
    if images and rng.random() < 0.3:  # the same field imaged again under another name
        again = dict(rng.choice(images))
        again["p"] = rng.random()
        images.insert(rng.randint(0, len(images)), again)
    return images


def _facts(db: store.Database, plate: str, well: str) -> tuple[list[Any], list[Any]]:
    series = [
        (
            p.seq,
            p.timepoint,
            p.time_s,
            p.probability,
            p.sd,
            p.sem,
            p.n_fields,
            p.n_tiles,
            p.smoothed,
        )
        for p in store.well_series(db, plate, well, model_hash=MODEL)
    ]
    onsets = [
        (
            o.episode,
            o.onset_time_s,
            o.onset_timepoint,
            o.detected_time_s,
            o.detected_timepoint,
            o.probability,
            o.time_basis,
        )
        for o in store.list_onsets(db, plate, model_hash=MODEL)
    ]
    return series, onsets


def test_incremental_updates_equal_the_full_recomputation_on_random_series(
    tmp_path: Path,
) -> None:
    from monitor.onset import update_well

    rng = random.Random(14)
    inc = store.open_db(tmp_path / "inc.db")
    ref = store.open_db(tmp_path / "ref.db")
    config = OnsetConfig(on_threshold=0.55, off_threshold=0.35, k=2)
    wells = WellSeries(config, MODEL)
    fast = slow = 0
    for n in range(40):
        plate, well = "P1", f"W{n:02d}"
        config = OnsetConfig(
            on_threshold=0.55,
            off_threshold=0.35,
            k=rng.randint(1, 3),
            alpha=rng.choice([1.0, 0.6]),
            aggregate=rng.choice(["mean", "median"]),
        )
        wells.config = config
        for i, im in enumerate(_scenario(rng)):
            loc = ImageLocation(
                plate, well, im["field"], im["tp"], im["time_s"], "test", time_basis="elapsed"
            )
            path = f"/data/{well}/img{i:03d}.tif"
            pred = store.Prediction(
                MODEL, im["p"], tile_mean=im["p"], tile_sd=0.1, n_tiles=16, out_of_domain=im["out"]
            )
            version = store.FileVersion(path, 100, i, f"h{n}-{i}")
            now = 1000.0 + i
            if rng.random() < 0.03:  # a blank frame: recorded, never scored
                store.record_quality_issue(ref, version, loc, reason="blank", now=now)
                update_well(ref, plate, well, config, model_hash=MODEL, now=now)
                image_id = store.record_quality_issue(inc, version, loc, reason="blank", now=now)
            else:
                store.record_result(ref, version, loc, pred, now=now)
                update_well(ref, plate, well, config, model_hash=MODEL, now=now)
                image_id = store.record_result(inc, version, loc, pred, now=now)
            if rng.random() < 0.05:  # the daemon restarts: nothing is remembered
                wells = WellSeries(config, MODEL)
            before = (wells.incremental, wells.recomputed)
            wells.image_scored(inc, image_id, now=now)
            fast += wells.incremental - before[0]
            slow += wells.recomputed - before[1]
            if rng.random() < 0.04:  # a reset from the dashboard, in both
                store.reset_well(ref, plate, well, by="t", now=now)
                store.reset_well(inc, plate, well, by="t", now=now)
            assert _facts(inc, plate, well) == _facts(ref, plate, well), (n, i)
    # both paths were taken, and onsets were found: the comparison covered them all
    assert fast > slow > 20
    assert len(store.list_onsets(ref, model_hash=MODEL)) > 10


def test_a_rewritten_file_in_another_well_is_recomputed_there(tmp_path: Path) -> None:
    """A new version of a file supersedes its record: the well that held it is recomputed
    at its next image, not updated from a series that still counts the superseded one."""
    db = store.open_db(tmp_path / "s.db")
    config = OnsetConfig()
    wells = WellSeries(config, MODEL)

    def add(path: str, well: str, tp: int, p: float, size: int = 100) -> None:
        loc = ImageLocation("P1", well, 0, tp, 3600.0 * tp, "test", time_basis="elapsed")
        v = store.FileVersion(path, size, tp, f"{path}-{size}")
        wells.image_scored(db, store.record_result(db, v, loc, store.Prediction(MODEL, p)))

    add("/a0.tif", "A01", 0, 0.1)
    add("/a1.tif", "A01", 1, 0.2)
    add("/x.tif", "B01", 0, 0.9)  # the file, first read as B01
    add("/x.tif", "A01", 2, 0.3, size=200)  # rewritten: now of A01; B01 loses its image
    add("/b1.tif", "B01", 1, 0.4)
    assert [p.probability for p in store.well_series(db, "P1", "B01", model_hash=MODEL)] == [0.4]
    assert [p.probability for p in store.well_series(db, "P1", "A01", model_hash=MODEL)] == [
        0.1,
        0.2,
        0.3,
    ]

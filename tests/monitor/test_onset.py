"""Aggregation of fields, the online onset detector, and update_well on a real DB."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from monitor.onset import OnsetConfig, OnsetDetector, OnsetParams, analyse_well, update_well
from stemwatch import store
from stemwatch.core.aggregate import FieldObservation, aggregate_fields, group_timepoints
from stemwatch.core.config import validate_mapping
from stemwatch.core.errors import ConfigError
from stemwatch.core.platemeta import ImageLocation

# -- aggregation ---------------------------------------------------------------------------


def fo(p: float, field: int | None = 0, **kw: object) -> FieldObservation:
    return FieldObservation(field=field, probability=p, **kw)  # type: ignore[arg-type]


def test_mean_sd_and_standard_error_across_fields() -> None:
    pt = aggregate_fields([fo(0.2, 0), fo(0.4, 1), fo(0.6, 2)], "mean")
    assert pt.probability == pytest.approx(0.4)
    assert pt.sd == pytest.approx(0.2)
    assert pt.sem == pytest.approx(0.2 / math.sqrt(3))
    assert pt.n_fields == 3


def test_median_resists_an_outlier_field() -> None:
    fields = [fo(0.1, 0), fo(0.12, 1), fo(0.98, 2)]  # debris in field 2
    assert aggregate_fields(fields, "median").probability == pytest.approx(0.12)
    assert aggregate_fields(fields, "mean").probability == pytest.approx(0.4)


def test_single_field_uses_its_tiles_and_missing_fields_are_fine() -> None:
    pt = aggregate_fields([fo(0.3, 0, tile_sd=0.2, n_tiles=16)])
    assert (pt.n_fields, pt.n_tiles, pt.sd) == (1, 16, 0.2)
    assert pt.sem == pytest.approx(0.05)
    assert aggregate_fields([fo(0.3, 0)]).sem is None
    # a field with a non-finite probability counts as missing
    assert aggregate_fields([fo(0.3, 0), fo(float("nan"), 1)]).n_fields == 1
    with pytest.raises(ValueError, match="no field"):
        aggregate_fields([])


def test_group_timepoints_by_index_and_by_time() -> None:
    obs = [
        fo(0.1, 0, timepoint=1, time_s=3600.0),
        fo(0.2, 1, timepoint=0, time_s=5.0),
        fo(0.3, 0, timepoint=0, time_s=0.0),
        fo(0.4, 1, timepoint=1, time_s=3610.0),
    ]
    groups = group_timepoints(obs)
    assert [(g.timepoint, g.time_s, len(g.fields)) for g in groups] == [
        (0, 0.0, 2),
        (1, 3600.0, 2),
    ]
    # no index: fields within the tolerance belong together
    timed = [fo(0.1, 0, time_s=0.0), fo(0.2, 1, time_s=100.0), fo(0.3, 0, time_s=7200.0)]
    groups = group_timepoints(timed, time_tolerance_s=600)
    assert [len(g.fields) for g in groups] == [2, 1]
    assert group_timepoints([fo(0.5, 0)]) == []  # neither index nor time: dropped


# -- detector ------------------------------------------------------------------------------


def feed(det: OnsetDetector, values: list[float], start: int = 0) -> list[int]:
    """Indices at which the detector fired."""
    fired = []
    for i, v in enumerate(values, start=start):
        if det.step(v, index=i, key=float(i)) is not None:
            fired.append(i)
    return fired


PARAMS = OnsetParams(on_threshold=0.6, off_threshold=0.4, k=2, alpha=1.0)


def test_flat_low_series_never_fires() -> None:
    assert feed(OnsetDetector(PARAMS), [0.1, 0.2, 0.15, 0.3, 0.2, 0.1] * 5) == []


def test_rise_fires_once_with_onset_at_start_of_the_rise() -> None:
    det = OnsetDetector(PARAMS)
    values = [0.1, 0.1, 0.2, 0.45, 0.7, 0.8, 0.9, 0.9]
    results = [det.step(v, index=i, key=i * 6.0) for i, v in enumerate(values)]
    fired = [r for r in results if r is not None]
    assert len(fired) == 1
    (d,) = fired
    assert d.detected_index == 5  # second point at or above 0.6
    assert d.onset_index == 3  # walked back over 0.45 >= off_threshold
    assert d.onset_key == 18.0


def test_single_spike_does_not_fire_with_k_2() -> None:
    assert feed(OnsetDetector(PARAMS), [0.1, 0.9, 0.1, 0.2, 0.95, 0.3]) == []
    naive = OnsetParams(on_threshold=0.6, off_threshold=0.6, k=1, alpha=1.0)
    assert feed(OnsetDetector(naive), [0.1, 0.9, 0.1]) == [1]


def test_no_flapping_around_the_threshold() -> None:
    values = [0.1, 0.7, 0.7, 0.5, 0.65, 0.3, 0.7, 0.7, 0.2, 0.8, 0.8]
    assert feed(OnsetDetector(PARAMS), values) == [2]


def test_smoothing_delays_and_suppresses_noise() -> None:
    smooth = OnsetParams(on_threshold=0.6, off_threshold=0.4, k=1, alpha=0.3)
    assert feed(OnsetDetector(smooth), [0.1, 0.9, 0.1, 0.1]) == []
    assert feed(OnsetDetector(smooth), [0.1, 0.9, 0.9, 0.9, 0.9]) == [3]


def test_reset_rearms_only_after_falling_below_off_threshold() -> None:
    det = OnsetDetector(PARAMS)
    assert feed(det, [0.1, 0.8, 0.8]) == [2]
    det.reset()
    assert feed(det, [0.8, 0.9, 0.5, 0.45], start=3) == []  # still high: disarmed
    assert feed(det, [0.3, 0.7, 0.8], start=7) == [9]  # dropped below 0.4, then rose


# -- configuration -------------------------------------------------------------------------


def test_per_plate_override_replaces_only_given_fields() -> None:
    cfg = validate_mapping(
        OnsetConfig,
        {"on_threshold": 0.7, "k": 3, "plates": {"P2": {"k": 1}}},
        "monitor.yaml",
    )
    p2 = cfg.params_for("P2")
    assert (p2.k, p2.on_threshold) == (1, 0.7)
    p1 = cfg.params_for("P1")
    assert (p1.k, p1.on_threshold) == (3, 0.7)


def test_off_threshold_above_on_threshold_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"monitor\.yaml.*off_threshold"):
        validate_mapping(OnsetConfig, {"on_threshold": 0.5, "off_threshold": 0.7}, "monitor.yaml")
    with pytest.raises(ConfigError, match=r"plates\.P1\.k"):
        validate_mapping(OnsetConfig, {"plates": {"P1": {"k": 0}}}, "monitor.yaml")


# -- update_well (and the store's reset_well) on a real database -----------------------------


def add_timepoint(
    db: store.Database, plate: str, well: str, tp: int, probs: list[float], *, model: str = "m"
) -> None:
    for field, p in enumerate(probs):
        store.record_result(
            db,
            store.FileVersion(
                f"/img/{plate}_{well}_t{tp}_f{field}.tif", 1, tp, f"{well}{tp}{field}"
            ),
            ImageLocation(plate, well, field, tp, tp * 6 * 3600.0, "test", time_basis="elapsed"),
            store.Prediction(model, p, tile_mean=p, tile_sd=0.05, n_tiles=4),
        )


def test_update_well_stores_series_and_one_onset_per_episode(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    cfg = OnsetConfig(on_threshold=0.6, off_threshold=0.4, k=2, alpha=1.0, aggregate="median")
    seen = []
    rows = [[0.1, 0.1, 0.9], [0.1, 0.2, 0.1], [0.5, 0.45, 0.5], [0.8, 0.7, 0.9], [0.9, 0.95, 0.9]]
    for tp, probs in enumerate(rows):
        add_timepoint(conn, "P1", "C03", tp, probs)
        event = update_well(conn, "P1", "C03", cfg, model_hash="m", now=1000.0 + tp)
        seen.append(event)
    assert seen[:4] == [None, None, None, None]  # outlier field at t0 ignored by the median
    event = seen[4]
    assert event is not None
    assert (event.episode, event.onset_timepoint, event.detected_timepoint) == (0, 2, 4)
    assert event.onset_time_s == 2 * 6 * 3600.0
    assert update_well(conn, "P1", "C03", cfg, model_hash="m") is None  # same episode: nothing new

    series = store.well_series(conn, "P1", "C03")
    assert [s.timepoint for s in series] == [0, 1, 2, 3, 4]
    assert series[0].probability == pytest.approx(0.1) and series[0].n_fields == 3
    assert series[0].sd is not None and series[0].sd > 0.4
    (onset,) = store.list_onsets(conn, "P1")
    assert (onset.well, onset.detected_timepoint, onset.active) == ("C03", 4, True)
    (summary,) = store.well_summary(conn, "P1")
    assert summary.onset and summary.n_timepoints == 5 and summary.episode == 0

    # reset: still high -> no new onset; drop, then rise again -> episode 1
    ro = store.open_db(tmp_path / "s.db", readonly=True)
    with pytest.raises(store.StoreError, match="read-only"):
        store.reset_well(ro, "P1", "C03", by="ana")
    assert store.reset_well(conn, "P1", "C03", by="ana") == 1
    assert store.list_onsets(conn, include_reset=False) == []
    add_timepoint(conn, "P1", "C03", 5, [0.9, 0.9, 0.9])
    add_timepoint(conn, "P1", "C03", 6, [0.9, 0.8, 0.9])
    assert update_well(conn, "P1", "C03", cfg, model_hash="m") is None
    add_timepoint(conn, "P1", "C03", 7, [0.2, 0.1, 0.2])
    add_timepoint(conn, "P1", "C03", 8, [0.7, 0.8, 0.9])
    assert update_well(conn, "P1", "C03", cfg, model_hash="m") is None
    add_timepoint(conn, "P1", "C03", 9, [0.8, 0.8, 0.9])
    again = update_well(conn, "P1", "C03", cfg, model_hash="m")
    assert again is not None and (again.episode, again.onset_timepoint) == (1, 8)
    onsets = store.list_onsets(conn, "P1")
    assert [(o.episode, o.reset_by) for o in onsets] == [(1, None), (0, "ana")]


def test_per_plate_parameters_are_used_by_update_well(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    cfg = OnsetConfig(k=3, alpha=1.0, plates={"FAST": OnsetParams(k=1)})
    for plate in ("SLOW", "FAST"):
        add_timepoint(conn, plate, "A01", 0, [0.1, 0.1])
        add_timepoint(conn, plate, "A01", 1, [0.9, 0.9])
    assert update_well(conn, "SLOW", "A01", cfg, model_hash="m") is None
    fast = update_well(conn, "FAST", "A01", cfg, model_hash="m")
    assert fast is not None and fast.detected_timepoint == 1


def test_rewritten_image_counts_once_in_its_newest_version(tmp_path: Path) -> None:
    conn = store.open_db(tmp_path / "s.db")
    where = ImageLocation("P1", "A01", 0, 0, 0.0, "test")
    for version, p in enumerate([0.9, 0.2]):  # the instrument rewrote the file
        store.record_result(
            conn,
            store.FileVersion("/img/P1_A01_t0_f0.tif", 10 + version, version, f"v{version}"),
            where,
            store.Prediction("m", p, tile_mean=p, tile_sd=0.0, n_tiles=1),
        )
    update_well(conn, "P1", "A01", OnsetConfig(), model_hash="m")
    (point,) = store.well_series(conn, "P1", "A01")
    assert (point.probability, point.n_fields) == (0.2, 1)


def test_series_and_onsets_of_the_model_that_scored_the_images(tmp_path: Path) -> None:
    """Bug (issue 12): well_series.model_hash was never written; a second model's
    predictions must make a series of their own, not mix into the daemon's."""
    conn = store.open_db(tmp_path / "s.db")
    cfg = OnsetConfig(k=1, alpha=1.0)
    add_timepoint(conn, "P1", "A01", 0, [0.1, 0.1], model="daemon")
    add_timepoint(conn, "P1", "A01", 1, [0.9, 0.9], model="daemon")
    for tp in (0, 1):  # another model rescoring the same images finds nothing
        for field in (0, 1):
            (img,) = [
                i
                for i in store.images_for_well(conn, "P1", "A01")
                if (i.timepoint, i.field) == (tp, field)
            ]
            store.record_prediction(conn, img.id, store.Prediction("other", 0.1))
    event = update_well(conn, "P1", "A01", cfg, model_hash="daemon")
    assert event is not None and (event.model_hash, event.time_basis) == ("daemon", "elapsed")
    assert update_well(conn, "P1", "A01", cfg, model_hash="other") is None
    daemon = store.well_series(conn, "P1", "A01", model_hash="daemon")
    other = store.well_series(conn, "P1", "A01", model_hash="other")
    assert [p.model_hash for p in daemon] == ["daemon", "daemon"]
    assert [p.probability for p in daemon] == [0.1, 0.9]
    assert [p.probability for p in other] == [0.1, 0.1]


def test_analyse_well_is_pure_and_respects_the_episode() -> None:
    def img(tp: int, p: float) -> store.ImageRecord:
        return store.ImageRecord(
            id=tp, path=f"/{tp}", plate="P", well="A01", field=0, timepoint=tp,
            time_s=tp * 3600.0, status="done", error=None, attempts=0, size=1, mtime_ns=tp,
            content_hash=None, superseded_by=None, updated_at=0.0, probability=p,
            time_basis="epoch",
        )  # fmt: skip

    images = [img(0, 0.1), img(1, 0.9), img(2, 0.9)]
    params = OnsetParams(k=2, alpha=1.0)
    fresh = analyse_well(images, store.WellState(), params)
    assert [p.probability for p in fresh.series] == [0.1, 0.9, 0.9]
    assert fresh.onset is not None and fresh.onset.onset_timepoint == 1
    assert fresh.onset.time_basis == "epoch"
    after_reset = analyse_well(images, store.WellState(1, 2 * 3600.0), params)
    assert after_reset.onset is None and len(after_reset.series) == 3

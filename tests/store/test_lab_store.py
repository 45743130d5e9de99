"""The store's part of a lab's own model, on both engines: plate maps, labels (append-only,
undo), the daemons' model switches, re-analysis bookkeeping and paired predictions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from stemwatch import store
from stemwatch.core.platemap import PlateMap, WellLayout
from stemwatch.core.platemeta import ImageLocation
from stemwatch.store.schema import MIGRATIONS


def loc(well: str = "A01", tp: int = 0, plate: str = "P1", field: int = 0) -> ImageLocation:
    return ImageLocation(plate, well, field, tp, tp * 3600.0, "test", time_basis="elapsed")


def add_image(
    db: store.Database, path: str, location: ImageLocation, p: float = 0.2, model: str = "m1"
) -> int:
    return store.record_result(
        db,
        store.FileVersion(path, 10, 1, f"h{path}"),
        location,
        store.Prediction(model, p, n_tiles=4),
    )


@pytest.fixture
def db(target: str) -> store.Database:
    return store.open_db(target, instrument="scope")


# -- plate maps --------------------------------------------------------------------------------


def test_plate_map_imports_are_kept_and_the_latest_is_current(db: store.Database) -> None:
    first = PlateMap("P1", (WellLayout("A01", condition="x", role="induced"),))
    second = PlateMap(
        "P1",
        (
            WellLayout("A01", condition="y", induction_s=7200.0, induction_basis="elapsed"),
            WellLayout("A02", condition="z", attributes={"line": "R1"}),
        ),
    )
    assert store.plate_map(db, "P1") is None
    a = store.save_plate_map(db, first, by="ana", source="a.csv", now=1.0)
    b = store.save_plate_map(db, second, by="ben", source="b.csv", now=2.0)
    current = store.plate_map(db, "P1")
    assert current is not None and current.by_well()["A01"].condition == "y"
    assert current.by_well()["A01"].induction_h == 2.0
    assert current.by_well()["A02"].attributes == {"line": "R1"}
    old = store.plate_map(db, "P1", import_id=a.id)
    assert old is not None and old.by_well()["A01"].role == "induced"
    history = store.plate_map_history(db, "P1")
    assert [(h.id, h.imported_by, h.n_wells) for h in history] == [
        (b.id, "ben", 2),
        (a.id, "ana", 1),
    ]
    assert [m.plate for m in store.mapped_plates(db)] == ["P1"]


# -- labels ------------------------------------------------------------------------------------


def test_label_windows_undo_and_supersede(db: store.Database) -> None:
    for tp in range(4):
        add_image(db, f"/a{tp}.tif", loc(tp=tp))
    whole = store.label_well(db, "P1", "A01", "undifferentiated", by="ana", now=1.0)
    later = store.label_well(
        db, "P1", "A01", "differentiated", by="ben", from_time_s=2 * 3600.0, now=2.0
    )
    assert (whole.time_basis, later.from_time_s) == ("elapsed", 7200.0)
    labels = {i.timepoint: i.label for i in store.labelled_images(db) if i.timepoint is not None}
    assert labels == {
        0: "undifferentiated",
        1: "undifferentiated",
        2: "differentiated",
        3: "differentiated",
    }
    # a label over the whole well supersedes both; undoing it brings them back
    again = store.label_well(db, "P1", "A01", "excluded", by="cat", now=3.0)
    marks = {lab.id: lab.superseded_by for lab in store.list_labels(db, "P1", "A01")}
    assert marks == {whole.id: again.id, later.id: again.id, again.id: None}
    assert store.labelled_images(db) == []  # excluded images are left out
    assert len(store.labelled_images(db, include_excluded=True)) == 4
    undone = store.undo_label(db, again.id, by="cat", now=4.0)
    assert (undone.active, undone.undone_by, undone.undone_at) == (False, "cat", 4.0)
    marks = {lab.id: lab.superseded_by for lab in store.list_labels(db, "P1", "A01")}
    assert marks == {whole.id: None, later.id: None, again.id: None}
    assert len(store.labelled_images(db)) == 4
    assert len(store.list_labels(db)) == 3  # nothing deleted
    assert len(store.list_labels(db, include_undone=False)) == 2
    with pytest.raises(store.StoreError, match="already undone by cat"):
        store.undo_label(db, again.id, by="dan")
    with pytest.raises(store.StoreError, match="no label with id 999"):
        store.undo_label(db, 999, by="dan")
    with pytest.raises(store.StoreError, match=r"starts .* after it ends"):
        store.label_well(db, "P1", "A01", "excluded", by="x", from_time_s=9.0, to_time_s=1.0)
    with pytest.raises(store.StoreError, match="who gives it"):
        store.label_well(db, "P1", "A01", "excluded", by=" ")
    with pytest.raises(store.StoreError, match="is not one of"):
        store.label_well(db, "P1", "A01", "blue", by="x")  # type: ignore[arg-type]


def onset_alert(db: store.Database, well: str = "A02") -> int:
    for tp in range(5):
        add_image(db, f"/{well}{tp}.tif", loc(well, tp=tp), 0.9 if tp >= 2 else 0.1)
        add_image(db, f"/{well}{tp}f1.tif", loc(well, tp=tp, field=1), 0.9 if tp >= 2 else 0.1)
    onset = store.save_well_analysis(
        db,
        "P1",
        well,
        model_hash="m1",
        series=[],
        onset=store.NewOnset(2 * 3600.0, 2, 3 * 3600.0, 3, 0.9, "elapsed"),
        episode=0,
    )
    assert onset is not None
    alert_id = store.record_alert(
        db, "onset", "onset!", plate="P1", well=well, dedup_key=f"onset:P1:{well}:0"
    )
    assert alert_id is not None
    return alert_id


def test_false_alarm_labels_the_alert_window(db: store.Database) -> None:
    alert_id = onset_alert(db)
    stall = store.record_alert(db, "stall", "no images")
    assert stall is not None
    lab = store.mark_false_alarm(db, alert_id, by="ana", note="debris")
    assert (lab.label, lab.source, lab.alert_id) == ("undifferentiated", "false-alarm", alert_id)
    assert (lab.from_time_s, lab.to_time_s) == (2 * 3600.0, 3 * 3600.0)
    covered = sorted((i.timepoint, i.field) for i in store.labelled_images(db))
    assert covered == [(2, 0), (2, 1), (3, 0), (3, 1)]  # both fields of onset..detection
    (alert,) = [a for a in store.list_alerts(db) if a.id == alert_id]
    assert alert.acknowledged_by == "ana"
    assert store.false_alarms(db) == {alert_id: lab}
    with pytest.raises(store.StoreError, match="already marked"):
        store.mark_false_alarm(db, alert_id, by="ben")
    with pytest.raises(store.StoreError, match="not an onset alert"):
        store.mark_false_alarm(db, stall, by="ben")
    with pytest.raises(store.StoreError, match="no alert with id 77"):
        store.mark_false_alarm(db, 77, by="ben")
    store.undo_label(db, lab.id, by="ana")
    assert store.false_alarms(db) == {}
    assert store.mark_false_alarm(db, alert_id, by="ben").created_by == "ben"


def test_labels_need_a_writable_database(target: str) -> None:
    store.open_db(target).close()
    with (
        store.open_db(target, readonly=True) as ro,
        pytest.raises(store.StoreError, match="read-only"),
    ):
        store.label_well(ro, "P1", "A01", "excluded", by="x")


# -- the daemon's model ------------------------------------------------------------------------


def test_the_daemon_model_is_the_latest_switch_not_a_reanalysed_one(db: store.Database) -> None:
    store.register_model(
        db, model_hash="daemon", name="d", metadata_json="{}", provider="CPU", now=1
    )
    store.record_model_switch(db, model_hash="daemon", previous_hash=None, reason="start", now=1)
    store.register_model(db, model_hash="new", name="n", metadata_json="{}", provider="CPU", now=5)
    current = store.current_model(db)
    assert current is not None and current.model_hash == "daemon"
    assert store.daemon_model_hash(db) == "daemon"
    switch = store.record_model_switch(
        db, model_hash="new", previous_hash="daemon", reason="SIGHUP", detail="x", now=9
    )
    assert store.daemon_model_hash(db) == "new"
    assert store.model_switches(db)[0] == switch
    assert {m.model_hash for m in store.list_models(db)} == {"daemon", "new"}


def test_each_instruments_model_before_v7_becomes_its_first_switch(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    r = sqlite3.connect(path, isolation_level=None)
    for m in MIGRATIONS[:6]:
        r.executescript(m.sqlite)
    r.execute("PRAGMA user_version = 6")
    for who, h, seen in (("a", "old", 1.0), ("a", "recent", 2.0), ("b", "other", 3.0)):
        r.execute(
            "INSERT INTO models (instrument, model_hash, name, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?)",
            (who, h, h, seen, seen),
        )
    r.close()
    with store.open_db(path, instrument="a") as db:
        switches = store.model_switches(db)
        assert [(s.model_hash, s.reason) for s in switches] == [("recent", "migrated")]
        store.register_model(db, model_hash="old", name="o", metadata_json="{}", provider="CPU")
        assert store.daemon_model_hash(db) == "recent"  # seen later, but never switched to
        assert store.daemon_model_hash(db, instrument="b") == "other"


# -- re-analysis bookkeeping and pairs ---------------------------------------------------------


def test_images_to_rescore_resume_where_predictions_stop(db: store.Database) -> None:
    ids = [add_image(db, f"/i{tp}.tif", loc(tp=tp)) for tp in range(3)]
    add_image(db, "/other.tif", loc(plate="P2"))
    store.record_failure(db, store.FileVersion("/bad.tif", 1, 1), reason="broken", attempts=3)
    todo = store.images_to_rescore(db, "m2", plates=["P1"])
    assert [t.image_id for t in todo] == ids
    assert store.count_unscored(db, "m2") == 4  # failed images are not re-scored
    assert store.count_unscored(db, "m1") == 0
    store.record_predictions(db, [(ids[0], store.Prediction("m2", 0.7, n_tiles=4))])
    assert [t.image_id for t in store.images_to_rescore(db, "m2", plates=["P1"])] == ids[1:]
    assert store.images_to_rescore(db, "m2", plates=[]) == []
    assert store.scored_wells(db, "m2") == [("scope", "P1", "A01")]
    pairs = store.paired_predictions(db, "m1", "m2", plates=["P1"])
    assert [(p.a, p.b) for p in pairs] == [(0.2, 0.7), (0.2, None), (0.2, None)]
    store.register_model(db, model_hash="abc123", name="lab-v2", metadata_json="{}", provider="CPU")
    assert store.find_models(db, "lab-v2") == ["abc123"]
    assert store.find_models(db, "abc") == ["abc123"]
    assert store.find_models(db, "m") == ["m1", "m2"]


def test_the_default_view_is_the_daemons_model_not_the_newest(db: store.Database) -> None:
    store.register_model(db, model_hash="m1", name="d", metadata_json="{}", provider="CPU")
    store.record_model_switch(db, model_hash="m1", previous_hash=None, reason="start")
    image = store.record_result(
        db,
        store.FileVersion("/x.tif", 10, 1, "hx"),
        loc(),
        store.Prediction("m1", 0.2, n_tiles=4, cam_png=b"daemon"),
    )
    store.record_predictions(db, [(image, store.Prediction("re", 0.9, cam_png=b"re"))])
    (shown,) = store.images_for_well(db, "P1", "A01")
    assert (shown.model_hash, shown.probability) == ("m1", 0.2)
    assert store.cam_png(db, image) == b"daemon"
    assert store.cam_png(db, image, model_hash="re") == b"re"
    store.record_model_switch(db, model_hash="re", previous_hash="m1", reason="SIGHUP")
    (shown,) = store.images_for_well(db, "P1", "A01")
    assert shown.model_hash == "re"  # promoted: now the default


def test_instruments_keep_their_maps_and_labels_apart(target: str) -> None:
    leica = store.open_db(target, instrument="leica")
    zeiss = store.open_db(target, instrument="zeiss")
    for db in (leica, zeiss):
        add_image(db, f"/{db.writer}.tif", loc())
        store.save_plate_map(db, PlateMap("P1", (WellLayout("A01", condition=db.writer),)), by="x")
        store.label_well(db, "P1", "A01", "excluded", by=db.writer)
    facility = store.open_db(target)
    with pytest.raises(store.StoreError, match="on 2 instruments"):
        store.plate_map(facility, "P1")
    for who in ("leica", "zeiss"):
        m = store.plate_map(facility, "P1", instrument=who)
        assert m is not None and m.wells[0].condition == who
        (lab,) = store.list_labels(facility, "P1", instrument=who)
        assert (lab.instrument, lab.created_by) == (who, who)
    images = store.labelled_images(facility, include_excluded=True)
    assert sorted((i.instrument, Path(i.path).name) for i in images) == [
        ("leica", "leica.tif"),
        ("zeiss", "zeiss.tif"),
    ]
    # a map imported from another computer before the plate's first image is still found
    store.save_plate_map(facility, PlateMap("NEW", (WellLayout("B02"),)), by="x", instrument="pc")
    assert store.plate_map(zeiss, "NEW") is not None


def test_plate_models_daemon_first(db: store.Database) -> None:
    store.register_model(db, model_hash="zz", name="daemon", metadata_json="{}", provider="CPU")
    store.record_model_switch(db, model_hash="zz", previous_hash=None, reason="start")
    store.register_model(db, model_hash="aa", name="lab", metadata_json="{}", provider="CPU")
    add_image(db, "/a.tif", loc())
    for h in ("aa", "zz"):
        store.save_well_analysis(
            db,
            "P1",
            "A01",
            model_hash=h,
            series=[store.TimePoint(0, 0.0, 0.5, None, None, 1, 4, 0.5)],
            onset=None,
            episode=0,
        )
    models = store.plate_models(db, "P1")
    assert [(m.model_hash, m.name, m.n_wells, m.daemon) for m in models] == [
        ("zz", "daemon", 1, True),
        ("aa", "lab", 1, False),
    ]


def test_comparison_input_on_both_engines(db: store.Database) -> None:
    store.register_model(db, model_hash="d", name="daemon", metadata_json="{}", provider="CPU")
    store.record_model_switch(db, model_hash="d", previous_hash=None, reason="start")
    split = {"group_by": "well", "train": {"groups": ["P1/P1/A01"]}, "val": {"groups": []}}
    store.start_reanalysis(
        db,
        model_hash="r",
        name="lab",
        metadata_json=f'{{"training": {{"split": {json.dumps(split)}}}}}',
        by="x",
    )
    for well, p in (("A01", 0.2), ("A02", 0.8)):
        image = add_image(db, f"/{well}.tif", loc(well), p, model="d")
        store.record_predictions(db, [(image, store.Prediction("r", 1 - p))])
        store.label_well(db, "P1", well, "differentiated", by="x")
    store.save_plate_map(db, PlateMap("P1", (WellLayout("A02", role="induced"),)), by="x")
    inp = store.comparison_input(db, "d", "r", plates=["P1"])
    got = [(p.well, p.a, p.b) for p in inp.pairs]
    assert got == [("A01", 0.2, pytest.approx(0.8)), ("A02", 0.8, pytest.approx(0.2))]
    assert set(inp.labels.values()) == {"differentiated"}
    assert inp.b.name == "lab (r)" and ("P1", "A01") in inp.b.seen
    assert set(inp.plate_maps) == {"P1"} and inp.clock == {"P1": False}
    assert [r.model_hash for r in store.reanalyses(db)] == ["r"]

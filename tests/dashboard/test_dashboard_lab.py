"""The dashboard's lab parts (dashboard.lab) on a real database: the writes its buttons make
(label a well, mark a false alarm, undo) and the frames its Labels and Models views draw."""

from __future__ import annotations

from contextlib import closing

import pytest
from dashboard_db import PLATE, FilledDb

from dashboard import data, lab
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.compare import compare_models
from stemwatch.core.platemap import PlateMap, WellLayout

H = 3600.0


def test_label_false_alarm_and_undo_through_the_dashboards_writes(filled_db: FilledDb) -> None:
    path = filled_db.path
    with closing(store.open_db(path, readonly=True)) as db:
        images = store.images_for_well(db, PLATE, "A01")
        (alert,) = [a for a in store.list_alerts(db) if a.kind == "onset"]
        tb = data.time_base(next(p for p in store.list_plates(db) if p.plate == PLATE))
    starts = lab.time_point_starts(images)
    assert starts == [tp * 6 * H for tp in range(6)]
    first = lab.label_well(path, PLATE, "A01", "undifferentiated", by="ana")
    later = lab.label_well(
        path, PLATE, "A01", "excluded", by="ben", from_time_s=starts[4], note="bubble"
    )
    fa = lab.mark_false_alarm(path, alert.id, by="cat")
    assert (fa.well, fa.label, fa.alert_id) == (filled_db.onset_well, "undifferentiated", alert.id)
    with pytest.raises(store.StoreError, match="already marked"):
        lab.mark_false_alarm(path, alert.id, by="cat")
    with closing(store.open_db(path, readonly=True)) as db:
        labels = store.list_labels(db, PLATE)
        marks = store.false_alarms(db)
        (acked,) = [a for a in store.list_alerts(db) if a.id == alert.id]
    assert lab.false_alarm_text(acked, marks) == f"false alarm (label #{fa.id}, by cat)"
    assert acked.acknowledged_by == "cat"
    frame = lab.labels_frame(labels, tb)
    assert list(frame["#"]) == [fa.id, later.id, first.id]
    assert list(frame["From (h)"])[1] == pytest.approx(24.0)
    assert set(frame["State"]) == {"active"}
    lab.undo_label(path, later.id, by="ben")
    with closing(store.open_db(path, readonly=True)) as db:
        states = {lab_.id: lab.label_state(lab_) for lab_ in store.list_labels(db, PLATE)}
    assert states[later.id] == "undone by ben"


def test_plate_map_groups_and_model_frames(filled_db: FilledDb) -> None:
    layout = PlateMap(
        PLATE,
        (
            WellLayout(
                "A01", condition="maintenance", role="maintenance", attributes={"line": "R1"}
            ),
            WellLayout(
                "B02",
                condition="EpiLC",
                role="induced",
                induction_s=6 * H,
                induction_basis="elapsed",
            ),
            WellLayout("C03", condition="maintenance", role="maintenance"),
        ),
    )
    assert lab.conditions(layout) == {"A01": "maintenance", "B02": "EpiLC", "C03": "maintenance"}
    assert lab.conditions(layout, "line") == {"A01": "R1", "B02": "(none)", "C03": "(none)"}
    assert lab.group_keys(layout) == ["condition", "role", "line"]
    assert lab.conditions(None) == {} and lab.group_keys(None) == []
    with closing(store.open_db(filled_db.path)) as db:
        store.save_plate_map(db, layout, by="ana")
        daemon = store.daemon_model_hash(db)
        assert daemon is not None
        # a second model: the same predictions shifted up (a re-analysis would store them)
        for well in ("A01", "B02", "C03"):
            images = store.images_for_well(db, PLATE, well)
            store.record_predictions(
                db,
                [
                    (i.id, store.Prediction("other", min(1.0, (i.probability or 0) + 0.3)))
                    for i in images
                ],
            )
            update_well(db, PLATE, well, OnsetConfig(), model_hash="other")
        models = store.plate_models(db, PLATE)
        assert [m.daemon for m in models] == [True, False]
        assert lab.model_label(models[0]).endswith("· the daemon's")
        tb = data.time_base(next(p for p in store.list_plates(db) if p.plate == PLATE))
        both = lab.two_series_frame(
            {
                "A": store.well_series(db, PLATE, "A01", model_hash=daemon),
                "B": store.well_series(db, PLATE, "A01", model_hash="other"),
            },
            tb,
        )
        assert set(both["model"]) == {"A", "B"} and len(both) == 12
        c = compare_models(store.comparison_input(db, daemon, "other", plates=[PLATE]))
    diffs = lab.onset_differences_frame(c, tb)
    assert list(diffs["Well"]) == ["B02"]  # both flag B02; B's rise starts earlier
    assert str(diffs["Difference"][0]).startswith("-")
    assert lab.accuracy_frame(c) is None  # no labels yet
    figures = lab.onset_figures_frame(c)
    assert figures is not None and next(iter(figures["Figure"])) == "induced wells detected (of 1)"

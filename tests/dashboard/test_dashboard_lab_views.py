"""Issue 10 in the dashboard, run by Streamlit's AppTest on real databases: label a well and
mark a false alarm with the Labels view's controls, undo; the plate map on the plate view
and as the compare view's groups; the model chooser; two models side by side."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
from dashboard_db import PLATE, FilledDb
from test_dashboard_app import page_text, plate_cells, run_app
from test_dashboard_views import chart_using, goto

from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.platemap import PlateMap, WellLayout

H = 3600.0
OTHER = "fe" * 32  # a second model's hash


def labels_of(db: Path) -> list[store.LabelRecord]:
    with closing(store.open_db(db, readonly=True)) as conn:
        return store.list_labels(conn, PLATE)


def test_labels_view_labels_a_well_marks_a_false_alarm_and_undoes(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = goto(run_app(filled_db.path, monkeypatch), "labels")
    at.text_input(key="ack_by").input("ana").run()
    at.selectbox(key="lab_well").select("A01").run()
    at.radio(key="lab_label").set_value("excluded").run()
    at.selectbox(key="lab_from").select("from 24.0 h on").run()
    at.text_input(key="lab_note").input("bubble").run()
    at.button(key="lab_record").click().run()
    assert not at.exception, at.exception
    (first,) = labels_of(filled_db.path)
    assert (first.well, first.label, first.from_time_s, first.to_time_s) == (
        "A01",
        "excluded",
        24 * H,
        None,
    )
    assert (first.created_by, first.note, first.source) == ("ana", "bubble", "dashboard")
    assert f"Label #{first.id}" in " ".join(str(s.value) for s in at.success)

    # the onset alert of B02 marked as a false alarm through its button
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        (alert,) = [a for a in store.list_alerts(conn) if a.kind == "onset"]
    at.button(key=f"fa_{alert.id}").click().run()
    assert not at.exception, at.exception
    fa = labels_of(filled_db.path)[0]
    assert (fa.well, fa.label, fa.source, fa.alert_id, fa.created_by) == (
        filled_db.onset_well,
        "undifferentiated",
        "false-alarm",
        alert.id,
        "ana",
    )
    assert not [b for b in at.button if b.key == f"fa_{alert.id}"]  # marked: no button
    assert f"false alarm (label #{fa.id}, by ana)" in page_text(at)

    # the history lists both; undo the first
    table = at.dataframe[0].value
    assert list(table["#"]) == [fa.id, first.id] and set(table["By"]) == {"ana"}
    at.selectbox(key="lab_undo").select(first.id).run()
    at.button(key="lab_undo_btn").click().run()
    assert not at.exception, at.exception
    undone = next(x for x in labels_of(filled_db.path) if x.id == first.id)
    assert (undone.active, undone.undone_by) == (False, "ana")
    assert len(labels_of(filled_db.path)) == 2  # nothing deleted


def with_plate_map(db: Path) -> None:
    with closing(store.open_db(db)) as conn:
        store.save_plate_map(
            conn,
            PlateMap(
                PLATE,
                (
                    WellLayout("A01", condition="maintenance", role="maintenance"),
                    WellLayout(
                        "B02",
                        condition="EpiLC",
                        role="induced",
                        induction_s=6 * H,
                        induction_basis="elapsed",
                    ),
                    WellLayout("C03", condition="maintenance", role="maintenance"),
                ),
            ),
            by="ana",
        )


def test_the_plate_map_on_the_plate_view_and_as_compare_groups(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_plate_map(filled_db.path)
    at = run_app(filled_db.path, monkeypatch)
    cells = plate_cells(at).set_index("well")
    assert (cells.loc["A01", "Condition"], cells.loc["B02", "Condition"]) == (
        "maintenance",
        "EpiLC",
    )  # on hover
    assert cells.loc["B02", "condition"] == "EpiLC"  # in the cell, under its value
    assert "Plate map: maintenance (2 wells), EpiLC (1 well)" in page_text(at)
    assert "condition: EpiLC · induced · induced at 6 h" in page_text(at)  # the chosen well B02
    at = goto(at, "compare")
    assert at.selectbox(key="cmp_preset").value == "plate map: condition"
    curves = chart_using(at, "group")[-1][1]
    assert list(dict.fromkeys(curves["group"])) == ["maintenance", "EpiLC"]
    assert curves[curves["group"] == "maintenance"]["n_wells"].tolist() == [2] * 6


def reanalysed(db: Path) -> None:
    """A second model's predictions, series and onsets on PLATE (as a re-analysis stores
    them): every image scored 0.3 higher."""
    with closing(store.open_db(db)) as conn:
        store.start_reanalysis(conn, model_hash=OTHER, name="lab-v1", metadata_json="{}", by="x")
        for well in ("A01", "B02", "C03"):
            images = store.images_for_well(conn, PLATE, well)
            store.record_predictions(
                conn,
                [
                    (i.id, store.Prediction(OTHER, min(1.0, (i.probability or 0.0) + 0.3)))
                    for i in images
                ],
            )
            update_well(conn, PLATE, well, OnsetConfig(), model_hash=OTHER)


def test_models_view_and_the_model_shown(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = goto(run_app(filled_db.path, monkeypatch), "models")
    assert "Only one model has scored this plate" in page_text(at)
    reanalysed(filled_db.path)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="mdl_b").value == OTHER
    same = next(m for m in at.metric if m.label == "Images on the same side")
    assert 0.0 <= float(same.value) <= 1.0
    assert "Wells where the onset differs" in page_text(at)
    assert "95 % intervals over wells" in page_text(at)
    # on a well: both models' curves and their onsets
    at.selectbox(key="mdl_well").select("B02").run()
    layers = chart_using(at, "model")
    models = set(layers[1][1]["model"])
    assert len(models) == 2 and any("lab-v1" in m for m in models)
    assert len(layers[-1][1]) == 2  # an onset rule per model

    # the sidebar's model chooser: the plate view shows the re-analysis
    at = goto(at, "plate")
    daemon_grid = plate_cells(at).set_index("well")["probability"]
    at.selectbox(key="shown_model").select(OTHER).run()
    assert not at.exception, at.exception
    other_grid = plate_cells(at).set_index("well")["probability"]
    assert other_grid["A01"] == pytest.approx(min(1.0, daemon_grid["A01"] + 0.3), abs=0.02)
    assert "Shown: a re-analysis" in page_text(at)

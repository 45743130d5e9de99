"""The dashboard marks images left out of the series (issue 9, item 3): wells whose newest images
lie outside the model's training domain or are bad frames on the plate view, the left-out
points of a well's series and why, and the domain alert and counts on the Instrument page.
Streamlit's AppTest on a real database written through the daemon's own write path."""

from __future__ import annotations

import io
from contextlib import closing

import numpy as np
import pytest
from dashboard_db import BLANK, ONE_FIELD, OUTSIDE, PLATE, FilledDb
from PIL import Image
from test_dashboard_app import chart_layers, metric, page_text, run_app
from test_dashboard_views import chart_using, goto

from dashboard import data, export
from stemwatch import store


def _mark(layer: dict) -> dict:
    mark = layer.get("mark", {})
    return {"type": mark} if isinstance(mark, str) else mark


def test_plate_view_marks_wells_whose_latest_images_are_left_out(
    flagged_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(flagged_db.path, monkeypatch)
    layers = chart_layers(at, "plate_chart")
    grid = layers[0][1].set_index("well")
    outside, blank, one = grid.loc[OUTSIDE], grid.loc[BLANK], grid.loc[ONE_FIELD]
    # not coloured as a probability: no value, the reason instead, the last counted kept
    assert np.isnan(outside["probability"]) and outside["excluded"] == "domain"
    assert outside["last_counted"] == pytest.approx(0.1)
    assert outside["status"] == (
        "latest images outside the model's training domain (2 of 2; domain score up to 2.8)"
    )
    assert np.isnan(blank["probability"]) and blank["excluded"] == "quality"
    assert blank["status"] == "latest frames not analysed (blank: every pixel is 0)"
    assert one["probability"] == pytest.approx(0.1) and one["excluded"] == ""
    assert one["left_out"] == "1 image left out: 1 outside the model's training domain"
    assert outside["left_out"] == "4 images left out: 4 outside the model's training domain"
    # the coloured layer leaves them out (no probability: grey, the no-data colour); a dashed
    # layer frames exactly them
    coloured = [d for lyr, d in layers if lyr.get("encoding", {}).get("color", {}).get("field")]
    assert set(coloured[0].dropna(subset=["probability"])["well"]) == {
        "A01",
        "B02",
        "C03",
        ONE_FIELD,
    }
    (framed,) = [d for lyr, d in layers if _mark(lyr).get("strokeDash")]
    assert sorted(framed["well"]) == [OUTSIDE, BLANK]
    labels = next(d for lyr, d in layers if _mark(lyr).get("type") == "text").set_index("well")
    assert (labels.loc[OUTSIDE, "label"], labels.loc[BLANK, "label"]) == ("OOD", "bad")
    text = page_text(at)
    assert "**OOD**: its latest images lie outside the model's training domain" in text
    assert "**bad**: its latest frames are blank, saturated or NaN" in text
    (warning,) = [w for w in at.warning if "left out" in str(w.value)]
    assert warning.value.startswith("7 images of this plate are left out of the wells' series")
    assert "5 outside the model's training domain, 2 bad frames" in warning.value


def test_well_view_shows_which_points_were_left_out_and_why(
    flagged_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(flagged_db.path, monkeypatch)
    at.selectbox(key="well").select(OUTSIDE).run()
    assert not at.exception, at.exception
    assert metric(at, "Left out") == "4"
    assert metric(at, "Latest P(differentiated)") == "0.10"  # the outside points did not count
    layers = chart_using(at, "mean")
    line = next(d for lyr, d in layers if _mark(lyr).get("type") == "line" and "mean" in str(lyr))
    assert line["time_h"].tolist() == [0.0, 6.0, 12.0]  # 18 h and 24 h are left out
    (left_out,) = [d for lyr, d in layers if "shape" in lyr.get("encoding", {})]
    assert sorted(left_out["time_h"]) == [18.0, 18.0, 24.0, 24.0]
    assert set(left_out["kind"]) == {"domain"}
    assert "outside the model's training domain (domain score 3.2)" in set(left_out["why"])
    assert sorted(left_out["y"]) == pytest.approx([0.9, 0.9, 0.95, 0.95])
    dots = next(d for lyr, d in layers if _mark(lyr).get("type") == "circle")
    assert dots["time_h"].max() == 12.0  # the field dots show only what counted
    assert "orange ×: images outside the model's training domain" in page_text(at)
    images = at.dataframe[-1].value.set_index("File")
    note = images.loc[f"{PLATE}_{OUTSIDE}_f1_t03.tif", "Note"]
    assert "left out of the series: outside the model's training domain (domain score 3.2)" in note
    assert images.loc[f"{PLATE}_{OUTSIDE}_f1_t01.tif", "Note"] == ""

    at.selectbox(key="well").select(BLANK).run()
    assert not at.exception, at.exception
    layers = chart_using(at, "mean")
    (left_out,) = [d for lyr, d in layers if "shape" in lyr.get("encoding", {})]
    assert set(left_out["kind"]) == {"quality"} and set(left_out["y"]) == {0.0}
    assert set(left_out["why"]) == {"not analysed: blank: every pixel is 0"}
    assert "orange ▲ at 0: frames not analysed (blank, saturated or NaN)" in page_text(at)


def test_instrument_page_shows_the_domain_alert_and_counts(
    flagged_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = goto(run_app(flagged_db.path, monkeypatch), "instrument")
    (alert,) = [e.value for e in at.error if "Domain alert" in str(e.value)]
    assert "Images from plate P1 do not look like model resnet-tiny-v1's training data" in alert
    assert "Train a model on your own images: docs/domain-check.md" in alert
    frames = {tuple(d.value.columns): d.value for d in at.dataframe}
    per_plate = frames[tuple(data.domain_frame([], now=0).columns)].set_index("Plate")
    assert per_plate.loc[PLATE, "Outside the domain"] == 5
    assert per_plate.loc[PLATE, "Bad frames"] == 2
    assert PLATE in per_plate.index and "P3" not in per_plate.index  # P3 has nothing left out
    newest = frames[("File", "Plate", "Well", "Field", "Why", "When")]
    assert len(newest) == 7 and set(newest["Well"]) == {OUTSIDE, BLANK, ONE_FIELD}
    assert "not analysed: blank: every pixel is 0" in set(newest["Why"])
    text = page_text(at)
    assert "**5** images outside the model's training domain and **2** bad frames" in text
    # images scored by a model without a domain description are said to be unchecked
    assert "Not checked against a training domain" in text and "P3" in text


def test_an_acknowledged_domain_alert_is_no_longer_raised_on_the_page(
    flagged_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closing(store.open_db(flagged_db.path)) as conn:
        (alert,) = store.list_alerts(conn, kind="domain")
        store.acknowledge_alert(conn, alert.id, by="ana")
    at = goto(run_app(flagged_db.path, monkeypatch), "instrument")
    assert not [e for e in at.error if "Domain alert" in str(e.value)]
    assert "1 earlier domain alert acknowledged" in page_text(at)


def test_a_database_without_flags_says_nothing_is_left_out(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    assert not at.warning
    grid = chart_layers(at, "plate_chart")[0][1]
    assert set(grid["excluded"]) == {""}
    assert "OOD" not in page_text(at)
    at = goto(at, "instrument")
    text = page_text(at)
    assert "Not checked against a training domain" in text  # the filled model has none
    assert "Domain alert" not in text


def test_the_plate_png_marks_left_out_wells_apart_from_the_colour_scale(
    flagged_db: FilledDb,
) -> None:
    tb = data.TimeBase(0.0, "Time (h)")
    with closing(store.open_db(flagged_db.path, readonly=True)) as conn:
        wells = store.well_summary(conn, PLATE)
        flags = store.well_flags(conn, PLATE)
    marked, layout = data.plate_grid(wells, tb, flags)
    plain, _ = data.plate_grid(wells, tb)
    assert export.EXCLUDED in _colours(export.plate_png(marked, layout))  # the orange frames
    assert export.EXCLUDED not in _colours(export.plate_png(plain, layout))


def _colours(png: bytes) -> set[tuple[int, ...]]:
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return {tuple(int(v) for v in c) for c in np.unique(px, axis=0)}

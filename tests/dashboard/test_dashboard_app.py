"""The Streamlit page, run by Streamlit's AppTest on real SQLite databases."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tifffile
from dashboard_db import DAEMON_QUEUE, OTHER_PLATE, OTHER_WELLS, PLATE, FilledDb
from streamlit.testing.v1 import AppTest

from dashboard import figures
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.platemeta import ImageLocation

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def run_app(db: Path | str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("STEMWATCH_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def chart_layers(at: AppTest, key: str | None) -> list[tuple[dict, pd.DataFrame]]:
    """Each layer of the Vega-Lite chart with this widget key (None: the unkeyed chart) with
    the rows Streamlit sent for it."""
    charts = [c for c in at.get("vega_lite_chart") if getattr(c, "key", None) == key]
    assert len(charts) == 1, f"expected one chart with key {key!r}, found {len(charts)}"
    proto = charts[0].proto
    spec = json.loads(proto.spec)
    data = {ds.name: pa.ipc.open_stream(ds.data.data).read_pandas() for ds in proto.datasets}
    return [(layer, data.get(layer["data"]["name"], pd.DataFrame())) for layer in spec["layer"]]


def series_chart(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    return chart_layers(at, None)


def metric(at: AppTest, label: str) -> str:
    """The figure named ``label`` (a ``st.metric``, or one of a row of figures)."""
    found = [str(m.value) for m in at.metric if m.label == label]
    for block in at.get("html"):
        value = figures.read(block.proto.body).get(label)
        if value is not None:
            found.append(value)
    (value,) = found
    return value


def page_text(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.markdown, *at.caption, *at.info, *at.error)]
    return "\n".join(str(p) for p in parts)


def test_plate_view_colours_every_well_by_its_latest_probability(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    assert f"Plate {PLATE}" in at.title[0].value
    assert at.selectbox(key="plate").value == PLATE
    layers = chart_layers(at, "plate_chart")
    grid = layers[0][1]  # the background layer holds every well of the layout
    assert len(grid) == 12  # A01, B02, C03 fit a 12-well (3 x 4) plate
    imaged = grid.dropna(subset=["probability"]).set_index("well")
    assert sorted(imaged.index) == ["A01", "B02", "C03"]
    # latest per-well value: median of the two fields at 30 h
    assert imaged.loc["B02", "probability"] == pytest.approx(0.92, abs=1e-6)
    assert imaged.loc["A01", "probability"] == pytest.approx(0.09, abs=1e-6)
    assert imaged.loc["B02", "onset"] and not imaged.loc["A01", "onset"]
    legend_titles = [
        layer["encoding"]["color"].get("title")
        for layer, _ in layers
        if "color" in layer.get("encoding", {}) and "field" in layer["encoding"]["color"]
    ]
    assert "P(differentiated)" in legend_titles
    assert metric(at, "Wells with onset") == "1"


def test_plate_figures_count_this_plate_only(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    assert (metric(at, "Images analysed"), metric(at, "Failed")) == ("36", "0")
    at.selectbox(key="plate").select(OTHER_PLATE).run()
    assert not at.exception, at.exception
    n_other = 2 * len(OTHER_WELLS)
    assert (metric(at, "Images analysed"), metric(at, "Failed")) == (str(n_other), "1")


def test_queued_is_the_daemons_own_queue_while_it_runs(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 12): "Queued" counted status='queued' rows, which are never committed."""
    at = run_app(filled_db.path, monkeypatch)
    assert metric(at, "Queued") == str(DAEMON_QUEUE)
    with closing(store.open_db(filled_db.path)) as conn:  # the daemon went away an hour ago
        store.beat(conn, state="running", queued=3, interval_s=10.0, now=time.time() - 3600)
    at = run_app(filled_db.path, monkeypatch)
    assert metric(at, "Queued") == "–"


def test_well_with_onset_is_shown_first_with_its_onset_rule(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    assert at.selectbox(key="well").value == "B02"
    assert metric(at, "Onset") == "at 18.0 h"
    layers = series_chart(at)
    rules = [
        df
        for layer, df in layers
        if layer["mark"]["type"] == "rule" and "x" in layer.get("encoding", {})
    ]
    assert len(rules) == 1 and rules[0]["time_h"].tolist() == [pytest.approx(18.0)]
    x_titles = {
        layer["encoding"]["x"].get("title")
        for layer, _ in layers
        if "x" in layer.get("encoding", {})
    }
    assert "Time (h)" in x_titles


def test_selecting_a_well_shows_its_series_and_images(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    at.selectbox(key="well").select("A01").run()
    assert not at.exception, at.exception
    assert any(s.value == "Well A01" for s in at.subheader)
    assert metric(at, "Onset") == "none"
    line = [df for layer, df in series_chart(at) if layer["mark"]["type"] == "line"]
    means = line[-1]["mean"].tolist()
    assert means == pytest.approx([0.05, 0.08, 0.06, 0.10, 0.07, 0.09], abs=1e-6)
    assert line[-1]["time_h"].tolist() == pytest.approx([0, 6, 12, 18, 24, 30])
    assert not any(layer["mark"]["type"] == "rule" for layer, _ in series_chart(at))
    assert len(at.dataframe[-1].value) == 8  # the newest 8 by default
    at.selectbox(key="image_rows").select("newest 30").run()
    images = at.dataframe[-1].value
    assert len(images) == 12
    assert images["Image"].notna().all() and images["Activation"].notna().all()
    assert images["Image"].str.startswith("data:image/png;base64,").all()
    assert images["Activation"].str.startswith("data:image/png;base64,").all()


def test_missing_image_file_is_a_note_not_an_error(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    at.selectbox(key="well").select("C03").run()
    at.selectbox(key="image_rows").select("newest 30").run()
    assert not at.exception, at.exception
    images = at.dataframe[-1].value.set_index("File")
    gone = images.loc[filled_db.missing_file.name]
    assert gone["Image"] is None or pd.isna(gone["Image"])
    assert "missing" in gone["Note"]
    assert images.drop(index=filled_db.missing_file.name)["Image"].notna().all()


def test_acknowledging_an_alert_writes_the_database(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        alerts = store.list_alerts(conn, unacknowledged_only=True)
    assert {a.kind for a in alerts} == {"onset", "stall"}
    onset_alert = next(a for a in alerts if a.kind == "onset")
    at.text_input(key="ack_by").input("dr. jones")
    # the plate page lists its alerts and acknowledges the one chosen in its box
    picker = at.selectbox(key="ack_pick")
    assert len(picker.options) == len(alerts) and all(
        any(o.endswith(f"(#{a.id})") for o in picker.options) for a in alerts
    )  # every open alert can be chosen
    picker.set_value(onset_alert.id)
    at.button(key="ack_picked").click().run()
    assert not at.exception, at.exception
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        after = {a.id: a for a in store.list_alerts(conn)}
    assert after[onset_alert.id].acknowledged_by == "dr. jones"
    assert after[onset_alert.id].acknowledged_at is not None
    assert all(a.acknowledged_at is None for a in after.values() if a.id != onset_alert.id)
    # the page no longer offers to acknowledge it, and counts one open alert
    assert [
        o for o in at.selectbox(key="ack_pick").options if o.endswith(f"(#{onset_alert.id})")
    ] == []
    assert any("Alerts (1 open)" in s.value for s in at.subheader)
    # the Alerts view acknowledges each card by its own button
    stall = next(a for a in alerts if a.kind == "stall")
    at.radio(key="view").set_value("alerts").run()
    at.button(key=f"ack_{stall.id}").click().run()
    assert not at.exception, at.exception
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        assert all(a.acknowledged_by == "dr. jones" for a in store.list_alerts(conn))


def test_onset_reset_button_rearms_the_well(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    at.button(key=f"reset_{PLATE}_B02").click().run()
    assert not at.exception, at.exception
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        (onset,) = store.list_onsets(conn, PLATE)
        summary = {w.well: w for w in store.well_summary(conn, PLATE)}
    assert onset.well == "B02" and onset.reset_at is not None
    assert not summary["B02"].onset
    assert metric(at, "Wells with onset") == "0"
    assert metric(at, "Onset") == "none"


def test_sidebar_shows_daemon_heartbeat_and_model(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    sidebar = "\n".join(str(m.value) for m in at.sidebar.markdown)
    assert "alive" in sidebar
    assert "resnet-tiny-v1" in sidebar and "CPUExecutionProvider" in sidebar


def test_empty_database_explains_how_to_start_the_daemon(
    empty_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(empty_db, monkeypatch)
    text = page_text(at)
    assert "holds no analysed images yet" in text and "stemwatch watch" in text
    sidebar = "\n".join(str(m.value) for m in at.sidebar.markdown)
    assert "stale" in sidebar  # the fixture's last heartbeat is an hour old


def test_missing_database_explains_how_to_start_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "not-yet.db"
    at = run_app(db, monkeypatch)
    text = page_text(at)
    assert f"no database at `{db}`" in text and "stemwatch watch" in text
    assert not db.exists()  # the dashboard never creates it


def test_a_file_that_is_not_a_database_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 100)
    at = run_app(bogus, monkeypatch)
    assert len(at.error) == 1 and str(bogus) in at.error[0].value


def test_switching_plates_shows_the_other_plate(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = filled_db.image_dir / "P2_D05.tif"
    tifffile.imwrite(image, np.full((32, 32), 500, dtype=np.uint16))
    with closing(store.open_db(filled_db.path)) as conn:
        loc = ImageLocation(plate="P2", well="D05", field=1, timepoint=0, time_s=0.0, source="test")
        store.record_result(
            conn,
            store.FileVersion(str(image), image.stat().st_size, image.stat().st_mtime_ns),
            loc,
            store.Prediction("m", 0.3, tile_mean=0.3, tile_sd=0.0, n_tiles=1),
        )
        update_well(conn, "P2", "D05", OnsetConfig(), model_hash="m")
    at = run_app(filled_db.path, monkeypatch)
    assert at.selectbox(key="plate").options == [
        "P1  (1 onset)",
        "P2  (0 onsets)",
        "P3  (0 onsets)",
    ]
    at.selectbox(key="plate").select("P2").run()
    assert not at.exception, at.exception
    assert "Plate P2" in at.title[0].value
    assert at.selectbox(key="well").value == "D05"
    assert metric(at, "Latest P(differentiated)") == "0.30"
    assert "no activation maps" in page_text(at)

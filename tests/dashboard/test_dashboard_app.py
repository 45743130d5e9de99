"""The Streamlit page, run by Streamlit's AppTest on real SQLite databases."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tifffile
from dashboard_db import DAEMON_QUEUE, OTHER_PLATE, OTHER_WELLS, PLATE, FilledDb
from streamlit.testing.v1 import AppTest

from dashboard import drawing, figures, tables
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
    the rows Streamlit sent for it (the views other than the plate page draw with Altair)."""
    charts = [c for c in at.get("vega_lite_chart") if getattr(c, "key", None) == key]
    assert len(charts) == 1, f"expected one chart with key {key!r}, found {len(charts)}"
    proto = charts[0].proto
    spec = json.loads(proto.spec)
    data = {ds.name: pa.ipc.open_stream(ds.data.data).read_pandas() for ds in proto.datasets}
    return [(layer, data.get(layer["data"]["name"], pd.DataFrame())) for layer in spec["layer"]]


def drawn(at: AppTest, key: str) -> str:
    """The markup of the server-drawn figure with this key (:mod:`dashboard.blocks`)."""
    found = [e for e in at.get("bidi_component") if getattr(e, "key", None) == key]
    assert len(found) == 1, f"expected one drawing with key {key!r}, found {len(found)}"
    return str(json.loads(found[0].proto.json)["html"])


def plate_cells(at: AppTest, key: str = "plate_chart") -> pd.DataFrame:
    """The wells of the plate drawn with ``key`` as shown (:func:`dashboard.drawing.read_plate`)."""
    return drawing.read_plate(drawn(at, key))


def series_marks(at: AppTest) -> dict[str, Any]:
    """The marks of the well's chart (:func:`dashboard.drawing.read_series`)."""
    return drawing.read_series(drawn(at, "well_series"))


def html_tables(at: AppTest) -> list[pd.DataFrame]:
    """The page's HTML tables (:mod:`dashboard.tables`), in page order, as shown."""
    return [
        tables.read(b.proto.body)
        for b in at.get("html")
        if '<table class="sw-table"' in b.proto.body
    ]


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
    cells = plate_cells(at)
    assert len(cells) == 12  # A01, B02, C03 fit a 12-well (3 x 4) plate: every well drawn
    imaged = cells.dropna(subset=["probability"]).set_index("well")
    assert sorted(imaged.index) == ["A01", "B02", "C03"]
    # latest per-well value: median of the two fields at 30 h
    assert imaged.loc["B02", "probability"] == pytest.approx(0.92, abs=1e-6)
    assert imaged.loc["A01", "probability"] == pytest.approx(0.09, abs=1e-6)
    assert (imaged.loc["B02", "text"], imaged.loc["A01", "text"]) == ("0.92", "0.09")
    assert imaged.loc["B02", "onset"] and not imaged.loc["A01", "onset"]
    assert imaged.loc["B02", "selected"]  # the well shown below is framed
    assert "P(differentiated)" in drawn(at, "plate_chart")  # the colour bar's title
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
    marks = series_marks(at)
    assert marks["onset_h"] == pytest.approx(18.0) and marks["onset_label"] == "onset 18.0 h"
    assert marks["x_title"] == "Time (h)"
    onsets = html_tables(at)[0]  # the plate's onsets, as the table shows them
    assert onsets.to_dict("records") == [
        # on 0.80, k 2: the second point in a row at or above 0.80 is 30 h (0.85 at 24 h, 0.92)
        {"Well": "B02", "Onset (h)": "18.0", "Detected at (h)": "30.0", "Smoothed P": "0.92"}
    ]


def test_selecting_a_well_shows_its_series_and_images(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = run_app(filled_db.path, monkeypatch)
    at.selectbox(key="well").select("A01").run()
    assert not at.exception, at.exception
    assert any(s.value == "Well A01" for s in at.subheader)
    assert metric(at, "Onset") == "none"
    marks = series_marks(at)
    times, means = zip(*marks["mean"], strict=True)
    assert means == pytest.approx([0.05, 0.08, 0.06, 0.10, 0.07, 0.09], abs=1e-6)
    assert times == pytest.approx([0, 6, 12, 18, 24, 30])
    assert marks["onset_h"] is None and marks["markers"] == 6
    assert plate_cells(at).set_index("well").loc["A01", "selected"]
    assert len(html_tables(at)[-1]) == 8  # the newest 8 by default
    at.selectbox(key="image_rows").select("newest 30").run()
    images = html_tables(at)[-1]
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
    images = html_tables(at)[-1].set_index("File")
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


FIRST_PAGE_IMPORTS = """
import os, sys
from streamlit.testing.v1 import AppTest
os.environ["STEMWATCH_DB"] = sys.argv[1]
at = AppTest.from_file(sys.argv[2], default_timeout=60)
at.run()
assert not at.exception, at.exception
print(sorted(m for m in ("altair", "vega_datasets", "dashboard.plots") if m in sys.modules))
"""


def test_the_plate_page_leaves_altair_to_the_other_views(filled_db: FilledDb) -> None:
    """Issue 13: a fresh process (AppTest, or a server whose first visitor opens the plate
    page) does not import Altair for it; the views that chart with it import it when drawn."""
    run = subprocess.run(
        [sys.executable, "-c", FIRST_PAGE_IMPORTS, str(filled_db.path), str(APP)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"

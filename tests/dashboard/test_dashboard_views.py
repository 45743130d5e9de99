"""The dashboard's views (issue 13) run by Streamlit's AppTest on real SQLite databases."""

from __future__ import annotations

import io
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from dashboard_db import CURVES, OTHER_PLATE, PLATE, FilledDb
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_dashboard_app import html_tables, metric, page_text, plate_cells, run_app, series_marks

from monitor.alerts import Alerter, AlertsConfig
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.platemeta import ImageLocation

HOUR = 3600.0


def chart_using(at: AppTest, field: str) -> list[tuple[dict, pd.DataFrame]]:
    """The layers of the one chart that encodes ``field`` (charts without a selection carry
    no widget key in AppTest)."""
    import json

    import pyarrow as pa

    found = []
    for c in at.get("vega_lite_chart"):
        spec = json.loads(c.proto.spec)
        layers = spec.get("layer", [spec])
        if field in json.dumps([lyr.get("encoding", {}) for lyr in layers]):
            sets = {
                ds.name: pa.ipc.open_stream(ds.data.data).read_pandas() for ds in c.proto.datasets
            }
            top = spec.get("data", {}).get("name", "")
            found.append(
                [
                    (lyr, sets.get(lyr.get("data", {}).get("name", top), pd.DataFrame()))
                    for lyr in layers
                ]
            )
    assert len(found) == 1, f"{len(found)} charts encode {field!r}"
    return found[0]


def goto(at: AppTest, view: str) -> AppTest:
    at.radio(key="view").set_value(view).run()
    assert not at.exception, at.exception
    return at


def sidebar_text(at: AppTest) -> str:
    parts = [*at.sidebar.markdown, *at.sidebar.caption]
    return "\n".join(str(p.value) for p in parts)


def add_image(
    conn: store.Database, path: Path, loc: ImageLocation | None, p: float, **kw: object
) -> None:
    tifffile.imwrite(path, np.full((32, 32), 500, dtype=np.uint16))
    st = path.stat()
    store.record_result(
        conn,
        store.FileVersion(str(path), st.st_size, st.st_mtime_ns),
        loc,
        store.Prediction("ab12cd34ef56" * 4, p, tile_mean=p, tile_sd=0.0, n_tiles=1),
        **kw,  # type: ignore[arg-type]
    )


# -- safety (item 10) -----------------------------------------------------------------------


def test_a_visitor_cannot_choose_the_database(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 13, item 10): the sidebar's Database box opened any path a visitor typed."""
    at = AppTest.from_file(str(Path(run_app.__code__.co_filename).parents[2] / "dashboard/app.py"))
    monkeypatch.setenv("STEMWATCH_DB", str(filled_db.path))
    at.query_params["db"] = "/etc/shadow"
    at.run(timeout=30)
    assert not at.exception, at.exception
    assert not [t for t in at.text_input if "database" in str(t.label).lower()]
    assert f"Plate {PLATE}" in at.title[0].value  # the command line's database, nothing else


def test_images_outside_the_watched_folders_are_not_shown(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    secret = elsewhere / "P1_A04_f1_t00.tif"
    link = filled_db.image_dir / "P1_A04_f2_t00.tif"  # inside, but a link to outside
    with closing(store.open_db(filled_db.path)) as conn:
        add_image(conn, secret, ImageLocation(PLATE, "A04", 1, 0, 0.0, "test"), 0.3)
        link.symlink_to(elsewhere / "other.tif")
        tifffile.imwrite(elsewhere / "other.tif", np.full((32, 32), 9, dtype=np.uint16))
        st = link.stat()
        store.record_result(
            conn,
            store.FileVersion(str(link), st.st_size, st.st_mtime_ns),
            ImageLocation(PLATE, "A04", 2, 0, 0.0, "test"),
            store.Prediction("m", 0.3),
        )
        update_well(conn, PLATE, "A04", OnsetConfig(), model_hash="m")
    at = run_app(filled_db.path, monkeypatch)
    at.selectbox(key="well").select("A04").run()
    assert not at.exception, at.exception
    images = html_tables(at)[-1].set_index("File")
    for name in (secret.name, link.name):
        assert images.loc[name, "Image"] is None or pd.isna(images.loc[name, "Image"])
        assert "not under a watched folder" in images.loc[name, "Note"]


# -- items 4 to 8 ------------------------------------------------------------------------------


def test_activation_maps_are_explained_in_their_own_colours(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 13, item 5): the help said dark/yellow, the maps are red/blue."""
    at = run_app(filled_db.path, monkeypatch)
    help_text = "".join(b.proto.body for b in at.get("html"))  # the columns' help
    assert "Activation map: where in the image" in help_text
    text = page_text(at) + help_text
    assert "yellow" not in text
    assert ":red[red] differentiated" in text and ":blue[blue] undifferentiated" in text


def test_the_caption_describes_the_band_and_smoothing_as_drawn(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 13, item 6): a dashed smoothed line promised while it was drawn under the
    mean, and an SD 'across fields' for a well with one field."""
    with closing(store.open_db(filled_db.path)) as conn:
        for tp, p in enumerate([0.1, 0.2, 0.3]):
            add_image(
                conn,
                filled_db.image_dir / f"P1_A02_f1_t{tp:02d}.tif",
                ImageLocation(PLATE, "A02", 1, tp, tp * 6 * HOUR, "test", time_basis="elapsed"),
                p,
            )
        update_well(conn, PLATE, "A02", OnsetConfig(), model_hash="ab12cd34ef56" * 4)
    at = run_app(filled_db.path, monkeypatch)
    captions = "\n".join(c.value for c in at.caption)
    assert "± 1 SD across fields" in captions  # B02: two fields
    dashed = series_marks(at)["smoothed"]
    if dashed:
        assert "dashed: smoothed" in captions
    else:
        assert "dashed" not in captions and "coincides" in captions
    at.selectbox(key="well").select("A02").run()
    captions = "\n".join(c.value for c in at.caption)
    assert "tiles of the well's one field" in captions and "across fields" not in captions


def test_onset_alert_speaks_the_charts_clock_on_a_wall_clock_plate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 13, item 7): the alert said 'began ~2026-01-06 03:00' and 'episode 0' while
    the chart counted hours since the first image."""
    db = tmp_path / "clock.db"
    images = tmp_path / "images"
    images.mkdir()
    t0 = 1.77e9  # acquisition dates: wall-clock times
    model = "ab12cd34ef56" * 4
    with closing(store.open_db(db)) as conn:
        store.record_watched_folder(conn, images)
        store.register_model(conn, model_hash=model, name="m", metadata_json="{}", provider="CPU")
        for tp, p in enumerate(CURVES["B02"]):
            for field in (1, 2):
                t = t0 + tp * 6 * HOUR + 60 * field
                loc = ImageLocation("W1", "B02", field, tp, t, "ome", time_basis="epoch")
                add_image(conn, images / f"W1_B02_f{field}_t{tp}.tif", loc, p)
        event = update_well(conn, "W1", "B02", OnsetConfig(), model_hash=model)
        assert event is not None
        alert = Alerter(AlertsConfig(), conn).onset(event)
        assert alert is not None and "episode" not in alert.message
    at = run_app(db, monkeypatch)
    onset_h = (event.onset_time_s - t0) / HOUR
    assert metric(at, "Onset") == f"at {onset_h:.1f} h"
    card = next(m.value for m in at.markdown if "Differentiation onset in well B02" in m.value)
    assert f"began at {onset_h:.1f} h after the first image" in card
    assert "20" not in card.split("raised")[1].split("ago")[0]  # raised N ago, not a date


def test_re_acquisitions_are_explained_not_a_second_tally(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 13, item 8): '612 done' in the sidebar beside 'Images analysed 576'."""
    with closing(store.open_db(filled_db.path)) as conn:
        (first,) = [
            i
            for i in store.images_for_well(conn, PLATE, "A01")
            if i.timepoint == 0 and i.field == 1
        ]
        path = Path(first.path)
        tifffile.imwrite(path, np.full((64, 64), 1234, dtype=np.uint16))  # written again
        st = path.stat()
        loc = ImageLocation(PLATE, "A01", 1, 0, 0.0, "test", time_basis="elapsed")
        store.record_result(
            conn,
            store.FileVersion(str(path), st.st_size, st.st_mtime_ns),
            loc,
            store.Prediction("ab12cd34ef56" * 4, 0.05),
        )
        store.beat(conn, state="running", detail="37 done, 0 failed", queued=0, interval_s=60.0)
    at = run_app(filled_db.path, monkeypatch)
    assert metric(at, "Images analysed") == "36"
    assert "1 earlier version of images were replaced by a re-acquisition" in page_text(at)
    assert "done" not in sidebar_text(at)
    goto(at, "instrument")
    text = page_text(at)
    assert "37 done" in text and "1 earlier versions replaced by re-acquisitions" in text


# -- must-haves: compare, replay, export, plates, instrument -----------------------------------


def test_compare_starts_with_onset_against_the_rest_and_takes_groups_by_hand(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = goto(run_app(filled_db.path, monkeypatch), "compare")
    layers = chart_using(at, "group")
    curves = layers[-1][1]
    assert set(curves["group"]) == {"onset detected", "no onset"}
    onset = curves[curves["group"] == "onset detected"]
    b02 = np.median([[p + 0.03, p - 0.03] for p in CURVES["B02"]], axis=1)
    assert onset["mean"].tolist() == pytest.approx(b02.tolist(), abs=1e-6)
    rest = curves[curves["group"] == "no onset"]
    assert rest["n_wells"].tolist() == [2] * 6  # A01 and C03
    assert (rest["upper"] - rest["mean"]).gt(0).all()  # a band across wells

    # by hand, across plates: P1's A01 against P3's two wells
    at.selectbox(key="cmp_preset").select("by hand").run()
    at.number_input(key="cmp_n").set_value(2).run()
    at.text_input(key="cmp_name_0").input("maintenance").run()
    at.multiselect(key="cmp_wells_0").select("A01").run()
    at.text_input(key="cmp_name_1").input("other plate").run()
    at.selectbox(key="cmp_plate_1").select(OTHER_PLATE).run()
    at.multiselect(key="cmp_wells_1").select("A01").select("A02").run()
    assert not at.exception, at.exception
    curves = chart_using(at, "group")[-1][1]
    assert list(dict.fromkeys(curves["group"])) == ["maintenance", "other plate"]
    other = curves[curves["group"] == "other plate"]
    assert other["n_wells"].tolist() == [2] and other["mean"].tolist() == pytest.approx([0.1])


def test_replay_shows_the_plate_as_it_was(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = goto(run_app(filled_db.path, monkeypatch), "replay")
    slider = at.select_slider(key="replay_idx")
    assert len(slider.options) == 6 and slider.value == 5  # opens at the latest time point
    grid = plate_cells(at, "replay_chart").set_index("well")
    assert grid.loc["B02", "onset"]
    slider.set_value(2).run()
    grid = plate_cells(at, "replay_chart").set_index("well")
    assert grid.loc["B02", "probability"] == pytest.approx(0.20, abs=1e-6)  # at 12 h
    assert not grid.loc["B02", "onset"]  # not flagged yet
    assert "12.0 h" in page_text(at) and "time point 3 of 6" in page_text(at)
    at.button(key="replay_play").click().run()
    assert not at.exception, at.exception
    assert at.session_state["replay_playing"]


def test_exports_from_a_real_database(filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import data, export

    at = run_app(filled_db.path, monkeypatch)
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"Plate (PNG)", "Time courses (CSV)", "Onsets (CSV)"} <= labels
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        (plate,) = [p for p in store.list_plates(conn) if p.plate == PLATE]
        tb = data.time_base(plate)
        courses = pd.read_csv(io.StringIO(data.courses_csv(store.plate_series(conn, PLATE), tb)))
        store_onsets = store.list_onsets(conn, PLATE)
        grid, layout = data.plate_grid(store.well_summary(conn, PLATE), tb)
    assert len(courses) == 3 * 6 and set(courses["well"]) == set(CURVES)
    b02 = courses[courses["well"] == "B02"]
    assert b02["time_h"].tolist() == pytest.approx([0, 6, 12, 18, 24, 30])
    onsets = pd.read_csv(io.StringIO(data.onsets_csv(store_onsets, tb)))
    assert onsets[["well", "onset_h"]].values.tolist() == [["B02", 18.0]]
    png = Image.open(io.BytesIO(export.plate_png(grid, layout, title="Plate P1")))
    assert png.mode == "RGB" and png.width > 200
    arr = np.asarray(png)
    assert (np.abs(arr.astype(int) - export.viridis(0.92)).sum(axis=2) < 6).sum() > 100


def test_plates_list_and_unplaced_images_with_their_reason(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closing(store.open_db(filled_db.path)) as conn:
        add_image(
            conn,
            filled_db.image_dir / "scan-0042.tif",
            None,
            0.4,
            unplaced_reason="no plate or well in 'scan-0042.tif'; tried: ome, name",
        )
    at = goto(run_app(filled_db.path, monkeypatch), "plates")
    plates = at.dataframe[0].value.set_index("Plate")
    assert list(plates.index) == [PLATE, OTHER_PLATE]
    assert plates.loc[PLATE, "Onsets"] == 1 and plates.loc[OTHER_PLATE, "Failed"] == 1
    assert plates.loc[PLATE, "Status"] == "running"  # the daemon beats, images just came
    unplaced = at.dataframe[1].value.set_index("File")
    assert "tried: ome, name" in unplaced.loc["scan-0042.tif", "Reason"]
    assert any("without a plate or well (1)" in s.value for s in at.subheader)


def test_instrument_page(filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch) -> None:
    with closing(store.open_db(filled_db.path)) as conn:
        for k in range(3):  # the queue over the last minutes
            store.beat(
                conn, state="running", queued=5 - k, interval_s=60.0, now=time.time() - 60 * k
            )
    at = goto(run_app(filled_db.path, monkeypatch), "instrument")
    text = page_text(at)
    assert "alive" in text and "resnet-tiny-v1" in text and "CPUExecutionProvider" in text
    assert str(filled_db.image_dir.resolve()) in text  # the watched folder
    assert "Domain flags" in "\n".join(s.value for s in at.subheader)
    bars = chart_using(at, "what")[0][1]
    assert bars.loc[bars["what"] == "scored", "value"].sum() == 36 + 4  # both plates, 24 h
    assert bars.loc[bars["what"] == "failed", "value"].sum() == 1
    queue = chart_using(at, "queued")[0][1]
    assert sorted(queue["queued"].tolist())[-3:] == [3, 4, 5] or len(queue) >= 3
    failures = at.dataframe[-1].value
    assert failures["Reason"].tolist() == ["truncated TIFF"]


def test_the_address_opens_a_view_and_a_plate(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEMWATCH_DB", str(filled_db.path))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard/app.py"))
    at.query_params.update({"view": "replay", "plate": OTHER_PLATE})
    at.run(timeout=30)
    assert not at.exception, at.exception
    assert at.radio(key="view").value == "replay"
    assert at.title[0].value == f"Replay · plate {OTHER_PLATE}"


def test_the_address_opens_the_well_it_names(
    filled_db: FilledDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``?well=C03`` opens C03, not the well with the newest onset (B02): the address is not
    rewritten before the plate view has read it."""
    monkeypatch.setenv("STEMWATCH_DB", str(filled_db.path))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard/app.py"))
    at.query_params.update({"view": "plate", "plate": PLATE, "well": "C03"})
    at.run(timeout=30)
    assert not at.exception, at.exception
    assert at.selectbox(key="well").value == "C03"
    assert at.query_params["well"] == "C03"


# -- a facility's database: several instruments (issue 14) -----------------------------------


def test_every_view_keeps_two_instruments_plates_of_one_name_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instruments image a plate called P1; only zeiss's B02 has an onset. Each view reads
    the chosen instrument's rows, the reset reaches zeiss's well only, and zeiss's images are
    shown only from under zeiss's own watched folder (its files lie in leica's)."""
    db = tmp_path / "facility.db"
    folders = {name: tmp_path / name for name in ("leica", "zeiss")}
    for name, folder in folders.items():
        folder.mkdir()
        with closing(store.open_db(db, instrument=name)) as conn:
            store.record_watched_folder(conn, folder)
            store.register_model(
                conn, model_hash="m", name=f"{name}-model", metadata_json="{}", provider="CPU"
            )
            for well in ("A01", "B02"):
                rising = name == "zeiss" and well == "B02"
                for tp in range(2):
                    p = 0.9 if rising and tp else 0.1
                    path = folders["leica"] / f"{name}_P1_{well}_t{tp}.tif"  # all in leica's
                    add_image(conn, path, ImageLocation("P1", well, 1, tp, tp * HOUR, "test"), p)
                series = [
                    store.TimePoint(
                        tp, tp * HOUR, 0.9 if rising and tp else 0.1, 0.0, 0.0, 1, 1, None
                    )
                    for tp in range(2)
                ]
                onset = store.NewOnset(HOUR, 1, HOUR, 1, 0.9, "elapsed") if rising else None
                store.save_well_analysis(
                    conn, "P1", well, model_hash="m", series=series, onset=onset, episode=0
                )
            if name == "zeiss":
                store.record_alert(conn, "onset", "zeiss onset", plate="P1", well="B02")
            store.beat(conn, state="watching", queued=0, interval_s=60.0)

    at = run_app(db, monkeypatch)
    assert at.selectbox(key="plate").options == ["leica · P1  (0 onsets)", "zeiss · P1  (1 onset)"]
    assert metric(at, "Wells with onset") == "0"  # leica's P1 first
    assert "Daemons (2 instruments)" in [s.value for s in at.sidebar.subheader]
    at.selectbox(key="plate").select("zeiss · P1").run()
    assert not at.exception, at.exception
    assert metric(at, "Wells with onset") == "1"
    assert any("Instrument **zeiss**" in c.value for c in at.caption)
    at.selectbox(key="well").select("B02").run()
    assert not at.exception, at.exception
    images = html_tables(at)[-1]
    assert all("not under a watched folder" in n for n in images["Note"])  # not zeiss's folder

    at.button(key="reset_P1_B02").click().run()
    assert not at.exception, at.exception
    with closing(store.open_db(db, readonly=True)) as conn:
        assert store.well_state(conn, "P1", "B02", instrument="zeiss").episode == 1
        assert store.well_state(conn, "P1", "B02", instrument="leica").episode == 0

    at.selectbox(key="plate").select("leica · P1").run()
    assert not at.exception, at.exception
    images = html_tables(at)[-1]
    assert "Note" not in images.columns  # leica's files are under leica's folder

    for view in ("compare", "replay", "plates", "instrument", "alerts"):
        goto(at, view)
    assert any("zeiss · P1 B02" in m.value for m in at.markdown)  # whose alert it is
    goto(at, "instrument")
    assert list(at.dataframe[0].value["Model"]) == ["leica-model", "zeiss-model"]
    at.selectbox(key="inst_name").select("zeiss").run()
    assert not at.exception, at.exception
    assert any("zeiss-model" in m.value for m in at.markdown)
    assert any(str(folders["zeiss"].resolve()) in m.value for m in at.markdown)
    assert not any(str(folders["leica"].resolve()) in m.value for m in at.markdown)

"""The dashboard's pure parts: store rows to frames, thumbnails, charts (plate geometry:
tests/core/test_wells.py)."""

from __future__ import annotations

import io
from contextlib import closing

import numpy as np
import pandas as pd
import pytest
import tifffile
from dashboard_db import PLATE, FilledDb
from PIL import Image

from dashboard import data, drawing, figures, palette, tables, thumbs
from stemwatch import store
from stemwatch.core.wells import PlateLayout, plate_format


def test_time_base_uses_experiment_hours_or_hours_since_first_image() -> None:
    def plate(first: float | None, basis: str | None) -> store.PlateSummary:
        return store.PlateSummary(PLATE, 1, 1, 0, first, first, None, 0, basis)  # type: ignore[arg-type]

    assert data.time_base(plate(0.0, "elapsed")).hours(7200.0) == pytest.approx(2.0)
    tb = data.time_base(plate(1.7e9, "mtime"))  # file mtimes: Unix time
    assert tb.hours(1.7e9 + 5400) == pytest.approx(1.5) and "since first image" in tb.label
    # the stored basis decides, not the size of the number (issue 12)
    dated = data.time_base(plate(5e7, "epoch"))
    assert dated.hours(5e7 + 3600) == pytest.approx(1.0) and "since first image" in dated.label
    assert data.time_base(plate(2e8, "elapsed")).label == "Time (h)"
    assert data.time_base(None).hours(None) is None


def test_frames_from_a_real_database(filled_db: FilledDb) -> None:
    with closing(store.open_db(filled_db.path, readonly=True)) as conn:
        (summary,) = [p for p in store.list_plates(conn) if p.plate == PLATE]
        tb = data.time_base(summary)
        grid, layout = data.plate_grid(store.well_summary(conn, PLATE), tb)
        series = data.series_frame(store.well_series(conn, PLATE, "B02"), tb)
        images = data.images_frame(store.images_for_well(conn, PLATE, "B02"), tb)
    assert layout.n_wells == 12 and len(grid) == 12
    b02 = grid.set_index("well").loc["B02"]
    assert b02["onset"] and b02["onset_h"] == pytest.approx(18.0) and "onset" in b02["status"]
    assert grid.set_index("well").loc["A02", "status"] == "not imaged"
    assert series["time_h"].tolist() == pytest.approx([0, 6, 12, 18, 24, 30])
    # band: mean +- SD of the two fields (+-0.03 around the curve), clipped to [0, 1]
    sd = np.std([0.03, -0.03], ddof=1)
    assert (series["upper"] - series["mean"]).tolist() == pytest.approx([sd] * 6, abs=1e-9)
    assert (series["lower"] >= 0).all() and (series["upper"] <= 1).all()
    assert len(images) == 12 and images["has_cam"].all()


def test_band_is_clipped_to_probability_range() -> None:
    point = store.SeriesPoint(PLATE, "A01", 0, 0, 0.0, 0.95, 0.2, 0.1, 2, 8, 0.9)
    frame = data.series_frame([point], data.TimeBase(0.0, "Time (h)"))
    assert frame.loc[0, "upper"] == 1.0 and frame.loc[0, "lower"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("state", "age", "interval", "expected"),
    [
        ("watching", 10.0, 10.0, "alive"),
        ("watching", 60.0, 10.0, "stale"),  # 120 s said alive; `stemwatch status` said dead
        ("watching", 100.0, 60.0, "alive"),  # a daemon that beats every minute
        ("watching", 600.0, None, "stale"),
        ("stopped", 5.0, 10.0, "stopped"),
    ],
)
def test_daemon_status(state: str, age: float, interval: float | None, expected: str) -> None:
    hb = store.Heartbeat(1, "scope-pc", state, "", at=1000.0, interval_s=interval, queued=4)
    status = data.daemon_status(hb, now=1000.0 + age)
    assert status.state == expected and status.age_s == pytest.approx(age)
    assert status.queued == (4 if expected == "alive" else None)
    assert status.state == hb.liveness(1000.0 + age)  # one rule, the store's
    assert data.daemon_status(None, now=0.0).state == "never"


def test_age_text() -> None:
    assert data.age_text(None) == "never"
    assert data.age_text(42) == "42 s ago"
    assert data.age_text(600) == "10 min ago"
    assert data.age_text(3 * 3600) == "3.0 h ago"
    assert data.age_text(3 * 86400) == "3.0 d ago"


def test_image_thumbnail_of_a_16_bit_tiff(tmp_path) -> None:
    ramp = np.tile(np.linspace(0, 4000, 640, dtype=np.uint16), (480, 1))
    path = tmp_path / "ramp.tif"
    tifffile.imwrite(path, ramp)
    png = thumbs.image_thumbnail(path, max_side=160)
    assert png is not None
    im = Image.open(io.BytesIO(png))
    assert im.mode == "L" and max(im.size) <= 160 and im.size[0] > im.size[1]
    arr = np.asarray(im)
    assert arr[:, 0].mean() < 10 and arr[:, -1].mean() > 245  # contrast stretched


def test_thumbnail_of_a_missing_or_broken_file_is_none(tmp_path) -> None:
    assert thumbs.image_thumbnail(tmp_path / "gone.tif") is None
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    assert thumbs.image_thumbnail(broken) is None


def test_activation_map_becomes_a_blocky_heatmap() -> None:
    cam = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(cam, mode="L").save(buf, format="PNG")
    out = thumbs.resize_png(buf.getvalue(), max_side=100)
    assert out is not None
    im = Image.open(io.BytesIO(out))
    assert im.size == (100, 100) and im.mode == "RGB"
    px = np.asarray(im)
    assert px[0, 0].sum() < 30 and px[0, 99][0] > 200  # dark low, bright high
    assert thumbs.resize_png(b"not a png") is None
    assert thumbs.data_uri(None) is None
    assert thumbs.data_uri(b"\x89PNG").startswith("data:image/png;base64,")


def _grid() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "well": "A01",
                "row_label": "A",
                "col": 1,
                "probability": 0.2,
                "n_images": 2,
                "onset": False,
                "onset_h": np.nan,
                "last_h": 6.0,
                "status": "no onset",
            },
            {
                "well": "A02",
                "row_label": "A",
                "col": 2,
                "probability": 0.9,
                "n_images": 2,
                "onset": True,
                "onset_h": 3.0,
                "last_h": 6.0,
                "status": "onset at 3.0 h",
            },
        ]
    )


def test_plate_drawing_colours_rings_frames_and_describes_each_well() -> None:
    svg = drawing.plate_svg(_grid(), PlateLayout(1, 2), selected="A02")
    cells = drawing.read_plate(svg).set_index("well")
    assert list(cells.index) == ["A01", "A02"]  # every well of the layout, one cell each
    assert cells.loc["A02", "probability"] == pytest.approx(0.9)
    assert cells["onset"].tolist() == [False, True]  # the red ring
    assert cells["selected"].tolist() == [False, True]  # the black frame
    assert cells.loc["A01", "text"] == "0.20" and cells.loc["A02", "text"] == "0.90"
    assert cells.loc["A02", "Status"] == "onset at 3.0 h"
    assert cells.loc["A01", "label"].startswith("Well: A01; P(differentiated): 0.20; Images: 2")
    # the fill is the probability's on the viridis scale; pickable cells are buttons
    assert f'fill="{palette.probability_colour(0.9)}"' in svg
    assert palette.probability_colour(0.9) == palette.hex_colour(palette.viridis(0.9))
    assert svg.count('role="button"') == 2 and 'aria-pressed="true"' in svg
    assert palette.PROB_TITLE in svg and 'id="sw-viridis"' in svg  # the colour bar
    replay = drawing.plate_svg(_grid(), PlateLayout(1, 2), pickable=False)
    assert 'role="button"' not in replay and 'class="sel"' not in replay


def test_plate_drawing_of_wells_not_imaged_left_out_and_with_a_condition() -> None:
    grid = _grid().assign(
        probability=[np.nan, np.nan],
        excluded=["", "domain"],
        left_out=["", "2 images left out: 2 outside the model's training domain"],
        condition=["<b>ctrl</b>", "BMP4 & FGF2, a long condition name"],
    )
    svg = drawing.plate_svg(grid, PlateLayout(1, 2), cell=60)
    cells = drawing.read_plate(svg).set_index("well")
    assert f'fill="{palette.NO_DATA_COLOR}"' in svg  # not imaged: grey, no value
    assert cells.loc["A01", "text"] == "" and cells.loc["A01", "condition"] == "<b>ctrl</b>"
    assert cells.loc["A01", "P(differentiated)"] == "none"
    assert cells.loc["A02", "dashed"] and not cells.loc["A01", "dashed"]
    assert cells.loc["A02", "text"] == "OOD"
    assert cells.loc["A02", "Left out"].startswith("2 images left out")
    assert cells.loc["A01", "Condition"] == "<b>ctrl</b>"  # escaped: text, not markup
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert cells.loc["A02", "condition"].endswith("…")  # clipped to the cell


def test_every_layout_fits_the_laptop_column() -> None:
    for n in (6, 12, 24, 48, 96, 384):
        layout = plate_format(n)
        width = drawing.cell_px(layout) * layout.cols + drawing.ROW_LABELS_W
        assert width <= 660, (n, width)


def _series(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = np.arange(n) * 6.0
    series = pd.DataFrame(
        {
            "time_h": t,
            "timepoint": np.arange(n),
            "mean": np.linspace(0.1, 0.8, n),
            "lower": np.linspace(0.0, 0.7, n),
            "upper": np.linspace(0.2, 0.9, n),
            "smoothed": np.linspace(0.1, 0.5, n),
            "n": 2,
        }
    )
    fields = pd.DataFrame(
        {"time_h": np.repeat(t, 2), "probability": 0.5, "field": np.tile([1, 2], n)}
    )
    return series, fields


def test_series_drawing_draws_the_onset_rule_only_when_there_is_one() -> None:
    series, fields = _series(2)
    with_onset = drawing.read_series(drawing.series_svg(series, fields, well="B02", onset_h=6.0))
    assert with_onset["onset_h"] == 6.0 and with_onset["onset_label"] == "onset 6.0 h"
    assert with_onset["mean"] == [(0.0, 0.1), (6.0, 0.8)]
    assert with_onset["band"] == [(0.0, 0.0, 0.2), (6.0, 0.7, 0.9)]
    assert with_onset["smoothed"] == [(0.0, 0.1), (6.0, 0.5)]
    assert len(with_onset["dots"]) == 4 and with_onset["x_title"] == "Time (h)"
    assert with_onset["label"].startswith("P(differentiated) of well B02 over time: 2 time")
    assert with_onset["label"].endswith("onset at 6.0 h")
    without = drawing.read_series(
        drawing.series_svg(series, fields, show_smoothed=False, threshold=0.5)
    )
    assert without["onset_h"] is None and without["onset_label"] is None
    assert without["smoothed"] == [] and without["threshold"] == 0.5


def test_a_long_well_series_draws_no_marker_per_time_point() -> None:
    """200 time points x 2 fields: the mean line has no marker per point (200 marks fewer,
    issue 13); each field dot names the well's mean at its time instead."""
    series, fields = _series(200)
    svg = drawing.series_svg(series, fields)
    assert drawing.read_series(svg)["markers"] == 0
    assert "Well mean: 0.10" in svg
    short = drawing.series_svg(series.head(6), fields.head(12))
    assert drawing.read_series(short)["markers"] == 6 and "Well mean" not in short


def test_tables_format_escape_and_read_back() -> None:
    frame = pd.DataFrame(
        {
            "Well": ["B02", "<i>x</i>"],
            "Onset (h)": [18.0, np.nan],
            "P": [0.92, 1.7],
            "Image": ["data:image/png;base64,AAAA", None],
        }
    )
    cols = [
        tables.Column("Well"),
        tables.Column("Onset (h)", "number", ".1f", help='the "onset"'),
        tables.Column("P", "bar", ".2f"),
        tables.Column("Image", "image"),
    ]
    block = tables.table(frame, cols, max_height=280)
    assert "<i>" not in block and "max-height: 280px" in block
    assert 'title="the &quot;onset&quot;"' in block and 'style="width: 100%"' in block
    back = tables.read(block)
    assert back.to_dict("records") == [
        {"Well": "B02", "Onset (h)": "18.0", "P": "0.92", "Image": "data:image/png;base64,AAAA"},
        {"Well": "<i>x</i>", "Onset (h)": None, "P": "1.70", "Image": None},
    ]


@pytest.mark.shared
def test_thumbnails_of_the_real_microscope_images(shared_real) -> None:
    """Palette LZW brightfield, a whole round well on black, phase-contrast time-lapse."""
    for folder in ("hipsc-colonies", "hipsc-whole-wells", "psc-timelapse"):
        path = next(
            p for p in sorted((shared_real / folder).iterdir()) if p.suffix in (".tif", ".tiff")
        )
        png = thumbs.image_thumbnail(path)
        assert png is not None, path
        arr = np.asarray(Image.open(io.BytesIO(png)))
        assert max(arr.shape) <= thumbs.THUMB_SIDE and arr.std() > 5, path


# -- issue 13: pure shaping for compare, replay, plates, safety --------------------------------


def _point(well: str, tp: int, p: float, n: int = 2, smoothed: float | None = None):
    return store.SeriesPoint(PLATE, well, tp, tp, tp * 3600.0, p, 0.05, 0.03, n, 8, smoothed)


def test_band_caption_and_smoothing_follow_the_data() -> None:
    tb = data.TimeBase(0.0, "Time (h)")
    two = data.series_frame([_point("A01", 0, 0.2), _point("A01", 1, 0.3)], tb)
    one = data.series_frame([_point("A01", 0, 0.2, n=1), _point("A01", 1, 0.3, n=1)], tb)
    mixed = data.series_frame([_point("A01", 0, 0.2, n=1), _point("A01", 1, 0.3)], tb)
    assert data.band_caption(two) == "band ± 1 SD across fields"
    assert "tiles of the well's one field" in data.band_caption(one)
    assert "at time points with one field" in data.band_caption(mixed)
    same = data.series_frame([_point("A01", 0, 0.2, smoothed=0.2)], tb)
    apart = data.series_frame(
        [_point("A01", 0, 0.2, smoothed=0.2), _point("A01", 1, 0.6, smoothed=0.4)], tb
    )
    assert not data.smoothing_visible(same) and data.smoothing_visible(apart)


def test_group_curves_average_wells_with_a_band_across_them() -> None:
    series = {
        PLATE: [
            _point(w, tp, p)
            for w, ps in {"A01": [0.1, 0.3], "A02": [0.3, 0.5]}.items()
            for tp, p in enumerate(ps)
        ],
        "P9": [_point("B01", 0, 0.9)],
    }
    groups = [
        data.WellGroup.of("induced", PLATE, ["A01", "A02"]),
        data.WellGroup(
            "mixed",
            ((PLATE, "A01"), ("P9", "B01")),
        ),
    ]
    tbs = {PLATE: data.TimeBase(0.0, "Time (h)"), "P9": data.TimeBase(0.0, "Time (h)")}
    curves = data.group_curves(groups, series, tbs)
    induced = curves[curves["group"] == "induced"]
    assert induced["mean"].tolist() == pytest.approx([0.2, 0.4])
    sd = np.std([0.1, 0.3], ddof=1)
    assert induced["upper"].tolist() == pytest.approx([0.2 + sd, 0.4 + sd])
    mixed = curves[curves["group"] == "mixed"]
    assert mixed["n_wells"].tolist() == [2, 1] and mixed["mean"].tolist()[0] == pytest.approx(0.5)
    by_condition = data.groups_from_conditions(
        PLATE, {"A01": "2i+LIF", "A02": "EpiLC", "B01": "2i+LIF"}
    )
    assert [(g.name, [w for _, w in g.members]) for g in by_condition] == [
        ("2i+LIF", ["A01", "B01"]),
        ("EpiLC", ["A02"]),
    ]


def test_replay_grid_is_the_plate_at_that_time() -> None:
    tb = data.TimeBase(0.0, "Time (h)")
    points = [_point("A01", tp, p) for tp, p in enumerate([0.1, 0.2, 0.9])]
    points += [_point("B03", 2, 0.4)]  # imaged only from 2 h on
    onset = store.OnsetRecord(1, PLATE, "A01", 0, 7200.0, 2, 7200.0, 0.0, 0.9)
    assert data.replay_times(points, tb) == [0.0, 1.0, 2.0]
    grid, layout = data.replay_grid(points, [onset], tb, 1.0)
    g = grid.set_index("well")
    assert layout.n_wells == 6 and len(grid) == 6  # A01..B03: a 6-well plate
    assert g.loc["A01", "probability"] == pytest.approx(0.2) and not g.loc["A01", "onset"]
    assert g.loc["B03", "status"] == "not imaged"
    g = data.replay_grid(points, [onset], tb, 2.0)[0].set_index("well")
    assert g.loc["A01", "onset"] and g.loc["B03", "probability"] == pytest.approx(0.4)


def test_images_are_allowed_only_under_a_watched_folder(tmp_path) -> None:
    scope = tmp_path / "scope"
    (scope / "plate1").mkdir(parents=True)
    (tmp_path / "scope-other").mkdir()
    (scope / "escape").symlink_to(tmp_path / "scope-other")
    folders = [str(scope)]
    assert data.image_allowed(scope / "plate1" / "a.tif", folders)
    assert not data.image_allowed(tmp_path / "scope-other" / "a.tif", folders)  # prefix only
    assert not data.image_allowed(scope / "escape" / "a.tif", folders)  # a link out
    assert not data.image_allowed(scope / ".." / "x.tif", folders)
    assert not data.image_allowed("/etc/shadow", folders)
    assert not data.image_allowed(scope / "plate1" / "a.tif", [])


def test_a_plate_is_running_while_images_arrive_at_its_pace() -> None:
    now = 1e6

    def plate(last_up: float, first_in: float, n_tp: int) -> store.PlateSummary:
        return store.PlateSummary(
            PLATE,
            1,
            1,
            0,
            0.0,
            1.0,
            last_up,
            0,
            "elapsed",
            first_arrival_at=first_in,
            n_timepoints=n_tp,
        )

    alive = data.DaemonStatus("alive", 5.0, "", "pc")
    assert data.plate_running(plate(now - 60, now - 600, 10), alive, now=now)
    assert not data.plate_running(plate(now - 7200, now - 9000, 10), alive, now=now)
    # a 6-hourly time-lapse: 5 h since the last pass is still running
    assert data.plate_running(plate(now - 5 * 3600, now - 29 * 3600, 5), alive, now=now)
    stopped = data.DaemonStatus("stopped", 5.0, "", "pc")
    assert not data.plate_running(plate(now - 60, now - 600, 10), stopped, now=now)


def test_model_card_from_stored_metadata() -> None:
    meta = {
        "architecture": "fastnet",
        "class_names": ["undifferentiated", "differentiated"],
        "positive_class": "differentiated",
        "tiling": {"tile_size": 128, "downsample": 2, "max_tiles": 64},
        "temperature": 1.12,
        "training": {
            "n_train_images": 200,
            "epochs": 20,
            "split": {"name": "holdout", "group_by": "well"},
        },
        "metrics": {"val_accuracy": 0.9166, "lr": 0.001},
    }
    import json

    model = store.ModelRecord("f" * 64, "demo", json.dumps(meta), "CPUExecutionProvider", 0.0, 0.0)
    card = data.model_card(model, "# card")
    assert card.facts["architecture"] == "fastnet"
    assert card.facts["classes"] == "undifferentiated, differentiated (tracked)"
    assert "128 px" in card.facts["tiles"] and "200 training images" in card.facts["training"]
    assert card.facts["val accuracy"] == "0.917" and "lr" not in card.facts
    assert card.card_text == "# card" and card.provider == "CPUExecutionProvider"
    broken = data.model_card(store.ModelRecord("f" * 64, None, "{not json", None, 0.0, 0.0))
    assert broken.facts == {} and broken.name == "unnamed" and broken.provider == "unknown"


def test_figures_row_escapes_and_reads_back() -> None:
    block = figures.row(
        [
            figures.Figure("Wells <imaged>", 384),
            figures.Figure("Queued", "–", help='from the "last" heartbeat & co'),
        ]
    )
    assert "<imaged>" not in block and 'title="from the &quot;last&quot;' in block
    assert figures.read(block) == {"Wells <imaged>": "384", "Queued": "–"}

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

from dashboard import data, figures, plots, thumbs
from stemwatch import store
from stemwatch.core.wells import PlateLayout


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


def test_plate_heatmap_spec() -> None:
    spec = plots.plate_heatmap(_grid(), PlateLayout(1, 2), selected="A02").to_dict()
    assert spec["params"][0]["name"] == plots.WELL_PICK
    assert spec["params"][0]["select"]["fields"] == ["well"]
    colour = [lyr["encoding"]["color"] for lyr in spec["layer"] if "color" in lyr["encoding"]]
    assert any(
        c.get("title") == "P(differentiated)" and c["scale"]["domain"] == [0, 1] for c in colour
    )
    # one rect per well: wells without a probability are grey in the coloured layer itself
    rects = [lyr for lyr in spec["layer"] if lyr["mark"]["type"] == "rect"]
    grey = rects[0]["encoding"]["color"]["condition"]
    assert grey["value"] == plots.NO_DATA_COLOR and "isValid(datum.probability)" in grey["test"]
    assert [r["well"] for r in spec["datasets"][rects[0]["data"]["name"]]] == ["A01", "A02"]
    assert len([r for r in rects if "transform" not in r]) == 2  # the wells, the left-out frames
    filters = [t["filter"] for lyr in spec["layer"] for t in lyr.get("transform", [])]
    assert "datum.onset" in filters and "datum.selected" in filters
    assert spec["autosize"]["type"] == "pad"


def test_series_chart_draws_the_onset_rule_only_when_there_is_one() -> None:
    series = pd.DataFrame(
        {
            "time_h": [0.0, 6.0],
            "timepoint": [0, 1],
            "mean": [0.1, 0.8],
            "lower": [0.0, 0.7],
            "upper": [0.2, 0.9],
            "smoothed": [0.1, 0.5],
            "n": [2, 2],
        }
    )
    fields = pd.DataFrame({"time_h": [0.0, 6.0], "probability": [0.1, 0.8], "field": [1, 1]})
    with_onset = plots.well_series_chart(series, fields, onset_h=6.0).to_dict()
    rules = [lyr for lyr in with_onset["layer"] if lyr["mark"]["type"] == "rule"]
    assert len(rules) == 1
    rule_data = with_onset["datasets"][rules[0]["data"]["name"]]
    assert rule_data[0]["time_h"] == 6.0
    without = plots.well_series_chart(series, fields, onset_h=None).to_dict()
    assert not [lyr for lyr in without["layer"] if lyr["mark"]["type"] == "rule"]
    x_titles = {
        lyr["encoding"]["x"]["title"]
        for lyr in with_onset["layer"]
        if "title" in lyr["encoding"].get("x", {})
    }
    assert x_titles == {"Time (h)"}


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


def test_a_long_well_series_draws_no_marker_per_time_point() -> None:
    """200 time points x 4 fields: the mean line has no marker per point (200 SVG marks
    fewer, issue 13); each field dot names the well's mean at its time instead."""
    t = np.arange(200) * 0.5
    series = pd.DataFrame(
        {"time_h": t, "mean": 0.5, "lower": 0.4, "upper": 0.6, "smoothed": 0.5, "n": 4}
    )
    fields = pd.DataFrame(
        {"time_h": np.repeat(t, 4), "probability": 0.5, "field": np.tile([1, 2, 3, 4], 200)}
    )

    def mean_line(spec: dict) -> dict:
        return next(lyr for lyr in spec["layer"] if lyr["encoding"]["y"]["field"] == "mean")

    spec = plots.well_series_chart(series, fields).to_dict()
    line = mean_line(spec)
    assert not line["mark"].get("point")
    dots = next(lyr for lyr in spec["layer"] if lyr["mark"]["type"] == "circle")
    assert "mean" in {tip["field"] for tip in dots["encoding"]["tooltip"]}
    assert spec["datasets"][dots["data"]["name"]][0]["mean"] == 0.5
    short = plots.well_series_chart(series.head(6), fields.head(24)).to_dict()
    assert mean_line(short)["mark"]["point"] is True

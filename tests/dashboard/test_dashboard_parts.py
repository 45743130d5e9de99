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

from dashboard import data, plots, thumbs
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

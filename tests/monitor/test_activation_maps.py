"""Class activation maps: tiles' CAMs placed into one map per image, stored as a PNG."""

from __future__ import annotations

import io
import queue
from pathlib import Path

import numpy as np
from monitor_helpers import image_name, make_config, write_tiff
from onnx_models import build_classifier
from PIL import Image

from monitor.inference import cam_mosaic, cam_png, load_model
from monitor.pipeline import Candidate, Outcome, Pipeline
from monitor.stability import stat_file
from stemwatch import store


def test_mosaic_places_tiles_and_averages_overlaps() -> None:
    cams = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)])
    origins = np.array([[0, 0], [0, 16]])  # tile size 32 -> CAM scale 4/32: column 2
    m = cam_mosaic(cams, origins, tile_size=32)
    assert m.shape == (4, 6)
    assert np.allclose(m[:, :2], 1.0) and np.allclose(m[:, 4:], 3.0)
    assert np.allclose(m[:, 2:4], 2.0)  # overlap averaged


def test_mosaic_leaves_background_empty() -> None:
    cams = np.zeros((1, 2, 2))
    m = cam_mosaic(cams, np.array([[8, 8]]), tile_size=8)
    assert m.shape == (4, 4)
    assert np.isnan(m[:2, :2]).all() and (m[2:, 2:] == 0).all()


def test_png_is_coloured_by_evidence_and_enlarged() -> None:
    mosaic = np.array([[-10.0, 10.0], [np.nan, 0.0]])
    img = np.asarray(Image.open(io.BytesIO(cam_png(mosaic, min_side=64))))
    assert img.shape == (64, 64, 3)
    assert img[0, 0, 2] > 250 and img[0, 0, 0] < 5  # undifferentiated evidence: blue
    assert img[0, 63, 0] > 250 and img[0, 63, 2] < 5  # differentiated: red
    assert (img[63, 0] == 0).all()  # background: black


def test_pipeline_stores_a_map_when_the_model_has_a_cam(tmp_path: Path) -> None:
    model_path = build_classifier(tmp_path / "cam.onnx", tile_size=32, cam=True)
    model = load_model(model_path)
    assert model.has_cam
    cfg = make_config(tmp_path, model_path)
    assert cfg.folder is not None
    path = write_tiff(cfg.folder / image_name("K01"), seed=1)
    st = stat_file(path)
    assert st is not None
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    pipe = Pipeline(cfg, model, conn, outcomes.put)
    pipe.start()
    try:
        assert pipe.try_submit(Candidate(path, st))
        out = outcomes.get(timeout=10)
    finally:
        pipe.close()
    assert out.kind == "done" and out.image_id is not None
    png = store.cam_png(conn, out.image_id)
    conn.close()
    assert png is not None
    img = Image.open(io.BytesIO(png))
    assert img.mode == "RGB" and min(img.size) >= 128  # 2x2 tiles of 32x32 CAM each


def test_no_map_without_a_cam_output(tmp_path: Path, tiny_model_path: Path) -> None:
    assert not load_model(tiny_model_path).has_cam

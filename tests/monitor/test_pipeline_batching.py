"""The pipeline on its own: tiles of several images share one batch, results stay apart."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import pytest
from monitor_helpers import image_name, make_config, records, write_tiff
from onnx_models import build_classifier

from monitor.inference import load_model
from monitor.pipeline import Candidate, Outcome, Pipeline
from monitor.stability import stat_file
from stemwatch import store
from stemwatch.core.imaging import prepare, read_image


def test_batched_results_match_each_image_alone(tmp_path: Path) -> None:
    model_path = build_classifier(tmp_path / "b.onnx", tile_size=32, brightness_gain=8.0)
    model = load_model(model_path)
    cfg = make_config(
        tmp_path,
        model_path,
        inference={"batch_tiles": 16, "batch_wait_s": 0.5, "queue_images": 8},
    )
    assert cfg.folder is not None
    paths = [write_tiff(cfg.folder / image_name(f"A{i + 1:02d}"), seed=i) for i in range(6)]
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    before = set(threading.enumerate())
    pipe = Pipeline(cfg, model, conn, outcomes.put)
    pipe.start()
    try:
        for p in paths:
            st = stat_file(p)
            assert st is not None
            while not pipe.try_submit(Candidate(p, st)):
                pass
        got = [outcomes.get(timeout=10) for _ in paths]
    finally:
        pipe.close()
        conn.close()
    assert set(threading.enumerate()) == before
    assert all(o.kind == "done" for o in got)
    assert pipe.counters.batches < len(paths)  # images shared batches
    assert pipe.counters.tiles == 4 * len(paths)
    by_path = {Path(r.path): r for r in records(cfg.database)}
    probs = sorted(float(by_path[p].probability or 0) for p in paths)
    assert min(np.diff(probs)) > 1e-4  # distinct, so a mix-up between images would show
    for p in paths:
        tiles = prepare(read_image(p).pixels, model.metadata.normalisation, model.metadata.tiling)
        alone = float(model.predict(tiles.data).mean())
        assert by_path[p].probability == pytest.approx(alone, abs=1e-5)

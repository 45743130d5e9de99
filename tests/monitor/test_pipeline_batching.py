"""The pipeline on its own: tiles of several images share one batch, results stay apart."""

from __future__ import annotations

import queue
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
    # a batch closes when it holds 16 tiles (4 images of 4 tiles), never on time: the wait is
    # far longer than the test; the last 2 images are flushed by close()
    cfg = make_config(
        tmp_path,
        model_path,
        inference={"batch_tiles": 16, "batch_wait_s": 600.0, "queue_images": 8},
    )
    assert cfg.folder is not None
    paths = [write_tiff(cfg.folder / image_name(f"A{i + 1:02d}"), seed=i) for i in range(6)]
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    pipe = Pipeline(cfg, model, conn, outcomes.put)
    pipe.start()
    try:
        for p in paths:
            st = stat_file(p)
            assert st is not None
            pipe.work.put(Candidate(p, st))
        first = [outcomes.get(timeout=30) for _ in range(4)]  # the first full batch
        assert pipe.counts.snapshot().batches == 1
        assert outcomes.empty()  # the other two wait for more tiles
    finally:
        pipe.close()
        conn.close()
    got = first + [outcomes.get_nowait() for _ in range(2)]
    assert all(o.kind == "done" for o in got)
    assert {o.path for o in first} == set(paths[:4])  # one decoder: in order
    counts = pipe.counts.snapshot()
    assert (counts.batches, counts.tiles, counts.done) == (2, 4 * len(paths), len(paths))
    by_path = {Path(r.path): r for r in records(cfg.database)}
    probs = sorted(float(by_path[p].probability or 0) for p in paths)
    assert min(np.diff(probs)) > 1e-4  # distinct, so a mix-up between images would show
    for p in paths:
        tiles = prepare(read_image(p).pixels, model.metadata.normalisation, model.metadata.tiling)
        alone = float(model.predict(tiles.data).mean())
        assert by_path[p].probability == pytest.approx(alone, abs=1e-5)


def test_a_file_deleted_before_decoding_is_gone(tmp_path: Path) -> None:
    model_path = build_classifier(tmp_path / "b.onnx", tile_size=32)
    cfg = make_config(tmp_path, model_path)
    assert cfg.folder is not None
    kept = write_tiff(cfg.folder / image_name("B01"), seed=1)
    doomed = write_tiff(cfg.folder / image_name("B02"), seed=2)
    stats = {p: stat_file(p) for p in (kept, doomed)}
    doomed.unlink()
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    pipe = Pipeline(cfg, load_model(model_path), conn, outcomes.put)
    pipe.start()
    try:
        for p, st in stats.items():
            assert st is not None
            pipe.work.put(Candidate(p, st))
        got = {o.path: o for o in (outcomes.get(timeout=30) for _ in stats)}
    finally:
        pipe.close()
        conn.close()
    assert got[kept].kind == "done" and got[doomed].kind == "gone"
    counts = pipe.counts.snapshot()
    assert (counts.done, counts.gone, counts.failed) == (1, 1, 0)


def _bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_each_attempt_reads_the_file_once(tmp_path: Path) -> None:
    model_path = build_classifier(tmp_path / "b.onnx", tile_size=32)
    cfg = make_config(tmp_path, model_path)
    assert cfg.folder is not None
    path = write_tiff(cfg.folder / image_name("D01"), seed=4, size=1024, compression="zlib")
    size = path.stat().st_size
    st = stat_file(path)
    assert st is not None
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    pipe = Pipeline(cfg, load_model(model_path), conn, outcomes.put)
    pipe.start()
    try:
        before = _bytes_read()
        pipe.work.put(Candidate(path, st))
        out = outcomes.get(timeout=30)
        read = _bytes_read() - before
    finally:
        pipe.close()
        conn.close()
    assert out.kind == "done"
    # hash, structure check and decoding share one read (the database adds a few pages)
    assert size <= read < 1.5 * size, f"read {read} bytes of a {size}-byte file"


def test_files_above_the_size_limit_fail_at_once_without_being_read(tmp_path: Path) -> None:
    model_path = build_classifier(tmp_path / "b.onnx", tile_size=32)
    cfg = make_config(tmp_path, model_path, watch={"max_file_mb": 0.01})
    assert cfg.folder is not None
    big = write_tiff(cfg.folder / image_name("C01"), seed=3)  # 256² uint16: about 0.13 MB
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    pipe = Pipeline(cfg, load_model(model_path), conn, outcomes.put)
    pipe.start()
    try:
        st = stat_file(big)
        assert st is not None
        pipe.work.put(Candidate(big, st))
        out = outcomes.get(timeout=30)
    finally:
        pipe.close()
        conn.close()
    assert out.kind == "failed" and out.attempts == 1  # permanent: no retries
    assert "above watch.max_file_mb (0.01 MB" in out.reason
    (rec,) = records(cfg.database)
    assert rec.status == "failed" and rec.content_hash is None  # never read, not hashed

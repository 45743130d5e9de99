"""CPU time per image of the daemon's decode stage, exactly as a decode worker runs it.

Run: ``nice -n 10 python tests/benchmarks/bench_ingest.py [--size 2048] [--n 15] [--rounds 7]``

Calls the pipeline's own per-file step (stat, the one read, hash, structure check, plate/well,
decode, downsample, normalise, tile) on 2048² uint16 OME-TIFFs, uncompressed and deflate, on
this thread, and prints the thread CPU milliseconds per image over ``rounds`` rounds of ``n``
images: median and range. Thread CPU time, not wall time, so other processes on a shared
machine disturb it less (they still share caches and memory bandwidth: repeat and compare the
spread). Uses the bundled model's tiling.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from monitor.config import MonitorConfig
from monitor.inference import default_model_path, load_model
from monitor.pipeline import Candidate, Outcome, Pipeline
from monitor.stability import stat_file
from stemwatch import store


def _plane(seed: int, size: int) -> np.ndarray:
    """A 16-bit brightfield-like plane (the benchmark's): illumination, blobs, noise."""
    rng = np.random.default_rng(seed)
    small = rng.normal(0, 1, (size // 64 + 1, size // 64 + 1)).astype(np.float32)
    blobs = np.kron(small, np.ones((64, 64), np.float32))[:size, :size]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    illum = 1.0 - 0.3 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    img = 20000 * illum + 3000 * blobs + rng.normal(0, 800, (size, size)).astype(np.float32)
    return np.clip(img, 0, 65535).astype(np.uint16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--n", type=int, default=15, help="images per round")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    model = load_model(default_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = MonitorConfig.model_validate({"folder": root, "database": root / "bench.db"})
        conn = store.open_db(cfg.database)
        outcomes: list[Outcome] = []
        pipe = Pipeline(cfg, model, conn, outcomes.append)  # threads not started
        pipe.ready.maxsize = 0  # keep every prepared image; drained below
        for compression in (None, "zlib"):
            tag = compression or "none"
            folder = root / tag
            folder.mkdir()
            path = folder / "P1_A01_1_2026y01m05d_09h00m.tif"
            plane = _plane(1, args.size)
            tifffile.imwrite(
                path, plane, compression=compression, ome=True, metadata={"axes": "YX"}
            )
            st = stat_file(path)
            assert st is not None
            cand = Candidate(path, st)
            pipe._decode_one(cand)  # warm up (imports, page cache)
            pipe.ready.get_nowait()
            per_image = []
            for _ in range(args.rounds):
                t0 = time.thread_time()
                for _ in range(args.n):
                    pipe._decode_one(cand)
                    pipe.ready.get_nowait()
                per_image.append((time.thread_time() - t0) / args.n * 1000)
            assert not outcomes, outcomes  # every image went through, none was refused
            print(
                f"{tag:5s} {path.stat().st_size / 1e6:4.1f} MB: decode stage "
                f"{statistics.median(per_image):5.1f} ms CPU/image (median of {args.rounds} "
                f"rounds of {args.n}; range {min(per_image):.1f}-{max(per_image):.1f})"
            )
        conn.close()


if __name__ == "__main__":
    main()

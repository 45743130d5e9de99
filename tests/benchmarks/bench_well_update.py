"""Cost of scoring one image into a well that already holds 8 vs 800 images (issue 14 item 5).

Run: ``nice -n 10 python tests/benchmarks/bench_well_update.py [--sizes 8 800] [--repeats 5]``

Calls the daemon's writer step exactly as its writer thread runs it
(``Pipeline._write_result``: the image record and prediction, then the well's series and onset
update) on a real SQLite database, for a well that already holds N scored images (4 fields per
time point, written through the same step, so the writer is in its steady state). Each repeat
uses a fresh well and times the next ``--per-repeat`` images (new time points and the fields
that complete them), then prints, per N, the median milliseconds per image (wall and thread
CPU) with the range over repeats. Wall time includes SQLite's commits, so other processes
on a shared machine disturb it: repeat, and compare the spread. Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from monitor.config import MonitorConfig
from monitor.inference import LoadedModel, load_model
from monitor.pipeline import Candidate, Outcome, Pipeline, Prepared, Scored
from monitor.stability import FileStat
from stemwatch import store
from stemwatch.core.imaging import Tiles
from stemwatch.core.modelfile import bundled_model_path
from stemwatch.core.platemeta import ImageLocation

FIELDS = 4


def _scored(i: int, well: str, rng: np.random.Generator, model: LoadedModel) -> Scored:
    """The ``i``-th image of ``well`` as the inference stage hands it to the writer."""
    tp, fld = divmod(i, FIELDS)
    path = Path(f"/bench/{well}/P1_{well}_{fld + 1}_t{tp:04d}.tif")
    stat = FileStat(size=1000 + i, mtime_ns=i, ctime_ns=i)
    loc = ImageLocation(
        plate="P1",
        well=well,
        field=fld + 1,
        timepoint=tp,
        time_s=600.0 * tp + fld,
        source="bench",
        time_basis="elapsed",
    )
    tiles = Tiles(
        data=np.zeros((0, 1, 1, 1), np.float32),
        origins=np.zeros((0, 2), np.int64),
        grid_shape=(0, 0),
    )
    prep = Prepared(Candidate(path, stat), f"{well}-{i:08d}", loc, tiles, model)
    rising = min(1.0, max(0.0, 0.1 + 0.8 * (tp / 400.0)))  # slow drift: onset late in the run
    probs = np.clip(rng.normal(rising, 0.05, 64), 0.0, 1.0).astype(np.float32)
    return Scored(prep, probs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 800], help="earlier images")
    ap.add_argument("--repeats", type=int, default=5, help="fresh wells per size")
    ap.add_argument("--per-repeat", type=int, default=16, help="images timed per repeat")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    model = load_model(bundled_model_path())
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = MonitorConfig.model_validate({"folder": root, "database": root / "bench.db"})
        conn = store.open_db(cfg.database)
        outcomes: list[Outcome] = []
        pipe = Pipeline(cfg, model, conn, outcomes.append)  # threads not started
        for n in args.sizes:
            wall, cpu = [], []
            for r in range(args.repeats):
                well = f"N{n}R{r}"
                for i in range(n):  # the well's history, through the same writer step
                    pipe._write_result(_scored(i, well, rng, model))
                w0, c0 = time.perf_counter(), time.thread_time()
                for i in range(n, n + args.per_repeat):
                    pipe._write_result(_scored(i, well, rng, model))
                wall.append((time.perf_counter() - w0) / args.per_repeat * 1000)
                cpu.append((time.thread_time() - c0) / args.per_repeat * 1000)
            print(
                f"{n:5d} earlier images: {statistics.median(wall):6.2f} ms wall/image "
                f"(range {min(wall):.2f}-{max(wall):.2f}), {statistics.median(cpu):6.2f} ms "
                f"CPU (range {min(cpu):.2f}-{max(cpu):.2f}); median of {args.repeats} wells, "
                f"{args.per_repeat} images each"
            )
        (wells,) = pipe._well_series.values()
        print(
            f"well updates: {wells.incremental} incremental, {wells.recomputed} recomputed "
            "from the well's images (the first image of each well, new onsets, ...)"
        )
        done = sum(o.kind == "done" for o in outcomes)
        assert done == len(outcomes), "every image must be recorded once"
        conn.close()


if __name__ == "__main__":
    main()

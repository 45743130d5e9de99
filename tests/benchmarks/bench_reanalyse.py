"""Throughput of `stemwatch reanalyse`'s local engine: images per second and CPU per image.

Run: ``nice -n 10 python tests/benchmarks/bench_reanalyse.py [--wells 24] [--size 1024]``

Writes a synthetic plate (``--wells`` wells x 2 fields x 4 time points, ``--size``² uint16
OME-TIFF), lets the daemon analyse it once with the bundled model, then re-scores every image
with a second model (the bundled graph under another name, so another hash and the same
compute) with 1 and 2 decode threads, each on a fresh copy of the database. Prints wall time,
images/s, process CPU seconds per image and images/s per busy core (images / CPU seconds).
Timing on a shared machine is noisy: the load average is printed with each figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import onnx

from monitor.config import MonitorConfig
from monitor.daemon import Daemon
from monitor.inference import load_model
from monitor.reanalyse import reanalyse
from stemwatch import store
from stemwatch.core.modelfile import bundled_model_path
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec


def renamed_model(path: Path) -> Path:
    """The bundled model under another name: another file hash, the same compute."""
    import json

    model = onnx.load(str(bundled_model_path()))
    for prop in model.metadata_props:
        if prop.key == "stemwatch":
            meta = json.loads(prop.value)
            meta["name"] = "bundled-renamed-for-bench"
            prop.value = json.dumps(meta)
    onnx.save(model, str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wells", type=int, default=24, help="plate format (24)")
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (1024)")
    ap.add_argument("--timepoints", type=int, default=4)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = PlateSpec(wells=args.wells, n_fields=2, n_timepoints=args.timepoints, size=args.size)
        generate_plate(root / "plate", spec, workers=2)
        db = root / "daemon.db"
        cfg = MonitorConfig.model_validate({"folder": root / "plate", "database": db})
        summary = Daemon(cfg, once=True).run()
        model = load_model(renamed_model(root / "second.onnx"))
        tiling = model.metadata.tiling
        print(
            f"{summary.done} images of {args.size}² px; model {model.metadata.name} "
            f"(tiles {tiling.tile_size} px after x{tiling.downsample})"
        )
        for workers in (1, 2):
            copy = root / f"copy{workers}.db"
            shutil.copy(db, copy)
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            with store.open_db(copy) as conn:
                done = reanalyse(conn, model, decode_workers=workers)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"decode threads {workers}: {done.scored} images in {wall:.1f} s = "
                f"{done.scored / wall:.1f} img/s; CPU {1000 * cpu / done.scored:.0f} ms/img "
                f"({done.scored / cpu:.1f} img/s per busy core); load average {load:.1f}"
            )


if __name__ == "__main__":
    main()

"""Throughput of `stemwatch reanalyse`: images per second and CPU per image, per engine.

Run: ``nice -n 10 python tests/benchmarks/bench_reanalyse.py [--wells 24] [--size 1024]
[--timepoints 4] [--engines local,dask] [--workers 1,2] [--repeat 1]``

Writes a synthetic plate (``--wells`` wells x 2 fields x ``--timepoints``, ``--size``² uint16
OME-TIFF), lets the daemon analyse it once with the bundled model, then re-scores every image
with a second model (the bundled graph under another name, so another hash and the same
compute), each run on a fresh copy of the database:

- ``local``: in this process, with 1 and 2 decode threads;
- ``dask``: on a local Dask cluster of 1, 2, ... worker processes (one thread each; this
  process plans and records). The cluster's start-up is timed apart; the scoring time
  includes loading the model in each worker. CPU is the workers' plus this process's.

Prints wall time, images/s, CPU seconds per image and images/s per busy core (images / CPU
seconds). Timing on a shared machine is noisy: the load average is printed with each figure.
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
from monitor.inference import LoadedModel, load_model
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
    ap.add_argument("--engines", default="local,dask", help="local, dask or both (local,dask)")
    ap.add_argument("--workers", default="1,2", help="decode threads / Dask workers (1,2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each setting (1)")
    args = ap.parse_args()
    engines = args.engines.split(",")
    counts = [int(w) for w in args.workers.split(",")]
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
        runs = 0
        for engine in engines:
            for workers in counts:
                for _ in range(args.repeat):
                    copies = []
                    for _ in range(1 if engine == "local" else 2):
                        runs += 1
                        copies.append(root / f"copy{runs}.db")
                        shutil.copy(db, copies[-1])
                    if engine == "local":
                        label = f"in-process, {workers} decode thread(s)"
                        figures = [(label, *run_local(copies[0], model, workers))]
                    else:
                        label = f"local Dask cluster, {workers} worker process(es)"
                        first, warm = run_dask(copies, model, workers)
                        figures = [
                            (f"{label}, first run (workers import, load the model)", *first),
                            (f"{label}, second run (warm workers)", *warm),
                        ]
                    for text, done, wall, cpu, load in figures:
                        print(
                            f"{text}: {done} images in {wall:.1f} s = {done / wall:.1f} img/s; "
                            f"CPU {1000 * cpu / done:.0f} ms/img ({done / cpu:.1f} img/s per "
                            f"busy core); load average {load:.1f}",
                            flush=True,
                        )


def run_local(db: Path, model: LoadedModel, threads: int) -> tuple[int, float, float, float]:
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    with store.open_db(db) as conn:
        done = reanalyse(conn, model, decode_workers=threads)
    return done.scored, time.perf_counter() - t0, time.process_time() - c0, load


def run_dask(
    copies: list[Path], model: LoadedModel, workers: int
) -> list[tuple[int, float, float, float]]:
    """One fresh local cluster scores each copy in turn (the first run pays each worker's
    imports and model load, the next ones do not); CPU = the workers' + this process's."""
    from distributed import Client, LocalCluster

    from monitor.cluster import ClusterSpec, DaskEngine

    t0 = time.perf_counter()
    out = []
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        print(f"  cluster of {workers} started in {time.perf_counter() - t0:.1f} s", flush=True)
        engine = DaskEngine(ClusterSpec(scheduler=cluster.scheduler_address))
        for db in copies:
            before = client.run(time.process_time)
            load = os.getloadavg()[0]
            t1, c1 = time.perf_counter(), time.process_time()
            with store.open_db(db) as conn:
                done = reanalyse(conn, model, engine=engine)
            wall, mine = time.perf_counter() - t1, time.process_time() - c1
            after = client.run(time.process_time)
            workers_cpu = sum(after[w] - before[w] for w in after)
            n = max(1, done.scored)
            print(
                f"  CPU: workers {1000 * workers_cpu / n:.0f} ms/img, this process (scheduler, "
                f"client, writer) {1000 * mine / n:.0f} ms/img",
                flush=True,
            )
            out.append((done.scored, wall, mine + workers_cpu, load))
    return out


if __name__ == "__main__":
    main()

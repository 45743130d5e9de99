"""Benchmark of the daemon's database work per image, on SQLite and on PostgreSQL.

Run: ``nice -n 10 python tests/benchmarks/bench_store.py [--wells 24] [--timepoints 12]``

Per image the daemon's writer asks "already recorded?", records the result and updates the
well (its detector state, the well's images, the new series and onset: :func:`update_well`).
This replays that for a plate (one field per well) and prints the median and 90th percentile
milliseconds per image and the images per second of one writer, on a SQLite file (WAL, in a
temp folder) and on a PostgreSQL server started from Debian's packages on a Unix socket (the
best case: no network); then PostgreSQL with two instruments' writers at once (two daemons).
The last time points cost more than the first (the well's whole series is re-read: issue 14,
item 5), so the figures depend on --timepoints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: pgserver

from pgserver import PostgresServer, find_bindir

from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.platemeta import ImageLocation


def replay(target: str, instrument: str, wells: int, timepoints: int) -> list[float]:
    """Seconds per image for one instrument's daemon writing a plate."""
    cfg = OnsetConfig()
    times = []
    with store.open_db(target, instrument=instrument) as db:
        store.register_model(db, model_hash="m", name="m", metadata_json="{}", provider="CPU")
        for t in range(timepoints):
            for w in range(wells):
                well = f"{'ABCDEFGH'[w // 12]}{w % 12 + 1:02d}"
                path = f"/export/P1/{well}_t{t:03d}.tif"
                v = store.FileVersion(path, 8_000_000, t, f"{instrument}{path}")
                loc = ImageLocation("P1", well, 1, t, t * 3600.0, "bench", time_basis="elapsed")
                p = 0.1 if t < timepoints // 2 else 0.9
                t0 = time.perf_counter()
                store.already_recorded(db, v)
                store.record_result(db, v, loc, store.Prediction("m", p, p, 0.05, 16))
                update_well(db, "P1", well, cfg, model_hash="m")
                times.append(time.perf_counter() - t0)
    return times


def report(label: str, times: list[float], wall_s: float | None = None) -> None:
    ms = sorted(1000 * t for t in times)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    rate = len(times) / (wall_s if wall_s is not None else sum(times))
    print(
        f"{label:<34} {len(ms):>5} images  median {statistics.median(ms):6.2f} ms  "
        f"p90 {p90:6.2f} ms  {rate:7.1f} images/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wells", type=int, default=24)
    ap.add_argument("--timepoints", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report(
            "SQLite, one daemon", replay(str(Path(tmp) / "b.db"), "a", args.wells, args.timepoints)
        )
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL: no server binaries here (scripts/ensure-postgres.sh); skipped")
        return
    server = PostgresServer(bindir).start()
    try:
        report(
            "PostgreSQL (socket), one daemon",
            replay(server.new_database(), "a", args.wells, args.timepoints),
        )
        url = server.new_database()
        store.open_db(url).close()  # the schema first: the two daemons time their writes only
        results: dict[str, list[float]] = {}

        def run(name: str) -> None:
            results[name] = replay(url, name, args.wells, args.timepoints)

        threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        report("PostgreSQL, two daemons (threads)", results["a"] + results["b"], wall)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

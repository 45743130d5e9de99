"""Peak memory per decoded pixel of the daemon's ingest path (the basis of watch.max_megapixels).

For each kind of plane (16-bit uncompressed and deflate-compressed, 8-bit, float32, 8-bit RGB)
a child process writes one image, then measures the growth of its peak resident set size
(``ru_maxrss``) over read_bytes -> hash -> check_file -> decode -> prepare, exactly as a
decode worker runs them. Each figure is the mean over ``--repeats`` fresh processes, with
the spread. Run it on an idle machine:

    python tests/benchmarks/bench_decode_memory.py --sides 4096 8192 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

KINDS = ("u16", "u16-deflate", "u8", "f32", "rgb8")

CHILD = r"""
import gc, json, resource, sys
from pathlib import Path
import numpy as np, tifffile
kind, side, path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
if not path.exists():
    rng = np.random.default_rng(0)
    if kind.startswith("u16"):
        a = rng.integers(0, 4096, size=(side, side), dtype=np.uint16)
    elif kind == "u8":
        a = rng.integers(0, 255, size=(side, side), dtype=np.uint8)
    elif kind == "rgb8":
        a = rng.integers(0, 255, size=(side, side, 3), dtype=np.uint8)
    else:
        a = rng.random((side, side), dtype=np.float32)
    deflate = kind.endswith("deflate")
    tifffile.imwrite(path, a, compression="zlib" if deflate else None,
                     tile=(512, 512) if deflate else None)
    sys.exit(0)
from stemwatch.core.imaging import (NormalisationRecipe, TilingSpec, check_file, decode,
                                    hash_bytes, prepare, read_bytes)
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
data = read_bytes(path)
hash_bytes(data)
pixels = decode(check_file(path, data)).pixels
prepare(pixels, NormalisationRecipe(), TilingSpec())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"file_mb": len(data) / 1e6, "peak_mb": (peak - base) / 1e6,
                  "bytes_per_px": (peak - base) / side ** 2}))
"""


def measure(kind: str, side: int, folder: Path, repeats: int) -> dict[str, float]:
    path = folder / f"{kind}_{side}.tif"
    subprocess.run([sys.executable, "-c", CHILD, kind, str(side), str(path)], check=True)
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(side), str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out))
    per_px = [r["bytes_per_px"] for r in runs]
    return {
        "file_mb": runs[0]["file_mb"],
        "peak_mb": statistics.fmean(r["peak_mb"] for r in runs),
        "bytes_per_px": statistics.fmean(per_px),
        "sd": statistics.stdev(per_px) if len(per_px) > 1 else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", type=int, nargs="+", default=[4096, 8192])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'kind':12s} {'side':>6s} {'file MB':>8s} {'peak MB':>8s} {'B/px':>6s} {'sd':>5s}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for side in args.sides:
                r = measure(kind, side, Path(tmp), args.repeats)
                worst = max(worst, r["bytes_per_px"])
                print(
                    f"{kind:12s} {side:6d} {r['file_mb']:8.1f} {r['peak_mb']:8.1f} "
                    f"{r['bytes_per_px']:6.2f} {r['sd']:5.2f}"
                )
    budget_gb = 3.0
    print(
        f"worst case {worst:.2f} B/px: {budget_gb:g} GB per decode worker holds "
        f"{budget_gb * 1e9 / worst / 1e6:.0f} MP"
    )


if __name__ == "__main__":
    main()

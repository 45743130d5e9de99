"""Benchmark of the image reader and the prepare recipe (the daemon's per-image CPU cost).

Run: ``nice -n 10 python tests/benchmarks/bench_reader.py [--size 2048] [--repeats 9]``

Prints, per compression, the median milliseconds of a bare ``tifffile.imread`` (for
reference), ``read_image`` (decode plus the truncation and metadata checks),
``prepare`` (downsample, normalise, tile) and both, and the single-core images per second;
then ``content_hash`` of an 8 MB file. The daemon target is 6.4 images/s for 2048² uint16 on
2 cores, i.e. at most about 312 ms per image per core including inference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from stemwatch.core.imaging import (
    NormalisationRecipe,
    TilingSpec,
    content_hash,
    prepare,
    read_image,
)


def _microscope_like(size: int, seed: int = 0) -> np.ndarray:
    """12-bit brightfield-like content: smooth background, blobs, shot noise (compresses like
    real data, unlike pure noise or a constant)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    img = 1800 + 300 * np.sin(3 * xx) * np.cos(2 * yy)
    for _ in range(40):
        cy, cx, r = rng.random(3) * [size, size, size / 12]
        img -= 400 * np.exp(-(((yy * size - cy) ** 2 + (xx * size - cx) ** 2) / (2 * r**2 + 1)))
    img += rng.normal(0, 40, img.shape)
    return np.clip(img, 0, 4095).astype(np.uint16)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up (imports, page cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    recipe, spec = NormalisationRecipe(), TilingSpec()
    img = _microscope_like(args.size)
    print(f"image {args.size}x{args.size} uint16 (12-bit content); {spec!r}")
    header = ("compression", "MB", "tifffile ms", "read ms", "prepare ms", "total ms", "img/s/core")
    print("{:<12} {:>6} {:>12} {:>8} {:>11} {:>9} {:>11}".format(*header))
    with tempfile.TemporaryDirectory() as tmp:
        for compression in (None, "zlib", "lzw", "zstd"):
            path = Path(tmp) / f"bench_{compression}.tif"
            tifffile.imwrite(path, img, compression=compression, rowsperstrip=64)
            pixels = read_image(path).pixels
            raw_ms = _median_ms(lambda p=path: tifffile.imread(p), args.repeats)
            read_ms = _median_ms(lambda p=path: read_image(p), args.repeats)
            prep_ms = _median_ms(lambda px=pixels: prepare(px, recipe, spec), args.repeats)
            total_ms = _median_ms(
                lambda p=path: prepare(read_image(p).pixels, recipe, spec), args.repeats
            )
            name = compression or "none"
            mb = path.stat().st_size / 1e6
            print(
                f"{name:<12} {mb:>6.1f} {raw_ms:>12.1f} {read_ms:>8.1f} {prep_ms:>11.1f} "
                f"{total_ms:>9.1f} "
                f"{1000 / total_ms:>11.1f}"
            )
        blob = Path(tmp) / "blob.bin"
        blob.write_bytes(np.random.default_rng(1).integers(0, 256, 8 * 2**20, np.uint8).tobytes())
        hash_ms = _median_ms(lambda: content_hash(blob), args.repeats)
        print(f"content_hash of an 8 MiB file: {hash_ms:.1f} ms ({8 / hash_ms * 1000:.0f} MiB/s)")


if __name__ == "__main__":
    main()

"""`stemwatch bench` runs end to end at a tiny scale (the figures come from the benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_runs_small_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    small = ["--size", "256", "--backlog", "6", "--latency-images", "2", "--quiet", "0.2"]
    small += ["--repeat", "1", "--inference-images", "4", "--preprocess-images", "2"]
    small += ["--rate", "10"]
    cmd = [sys.executable, "-m", "stemwatch", "bench", *small, "--compression", "zlib"]
    r = subprocess.run(
        [*cmd, "--workdir", str(tmp_path), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "backlog 6 (zlib)" in r.stdout and "latency close->DB" in r.stdout
    fig = json.loads(out.read_text())
    # the bundled model where the repository has one, else a stand-in of the same cost
    assert "(bundled default)" in fig["model"] or "stand-in FastNet" in fig["model"]
    assert fig["tiles_per_image"] >= 1
    stages = {"read", "hash", "check", "decode", "downsample", "normalise", "tiles"}
    assert set(fig["stages_ms"]["zlib"]) >= stages | {"prepare_total", "inference"}
    assert fig["inference_only_ips"] and all(v > 0 for v in fig["inference_only_ips"].values())
    assert fig["preprocess_only_ips"]["zlib_2_thread"] > 0
    b = fig["backlog"]["zlib"]
    assert b["images"] == 6 and b["images_per_s"] > 0 and b["peak_rss_mb"] > 0
    assert b["of_inference_only"] > 0
    lat = fig["latency_s"]
    assert lat["images"] == 2 and lat["rate_hz"] == 10
    assert 0.2 <= lat["median_s"] <= lat["p95_s"] <= lat["max_s"]

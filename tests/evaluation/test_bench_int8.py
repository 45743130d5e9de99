"""`stemwatch bench --int8`: the benchmarked model against its int8 version, in speed."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from stemwatch.cli import main
from stemwatch.evaluation.int8 import bench_int8, compare_speed


def test_bench_int8_quantises_and_compares(
    tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", str(tiny_model_path), "--size", "256", "--repeat", "1"]
    args += ["--inference-images", "2", "--preprocess-images", "1", "--compression", "none"]
    args += ["--skip", "backlog", "--skip", "latency", "--int8", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "int8 vs fp32" in printed and "speed-up" in printed and "VNNI" in printed
    fig = json.loads(out.read_text())["int8"]
    assert "quantised here on synthetic tiles" in fig["int8"]
    rows = fig["speed"]["rows"]
    assert {(r["batch"], r["threads"]) for r in rows} == {(1, 1), (32, 1), (1, 2), (32, 2)}
    for r in rows:
        for key in ("fp32_ms_per_tile", "int8_ms_per_tile", "speedup"):
            assert 0 < r[key]["min"] <= r[key]["median"] <= r[key]["max"]
    assert fig["agreement_on_bench_tiles"]["probabilities"]["mean_abs_diff"] < 0.05


def test_compare_speed_with_a_given_int8_model(tiny_model_path: Path, tmp_path: Path) -> None:
    from trainer.quantize import QuantizeError

    made = bench_int8(
        tiny_model_path, None, tmp_path, size=256, n_images=1, repeats=1, min_seconds=0.01
    )
    int8 = tmp_path / f"{tiny_model_path.stem}.int8.onnx"
    assert {"QuantizeLinear"} <= {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert made["speed"]["int8"] == str(int8)
    speed = compare_speed(
        tiny_model_path, int8, batches=[4], threads=[1], repeats=3, min_seconds=0.01
    )
    assert [(r.batch, r.threads) for r in speed.rows] == [(4, 1)]
    assert speed.repeats == 3 and speed.tile == "32x32"
    assert len(speed.lines()) == 2
    with pytest.raises(QuantizeError, match="already an int8 model"):
        bench_int8(int8, None, tmp_path / "again", size=256, n_images=1, repeats=1)

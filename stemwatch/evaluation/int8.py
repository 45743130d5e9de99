"""fp32 against int8: inference speed of the two models as the monitor runs them.

Both models are opened with the monitor's loader (:func:`monitor.inference.load_model`: one
session, ``intra_op_threads`` threads, sequential execution, all graph optimisations) and run
on the same tiles at batch 1 and at the monitor's batch (``inference.batch_tiles``), with 1 and
2 intra-op threads. Runs of the two models alternate, so a change in the machine's load hits
both alike; each configuration reports the median milliseconds per tile of each model with
the spread (min-max) of ``repeats`` runs and the speed-up fp32/int8 (the median of the
per-run ratios, with their min-max). The load average before and after, the CPU and whether it
has VNNI (int8 dot products) are part of the result: int8 pays on conv-heavy networks, on
CPUs with VNNI, when the machine is not busy with other work.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class SpeedRow:
    batch: int
    threads: int
    fp32_ms_per_tile: dict[str, float]
    int8_ms_per_tile: dict[str, float]
    speedup: dict[str, float]


@dataclass
class SpeedComparison:
    fp32: str
    int8: str
    tile: str
    repeats: int
    rows: list[SpeedRow] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"int8 vs fp32 ({self.tile} tiles, {self.repeats} alternating runs each, median "
            f"[min-max] ms per tile; machine: {self.machine.get('cpu')}, "
            f"VNNI {'yes' if self.machine.get('vnni') else 'no'}, load average "
            f"{self.machine.get('load_before')} -> {self.machine.get('load_after')} on "
            f"{self.machine.get('cores')} cores)"
        ]
        for r in self.rows:
            out.append(
                f"  batch {r.batch:>3}, {r.threads} thread(s): fp32 {_spread(r.fp32_ms_per_tile)}"
                f"  int8 {_spread(r.int8_ms_per_tile)}  speed-up x{_spread(r.speedup, '.2f')}"
            )
        return out


def _spread(d: dict[str, float], fmt: str = ".3g") -> str:
    return f"{d['median']:{fmt}} [{d['min']:{fmt}}-{d['max']:{fmt}}]"


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
    }


def machine() -> dict[str, Any]:
    """CPU model, cores, VNNI and the load average now."""
    cpu, flags = platform.processor() or platform.machine(), ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "vnni": "vnni" in flags,
        "load": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _ms_per_tile(model: Any, x: np.ndarray) -> float:
    t0 = time.perf_counter()
    model.predict_with_cam(x, cam=True)
    return (time.perf_counter() - t0) * 1000.0 / len(x)


def compare_speed(
    fp32_path: Path,
    int8_path: Path,
    *,
    tiles: np.ndarray | None = None,
    batches: Sequence[int] | None = None,
    threads: Sequence[int] = (1, 2),
    repeats: int = 7,
    min_seconds: float = 0.2,
) -> SpeedComparison:
    """Time both models (module docstring). ``tiles`` default: random tiles in [0, 1] (speed
    does not depend on the pixel values); ``batches`` default: 1 and the monitor's
    ``batch_tiles``. Each run repeats the batch until ``min_seconds`` have passed (at least
    once), so short batches are not timed at the clock's resolution."""
    from monitor.config import InferenceConfig
    from monitor.inference import load_model

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    batches = list(batches or sorted({1, InferenceConfig().batch_tiles}))
    before = machine()
    result: SpeedComparison | None = None
    for th in threads:
        models = [load_model(p, device="cpu", intra_op_threads=th) for p in (fp32_path, int8_path)]
        meta = models[0].metadata
        shape = (meta.in_channels, meta.tiling.tile_size, meta.tiling.tile_size)
        if result is None:
            result = SpeedComparison(
                fp32=str(fp32_path),
                int8=str(int8_path),
                tile=f"{shape[1]}x{shape[2]}",
                repeats=repeats,
            )
        pool = tiles
        if pool is None:
            pool = np.random.default_rng(0).uniform(0, 1, (max(batches), *shape))
        pool = np.ascontiguousarray(pool, dtype=np.float32)
        for batch in batches:
            x = np.ascontiguousarray(np.resize(pool, (batch, *pool.shape[1:])))
            loops = []
            for m in models:  # warm-up, and how many calls make one timed run
                per_call = max(_ms_per_tile(m, x), _ms_per_tile(m, x)) * batch / 1000.0
                loops.append(max(1, int(min_seconds / max(per_call, 1e-6))))
            n = max(loops)
            times: list[list[float]] = [[], []]
            for _ in range(repeats):
                for k, m in enumerate(models):  # alternate: the load hits both alike
                    times[k].append(statistics.fmean(_ms_per_tile(m, x) for _ in range(n)))
            ratios = [a / b for a, b in zip(times[0], times[1], strict=True)]
            result.rows.append(
                SpeedRow(batch, th, _summary(times[0]), _summary(times[1]), _summary(ratios))
            )
    assert result is not None
    after = machine()
    result.machine = {
        "cpu": before["cpu"],
        "cores": before["cores"],
        "vnni": before["vnni"],
        "load_before": before["load"],
        "load_after": after["load"],
    }
    return result


# --------------------------------------------------------------- `stemwatch export --int8`


def heldout_lines(cmp: dict[str, Any]) -> list[str]:
    """The held-out comparison (:func:`trainer.quantize.compare_on_heldout`) as text."""
    from stemwatch.core.intervals import Interval
    from trainer.metric_intervals import FIGURES, UNIT_PLURAL

    def text(iv: dict[str, Any], fmt: str = ".3f", sign: bool = False) -> str:
        value = iv.get("value")
        if value is None:
            return "n/a"
        f = ("+" if sign else "") + fmt
        if iv.get("low") is None or iv.get("high") is None:
            return f"{value:{f}} [n/a]"
        return f"{value:{f}} [{iv['low']:{f}}, {iv['high']:{f}}]"

    unit = UNIT_PLURAL.get(cmp["group_by"], f"{cmp['group_by']} groups")
    lines = [
        f"held-out split {cmp.get('split') or ''}: {cmp['n_images']} images of "
        f"{cmp['n_groups']} {unit}; figure: fp32, int8, int8 - fp32 (paired), 95 % intervals",
    ]
    for key, name in FIGURES.items():
        row = cmp["figures"].get(key)
        if row:
            lines.append(
                f"  {name:<20} {text(row['fp32'])}  {text(row['int8'])}  "
                f"{text(row['diff'], '.3f', sign=True)}"
            )
    changed = Interval(**{k: cmp["class_changed"][k] for k in ("value", "low", "high", "n_groups")})
    lines.append(
        f"  images whose class changed: {changed.text('.1f', 100, ' %')}; mean |dp| "
        f"{text(cmp['mean_abs_dp'], '.4f')}, max {cmp['max_abs_dp']:.4f}"
    )
    lines.append(f"  intervals: {cmp['interval_method']}")
    return lines


def int8_summary(report: dict[str, Any]) -> list[str]:
    """What ``stemwatch export --int8`` prints."""
    q = report["quantization"]
    cal = q["calibration"]
    ag = report["calibration_agreement"]["probabilities"]
    lines = [
        f"int8 model: {report['int8']} ({report['int8_mb']:.1f} MB, fp32 "
        f"{report['fp32_mb']:.1f} MB): static QDQ, weights {q['weights']}, activations "
        f"{q['activations']}, calibrated on {cal['n_tiles']} tiles of {cal['source']}; "
        f"{len(q['kept_float'])} head layer(s) kept float; on those tiles its probabilities "
        f"differ from fp32 by {ag['mean_abs_diff']:.4f} on average (tolerance "
        f"{report['tolerance']:g}), {ag['max_abs_diff']:.3f} at most, and "
        f"{100 * ag['class_changed']:.1f} % of tiles change class",
    ]
    held = report.get("heldout")
    if isinstance(held, dict):
        lines += heldout_lines(held)
    else:
        lines.append(f"held-out accuracy not compared: {report.get('heldout_note')}")
    speed = report.get("speed")
    if speed:
        lines += SpeedComparison(
            **{**speed, "rows": [SpeedRow(**r) for r in speed["rows"]]}
        ).lines()
    lines.append(f"report: {report['report']}")
    return lines


def report_path_for(int8_path: Path) -> Path:
    """``model.int8.onnx`` -> ``model.int8.report.json``."""
    return int8_path.with_name(f"{int8_path.stem}.report.json")


def make_int8(
    checkpoint: Path,
    fp32_path: Path,
    int8_path: Path,
    calibration: Any,
    *,
    per_channel: bool = True,
    tolerance: float,
    speed_repeats: int = 5,
) -> dict[str, Any]:
    """Quantise ``fp32_path`` (exported from ``checkpoint``) into ``int8_path`` on the
    ``calibration`` set (:func:`trainer.quantize.calibration_for`), compare both on the run's
    held-out split and in speed, and write the report as JSON beside the int8 model."""
    import json

    from trainer.data import DataError
    from trainer.quantize import compare_on_heldout, quantize_model

    meta, close = quantize_model(
        fp32_path, int8_path, calibration, per_channel=per_channel, tolerance=tolerance
    )
    assert meta.quantization is not None
    report: dict[str, Any] = {
        "fp32": str(fp32_path),
        "int8": str(int8_path),
        "fp32_mb": fp32_path.stat().st_size / 1e6,
        "int8_mb": int8_path.stat().st_size / 1e6,
        "quantization": meta.quantization.model_dump(),
        "tolerance": tolerance,
        "calibration_agreement": close,
    }
    try:
        report["heldout"] = compare_on_heldout(checkpoint, fp32_path, int8_path)
    except DataError as exc:
        report["heldout"] = None
        report["heldout_note"] = str(exc)
    if speed_repeats > 0:
        tiles = calibration.tiles
        report["speed"] = compare_speed(
            fp32_path, int8_path, tiles=tiles, repeats=speed_repeats
        ).as_dict()
    path = report_path_for(int8_path)
    report["report"] = str(path)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report


# ------------------------------------------------------------------ `stemwatch bench --int8`


def bench_int8(
    fp32_path: Path,
    int8_path: Path | None,
    workdir: Path,
    *,
    size: int = 2048,
    n_images: int = 4,
    repeats: int = 5,
    min_seconds: float = 0.2,
) -> dict[str, Any]:
    """Speed of ``fp32_path`` against ``int8_path`` on tiles of synthetic microscope images
    prepared as the monitor prepares them; without ``int8_path`` the fp32 model is quantised
    here, calibrated on those synthetic tiles (fine for speed; for a model you deploy, use
    ``stemwatch export --int8``, calibrated on training images). Also how far the two are
    apart on those tiles."""
    from stemwatch.core.imaging import prepare
    from stemwatch.core.modelfile import open_model
    from stemwatch.evaluation.monitor_bench import synthetic_plane
    from trainer.quantize import CalibrationSet, QuantizeError, agreement, quantize_model

    meta = open_model(fp32_path).metadata
    if meta.quantization is not None:
        raise QuantizeError(f"{fp32_path} is already an int8 model; pass the fp32 model as --model")
    chunks = [
        prepare(synthetic_plane(seed, size), meta.normalisation, meta.tiling).data
        for seed in range(1, n_images + 1)
    ]
    tiles = np.concatenate(chunks).astype(np.float32)
    if meta.in_channels != 1:
        tiles = np.repeat(tiles, meta.in_channels, axis=1)
    made_here = int8_path is None
    if int8_path is None:
        int8_path = workdir / f"{fp32_path.stem}.int8.onnx"
        calibration = CalibrationSet(
            tiles, (), f"{n_images} synthetic {size}² bench images (speed only)"
        )
        quantize_model(fp32_path, int8_path, calibration, tolerance=float("inf"))
    speed = compare_speed(
        fp32_path, int8_path, tiles=tiles, repeats=repeats, min_seconds=min_seconds
    )
    return {
        "int8": str(int8_path) + (" (quantised here on synthetic tiles)" if made_here else ""),
        "agreement_on_bench_tiles": agreement(fp32_path, int8_path, tiles),
        "speed": speed.as_dict(),
        "lines": speed.lines(),
    }

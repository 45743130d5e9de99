"""int8 against fp32 per architecture: where static QDQ quantisation pays on this CPU.

    nice -n 10 python tests/benchmarks/bench_int8.py [--arch fastnet:128 resnet50:224 ...]
        [--repeats 5] [--json OUT.json]

For each ``architecture:tile`` the network is built untrained (speed does not depend on the
weights), exported as ``stemwatch export`` does (:class:`trainer.export.ExportModule`,
calibrated probabilities, logits, CAM), quantised with :func:`trainer.quantize.quantize_model`
(calibrated on tiles of synthetic microscope images prepared as the monitor prepares them) and
timed against its fp32 model by :func:`stemwatch.evaluation.int8.compare_speed`: batch 1 and
the monitor's batch, 1 and 2 intra-op threads, alternating repeats, the load average noted.
Accuracy needs a trained model and its held-out split: ``stemwatch export RUN/best.pt -o M.onnx
--int8`` reports it. Figures in docs/architectures-inference.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def build(arch: str, tile: int, out: Path) -> Path:
    """The untrained ``arch`` exported at ``tile`` pixels with stemwatch metadata."""
    import torch

    from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
    from stemwatch.core.modelmeta import ModelMetadata
    from trainer.architectures import create
    from trainer.export import CAM, ExportModule, export_module

    torch.manual_seed(0)
    module = ExportModule(create(arch).eval(), temperature=1.0, positive_index=1)
    meta = ModelMetadata(
        name=f"{arch}-{tile}-untrained",
        architecture=arch,
        class_names=["undifferentiated", "differentiated"],
        positive_class="differentiated",
        cam_output_name=CAM if module.with_cam else None,
        tiling=TilingSpec(downsample=2, tile_size=tile, max_tiles=64),
        normalisation=NormalisationRecipe(),
        stemwatch_version="bench",
    )
    return export_module(module, out, input_size=tile, metadata=meta)


def calibration(model: Path, n_images: int = 4, size: int = 1024) -> Any:
    from stemwatch.core.imaging import prepare
    from stemwatch.core.modelfile import read_metadata
    from stemwatch.evaluation.monitor_bench import synthetic_plane
    from trainer.quantize import DEFAULT_CALIBRATION_TILES, CalibrationSet

    meta = read_metadata(model)
    tiles = np.concatenate(
        [
            prepare(synthetic_plane(s, size), meta.normalisation, meta.tiling).data
            for s in range(1, n_images + 1)
        ]
    )[:DEFAULT_CALIBRATION_TILES]
    return CalibrationSet(tiles, (), f"{n_images} synthetic {size}² images")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=["fastnet:128", "resnet18:128", "resnet50:224"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    from stemwatch.evaluation.int8 import compare_speed
    from trainer.quantize import quantize_model

    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stemwatch-int8-") as tmp:
        for spec in args.arch:
            arch, tile = spec.split(":")
            fp32 = build(arch, int(tile), Path(tmp) / f"{arch}{tile}.onnx")
            int8 = Path(tmp) / f"{arch}{tile}.int8.onnx"
            cal = calibration(fp32)
            _, close = quantize_model(fp32, int8, cal, tolerance=float("inf"))
            speed = compare_speed(
                fp32, int8, tiles=cal.tiles, repeats=args.repeats, threads=args.threads
            )
            mb = (fp32.stat().st_size / 1e6, int8.stat().st_size / 1e6)
            print(f"{arch} at {tile}²: {mb[0]:.1f} MB fp32, {mb[1]:.1f} MB int8", flush=True)
            print("\n".join(speed.lines()), flush=True)
            results[spec] = {"mb": mb, "speed": speed.as_dict(), "agreement": close}
            fp32.unlink()
            int8.unlink()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

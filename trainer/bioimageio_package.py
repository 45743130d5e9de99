"""A bioimage.io model package (rdf.yaml, format 0.5) around an exported stemwatch ONNX file.

Written with plain YAML and onnxruntime, so packaging needs no bioimageio install; validating
and testing the package (``bioimageio.core.test_model``) needs the ``bioimageio`` extra. The
package holds: the ONNX weights, ``rdf.yaml``, a model card ``README.md``, and a test input
tile with the outputs onnxruntime gives for it (``.npy``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import yaml

from stemwatch.core.domain import FEATURES_OUTPUT
from stemwatch.core.errors import StemwatchError
from stemwatch.core.modelfile import file_sha256, read_metadata
from stemwatch.core.modelmeta import ModelMetadata

log = logging.getLogger(__name__)

FORMAT_VERSION = "0.5.4"
CITATIONS = (
    {
        "text": "Waisman A, et al. Deep learning neural networks highly predict very early onset "
        "of pluripotent stem cell differentiation. Stem Cell Reports 12(4):845-859 (2019)",
        "doi": "10.1016/j.stemcr.2019.02.004",
    },
    {
        "text": "Kusumoto D, et al. Automated deep learning-based system to identify endothelial "
        "cells derived from induced pluripotent stem cells. Stem Cell Reports 10(6):1687-1695 "
        "(2018)",
        "doi": "10.1016/j.stemcr.2018.04.007",
    },
)
DEFAULT_AUTHORS = ({"name": "stemwatch contributors"},)


class PackageError(StemwatchError):
    """The ONNX file cannot be packaged (not a stemwatch export, bad test tile)."""


def default_test_tile(onnx_path: Path, images: Sequence[Path] | None = None) -> np.ndarray:
    """A (1, C, S, S) test tile: the first tile of ``images`` if given, else a synthetic one."""
    from trainer.export import parity_tiles, synthetic_tiles

    meta = read_metadata(Path(onnx_path))
    if images:
        tile = parity_tiles(images, meta.tiling, meta.normalisation)[:1]
        return np.repeat(tile, meta.in_channels, axis=1)
    return synthetic_tiles(1, meta.in_channels, meta.input_size)


def _axes_for(name: str, shape: tuple[int, ...], meta: ModelMetadata) -> list[dict[str, Any]]:
    if len(shape) == 2 and name == FEATURES_OUTPUT:  # (batch, feature)
        names = [f"f{i}" for i in range(shape[1])]
        return [{"type": "batch"}, {"type": "channel", "channel_names": names}]
    if len(shape) == 2:  # probabilities / logits: (batch, class)
        return [{"type": "batch"}, {"type": "channel", "channel_names": meta.class_names}]
    if len(shape) == 3:  # cam: (batch, y, x)
        return [
            {"type": "batch"},
            {"type": "space", "id": "y", "size": int(shape[1])},
            {"type": "space", "id": "x", "size": int(shape[2])},
        ]
    raise PackageError(f"output {name!r} has unsupported rank {len(shape)}")


_OUTPUT_DESCRIPTIONS = {
    "probabilities": "calibrated class probabilities, softmax(logits / temperature)",
    "logits": "raw class logits",
    "cam": "class activation map of the positive class (calibrated log-odds per location)",
    FEATURES_OUTPUT: "penultimate features, scored by stemwatch's domain check against the "
    "training domain the metadata describes",
}


def model_card(meta: ModelMetadata, onnx_name: str) -> str:
    """The package's README.md."""
    t = meta.tiling
    n = meta.normalisation
    lines = [
        f"# {meta.name}",
        "",
        "Label-free detection of pluripotent stem cell differentiation from brightfield / "
        "phase-contrast images (stemwatch; after Waisman et al. 2019 and Kusumoto et al. 2018).",
        "",
        "## Model",
        f"- Architecture: `{meta.architecture}`; weights: `{onnx_name}` (ONNX)",
        f"- Classes: {', '.join(meta.class_names)}; positive class: `{meta.positive_class}`",
        f"- Calibration temperature (applied inside the graph): {meta.temperature:g}",
        "",
        "## Input",
        f"- `{meta.input_name}`: float32 (batch, {meta.in_channels}, {t.tile_size}, "
        f"{t.tile_size}) tiles in [0, 1]",
        f"- Preprocessing of a whole image (stemwatch.core.imaging.prepare): block-mean downsample "
        f"by {t.downsample}; percentile normalisation ({n.p_low:g}-{n.p_high:g} %, clipped); "
        f"{t.tile_size}-pixel tiles (stride {t.stride or t.tile_size}), background tiles "
        f"(std < {t.min_foreground_std:g}) skipped, at most {t.max_tiles} tiles per image",
        "",
        "## Outputs",
        *(
            f"- `{k}`: {v}"
            for k, v in _OUTPUT_DESCRIPTIONS.items()
            if k != "cam" or meta.cam_output_name
        ),
        "",
        "## Training",
        *(f"- {k}: {v}" for k, v in sorted(meta.training.items())),
        "",
        "## Metrics",
        *(f"- {k}: {v}" for k, v in sorted(meta.metrics.items())),
        "",
        "## Validation",
        "At export, onnxruntime's outputs were checked against PyTorch's on real tiles at batch "
        "1 and batch N (stemwatch export); the metrics above come from the held-out split "
        "described under Training. The test tensors of this package are onnxruntime's outputs "
        "for the test input.",
        "",
        "## Intended use and limitations",
        "Research use: flags wells whose cells start to leave pluripotency, earlier than the "
        "eye. Trained on one lab's imaging conditions; validate on your microscope, cell line "
        "and protocol before relying on it. Not a diagnostic device.",
        "",
        f"stemwatch {meta.stemwatch_version}, exported {meta.created}.",
        "",
    ]
    return "\n".join(lines)


def write_bioimageio_package(
    onnx_path: str | Path,
    out_dir: str | Path,
    *,
    test_tile: np.ndarray,
    authors: Sequence[dict[str, str]] = DEFAULT_AUTHORS,
    license_id: str = "BSD-3-Clause",
) -> Path:
    """Write a bioimage.io package for ``onnx_path`` into ``out_dir``; returns its rdf.yaml."""
    import onnxruntime as ort

    onnx_path = Path(onnx_path)
    out_dir = Path(out_dir)
    meta = read_metadata(onnx_path)
    size = meta.input_size
    tile = np.asarray(test_tile, dtype=np.float32)
    if tile.ndim == 3:
        tile = tile[None]
    if tile.shape != (1, meta.in_channels, size, size):
        raise PackageError(
            f"test tile has shape {tile.shape}; {onnx_path} needs (1, {meta.in_channels}, "
            f"{size}, {size})"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / onnx_path.name
    if weights.resolve() != onnx_path.resolve():
        shutil.copyfile(onnx_path, weights)
    session = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    out_names = [o.name for o in session.get_outputs()]
    results = session.run(out_names, {meta.input_name: tile})

    np.save(out_dir / "test_input.npy", tile)
    tifffile.imwrite(out_dir / "sample_input.tif", tile[0, 0])
    outputs: list[dict[str, Any]] = []
    tolerances: list[dict[str, Any]] = []
    for name, value in zip(out_names, results, strict=True):
        tolerances.append(_tolerance(name, np.asarray(value)))
        fname = f"test_output_{name}.npy"
        np.save(out_dir / fname, np.asarray(value, dtype=np.float32))
        outputs.append(
            {
                "id": name,
                "description": _OUTPUT_DESCRIPTIONS.get(name, name),
                "axes": _axes_for(name, tuple(np.shape(value)), meta),
                "test_tensor": {"source": fname, "sha256": file_sha256(out_dir / fname)},
                "data": {"type": "float32"},
            }
        )
    (out_dir / "README.md").write_text(model_card(meta, weights.name), encoding="utf-8")
    channel_names = (
        ["gray"] if meta.in_channels == 1 else [f"c{i}" for i in range(meta.in_channels)]
    )
    rdf: dict[str, Any] = {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": meta.name,
        "description": (
            f"Classifies {size}x{size} brightfield/phase-contrast tiles of pluripotent stem "
            f"cell colonies as {' / '.join(meta.class_names)} (stemwatch, {meta.architecture})."
        ),
        "authors": [dict(a) for a in authors],
        "cite": [dict(c) for c in CITATIONS],
        "license": license_id,
        "documentation": "README.md",
        "tags": [
            "stem-cells",
            "pluripotency",
            "differentiation",
            "brightfield",
            "classification",
            "2d",
            "onnx",
        ],
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": [
            {
                "id": meta.input_name,
                "description": "percentile-normalised tiles in [0, 1] (see README)",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": channel_names},
                    {"type": "space", "id": "y", "size": size},
                    {"type": "space", "id": "x", "size": size},
                ],
                "test_tensor": {
                    "source": "test_input.npy",
                    "sha256": file_sha256(out_dir / "test_input.npy"),
                },
                "sample_tensor": {
                    "source": "sample_input.tif",
                    "sha256": file_sha256(out_dir / "sample_input.tif"),
                },
                "data": {"type": "float32"},
            }
        ],
        "outputs": outputs,
        "weights": {
            "onnx": {
                "source": weights.name,
                "sha256": file_sha256(weights),
                "opset_version": int(_opset(weights)),
            }
        },
        "config": {
            "bioimageio": {"reproducibility_tolerance": tolerances},
            "stemwatch": meta.model_dump(mode="json"),
        },
    }
    rdf_path = out_dir / "rdf.yaml"
    rdf_path.write_text(yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True), encoding="utf-8")
    log.info("bioimage.io package written to %s", out_dir)
    return rdf_path


def _tolerance(name: str, value: np.ndarray) -> dict[str, Any]:
    """bioimage.io insists the absolute tolerance stays below 1 % of the largest test value."""
    scale = float(np.max(np.abs(value))) if value.size else 0.0
    return {
        "output_ids": [name],
        "weights_formats": ["onnx"],
        "absolute_tolerance": float(min(1e-4, max(1e-9, 0.005 * scale))),
        "relative_tolerance": 1e-3,
        "mismatched_elements_per_million": 0,
    }


def _opset(path: Path) -> int:
    import onnx

    proto = onnx.load(path, load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))

"""A bioimage.io model package (rdf.yaml, format 0.5) around an exported stemwatch ONNX file.

Written with plain YAML and onnxruntime, so packaging needs no bioimageio install; validating
and testing the package (:func:`validate_package`: ``bioimageio.core.test_model``) needs the
``bioimageio`` extra, and ``stemwatch export --bioimageio`` fails loudly when it does not pass.

The model's input is a *prepared tile*, not a raw image: block-mean downsampling and
percentile normalisation over the whole downsampled image come first
(:func:`stemwatch.core.imaging.prepare`). bioimage.io's preprocessing vocabulary cannot say
that (it has no resampling step, and ``scale_range`` takes its percentiles over the tensor it
is given: one tile, not the image), so the package declares what it can (float32, values
clipped to [0, 1]: no-ops on a prepared tile), says in its description and model card exactly
how tiles are made, and attaches the recipe (``stemwatch_recipe.json``) and a small raw
sample image whose first tile is the test input. Package: the ONNX weights, ``rdf.yaml``, the
model card ``README.md`` (training provenance, synthetic or not; the held-out test figures
with their 95 % intervals; validation figures marked as such), the test input and the outputs
onnxruntime gives for it (``.npy``), the sample tile, image and recipe.
"""

from __future__ import annotations

import json
import logging
import shutil
import string
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import yaml

from stemwatch.core.domain import FEATURES_OUTPUT
from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import IMAGE_SUFFIXES, prepare, read_image
from stemwatch.core.modelfile import file_sha256, read_metadata
from stemwatch.core.modelmeta import ModelMetadata
from trainer.metric_intervals import FIGURES, UNIT_PLURAL, hours_table, interval_text

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
NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_+- ()")
"""What bioimage.io allows in a model name (5 to 128 characters)."""
RECIPE_NAME = "stemwatch_recipe.json"
SAMPLE_IMAGE_NAME = "sample_image.tif"


class PackageError(StemwatchError):
    """The ONNX file cannot be packaged (not a stemwatch export, bad test tile)."""


def package_name(name: str) -> str:
    """A bioimage.io-valid name from a model's name: characters it does not allow become
    ``-``, and a name under 5 characters (``mine``) becomes ``stemwatch-mine``."""
    cleaned = "".join(c if c in NAME_CHARACTERS else "-" for c in name).strip(" -")
    if len(cleaned) < 5:
        cleaned = f"stemwatch-{cleaned}" if cleaned else "stemwatch-model"
    return cleaned[:64].rstrip(" -")


def default_test_tile(onnx_path: Path, images: Sequence[Path] | None = None) -> np.ndarray:
    """A (1, C, S, S) test tile: the first tile of ``images`` if given, else a synthetic one."""
    from trainer.export import parity_tiles, synthetic_tiles

    meta = read_metadata(Path(onnx_path))
    if images:
        tile = parity_tiles(images, meta.tiling, meta.normalisation)[:1]
        return np.repeat(tile, meta.in_channels, axis=1)
    return synthetic_tiles(1, meta.in_channels, meta.input_size)


def first_image(paths: Sequence[Path]) -> Path | None:
    """The first image file among ``paths`` (folders searched, not recursively)."""
    for item in map(Path, paths):
        if item.is_dir():
            files = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if files:
                return files[0]
        elif item.suffix.lower() in IMAGE_SUFFIXES and item.is_file():
            return item
    return None


def sample_crop(pixels: np.ndarray, meta: ModelMetadata) -> np.ndarray:
    """A small centred crop of a raw image that still gives at least one foreground tile
    (2, 4, 8 tiles' extent on a side), else the whole image."""
    t = meta.tiling
    h, w = pixels.shape
    for factor in (2, 4, 8):
        side = t.tile_size * t.downsample * factor
        if side >= min(h, w):
            break
        y0, x0 = (h - side) // 2, (w - side) // 2
        crop = np.ascontiguousarray(pixels[y0 : y0 + side, x0 : x0 + side])
        if len(prepare(crop, meta.normalisation, t).data):
            return crop
    return np.ascontiguousarray(pixels)


def recipe(meta: ModelMetadata) -> dict[str, Any]:
    """How a raw image becomes this model's input tiles (the attached recipe)."""
    t, n = meta.tiling, meta.normalisation
    return {
        "what": "stemwatch tile preparation: the model's input is a prepared tile, not a raw image",
        "steps": [
            "read one 2-D grayscale plane (stemwatch.core.imaging.read_image)",
            f"block-mean downsample by {t.downsample} in float32; edge rows and columns that "
            "do not fill a block are dropped",
            f"percentile normalisation of the whole downsampled plane: (x - P{n.p_low:g}) / "
            f"(P{n.p_high:g} - P{n.p_low:g}), clipped to [0, 1] (percentiles over an evenly "
            f"strided grid of at most {n.max_samples} pixels)",
            f"{t.tile_size}-pixel tiles on a {t.stride or t.tile_size}-pixel grid (last row and "
            f"column aligned to the edge); tiles with std < {t.min_foreground_std:g} or more "
            f"than {t.max_dark_fraction:g} of pixels <= {t.dark_level:g} skipped; at most "
            f"{t.max_tiles} tiles, evenly spread",
            "image probability = mean of its tiles' probabilities",
        ],
        "code": "stemwatch.core.imaging.prepare(read_image(path).pixels, normalisation, tiling)",
        "tiling": t.model_dump(mode="json"),
        "normalisation": n.model_dump(mode="json"),
        "training_pixel_size_um": meta.pixel_size_um,
        "optics": meta.training.get("optics"),
        "sample_image": SAMPLE_IMAGE_NAME,
    }


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


def _synthetic_statement(meta: ModelMetadata) -> str:
    prov = meta.training.get("data_provenance") or {}
    n, n_synth = prov.get("n_images"), prov.get("synthetic_images")
    if n is None or n_synth is None:
        return (
            "The provenance of the training images is not recorded in this model (exported by "
            "an older stemwatch): treat its figures as untested on your images."
        )
    if n_synth and n_synth == n:
        return (
            f"**Trained on synthetic images only**: all {n} training images come from "
            "stemwatch's simulated microscope (`stemwatch synth`). It has never seen a real "
            "culture; its figures below describe synthetic wells, and on real images its "
            "output is a demonstration, not a measurement."
        )
    if n_synth:
        return (
            f"**Partly synthetic training data**: {n_synth} of its {n} training images come "
            "from stemwatch's simulated microscope (`stemwatch synth`)."
        )
    return (
        f"Trained on {n} images of real cultures (none synthetic), from one lab's imaging "
        "conditions."
    )


def _test_section(meta: ModelMetadata) -> list[str]:
    test = meta.metrics.get("test")
    if not isinstance(test, dict) or not test.get("figures"):
        return [
            "No held-out test figures are recorded in this model. Evaluate it on wells it "
            "never saw (`stemwatch evaluate`) before relying on it.",
        ]
    unit = test.get("group_by") or "group"
    units = UNIT_PLURAL.get(unit, f"{unit} groups")
    lines = [
        f"On the run's held-out test split ({test.get('n_images')} images of "
        f"{test.get('n_groups')} {units} that were in neither training nor validation), "
        f"image level; 95 % intervals: {test.get('interval_method')}.",
        "",
        "| figure | value [95 % interval] |",
        "|---|---|",
    ]
    for key, name in FIGURES.items():
        if key in test["figures"]:
            lines.append(f"| {name} | {interval_text(test['figures'][key])} |")
    by_hours = test.get("accuracy_by_hours") or {}
    if by_hours:
        lines += ["", *hours_table(by_hours, unit)]
    for warning in test.get("warnings") or []:
        lines += ["", f"**Warning:** {warning}"]
    return lines


def _training_lines(meta: ModelMetadata) -> list[str]:
    t = meta.training
    optics = t.get("optics") or {}
    split = t.get("split") or {}
    lines = [
        f"- Data: `{t.get('data', '')}` (data set hash `{t.get('data_hash', 'not recorded')}`)",
        f"- Split by {split.get('group_by', '?')}: "
        + ", ".join(
            f"{part} {(split.get(part) or {}).get('n_images', '?')} images"
            for part in ("train", "val", "test")
        ),
        f"- Best epoch {t.get('epochs', '?')} (early stopping on validation loss), seed "
        f"{t.get('seed', '?')}, device {t.get('device', '?')}",
    ]
    if optics:
        px = optics.get("pixel_size_um")
        lines.append(
            f"- Pixel size {px if px is not None else 'unknown'} µm "
            f"({optics.get('pixel_size_source') or 'not stated'}); downsampling "
            f"{optics.get('downsample')} ({optics.get('downsample_rule')})"
        )
    return lines


def model_card(meta: ModelMetadata, onnx_name: str, *, name: str | None = None) -> str:
    """The package's README.md."""
    t = meta.tiling
    n = meta.normalisation
    validation = {k: v for k, v in meta.metrics.items() if k != "test"}
    px = f" at {meta.pixel_size_um:g} µm per pixel" if meta.pixel_size_um else ""
    lines = [
        f"# {name or meta.name}",
        "",
        "Label-free detection of pluripotent stem cell differentiation from brightfield / "
        "phase-contrast images (stemwatch; after Waisman et al. 2019 and Kusumoto et al. 2018).",
        "",
        _synthetic_statement(meta),
        "",
        "## Model",
        f"- Architecture: `{meta.architecture}`; weights: `{onnx_name}` (ONNX); stemwatch "
        f"name `{meta.name}`",
        f"- Classes: {', '.join(meta.class_names)}; positive class: `{meta.positive_class}`",
        f"- Calibration temperature (applied inside the graph): {meta.temperature:g}",
        "",
        "## Input: a prepared tile, not a raw image",
        f"- `{meta.input_name}`: float32 (batch, {meta.in_channels}, {t.tile_size}, "
        f"{t.tile_size}) tiles in [0, 1], made from a whole image{px} by "
        "`stemwatch.core.imaging.prepare`:",
        f"  1. block-mean downsampling by {t.downsample};",
        f"  2. percentile normalisation of the **whole** downsampled image ({n.p_low:g}-"
        f"{n.p_high:g} % to 0-1, clipped);",
        f"  3. {t.tile_size}-pixel tiles (stride {t.stride or t.tile_size}), background tiles "
        f"(std < {t.min_foreground_std:g}) skipped, at most {t.max_tiles} tiles per image; the "
        "image's probability is the mean of its tiles'.",
        f"- Attached: `{RECIPE_NAME}` (the recipe) and `{SAMPLE_IMAGE_NAME}` (a raw image "
        "crop whose first prepared tile is the test input), when the export had a real image.",
        "- Declared bioimage.io preprocessing: `ensure_dtype` float32 and `clip` to [0, 1], "
        "both no-ops on a prepared tile. **Not declared, because bioimage.io's vocabulary "
        "cannot express it:** the downsampling (it has no resampling step) and the "
        "normalisation over the whole image (`scale_range` takes percentiles over the tensor "
        "it is given, one tile, which gives different values for every tile). A consumer "
        "that feeds raw tiles gets meaningless output: prepare tiles with the recipe.",
        "",
        "## Outputs",
        *(
            f"- `{k}`: {v}"
            for k, v in _OUTPUT_DESCRIPTIONS.items()
            if k != "cam" or meta.cam_output_name
        ),
        "",
        "## Held-out test figures",
        *_test_section(meta),
        "",
        "## Training",
        *_training_lines(meta),
        "",
        "## Validation (early stopping and calibration: not an accuracy estimate)",
        *(f"- {k}: {v}" for k, v in sorted(validation.items())),
        "",
        "At export, onnxruntime's outputs were checked against PyTorch's at batch 1 and batch N "
        "(stemwatch export). The test tensors of this package are onnxruntime's outputs for the "
        "test tile.",
        "",
        "## Intended use and limitations",
        "Research use: flags wells whose cells start to leave pluripotency. Validate on your "
        "microscope, pixel size, cell line and protocol before relying on it (`stemwatch "
        "evaluate` on wells it never saw). Not a diagnostic device.",
        "",
        f"stemwatch {meta.stemwatch_version}, exported {meta.created}.",
        "",
    ]
    return "\n".join(lines)


def description(meta: ModelMetadata) -> str:
    """The rdf's description (bioimage.io warns above 512 characters)."""
    t, n = meta.tiling, meta.normalisation
    synthetic = ""
    prov = meta.training.get("data_provenance") or {}
    if prov.get("synthetic_images") and prov.get("synthetic_images") == prov.get("n_images"):
        synthetic = " Trained on synthetic images only."
    text = (
        f"Classifies brightfield/phase-contrast stem cell tiles as "
        f"{' / '.join(meta.class_names)}.{synthetic} Input: a prepared tile, not a raw image: "
        f"block-mean downsample by {t.downsample}, normalise the whole image to its "
        f"{n.p_low:g}-{n.p_high:g} percentiles (clipped to 0-1), cut {t.tile_size}-px tiles "
        f"(stemwatch.core.imaging.prepare; recipe and sample image attached). bioimage.io "
        "preprocessing cannot express whole-image percentiles, so it is not declared."
    )
    return text


def write_bioimageio_package(
    onnx_path: str | Path,
    out_dir: str | Path,
    *,
    test_tile: np.ndarray | None = None,
    sample_image: Path | None = None,
    authors: Sequence[dict[str, str]] = DEFAULT_AUTHORS,
    license_id: str = "BSD-3-Clause",
) -> Path:
    """Write a bioimage.io package for ``onnx_path`` into ``out_dir``; returns its rdf.yaml.

    With ``sample_image`` (a raw image), a small crop of it is attached and its first
    prepared tile is the test input; else ``test_tile`` is."""
    import onnxruntime as ort

    onnx_path = Path(onnx_path)
    out_dir = Path(out_dir)
    meta = read_metadata(onnx_path)
    size = meta.input_size
    raw = None
    if sample_image is not None:
        raw = sample_crop(read_image(sample_image).pixels, meta)
        tiles = prepare(raw, meta.normalisation, meta.tiling).data
        if not len(tiles):
            raise PackageError(f"{sample_image}: no foreground tile; give another sample image")
        test_tile = np.repeat(tiles[:1], meta.in_channels, axis=1)
    if test_tile is None:
        raise PackageError("give a sample image or a test tile for the package's test")
    tile = np.asarray(test_tile, dtype=np.float32)
    if tile.ndim == 3:
        tile = tile[None]
    if tile.shape != (1, meta.in_channels, size, size):
        raise PackageError(
            f"test tile has shape {tile.shape}; {onnx_path} needs (1, {meta.in_channels}, "
            f"{size}, {size})"
        )
    name = package_name(meta.name)
    if name != meta.name:
        log.info(
            "bioimage.io package name %r (the model's name %r is not a valid one)", name, meta.name
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
    attachments = []
    (out_dir / RECIPE_NAME).write_text(json.dumps(recipe(meta), indent=2), encoding="utf-8")
    attachments.append({"source": RECIPE_NAME, "sha256": file_sha256(out_dir / RECIPE_NAME)})
    if raw is not None:
        px = {"PhysicalSizeX": meta.pixel_size_um, "PhysicalSizeY": meta.pixel_size_um}
        tifffile.imwrite(
            out_dir / SAMPLE_IMAGE_NAME,
            raw,
            photometric="minisblack",
            metadata=px if meta.pixel_size_um else None,
        )
        attachments.append(
            {"source": SAMPLE_IMAGE_NAME, "sha256": file_sha256(out_dir / SAMPLE_IMAGE_NAME)}
        )
    else:
        (out_dir / SAMPLE_IMAGE_NAME).unlink(missing_ok=True)
    outputs: list[dict[str, Any]] = []
    tolerances: list[dict[str, Any]] = []
    for out_name, value in zip(out_names, results, strict=True):
        tolerance = _tolerance(out_name, np.asarray(value))
        if tolerance is not None:
            tolerances.append(tolerance)
        fname = f"test_output_{out_name}.npy"
        np.save(out_dir / fname, np.asarray(value, dtype=np.float32))
        outputs.append(
            {
                "id": out_name,
                "description": _OUTPUT_DESCRIPTIONS.get(out_name, out_name),
                "axes": _axes_for(out_name, tuple(np.shape(value)), meta),
                "test_tensor": {"source": fname, "sha256": file_sha256(out_dir / fname)},
                "data": {"type": "float32"},
            }
        )
    (out_dir / "README.md").write_text(model_card(meta, weights.name, name=name), encoding="utf-8")
    channel_names = (
        ["gray"] if meta.in_channels == 1 else [f"c{i}" for i in range(meta.in_channels)]
    )
    rdf: dict[str, Any] = {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description(meta),
        "authors": [dict(a) for a in authors],
        "cite": [dict(c) for c in CITATIONS],
        "license": license_id,
        "documentation": "README.md",
        "attachments": attachments,
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
                "description": f"a prepared tile in [0, 1], not a raw image: see README.md and "
                f"{RECIPE_NAME}",
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
                "data": {"type": "float32", "range": [0.0, 1.0]},
                "preprocessing": [
                    {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                    {"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}},
                ],
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


def validate_package(rdf: Path) -> tuple[bool | None, str]:
    """Run bioimageio.core's ``test_model`` on a package: (True, summary) when it passes,
    (False, the failed checks) when not, (None, why) when bioimageio.core is not installed."""
    try:
        import bioimageio.core
    except ImportError:
        return None, (
            "bioimageio.core is not installed (pip install -e '.[bioimageio]' && pip install "
            "--no-deps bioimageio.spec==0.5.14.3)"
        )
    summary = bioimageio.core.test_model(rdf)
    version = getattr(bioimageio.core, "__version__", "?")
    if summary.status == "passed":
        return True, f"bioimageio.core {version} test_model: passed"
    failed = [
        f"- {d.name}: " + "; ".join(str(e.msg) for e in d.errors)
        for d in summary.details
        if d.status == "failed"
    ]
    return False, f"bioimageio.core {version} test_model: {summary.status}\n" + "\n".join(
        failed or [summary.format()]
    )


def _tolerance(name: str, value: np.ndarray) -> dict[str, Any] | None:
    """bioimage.io insists the absolute tolerance stays below 1 % of the largest test value
    (signed: an output whose values are all negative, e.g. the logits of an unsure model,
    cannot have one; None leaves it to bioimage.io's default tolerance)."""
    top = float(np.max(value)) if value.size else 0.0
    if not top > 0:
        return None
    return {
        "output_ids": [name],
        "weights_formats": ["onnx"],
        "absolute_tolerance": float(min(1e-4, max(1e-9, 0.005 * top))),
        "relative_tolerance": 1e-3,
        "mismatched_elements_per_million": 0,
    }


def _opset(path: Path) -> int:
    import onnx

    proto = onnx.load(path, load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))

"""int8 models: a static QDQ quantisation of an exported model, calibrated on training tiles.

:func:`quantize_model` turns an exported fp32 ONNX file into an int8 one with onnxruntime's
``quantize_static`` in the QDQ format (QuantizeLinear/DequantizeLinear pairs around each
quantised operator; any onnxruntime runs it, the CPU provider with int8 kernels):

- weights int8, per output channel by default; activations uint8 (asymmetric), their ranges
  calibrated (min/max) on tiles of *training* images prepared exactly as the monitor prepares
  them (:func:`calibration_tiles`: :func:`stemwatch.core.imaging.prepare`);
- the compute layers are quantised (Conv, Gemm, MatMul), except the *head*: the layers whose
  outputs reach a graph output without passing another compute layer (the classifier, the CAM
  projection, and, when the model exports its ``features``, the last convolutions before
  them, through residual shortcuts too). They cost little and keep the calibrated
  probabilities, logits, CAM and features close to fp32;
- every output of the fp32 model is kept, under its name; the model carries the fp32 model's
  :class:`~stemwatch.core.modelmeta.ModelMetadata` plus ``quantization`` (what was quantised,
  how it was calibrated, the fp32 model's sha256), and passes the monitor's loading checks
  (:func:`stemwatch.core.modelfile.open_model`) before it replaces anything.

Calibration never uses the run's held-out test images (:func:`check_not_heldout`), so the
held-out comparison (:func:`compare_on_heldout`: every figure of both models with its 95 %
interval over wells, and the paired difference int8 - fp32 with its own interval) is honest.

Whether int8 pays depends on the network and the CPU: see docs/architectures-inference.md.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stemwatch.core.errors import ImageReadError, ModelMetadataError, StemwatchError
from stemwatch.core.imaging import (
    IMAGE_SUFFIXES,
    NormalisationRecipe,
    TilingSpec,
    hash_bytes,
    prepare,
    read_bytes,
    read_image,
)
from stemwatch.core.modelfile import file_sha256, open_model
from stemwatch.core.modelmeta import METADATA_KEY, ModelMetadata, Quantization

log = logging.getLogger(__name__)

COMPUTE_OPS = ("Conv", "Gemm", "MatMul")
"""Operators quantised (where the time goes); the rest stays float between them."""
DEFAULT_CALIBRATION_IMAGES = 32
DEFAULT_CALIBRATION_TILES = 256
CALIBRATION_BATCH = 16
DEFAULT_INT8_TOLERANCE = 0.05
"""Largest allowed mean |int8 - fp32| of the calibrated probabilities on the calibration
tiles. A mean, not a maximum: a tile on the decision boundary of a sharply calibrated model
(a low temperature multiplies the logits) can move far with a small error in its logits; how
often that changes an image's call is what the held-out comparison measures."""

_FIX = (
    "give readable training images of this run (TIFF/PNG files or folders of them) with "
    "--calibration-images, or leave the option out to calibrate on the run's training split"
)


class QuantizeError(StemwatchError):
    """The model could not be quantised, or its calibration data is unusable."""


@dataclass(frozen=True)
class CalibrationSet:
    """Tiles to calibrate activation ranges on, and where they came from."""

    tiles: np.ndarray
    """(N, C, S, S) float32, prepared as the monitor prepares them."""
    files: tuple[Path, ...]
    source: str
    data_hash: str | None = None
    """The run's data set hash, when the tiles come from its training split."""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "n_images": len(self.files),
            "n_tiles": len(self.tiles),
        }
        if self.data_hash:
            out["data_hash"] = self.data_hash
        return out


def int8_path_for(fp32_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.int8.onnx``."""
    p = Path(fp32_path)
    return p.with_name(f"{p.stem}.int8{p.suffix or '.onnx'}")


# --------------------------------------------------------------------------- calibration data


def training_images(split: dict[str, Any] | None, source: str, max_images: int) -> list[Path]:
    """Up to ``max_images`` of a checkpoint's *training* images, spread evenly over its groups
    (wells) and classes; raises :class:`QuantizeError` when there are none or they are gone."""
    images = [im for im in (split or {}).get("images", []) if im.get("part") == "train"]
    if not images:
        raise QuantizeError(
            f"{source}: the checkpoint records no training images to calibrate on (written by "
            f"an older stemwatch?); {_FIX}"
        )
    images.sort(key=lambda im: (str(im.get("label")), str(im.get("group")), str(im["path"])))
    if len(images) > max_images:
        pick = np.linspace(0, len(images) - 1, max_images).round().astype(int)
        images = [images[i] for i in pick]
    paths = [Path(im["path"]) for im in images]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise QuantizeError(
            f"{source}: {len(missing)} of the {len(paths)} training images chosen for "
            f"calibration are gone, e.g. {missing[0]}; restore them, or {_FIX}"
        )
    return paths


def expand_images(items: Sequence[str | Path]) -> list[Path]:
    """Files, and the image files of folders (not recursive); a missing path, an empty folder
    or a file of another kind raises :class:`QuantizeError` naming it."""
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise QuantizeError(
                    f"calibration folder {item} holds no image files "
                    f"({', '.join(sorted(IMAGE_SUFFIXES))}); {_FIX}"
                )
            files += found
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise QuantizeError(
                    f"calibration image {item}: {item.suffix or 'no suffix'} is not an image "
                    f"file ({', '.join(sorted(IMAGE_SUFFIXES))}); {_FIX}"
                )
            files.append(item)
        else:
            raise QuantizeError(f"calibration image {item} does not exist; {_FIX}")
    return files


def check_not_heldout(files: Sequence[Path], split: dict[str, Any] | None, source: str) -> None:
    """Refuse calibration files that are held-out test images of the run (by path or content
    hash): calibrating on them would flatter the held-out comparison."""
    test = [im for im in (split or {}).get("images", []) if im.get("part") == "test"]
    if not test:
        return
    paths = {str(im["path"]) for im in test}
    hashes = {str(im["content_hash"]) for im in test if im.get("content_hash")}
    for f in files:
        if str(f.resolve()) in paths or (hashes and hash_bytes(read_bytes(f)) in hashes):
            raise QuantizeError(
                f"calibration image {f} is one of the held-out test images of {source}; "
                "calibrating on it would flatter the int8 model's held-out figures. Use "
                "training images (leave --calibration-images out to use the run's training "
                "split)"
            )


def calibration_tiles(
    files: Sequence[Path],
    tiling: TilingSpec,
    normalisation: NormalisationRecipe,
    *,
    in_channels: int = 1,
    max_tiles: int = DEFAULT_CALIBRATION_TILES,
    source: str = "",
    data_hash: str | None = None,
) -> CalibrationSet:
    """Tiles of ``files`` prepared as the monitor prepares them (evenly thinned to
    ``max_tiles``); an unreadable image, or no tile at all, raises :class:`QuantizeError`."""
    if not files:
        raise QuantizeError(f"no calibration images given; {_FIX}")
    chunks = []
    for f in files:
        try:
            pixels = read_image(f).pixels
        except ImageReadError as exc:
            raise QuantizeError(f"calibration image {f} cannot be read ({exc}); {_FIX}") from None
        try:
            chunks.append(prepare(pixels, normalisation, tiling).data)
        except StemwatchError as exc:
            raise QuantizeError(
                f"calibration image {f} cannot be tiled as the model needs ({exc}); {_FIX}"
            ) from None
    tiles = np.concatenate(chunks) if chunks else np.zeros((0, 1, 1, 1), np.float32)
    if len(tiles) == 0:
        raise QuantizeError(
            f"the {len(files)} calibration image(s) ({files[0]}, ...) give no tiles (all "
            f"background for the model's tiling); {_FIX}"
        )
    if len(tiles) > max_tiles:
        tiles = tiles[np.linspace(0, len(tiles) - 1, max_tiles).round().astype(int)]
    if in_channels != 1:
        tiles = np.repeat(tiles, in_channels, axis=1)
    return CalibrationSet(
        np.ascontiguousarray(tiles, dtype=np.float32),
        tuple(files),
        source or f"{len(files)} image file(s)",
        data_hash,
    )


# ------------------------------------------------------------------------------- quantisation


def name_nodes(model: Any) -> bool:
    """Give every unnamed node a unique name (``<op>_<index>``); True when any was unnamed."""
    taken = {n.name for n in model.graph.node if n.name}
    changed = False
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
            changed = True
    return changed


def head_nodes(model: Any) -> list[str]:
    """Names of the compute nodes (:data:`COMPUTE_OPS`) from which a graph output is reached
    without passing another compute node: the layers that write the outputs."""
    producer = {out: node for node in model.graph.node for out in node.output}
    heads: list[str] = []
    seen: set[int] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.op_type in COMPUTE_OPS:
            heads.append(node.name)
            continue
        stack.extend(node.input)
    return heads


def _batches(input_name: str, tiles: np.ndarray, batch: int) -> Iterator[dict[str, np.ndarray]]:
    for i in range(0, len(tiles), batch):
        yield {input_name: np.ascontiguousarray(tiles[i : i + batch])}


def quantize_model(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: CalibrationSet,
    *,
    per_channel: bool = True,
    tolerance: float = DEFAULT_INT8_TOLERANCE,
) -> tuple[ModelMetadata, dict[str, Any]]:
    """Write the static QDQ int8 model of ``fp32_path`` to ``out_path``; returns its metadata
    and how far it is from fp32 on the calibration tiles (:func:`agreement`).

    Checked before it replaces ``out_path``: QuantizeLinear/DequantizeLinear nodes present,
    the same outputs as the fp32 model, the monitor's loading checks, and calibrated
    probabilities within ``tolerance`` of fp32's on average over the calibration tiles
    (:data:`DEFAULT_INT8_TOLERANCE`)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if fp32_path.resolve() == out_path.resolve():
        raise QuantizeError(
            f"{out_path}: the int8 model cannot replace its fp32 model; name another"
        )
    opened = open_model(fp32_path)
    meta = opened.metadata
    outputs = [o.name for o in opened.session.get_outputs()]
    if meta.quantization is not None:
        raise QuantizeError(f"{fp32_path} is already quantised; quantise the fp32 model")
    tiles = calibration.tiles
    want = (meta.in_channels, meta.tiling.tile_size, meta.tiling.tile_size)
    if tiles.ndim != 4 or tuple(tiles.shape[1:]) != want:
        raise QuantizeError(
            f"calibration tiles have shape {tiles.shape[1:]} but {fp32_path} takes "
            f"(N, {want[0]}, {want[1]}, {want[2]}); prepare them with the model's tiling"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    stem = f".{out_path.stem}.{os.getpid()}"
    pre = out_path.with_name(f"{stem}.pre.onnx")
    partial = out_path.with_name(f"{stem}.partial.onnx")
    try:
        try:  # shape inference and graph fusions first (onnxruntime's recommended step)
            quant_pre_process(str(fp32_path), str(pre))
        except Exception as exc:  # symbolic shape inference fails on some graphs
            log.warning(
                "%s: quantisation pre-processing failed (%s); quantising as is", fp32_path, exc
            )
            pre.write_bytes(fp32_path.read_bytes())
        graph = onnx.load(str(pre))
        if name_nodes(graph):  # exclusions go by node name
            onnx.save(graph, str(pre))
        excluded = head_nodes(graph)
        batches = _batches(meta.input_name, tiles, CALIBRATION_BATCH)

        class TileReader(CalibrationDataReader):
            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(batches, None)

        try:
            quantize_static(
                str(pre),
                str(partial),
                TileReader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(COMPUTE_OPS),
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:  # onnxruntime raises assorted types
            raise QuantizeError(f"{fp32_path}: onnxruntime could not quantise it: {exc}") from exc
        proto = onnx.load(str(partial))
        info = Quantization(
            weights=f"int8, {'per output channel' if per_channel else 'per tensor'}, symmetric",
            activations="uint8, per tensor, asymmetric",
            operators=list(COMPUTE_OPS),
            kept_float=excluded,
            calibration={
                **calibration.describe(),
                "method": "min/max of activations",
                "preprocessing": "stemwatch.core.imaging.prepare with the model's tiling and "
                "normalisation (as the monitor)",
            },
            fp32_sha256=file_sha256(fp32_path),
            tool=f"onnxruntime {ort.__version__} quantize_static on {platform.machine()}",
        )
        int8_meta = meta.model_copy(update={"quantization": info})
        onnx.helper.set_model_props(proto, {METADATA_KEY: int8_meta.to_json()})
        proto.doc_string = f"stemwatch model {meta.name} ({meta.architecture}), int8 QDQ"
        check_qdq(proto, outputs, out_path)
        partial.write_bytes(proto.SerializeToString())
        open_model(partial)  # the monitor's checks: metadata, input and output names, shape
        close = agreement(fp32_path, partial, tiles)
        mean = close[meta.output_name]["mean_abs_diff"]
        if not mean <= tolerance:
            raise QuantizeError(
                f"{out_path}: the int8 model's probabilities differ from fp32 by "
                f"{mean:.3f} on average (up to {close[meta.output_name]['max_abs_diff']:.3f}) "
                f"on the calibration tiles (tolerance {tolerance:g}); it is not kept. "
                "Calibrate on more (and more varied) training images, use per-channel "
                "weights (the default), or keep the fp32 model for this network"
            )
        os.replace(partial, out_path)
    finally:
        pre.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    log.info("int8 model %s: %s", out_path, close)
    return int8_meta, close


def check_qdq(proto: Any, want: Sequence[str], where: Path) -> None:
    """The int8 graph has QDQ pairs and the fp32 model's outputs ``want``, by name and order."""
    ops = [n.op_type for n in proto.graph.node]
    if "QuantizeLinear" not in ops or "DequantizeLinear" not in ops:
        raise QuantizeError(
            f"{where}: quantisation left no QuantizeLinear/DequantizeLinear node (no "
            f"{'/'.join(COMPUTE_OPS)} layer outside the head?); int8 would not pay here"
        )
    got = [o.name for o in proto.graph.output]
    if got != list(want):
        raise QuantizeError(f"{where}: quantisation changed the outputs {want} into {got}")


def agreement(fp32_path: str | Path, int8_path: str | Path, tiles: np.ndarray) -> dict[str, Any]:
    """Per output: largest and mean |int8 - fp32| over ``tiles``; for the probabilities also
    the share of tiles whose predicted class differs."""
    a, b = open_model(fp32_path), open_model(int8_path)
    names = [o.name for o in a.session.get_outputs()]
    out: dict[str, Any] = {"n_tiles": len(tiles)}
    ref: list[list[np.ndarray]] = [[] for _ in names]
    got: list[list[np.ndarray]] = [[] for _ in names]
    for i in range(0, len(tiles), CALIBRATION_BATCH):
        x = {a.metadata.input_name: np.ascontiguousarray(tiles[i : i + CALIBRATION_BATCH])}
        for store, session in ((ref, a.session), (got, b.session)):
            for k, value in enumerate(session.run(names, x)):
                store[k].append(np.asarray(value, dtype=np.float64))
    for k, name in enumerate(names):
        r, g = np.concatenate(ref[k]), np.concatenate(got[k])
        if r.shape != g.shape:
            raise ModelMetadataError(
                f"{int8_path}: output {name!r} has shape {g.shape}, fp32 {r.shape}"
            )
        d = np.abs(r - g)
        out[name] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean())}
        if name == a.metadata.output_name:
            out[name]["class_changed"] = float(np.mean(r.argmax(1) != g.argmax(1)))
    return out


# --------------------------------------------------------------------- held-out comparison


def compare_on_heldout(
    checkpoint_path: str | Path,
    fp32_path: str | Path,
    int8_path: str | Path,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Both models on the run's held-out split at image level (the monitor's mean of tile
    probabilities): each figure with its 95 % interval over the split's groups (wells), and
    the paired difference int8 - fp32 with its interval from the same resamples.

    Raises ``trainer.data.DataError`` when the checkpoint holds no usable held-out split."""
    from stemwatch.core.aggregate import image_probabilities
    from stemwatch.core.intervals import DEFAULT_RESAMPLES, bootstrap_items
    from trainer.checkpoint import load_checkpoint
    from trainer.data import TileCache
    from trainer.evaluate import OnnxPredictor, classification_metrics
    from trainer.heldout import check_unchanged, heldout_samples
    from trainer.metric_intervals import FIGURES, figure_statistics, interval_dict

    ckpt = load_checkpoint(checkpoint_path)
    split = ckpt.split
    samples, recorded = heldout_samples(split, ckpt.class_names, str(checkpoint_path))
    group_by = str((split or {}).get("group_by") or "well")
    cache = TileCache(ckpt.tiling, ckpt.normalisation)
    readable = cache.warm(samples)
    check_unchanged(readable, recorded, cache.content_hash)
    tiles = cache.tileset(readable)
    x = tiles.x if ckpt.in_channels == 1 else np.repeat(tiles.x, ckpt.in_channels, axis=1)
    pos = ckpt.positive_index
    probs: dict[str, np.ndarray] = {}
    for tag, path in (("fp32", fp32_path), ("int8", int8_path)):
        tile_probs = OnnxPredictor(Path(path)).predict(x)
        probs[tag] = image_probabilities(tile_probs, tiles.image, len(readable))
    ok = ~(np.isnan(probs["fp32"]).any(1) | np.isnan(probs["int8"]).any(1))
    p32, p8 = probs["fp32"][ok], probs["int8"][ok]
    labels = np.array([s.label for s in readable])[ok]
    groups = [s.group(group_by) for s, keep in zip(readable, ok, strict=True) if keep]
    s32, s8 = figure_statistics(p32, labels, pos), figure_statistics(p8, labels, pos)
    stats = {f"fp32:{k}": v for k, v in s32.items()}
    stats |= {f"int8:{k}": v for k, v in s8.items()}
    stats |= {f"diff:{k}": _difference(s8[k], s32[k]) for k in s32 if k in s8}
    changed = (p32.argmax(1) != p8.argmax(1)).astype(float)
    dp = np.abs(p8[:, pos] - p32[:, pos])
    stats["class_changed"] = lambda w: (w @ changed) / w.sum(axis=1)
    stats["mean_abs_dp"] = lambda w: (w @ dp) / w.sum(axis=1)
    ivs = bootstrap_items(groups, stats, seed=seed)
    figures = {
        name: {
            tag: interval_dict(ivs[f"{tag}:{name}"])
            for tag in ("fp32", "int8", "diff")
            if f"{tag}:{name}" in ivs
        }
        for name in FIGURES
        if f"fp32:{name}" in ivs
    }
    point = {
        tag: classification_metrics(p, labels, ckpt.class_names, pos)
        for tag, p in (("fp32", p32), ("int8", p8))
    }
    return {
        "split": (split or {}).get("name"),
        "group_by": group_by,
        "n_images": int(ok.sum()),
        "n_groups": len(set(groups)),
        "figures": figures,
        "accuracy": {tag: point[tag]["accuracy"] for tag in point},
        "class_changed": interval_dict(ivs["class_changed"]),
        "mean_abs_dp": interval_dict(ivs["mean_abs_dp"]),
        "max_abs_dp": float(dp.max()) if len(dp) else None,
        "interval_method": "percentile bootstrap over groups (images resampled with their "
        f"group), {DEFAULT_RESAMPLES} resamples shared by both models (paired), seed {seed}",
    }


def _difference(a: Any, b: Any) -> Any:
    return lambda w: a(w) - b(w)


def calibration_for(
    checkpoint_path: str | Path,
    images: Sequence[str | Path] | None = None,
    *,
    max_images: int = DEFAULT_CALIBRATION_IMAGES,
    max_tiles: int = DEFAULT_CALIBRATION_TILES,
) -> CalibrationSet:
    """The calibration tiles of a checkpoint: of ``images`` when given (refused when they are
    held-out test images of the run), else of up to ``max_images`` of its training split."""
    from trainer.checkpoint import load_checkpoint

    if max_images < 1 or max_tiles < 1:
        raise QuantizeError(
            f"calibration needs at least one image and one tile, got max_images {max_images}, "
            f"max_tiles {max_tiles}"
        )
    ckpt = load_checkpoint(checkpoint_path)
    data_hash = None
    if images:
        files = expand_images(images)
        if len(files) > max_images:
            pick = np.linspace(0, len(files) - 1, max_images).round().astype(int)
            files = [files[i] for i in pick]
        check_not_heldout(files, ckpt.split, str(checkpoint_path))
        source = f"{len(files)} given image(s) ({', '.join(str(Path(p)) for p in images)})"
    else:
        files = training_images(ckpt.split, str(checkpoint_path), max_images)
        data_hash = (ckpt.split or {}).get("data_hash")
        name = (ckpt.split or {}).get("name") or ""
        source = f"{len(files)} training images of the run's split {name}".rstrip()
    return calibration_tiles(
        files,
        ckpt.tiling,
        ckpt.normalisation,
        in_channels=ckpt.in_channels,
        max_tiles=max_tiles,
        source=source,
        data_hash=data_hash,
    )

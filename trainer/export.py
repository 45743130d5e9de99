"""Exporting a checkpoint to one self-describing ONNX file, checked against torch.

The exported graph takes ``image`` (N, C, S, S) float32 tiles at the training tile size (batch
dynamic, side fixed) and returns:

- ``probabilities`` (N, K): calibrated, ``softmax(logits / temperature)``;
- ``logits`` (N, K): raw logits;
- ``cam`` (N, h, w), for architectures ending in global average pooling: the class activation
  map of the positive class against the others, divided by the temperature. Its spatial mean is
  ``(logit_pos - mean(other logits)) / T``; with two classes that is exactly the calibrated
  log-odds, ``logit(probabilities[:, pos])``, so each pixel says where the evidence lies;
- ``features`` (N, D): the penultimate features (what the final linear layer reads), which the
  monitor's domain check scores against the description of the training domain that the
  export fits on the run's own images (:mod:`trainer.domain`, :mod:`stemwatch.core.domain`);
  only in models that carry such a description.

The legacy TorchScript exporter (``dynamo=False``) is used: one file, no external data, a pinned
opset. The model's :class:`~stemwatch.core.modelmeta.ModelMetadata` goes into ``metadata_props``.
Before the file is kept, torch and onnxruntime must agree on real tiles at batch 1 and batch N.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stemwatch import __version__
from stemwatch.core.domain import FEATURES_OUTPUT, MIN_STATISTICS_TILE, DomainDescription
from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import (
    IMAGE_SUFFIXES,
    NormalisationRecipe,
    TilingSpec,
    prepare,
    read_image,
)
from stemwatch.core.modelfile import file_sha256
from stemwatch.core.modelmeta import METADATA_KEY, ModelMetadata
from trainer.architectures import CamModel, get_info
from trainer.checkpoint import Checkpoint, load_checkpoint
from trainer.domain import TooFewImagesError, domain_images, fit_domain

log = logging.getLogger(__name__)

INPUT_NAME = "image"
PROBABILITIES = "probabilities"
LOGITS = "logits"
CAM = "cam"
FEATURES = FEATURES_OUTPUT
DEFAULT_OPSET = 17
MAX_PARITY_TILES = 8


class ExportError(StemwatchError):
    """The model could not be exported, or the exported file disagrees with torch."""


@dataclass(frozen=True)
class ParityResult:
    """torch vs onnxruntime at one batch size: largest absolute difference per output."""

    batch_size: int
    max_abs_diff: dict[str, float]
    scale: dict[str, float]
    """Largest absolute torch value per output (the tolerance is relative to max(1, scale))."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it checked it."""

    onnx_path: Path
    model_hash: str
    metadata: ModelMetadata
    opset: int
    size_bytes: int
    export_seconds: float
    outputs: list[str]
    parity_source: str
    parity: list[ParityResult] = field(default_factory=list)
    tolerance: float = 1e-4
    domain_note: str = ""
    """Why the model carries no domain description (empty when it carries one)."""

    def summary(self) -> str:
        worst = max((max(p.max_abs_diff.values()) for p in self.parity), default=float("nan"))
        d = self.metadata.domain
        if d is not None:
            cal = d.calibration
            domain = (
                f"; domain described on {cal.get('n_fit_tiles')} tiles of "
                f"{cal.get('n_fit_images')} training images, threshold {d.threshold:.3f} "
                f"(the {100 * d.quantile:g}th percentile of {cal.get('n_calibration_images')} "
                "held-out images)"
            )
        else:
            domain = f"; no domain description ({self.domain_note or 'not asked for'})"
        return (
            f"{self.onnx_path} ({self.size_bytes / 1e6:.1f} MB, sha256 {self.model_hash[:12]}): "
            f"{self.metadata.architecture}, input {INPUT_NAME} (N, {self.metadata.in_channels}, "
            f"{self.metadata.input_size}, {self.metadata.input_size}), outputs "
            f"{', '.join(self.outputs)}, opset {self.opset}; parity at batch "
            f"{', '.join(str(p.batch_size) for p in self.parity)} on {self.parity_source}: "
            f"max abs diff {worst:.2e} (tolerance {self.tolerance:g}){domain}"
        )


class ExportModule(nn.Module):
    """Wraps a classifier for deployment: calibrated probabilities, logits, (GAP nets) CAM and,
    given ``features_layer`` (the name of the final linear layer), the penultimate features."""

    cam_weight: Tensor
    cam_bias: Tensor

    def __init__(
        self,
        model: nn.Module,
        *,
        temperature: float,
        positive_index: int,
        with_cam: bool = True,
        features_layer: str | None = None,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ExportError(f"temperature must be > 0, got {temperature}")
        self.model = model.eval()
        self.temperature = float(temperature)
        self.with_cam = with_cam and isinstance(model, CamModel)
        if self.with_cam:
            assert isinstance(model, CamModel)
            fc = model.classifier_layer()
            weight = fc.weight.detach()
            bias = fc.bias.detach() if fc.bias is not None else torch.zeros(weight.shape[0])
            others = [i for i in range(weight.shape[0]) if i != positive_index]
            w = weight[positive_index] - weight[others].mean(0)
            b = bias[positive_index] - bias[others].mean(0)
            self.register_buffer("cam_weight", (w / self.temperature).view(1, -1, 1, 1).clone())
            self.register_buffer("cam_bias", (b / self.temperature).view(1).clone())
        self.with_features = features_layer is not None
        self._seen: list[Tensor] = []
        if features_layer is not None:
            try:
                layer = model.get_submodule(features_layer)
            except AttributeError:
                raise ExportError(
                    f"the model has no layer {features_layer!r} to take features from"
                ) from None
            layer.register_forward_pre_hook(self._keep_input)

    def _keep_input(self, _module: nn.Module, args: tuple[Tensor, ...]) -> None:
        self._seen.append(args[0])

    @property
    def output_names(self) -> list[str]:
        names = [PROBABILITIES, LOGITS, CAM] if self.with_cam else [PROBABILITIES, LOGITS]
        return [*names, FEATURES] if self.with_features else names

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        self._seen.clear()
        outputs: tuple[Tensor, ...]
        if self.with_cam:
            assert isinstance(self.model, CamModel)
            features = self.model.forward_features(image)
            logits = self.model.forward_head(features)
            cam = F.conv2d(features, self.cam_weight, self.cam_bias).squeeze(1)
            outputs = (F.softmax(logits / self.temperature, dim=1), logits, cam)
        else:
            logits = self.model(image)
            outputs = (F.softmax(logits / self.temperature, dim=1), logits)
        if self.with_features:
            outputs = (*outputs, self._seen[-1].flatten(1))
        self._seen.clear()
        return outputs

    def features(self, tiles: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """The penultimate features (N, D) of tiles (N, C, S, S), computed in torch."""
        if not self.with_features:
            raise ExportError("this export module was built without features_layer")
        out = []
        with torch.no_grad():
            for i in range(0, len(tiles), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(tiles[i : i + batch_size]))
                out.append(self.eval()(x)[-1].numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def export_module(
    module: ExportModule,
    out_path: str | Path,
    *,
    input_size: int,
    in_channels: int = 1,
    opset: int = DEFAULT_OPSET,
    metadata: ModelMetadata | None = None,
) -> Path:
    """Write ``module`` as a single ONNX file: fixed side, dynamic batch, metadata inside."""
    import onnx

    out_path = Path(out_path)
    names = module.output_names
    dummy = torch.zeros(2, in_channels, input_size, input_size)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The legacy exporter is chosen on purpose (module docstring): hide its deprecation.
            warnings.filterwarnings("ignore", ".*legacy TorchScript-based", DeprecationWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            # Shapes become constants on purpose: the spatial size is fixed (see layers.py).
            warnings.filterwarnings(
                "ignore",
                "Converting a tensor to a Python integer",
                torch.jit.TracerWarning,
                r"trainer\.architectures\.layers",
            )
            torch.onnx.export(
                module.eval(),
                (dummy,),
                tmp,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME, *names]},
                do_constant_folding=True,
            )
        proto = onnx.load(tmp)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{out_path}: torch.onnx.export failed: {exc}") from exc
    if metadata is not None:
        onnx.helper.set_model_props(proto, {METADATA_KEY: metadata.to_json()})
        proto.doc_string = f"stemwatch model {metadata.name} ({metadata.architecture})"
    onnx.checker.check_model(proto)
    try:
        tmp.write_bytes(proto.SerializeToString())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def parity_tiles(
    images: Sequence[str | Path],
    tiling: TilingSpec,
    normalisation: NormalisationRecipe,
    *,
    max_tiles: int = MAX_PARITY_TILES,
) -> np.ndarray:
    """Tiles (N>=2, 1, S, S) from real images, prepared exactly as the monitor prepares them.

    Directories are searched (not recursively) for image files.
    """
    files: list[Path] = []
    for item in map(Path, images):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(item)
    if not files:
        raise ExportError(f"no parity images found in {[str(p) for p in images]}")
    chunks = [prepare(read_image(f).pixels, normalisation, tiling).data for f in files]
    tiles = np.concatenate(chunks)
    if len(tiles) > max_tiles:
        tiles = tiles[np.linspace(0, len(tiles) - 1, max_tiles).round().astype(int)]
    if len(tiles) == 1:  # batch N needs two different tiles
        tiles = np.concatenate([tiles, tiles[:, :, ::-1, :]])
    return np.ascontiguousarray(tiles, dtype=np.float32)


def synthetic_tiles(n: int, in_channels: int, size: int, *, seed: int = 0) -> np.ndarray:
    """Deterministic textured tiles in [0, 1] for parity when no real images are given."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, in_channels, size, size), dtype=np.float32)
    for i in range(n):
        f = rng.uniform(2, 12, size=2)
        base = 0.5 + 0.25 * np.sin(2 * np.pi * (f[0] * xx + f[1] * yy))
        out[i] = np.clip(base + rng.normal(0, 0.15, (in_channels, size, size)), 0, 1)
    return out


def check_parity(
    module: nn.Module,
    onnx_path: str | Path,
    tiles: np.ndarray,
    *,
    tolerance: float = 1e-4,
    output_names: Sequence[str] | None = None,
) -> list[ParityResult]:
    """Run ``module`` (torch) and ``onnx_path`` (onnxruntime, CPU) on ``tiles`` at batch 1 and
    batch N; raise :class:`ExportError` if any output differs by more than
    ``tolerance * max(1, max |torch output|)``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    names = list(output_names or [o.name for o in session.get_outputs()])
    results: list[ParityResult] = []
    for batch in sorted({1, len(tiles)}):  # 1 and N
        x = np.ascontiguousarray(tiles[:batch], dtype=np.float32)
        with torch.no_grad():
            ref = module.eval()(torch.from_numpy(x))
        ref_t = ref if isinstance(ref, tuple | list) else (ref,)
        if len(ref_t) != len(names):
            raise ExportError(
                f"{onnx_path}: torch gives {len(ref_t)} outputs, the ONNX file {len(names)} "
                f"({', '.join(names)})"
            )
        got = session.run(names, {session.get_inputs()[0].name: x})
        diffs: dict[str, float] = {}
        scales: dict[str, float] = {}
        for name, r, g in zip(names, ref_t, got, strict=True):
            r_np = r.numpy()
            if r_np.shape != g.shape:
                raise ExportError(
                    f"{onnx_path}: output {name!r} has shape {g.shape} in onnxruntime but "
                    f"{r_np.shape} in torch at batch {batch}"
                )
            diffs[name] = float(np.max(np.abs(r_np - g)))
            scales[name] = float(np.max(np.abs(r_np)))
        result = ParityResult(batch, diffs, scales)
        results.append(result)
        bad = {n: d for n, d in diffs.items() if not d <= tolerance * max(1.0, scales[n])}
        if bad:
            detail = ", ".join(
                f"{n} max abs diff {d:.3g} (scale {scales[n]:.3g})" for n, d in bad.items()
            )
            raise ExportError(
                f"{onnx_path}: onnxruntime disagrees with torch at batch {batch}: {detail}; "
                f"tolerance {tolerance:g} x max(1, scale). The export is not trustworthy: "
                "report it with the architecture and opset"
            )
    return results


def export_onnx(
    checkpoint_path: str | Path,
    out_path: str | Path,
    *,
    parity_images: Sequence[str | Path] | None = None,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
    name: str | None = None,
    domain: bool = True,
    domain_data: str | Path | None = None,
) -> ExportReport:
    """Export a checkpoint to ``out_path`` with metadata; torch/onnxruntime parity is checked
    (on tiles of ``parity_images`` when given, else on synthetic tiles); on failure nothing is
    written and an existing ``out_path`` stays as it was.

    With ``domain`` the model carries a description of its training domain, fitted on the
    checkpoint's own training data and split (or on ``domain_data``; :mod:`trainer.domain`).
    A checkpoint that names no training data is exported without one (said in the report).
    """
    start = time.perf_counter()
    ckpt = load_checkpoint(checkpoint_path)
    out_path = Path(out_path)
    info = get_info(ckpt.architecture)

    def wrap(features: bool) -> ExportModule:
        return ExportModule(
            ckpt.build_model(),
            temperature=ckpt.temperature,
            positive_index=ckpt.positive_index,
            features_layer=info.classifier if features else None,
        ).eval()

    module = wrap(features=True)
    size = ckpt.tiling.tile_size
    training: dict[str, Any] = {**ckpt.training, "epoch": ckpt.epoch}
    metadata = ModelMetadata(
        name=name or out_path.stem,
        architecture=info.name,
        class_names=ckpt.class_names,
        positive_class=ckpt.positive_class,
        input_name=INPUT_NAME,
        output_name=PROBABILITIES,
        logits_name=LOGITS,
        cam_output_name=CAM if module.with_cam else None,
        in_channels=ckpt.in_channels,
        tiling=ckpt.tiling,
        normalisation=ckpt.normalisation,
        pixel_size_um=(ckpt.training.get("optics") or {}).get("pixel_size_um"),
        temperature=ckpt.temperature,
        training=training,
        metrics=ckpt.metrics,
        stemwatch_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if parity_images:  # read (and fail on) the images before spending time on the export
        tiles = parity_tiles(parity_images, ckpt.tiling, ckpt.normalisation)
        if ckpt.in_channels != 1:
            tiles = np.repeat(tiles, ckpt.in_channels, axis=1)
        source = f"{len(tiles)} tiles of {len(parity_images)} image path(s)"
    else:
        tiles = synthetic_tiles(MAX_PARITY_TILES, ckpt.in_channels, size)
        source = f"{len(tiles)} synthetic tiles"
        log.warning("no parity images given: checking torch/onnxruntime parity on %s", source)
    description, domain_note = _describe_domain(ckpt, module, enabled=domain, data=domain_data)
    if description is not None:
        metadata = metadata.model_copy(update={"domain": description})
    if description is None or description.features is None:
        module = wrap(features=False)  # the graph outputs features only for the domain check
    # Checked under a temporary name: a failing export never replaces a previous good file.
    partial = out_path.with_name(f".{out_path.stem}.{os.getpid()}.partial.onnx")
    try:
        export_module(
            module,
            partial,
            input_size=size,
            in_channels=ckpt.in_channels,
            opset=opset,
            metadata=metadata,
        )
        parity = check_parity(module, partial, tiles, tolerance=tolerance)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    report = ExportReport(
        onnx_path=out_path,
        model_hash=file_sha256(out_path),
        metadata=metadata,
        opset=opset,
        size_bytes=out_path.stat().st_size,
        export_seconds=time.perf_counter() - start,
        outputs=module.output_names,
        parity_source=source,
        parity=parity,
        tolerance=tolerance,
        domain_note=domain_note,
    )
    log.info("exported %s", report.summary())
    return report


def _describe_domain(
    ckpt: Checkpoint, module: ExportModule, *, enabled: bool, data: str | Path | None
) -> tuple[DomainDescription | None, str]:
    """The training-domain description for the metadata, or None and why there is none."""
    if not enabled:
        return None, "--no-domain"
    if ckpt.tiling.tile_size < MIN_STATISTICS_TILE:
        note = (
            f"tiles of {ckpt.tiling.tile_size} px; the description needs >= {MIN_STATISTICS_TILE}"
        )
        log.warning("no domain description: %s", note)
        return None, note
    images = domain_images(ckpt.path, ckpt.training, ckpt.class_names, data=data)
    if images is None:
        note = "the checkpoint names no training data; pass --domain-data"
        log.warning("no domain description: %s", note)
        return None, note
    try:
        description = fit_domain(
            images,
            module.features,
            ckpt.tiling,
            ckpt.normalisation,
            in_channels=ckpt.in_channels,
            output_name=FEATURES,
        )
    except TooFewImagesError as exc:
        log.warning("no domain description: %s", exc)
        return None, str(exc)
    return description, ""

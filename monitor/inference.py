"""The ONNX model: one onnxruntime session, its metadata, and batched prediction.

The model's own metadata (:class:`stemwatch.core.modelmeta.ModelMetadata`) decides input size,
tiling and normalisation; a file without it, or not ONNX at all, is refused at startup with a
:class:`ModelMetadataError`. A model that carries a description of its training domain also
returns each tile's penultimate features, and :meth:`LoadedModel.domain_score` scores an
image's features against that description (:mod:`stemwatch.core.domain`); a model without
one runs unchecked (said once, when it is loaded). The CUDA execution provider is used when
present, else the CPU; the provider actually in use is reported, and ``require_gpu`` turns the
fallback into an error.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from stemwatch.core.domain import DomainDescription, DomainScore
from stemwatch.core.errors import ModelMetadataError, StemwatchError
from stemwatch.core.modelfile import file_sha256, open_model
from stemwatch.core.modelmeta import ModelMetadata

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class GpuUnavailableError(StemwatchError):
    """``require_gpu`` was set but the CUDA execution provider could not be used."""


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers to ask for, in order of preference."""
    if device == "cpu":
        return [CPU]
    if device in ("cuda", "auto") and CUDA in available:
        return [CUDA, CPU]
    return [CPU]


class TileOutputs(NamedTuple):
    """What the model says about a batch of tiles."""

    probabilities: np.ndarray
    """Positive-class probability of each tile (N,)."""
    cams: np.ndarray | None
    """Class activation maps (N, h, w), when the model has them and they were asked for."""
    features: np.ndarray | None
    """Penultimate features (N, D), when the model's domain description uses them."""


@dataclass
class LoadedModel:
    """An onnxruntime session with the metadata that says how to feed it."""

    path: Path
    session: Any  # onnxruntime.InferenceSession
    metadata: ModelMetadata
    model_hash: str
    provider: str
    cam_output: str | None = None
    domain: DomainDescription | None = None
    """The training domain images are scored against (None: the model carries none)."""

    @property
    def tile_size(self) -> int:
        return self.metadata.tiling.tile_size

    @property
    def has_cam(self) -> bool:
        return self.cam_output is not None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Positive-class probability of each tile of a (N, 1, S, S) float32 batch."""
        return self.infer(batch, cam=False, features=False).probabilities

    def predict_with_cam(
        self, batch: np.ndarray, *, cam: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (N,) and, when the model has one and ``cam``, its CAM (N, h, w)."""
        out = self.infer(batch, cam=cam, features=False)
        return out.probabilities, out.cams

    def infer(self, batch: np.ndarray, *, cam: bool = True, features: bool = True) -> TileOutputs:
        """One onnxruntime call on a (N, C, S, S) float32 batch: probabilities, and the CAM
        and the domain features when the model has them and they are asked for."""
        names = [self.metadata.output_name]
        want_cam = cam and self.cam_output is not None
        if want_cam:
            names.append(str(self.cam_output))
        wanted = self.domain.output_name if features and self.domain is not None else None
        if wanted is not None:
            names.append(wanted)
        outs = self.session.run(
            names, {self.metadata.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        )
        probs = np.asarray(outs[0], dtype=np.float32)
        if probs.ndim != 2 or probs.shape[0] != batch.shape[0]:
            raise ModelMetadataError(
                f"{self.path}: output {self.metadata.output_name!r} has shape {probs.shape}, "
                f"expected ({batch.shape[0]}, {len(self.metadata.class_names)})"
            )
        cams = np.asarray(outs[1], dtype=np.float32) if want_cam else None
        if cams is not None and (cams.ndim != 3 or cams.shape[0] != batch.shape[0]):
            cams = None
        feats = np.asarray(outs[-1], dtype=np.float32) if wanted is not None else None
        gaussian = self.domain.features if self.domain is not None else None
        if feats is not None and gaussian is not None and feats.shape != (len(batch), gaussian.dim):
            raise ModelMetadataError(
                f"{self.path}: output {wanted!r} has shape {feats.shape}, the domain "
                f"description expects ({len(batch)}, {gaussian.dim}); re-export the model"
            )
        return TileOutputs(probs[:, self.metadata.positive_index], cams, feats)

    def domain_score(
        self, tiles: np.ndarray, features: np.ndarray | None = None
    ) -> DomainScore | None:
        """An image's domain score from its model-ready tiles (N, C, S, S) and their
        features from :meth:`infer` (None: the model has no domain description)."""
        if self.domain is None or not len(tiles):
            return None
        return self.domain.score_image(tiles, features)

    def warmup(self, batch_size: int = 1) -> None:
        s = self.tile_size
        self.predict(np.zeros((batch_size, self.metadata.in_channels, s, s), dtype=np.float32))


def load_model(
    path: Path,
    *,
    device: str = "auto",
    require_gpu: bool = False,
    intra_op_threads: int = 1,
) -> LoadedModel:
    """Open ``path`` in one session; raise a :class:`StemwatchError` subclass on any problem."""
    import onnxruntime as ort

    path = Path(path)
    available = list(ort.get_available_providers())
    providers = choose_providers(device, available)
    if require_gpu and CUDA not in providers:
        raise GpuUnavailableError(
            f"--require-gpu: onnxruntime offers no CUDA execution provider here "
            f"(available: {', '.join(available)}); install onnxruntime-gpu with CUDA, or drop "
            "--require-gpu to run on the CPU"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opened = open_model(path, providers=providers, options=opts)
    if require_gpu and opened.provider != CUDA:
        raise GpuUnavailableError(
            f"--require-gpu: the CUDA execution provider failed to start for {path} "
            f"(session runs on {opened.provider}); check the CUDA/cuDNN install"
        )
    meta = opened.metadata
    outputs = {o.name for o in opened.session.get_outputs()}
    cam_output = meta.cam_output_name
    if cam_output is not None and cam_output not in outputs:
        log.warning("%s: metadata names CAM output %r, graph lacks it; no maps", path, cam_output)
        cam_output = None
    domain = meta.domain
    if domain is None:
        log.warning(
            "%s: the model carries no description of its training domain: images are not "
            "checked against it (re-export it with `stemwatch export` to add one)",
            path,
        )
    elif domain.output_name is not None and domain.output_name not in outputs:
        log.warning(
            "%s: the domain description names output %r, the graph lacks it: images are not "
            "checked against the training domain (re-export the model)",
            path,
            domain.output_name,
        )
        domain = None
    model = LoadedModel(
        path, opened.session, meta, file_sha256(path), opened.provider, cam_output, domain
    )
    log.info(
        "model %s (%s, sha256 %s) on %s, %d intra-op thread(s); tiles %d px after downsampling "
        "x%d; %s",
        path,
        meta.name,
        model.model_hash[:12],
        opened.provider,
        intra_op_threads,
        meta.tiling.tile_size,
        meta.tiling.downsample,
        "no domain check"
        if domain is None
        else f"domain check: image distance above {domain.threshold:.3f} is out of its domain",
    )
    return model


def cam_mosaic(cams: np.ndarray, origins: np.ndarray, tile_size: int) -> np.ndarray:
    """Place each tile's CAM (N, h, w) at its origin: one map over the image, NaN where no
    tile was analysed (background). Overlapping tiles are averaged."""
    n, h, w = cams.shape
    sy, sx = h / tile_size, w / tile_size
    rows = np.rint(origins[:, 0] * sy).astype(int)
    cols = np.rint(origins[:, 1] * sx).astype(int)
    total = np.zeros((int(rows.max()) + h, int(cols.max()) + w), np.float64)
    count = np.zeros_like(total)
    for k in range(n):
        total[rows[k] : rows[k] + h, cols[k] : cols[k] + w] += cams[k]
        count[rows[k] : rows[k] + h, cols[k] : cols[k] + w] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def cam_png(mosaic: np.ndarray, *, min_side: int = 128) -> bytes:
    """A CAM mosaic (log-odds per pixel) as a small RGB PNG: blue = undifferentiated evidence,
    red = differentiated, black = background; enlarged (nearest) to at least ``min_side``."""
    from PIL import Image

    p = 1.0 / (1.0 + np.exp(-np.clip(np.nan_to_num(mosaic, nan=0.0), -30, 30)))
    rgb = np.stack([p, np.zeros_like(p), 1.0 - p], axis=-1)
    rgb[np.isnan(mosaic)] = 0.0
    img = (rgb * 255).round().astype(np.uint8)
    scale = max(1, -(-min_side // max(1, min(img.shape[:2]))))
    img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()

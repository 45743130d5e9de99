"""An exported model file: its hash, the bundled default, and opening it with its metadata.

The trainer (evaluation, bioimage.io packaging) and the monitor open ONNX files the same way
through :func:`open_model`: a file that is missing, not ONNX, without the stemwatch metadata
(:mod:`stemwatch.core.modelmeta`) or whose graph disagrees with that metadata is refused with
an error naming the file and the fix. :func:`file_sha256` is the model hash by which the
database records which model made each prediction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemwatch.core.errors import ConfigError, ModelMetadataError
from stemwatch.core.modelmeta import ModelMetadata

BUNDLED_MODEL_NAME = "stemwatch-default.onnx"
CPU_ONLY = ("CPUExecutionProvider",)
_HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks: the model hash (and bioimage.io's checksums)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def bundled_model_path() -> Path:
    """The model shipped with stemwatch, ``stemwatch-default.onnx``.

    Installed from a wheel it lives in the package (``stemwatch/models/``, mapped from the
    repository's ``models/`` folder by pyproject.toml); in a source checkout it is
    ``models/`` beside the packages.
    """
    package = Path(__file__).resolve().parents[1]  # .../stemwatch
    candidates = [
        package / "models" / BUNDLED_MODEL_NAME,
        package.parent / "models" / BUNDLED_MODEL_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no model given and no bundled model at {' or '.join(map(str, candidates))}; train "
        f"and export one (`stemwatch train ...`, then `stemwatch export CHECKPOINT.pt --out "
        f"models/{BUNDLED_MODEL_NAME}`) or pass --model PATH"
    )


@dataclass(frozen=True)
class OpenedModel:
    """An onnxruntime session on a model file whose metadata matches its graph."""

    path: Path
    session: Any  # onnxruntime.InferenceSession
    metadata: ModelMetadata
    provider: str
    """The execution provider the session actually runs on (first in its list)."""


def open_model(
    path: str | Path,
    *,
    providers: Sequence[str] = CPU_ONLY,
    options: Any = None,
) -> OpenedModel:
    """Open ``path`` in one onnxruntime session and read and check its metadata.

    ``options`` is an ``onnxruntime.SessionOptions`` (default: warnings only). Raises
    :class:`ConfigError` for a missing file and :class:`ModelMetadataError` for anything else.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: model file not found; pass --model with an exported .onnx file")
    if options is None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ModelMetadataError(
            f"{path}: not a loadable ONNX model ({first}); export one with `stemwatch export`"
        ) from None
    props = dict(session.get_modelmeta().custom_metadata_map)
    metadata = ModelMetadata.from_props(props, path)
    check_signature(path, session, metadata)
    in_use = session.get_providers()
    return OpenedModel(path, session, metadata, in_use[0] if in_use else CPU_ONLY[0])


def read_metadata(path: str | Path) -> ModelMetadata:
    """The checked stemwatch metadata of an exported model file (opened on the CPU)."""
    return open_model(path).metadata


def check_signature(path: Path, session: Any, meta: ModelMetadata) -> None:
    """The graph has the input and output the metadata names, with its tile shape."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if meta.input_name not in inputs:
        raise ModelMetadataError(
            f"{path}: metadata names input {meta.input_name!r} but the graph has "
            f"{sorted(inputs)}; re-export the model"
        )
    if meta.output_name not in outputs:
        raise ModelMetadataError(
            f"{path}: metadata names output {meta.output_name!r} but the graph has "
            f"{sorted(outputs)}; re-export the model"
        )
    shape = list(inputs[meta.input_name].shape)
    want = [meta.in_channels, meta.tiling.tile_size, meta.tiling.tile_size]
    fixed = [d if isinstance(d, int) else None for d in shape[1:]]
    if len(shape) != 4 or any(f is not None and f != w for f, w in zip(fixed, want, strict=True)):
        raise ModelMetadataError(
            f"{path}: input {meta.input_name!r} has shape {shape} but the metadata's tiling "
            f"needs (N, {want[0]}, {want[1]}, {want[2]}); re-export the model"
        )

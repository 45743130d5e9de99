"""Promotion without a restart: when to take a new model, and loading it the daemon's way.

The daemon takes a new model on SIGHUP (:meth:`monitor.daemon.Daemon.request_model_reload`)
or when the configured model file was replaced (:class:`ModelFileWatch`: its identity, i.e.
device, inode, size and modification time, changed and then stayed the same for a quiet
period, so a model copied in place slowly is not read half-written; an atomic
``mv new.onnx model.onnx`` is seen at the next check). The new model is loaded and warmed up
with the daemon's inference settings (:func:`load_configured_model`); a file that is not a
valid stemwatch model is refused with the reason in the log and the daemon keeps scoring with
the model it has. The switch itself is :meth:`monitor.pipeline.Pipeline.swap_model`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from monitor.config import InferenceConfig
from monitor.inference import LoadedModel, load_model
from stemwatch.core.modelfile import bundled_model_path

log = logging.getLogger(__name__)

Identity = tuple[int, int, int, int]


def model_path(inference: InferenceConfig) -> Path:
    """The model file the daemon is configured with (the bundled one when none is)."""
    return inference.model if inference.model is not None else bundled_model_path()


def load_configured_model(inference: InferenceConfig, path: Path | None = None) -> LoadedModel:
    """Load (and warm up) the configured model the way the daemon runs it."""
    model = load_model(
        path or model_path(inference),
        device=inference.device,
        require_gpu=inference.require_gpu,
        intra_op_threads=inference.intra_op_threads,
    )
    if inference.warmup:
        t0 = time.perf_counter()
        model.warmup(min(inference.batch_tiles, model.metadata.tiling.max_tiles))
        log.info("model warm-up took %.2f s", time.perf_counter() - t0)
    return model


def identity(path: Path) -> Identity | None:
    """What tells one version of the file from another (None: no such file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ModelFileWatch:
    """Says when the model file at ``path`` was replaced and has been quiet for ``quiet_s``."""

    def __init__(self, path: Path, quiet_s: float) -> None:
        self.path = path
        self.quiet_s = quiet_s
        self._current = identity(path)
        self._candidate: Identity | None = None
        self._since = 0.0

    def replaced(self, now: float) -> bool:
        """True once a new version of the file has stayed unchanged for the quiet period."""
        ident = identity(self.path)
        if ident is None or ident == self._current:
            self._candidate = None
            return False
        if ident != self._candidate:
            self._candidate, self._since = ident, now
            return False
        return now - self._since >= self.quiet_s

    def settle(self) -> None:
        """The version now on disk is dealt with (taken, or refused): wait for the next one."""
        self._current = identity(self.path)
        self._candidate = None

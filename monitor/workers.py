"""How many threads the daemon runs, sized from the machine unless the config says otherwise.

Per image the daemon spends CPU in two places that run side by side: decoding and preparing
the tiles (the decode workers) and the model (the inference workers, each an onnxruntime
call with ``intra_op_threads`` threads). On the CPU the model is most of it (about 3/4 with
the default model on 2048² images), so the plan gives the model every core and the decoders
as many threads, which keeps the cores busy while either side waits (a decoder reading a
file, the model between batches): ``cores`` inference workers of one intra-op thread each
(concurrent runs of one session: throughput scales with workers and no thread pool spins
while another is busy), and ``cores`` decode workers. On a GPU (the CUDA execution provider)
the model leaves the CPU to decoding: one inference worker keeps the GPU fed, every core
decodes.

The cores are those this process may run on (its CPU affinity, and a container's CPU quota,
``cpu.max``, where one is set). Every ``auto`` is resolved here, once, at startup, and the
plan is logged and reported (``stemwatch bench`` prints it beside the CPU-bound limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import InferenceConfig

__all__ = ["WorkerPlan", "intra_op_threads", "plan_workers"]


@dataclass(frozen=True)
class WorkerPlan:
    """The threads the daemon runs, and why."""

    inference_workers: int
    intra_op_threads: int
    decode_workers: int
    cores: int
    gpu: bool
    auto: tuple[str, ...]  # the settings that were "auto"

    def describe(self) -> str:
        where = "GPU" if self.gpu else "CPU"
        chosen = f" (auto: {', '.join(self.auto)})" if self.auto else ""
        return (
            f"{self.inference_workers} inference worker(s) x {self.intra_op_threads} "
            f"intra-op thread(s), {self.decode_workers} decode worker(s) on {self.cores} "
            f"core(s), model on the {where}{chosen}"
        )


def plan_workers(inference: InferenceConfig, *, cores: int, gpu: bool) -> WorkerPlan:
    """Resolve every ``auto`` of ``inference`` for ``cores`` cores, the model on a GPU or not
    (pure: the caller says how many cores and where the model runs)."""
    cores = max(1, cores)
    auto = tuple(
        name
        for name in ("inference_workers", "intra_op_threads", "decode_workers")
        if getattr(inference, name) == "auto"
    )
    default_inference = 1 if gpu else cores
    return WorkerPlan(
        inference_workers=_pick(inference.inference_workers, default_inference),
        intra_op_threads=_pick(inference.intra_op_threads, 1),
        decode_workers=_pick(inference.decode_workers, cores),
        cores=cores,
        gpu=gpu,
        auto=auto,
    )


def intra_op_threads(inference: InferenceConfig) -> int:
    """The intra-op threads to open the model's session with (known before it is opened)."""
    return _pick(inference.intra_op_threads, 1)


def _pick(value: int | str, default: int) -> int:
    return default if value == "auto" else int(value)

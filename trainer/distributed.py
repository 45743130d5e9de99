"""Data-parallel training under torchrun.

``torchrun --nproc-per-node N -m stemwatch train --config train.yaml`` starts N processes;
``stemwatch train`` sees torchrun's RANK / WORLD_SIZE and hands its config to
:func:`run_distributed`. Each rank joins the process group (gloo on CPU, NCCL on GPU), wraps the
model in DistributedDataParallel and trains on its shard of every epoch (DistributedSampler).
Rank 0 writes the run directory. At the end the checksum of every rank's own trained weights is
gathered into ``ranks.json``: equal sums mean the ranks stayed in sync.
"""

from __future__ import annotations

import json
import logging
import os

import torch
import torch.distributed as dist

from trainer.config import TrainerConfig
from trainer.train import DistContext, resolve_device, run_training

log = logging.getLogger(__name__)


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def run_distributed(cfg: TrainerConfig, *, resume: bool = False, overwrite: bool = False) -> int:
    """Body of one rank (rank and world size from torchrun's environment); an exit code."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(cfg.runtime.device)
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        cfg.runtime.device = "cuda"
    backend = backend_for(device)
    dist.init_process_group(backend=backend)
    log.info("rank %d/%d joined (%s on %s)", rank, world, backend, device)
    try:
        ctx = DistContext(rank, world)
        summary = run_training(cfg, resume=resume, overwrite=overwrite, dist=ctx)
        out_dir = cfg.runtime.out_dir
        local = torch.tensor([summary.get("param_checksum", float("nan"))], dtype=torch.float64)
        gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(gathered, local)
        if rank == 0:
            sums = [float(t.item()) for t in gathered]
            (out_dir / "ranks.json").write_text(
                json.dumps({"world_size": world, "backend": backend, "checksums": sums}),
                encoding="utf-8",
            )
            log.info("rank checksums %s", sums)
    finally:
        dist.destroy_process_group()
    return 0

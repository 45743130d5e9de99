"""Data-parallel training under torchrun.

``torchrun --nproc-per-node N -m trainer.distributed --config train.yaml`` (or the short form
``... -m trainer.distributed DATA -o RUN_DIR``) starts N processes; each joins the process group
(gloo on CPU, NCCL on GPU), wraps the model in DistributedDataParallel and trains on its shard
of every epoch (DistributedSampler). Rank 0 writes the run directory. At the end the checksum
of every rank's own trained weights is gathered into ``ranks.json``: equal sums mean the ranks
stayed in sync.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

import torch
import torch.distributed as dist

from stemwatch.core.errors import StemwatchError
from trainer.train import DistContext, run_training

log = logging.getLogger(__name__)


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def run_distributed(cfg_args: argparse.Namespace) -> int:
    """Body of one rank; returns an exit code."""
    from stemwatch.commands.train import config_from_args
    from trainer.train import resolve_device

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cfg = config_from_args(cfg_args)
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
        summary = run_training(cfg, resume=bool(getattr(cfg_args, "resume", False)), dist=ctx)
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


def main(argv: Sequence[str] | None = None) -> int:
    from stemwatch.commands.train import add_train_arguments

    parser = argparse.ArgumentParser(
        prog="python -m trainer.distributed", description="Data-parallel training (torchrun)."
    )
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    rank = os.environ.get("RANK", "0")
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s"
    )
    try:
        return run_distributed(args)
    except StemwatchError as exc:
        print(f"trainer.distributed: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

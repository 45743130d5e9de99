"""Data-parallel training with two CPU processes (gloo): torchrun ... -m stemwatch train."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.trainer.fixtures_training import make_dataset, tiny_config
from trainer.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_train_and_agree(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", wells_per_class=3, fields=2, hours=(0.0,))
    run_dir = tmp_path / "run"
    cfg = tiny_config(manifest, run_dir, optim__epochs=1, split__test_fraction=0.0)
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "stemwatch", "train", "--config", str(tmp_path / "ddp.yaml"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
        proc.communicate()
        pytest.fail("distributed training did not finish in 180 s")
    assert proc.returncode == 0, stderr[-3000:]
    ranks = json.loads((run_dir / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and ranks["backend"] == "gloo"
    assert ranks["checksums"][0] == ranks["checksums"][1]
    best = load_checkpoint(run_dir / "best.pt")
    assert best.training["world_size"] == 2
    assert "rank0" in stderr and "rank1" in stderr

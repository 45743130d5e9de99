"""The daemon's threads, sized from the machine (``auto``) unless the config sets them, and a
pipeline of several inference and decode workers that loses nothing and counts nothing twice."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
from monitor_helpers import image_name, make_config, records, write_tiff
from onnx_models import build_classifier
from pydantic import ValidationError

from monitor.config import InferenceConfig, MonitorConfig
from monitor.inference import load_model
from monitor.pipeline import Candidate, Outcome, Pipeline
from monitor.stability import stat_file
from monitor.workers import intra_op_threads, plan_workers
from stemwatch import store
from stemwatch.core.cores import usable_cores


def test_auto_gives_the_model_every_core_on_the_cpu_and_the_decoders_every_core() -> None:
    plan = plan_workers(InferenceConfig(), cores=8, gpu=False)
    assert (plan.inference_workers, plan.intra_op_threads, plan.decode_workers) == (8, 1, 8)
    assert plan.auto == ("inference_workers", "intra_op_threads", "decode_workers")
    assert "8 inference worker(s) x 1 intra-op thread(s), 8 decode worker(s)" in plan.describe()
    assert "CPU" in plan.describe()


def test_auto_on_a_gpu_feeds_it_from_one_worker_and_decodes_on_every_core() -> None:
    plan = plan_workers(InferenceConfig(), cores=16, gpu=True)
    assert (plan.inference_workers, plan.intra_op_threads, plan.decode_workers) == (1, 1, 16)
    assert "GPU" in plan.describe()


def test_numbers_in_the_config_are_kept() -> None:
    cfg = InferenceConfig(inference_workers=1, intra_op_threads=2, decode_workers=3)
    plan = plan_workers(cfg, cores=8, gpu=False)
    assert (plan.inference_workers, plan.intra_op_threads, plan.decode_workers) == (1, 2, 3)
    assert plan.auto == () and "auto" not in plan.describe()
    assert intra_op_threads(cfg) == 2 and intra_op_threads(InferenceConfig()) == 1


@pytest.mark.parametrize("bad", [0, -1, "many", 1.5])
def test_a_bad_thread_count_is_refused_naming_the_field(bad: object, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="decode_workers"):
        MonitorConfig.model_validate(
            {
                "folder": tmp_path,
                "database": tmp_path / "d.db",
                "inference": {"decode_workers": bad},
            }
        )


def test_usable_cores_follow_affinity_and_a_container_quota(tmp_path: Path) -> None:
    affinity = usable_cores(tmp_path / "absent")
    assert affinity >= 1
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 CPUs: two threads can use them
    assert usable_cores(quota) == min(affinity, 2)
    quota.write_text("50000 100000\n")
    assert usable_cores(quota) == 1
    quota.write_text("max 100000\n")
    assert usable_cores(quota) == affinity


def test_several_workers_lose_nothing_and_count_nothing_twice(tmp_path: Path) -> None:
    model_path = build_classifier(tmp_path / "w.onnx", tile_size=32)
    cfg = make_config(
        tmp_path,
        model_path,
        inference={"decode_workers": 3, "inference_workers": 3, "batch_tiles": 8},
    )
    assert cfg.folder is not None
    wells = [f"{r}{c:02d}" for r in "ABC" for c in range(1, 5)]
    paths = [write_tiff(cfg.folder / image_name(w), seed=i) for i, w in enumerate(wells)]
    outcomes: queue.Queue[Outcome] = queue.Queue()
    conn = store.open_db(cfg.database)
    pipe = Pipeline(cfg, load_model(model_path), conn, outcomes.put)
    assert (len(pipe._decoders), len(pipe._inferers)) == (3, 3)
    pipe.start()
    try:
        for p in paths:
            st = stat_file(p)
            assert st is not None
            pipe.work.put(Candidate(p, st))
        got = [outcomes.get(timeout=60) for _ in paths]
    finally:
        pipe.close()
        conn.close()
    assert outcomes.empty()
    assert sorted(o.path for o in got) == sorted(paths) and {o.kind for o in got} == {"done"}
    assert pipe.counts.snapshot().done == len(paths)
    stored = records(cfg.database)
    assert sorted(Path(r.path) for r in stored) == sorted(paths)  # one record each

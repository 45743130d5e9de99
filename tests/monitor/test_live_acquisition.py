"""The synthetic microscope writing a plate live (bursts, chunks, renames, rewrites) while
the daemon watches, with rescans running all along: every image once, rewrites again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from monitor_helpers import make_config, records, running_daemon, wait_for

from monitor.inference import LoadedModel
from stemwatch.core.imaging import content_hash
from stemwatch.synth import acquire as acquire_mod
from stemwatch.synth.spec import PlateSpec


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_live_plate_is_recorded_exactly_once(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, polling: bool
) -> None:
    cfg = make_config(
        tmp_path,
        tiny_model_path,
        watch={"polling": polling, "rescan_interval_s": 0.5},
        inference={"decode_workers": 2},
    )
    folder = cfg.folder
    assert folder is not None
    with running_daemon(cfg, tiny_model) as d:
        result = acquire_mod.acquire(
            folder,
            PlateSpec(wells=("A01", "A02", "B01"), n_fields=2, n_timepoints=2, size=256, seed=3),
            acquire_mod.AcquisitionSpec(interval_s=1.5, rewrite_fraction=0.3, chunk_span_s=0.2),
        )
        finals = result.final_paths()
        assert finals and result.rewritten(), "the acquisition should include rewrites"

        def all_current() -> bool:
            current = {
                Path(r.path): r.content_hash
                for r in records(cfg.database)
                if r.superseded_by is None and r.status == "done"
            }
            return all(current.get(p) == content_hash(p) for p in finals)

        wait_for(all_current, 20)
        d.settle()  # a rescan and every late event handled: still each version once
    recs = records(cfg.database)
    assert {Path(r.path) for r in recs} == finals  # no temp names, nothing else
    assert all(r.status == "done" for r in recs)
    per_version = Counter((r.path, r.content_hash) for r in recs)
    assert max(per_version.values()) == 1  # never the same content twice
    writes = Counter(Path(r.path) for r in result.records)
    versions = Counter(Path(r.path) for r in recs)
    assert all(1 <= versions[p] <= writes[p] for p in finals)
    assert sum(r.superseded_by is None for r in recs) == len(finals)
    assert d.daemon.summary.failed == 0

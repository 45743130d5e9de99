"""`stemwatch demo` runs the whole system on the bundled model, at a tiny scale."""

from __future__ import annotations

import os
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from stemwatch import store
from stemwatch.demo import DEMO_PLATE, DemoPlan, run_demo, summary
from stemwatch.synth.acquire import AcquisitionSpec


def test_demo_acquires_watches_and_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = DemoPlan(
        workdir=tmp_path / "demo",
        plate=DEMO_PLATE.replace(wells=6, n_fields=1, n_timepoints=2, size=256),
        interval_s=1.0,
        port=None,
        linger=False,
    )
    assert run_demo(plan) == 0
    with closing(store.open_db(plan.database, readonly=True)) as conn:
        counts = store.counts(conn)
        (plate,) = store.list_plates(conn)
    assert counts.done == 12 and counts.failed == 0
    assert plate.plate == "DEMO01" and plate.n_wells == 6
    out = capsys.readouterr().out
    assert "12 image files acquired" in out and "(2 induced)" in out
    assert "Counts(" not in out and "12 analysed, 0 failed" in out


def tiny_plan(workdir: Path) -> DemoPlan:
    return DemoPlan(
        workdir=workdir,
        plate=DEMO_PLATE.replace(wells=6, n_fields=1, n_timepoints=3, size=256),
        interval_s=1.0,
        port=None,
        linger=False,
        acquisition=AcquisitionSpec(rewrite_fraction=0.5, chunk_span_s=0.1),
    )


@pytest.mark.slow
def test_a_second_demo_starts_fresh_and_reports_after_the_last_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bugs (issue 13, item 1): a second run replayed over the first one's folder and
    database (old plate, old alerts), and the summary was printed before the last
    re-acquired images were analysed."""
    plan = tiny_plan(tmp_path / "demo")
    assert run_demo(plan) == 0
    first = capsys.readouterr().out
    assert "starting fresh" not in first
    started = time.time()
    assert run_demo(plan) == 0
    out = capsys.readouterr().out
    assert "starting fresh" in out and "incoming" in out and "stemwatch.db" in out
    with closing(store.open_db(plan.database, readonly=True)) as conn:
        alerts = store.list_alerts(conn)
        images = [
            i for w in ("A01", "A02", "A03") for i in store.images_for_well(conn, "DEMO01", w)
        ]
        c = store.counts(conn)
        # every file, as it is on disk when the demo reports, is analysed (rewrites too)
        for path in sorted(plan.incoming.glob("*.tif")):
            st = os.stat(path)
            version = store.FileVersion(str(path.resolve()), st.st_size, st.st_mtime_ns)
            assert store.already_recorded(conn, version) is not None, path
    assert all(a.created_at >= started for a in alerts)  # nothing left from the first run
    assert all(i.updated_at >= started for i in images)
    assert c.superseded > 0  # the plan re-acquires half of the images
    assert f"{c.done} analysed" in out and f"{c.superseded} re-acquired" in out


def test_the_summary_does_not_count_reset_onsets(tmp_path: Path) -> None:
    """Bug (issue 13, item 1): the summary said 12 onsets where the dashboard showed 11."""
    plan = replace(tiny_plan(tmp_path), workdir=tmp_path)
    with closing(store.open_db(plan.database)) as conn:
        for well in ("A01", "A02"):
            conn_loc = store.TimePoint(0, 0.0, 0.9, 0.0, 0.0, 1, 1, 0.9)
            store.save_well_analysis(
                conn,
                "DEMO01",
                well,
                model_hash="m",
                series=[conn_loc],
                onset=store.NewOnset(0.0, 0, 0.0, 0, 0.9, "elapsed"),
                episode=0,
            )
        store.reset_well(conn, "DEMO01", "A02", by="tester")
    line = summary(plan, 12, ["induced", "maintenance"] * 3)
    assert "onset flagged in 1 of 6 wells (3 induced)" in line

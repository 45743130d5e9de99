"""`stemwatch demo` runs the whole system on the bundled model, at a tiny scale."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from stemwatch import store
from stemwatch.demo import DEMO_PLATE, DemoPlan, run_demo


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
    assert "12 images acquired" in out and "(2 induced)" in out

"""The daemon's heartbeat: its interval (for liveness) and its queue (the dashboard's "Queued")."""

from __future__ import annotations

from pathlib import Path

from monitor_helpers import image_name, make_config, running_daemon, wait_for, write_tiff

from monitor.inference import LoadedModel
from stemwatch import store


def heartbeat(db: Path) -> store.Heartbeat | None:
    try:
        with store.open_db(db, readonly=True) as conn:
            return store.last_heartbeat(conn)
    except store.StoreError:  # being created by the daemon right now
        return None


def test_heartbeat_carries_the_daemons_queue_and_interval(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    # a long quiet period: the images wait in the daemon's queue for the whole test
    cfg = make_config(tmp_path, tiny_model_path, watch={"quiet_period_s": 600.0})
    assert cfg.folder is not None
    for i, well in enumerate(["A01", "A02", "B01"]):
        write_tiff(cfg.folder / image_name(well), i)
    with running_daemon(cfg, tiny_model):
        hb = wait_for(
            lambda: (h := heartbeat(cfg.database)) is not None and h.queued == 3 and h, 15
        )
        assert hb.interval_s == cfg.heartbeat_interval_s and hb.alive()
        assert "3 waiting" in (hb.detail or "")
    hb = heartbeat(cfg.database)
    assert hb is not None and hb.liveness() == "stopped"

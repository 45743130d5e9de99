"""The daemon with real watchdog observers on real folders, real TIFFs, real SQLite.

Every wait is for an event the daemon or the database shows; "nothing more happens" is shown
by :meth:`DaemonThread.settle` (the daemon rescans, handles every event so far and reports
itself idle) followed by a look at what was recorded.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from monitor_helpers import (
    by_name,
    image_name,
    make_config,
    records,
    running_daemon,
    tiff_bytes,
    wait_for,
    write_slowly,
    write_tiff,
)

from monitor.inference import LoadedModel
from monitor.watcher import Hint
from stemwatch import store


def done(db: Path, name: str, n: int = 1) -> bool:
    return sum(r.status == "done" for r in by_name(db, name)) >= n


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_slow_chunked_write_is_read_once_complete(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, polling: bool
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, watch={"polling": polling})
    name = image_name("A01")
    data = tiff_bytes(1)
    with running_daemon(cfg, tiny_model) as d:
        write_slowly(cfg.folder / name, data, chunks=6, pause_s=0.08)
        wait_for(lambda: done(cfg.database, name), 10)
        d.daemon.inbox.put(Hint("touch", d.daemon.folder / name))  # a late event...
        d.settle()  # ...and a rescan are handled: neither may record the file again
    recs = by_name(cfg.database, name)
    assert [r.status for r in recs] == ["done"]
    assert recs[0].size == len(data) and recs[0].n_tiles == 4
    assert recs[0].model_hash == tiny_model.model_hash
    assert recs[0].plate == "P1" and recs[0].well == "A01"
    assert d.summary is not None and (d.summary.done, d.summary.duplicates) == (1, 0)


def test_writer_stalling_longer_than_the_quiet_period_is_not_read_truncated(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, retry={"max_attempts": 10})
    name = image_name("A02")
    data = tiff_bytes(2)
    with running_daemon(cfg, tiny_model) as d:
        with (cfg.folder / name).open("wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            # the writer stalls until the daemon has read the half-written file and refused it
            assert d.daemon.counts.wait_for(lambda c: c.retries >= 1, 10)
            fh.write(data[len(data) // 2 :])
        wait_for(lambda: done(cfg.database, name), 10)
    recs = by_name(cfg.database, name)
    assert [(r.status, r.size) for r in recs] == [("done", len(data))]
    assert d.summary is not None and d.summary.failed == 0
    assert d.summary.retries >= 1  # the half-written file was looked at and refused


def test_rename_into_place_is_processed(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    name = image_name("B01")
    with running_daemon(cfg, tiny_model):
        tmp = cfg.folder / (name + ".part")
        write_slowly(tmp, tiff_bytes(3), chunks=3, pause_s=0.05)
        os.rename(tmp, cfg.folder / name)
        wait_for(lambda: done(cfg.database, name), 10)
    assert [r.status for r in records(cfg.database)] == ["done"]  # the .part never recorded


def test_rewrite_is_processed_again_and_history_kept(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    name = image_name("C03")
    path = cfg.folder / name
    with running_daemon(cfg, tiny_model) as d:
        path.write_bytes(tiff_bytes(4))
        wait_for(lambda: done(cfg.database, name), 10)
        first = by_name(cfg.database, name)[0]
        # re-acquired: new bytes (and a later mtime: the first version was quiet for 0.3 s)
        write_slowly(path, tiff_bytes(5), chunks=3, pause_s=0.05)
        wait_for(lambda: len(by_name(cfg.database, name)) == 2, 10)
        d.settle()
    recs = by_name(cfg.database, name)
    assert len(recs) == 2
    old, new = recs
    assert old.id == first.id and old.superseded_by == new.id
    assert new.status == "done" and new.content_hash != old.content_hash


def test_bad_files_fail_with_reason_and_the_next_good_file_is_processed(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    folder = cfg.folder
    assert folder is not None
    bad = {
        "empty": image_name("D01"),
        "not_tiff": image_name("D02"),
        "truncated": image_name("D03"),
        "tiny": image_name("D04"),
    }
    with running_daemon(cfg, tiny_model) as d:
        (folder / bad["empty"]).write_bytes(b"")
        (folder / bad["not_tiff"]).write_text("this is a text file with a .tif name\n")
        (folder / bad["truncated"]).write_bytes(tiff_bytes(6)[:5000])
        write_tiff(folder / bad["tiny"], 7, size=64)  # smaller than one tile after x4
        (folder / "renamed_zero.tif.part").write_bytes(b"")
        os.rename(folder / "renamed_zero.tif.part", folder / image_name("D05"))
        good = image_name("D06")
        write_tiff(folder / good, 8)
        wait_for(lambda: done(cfg.database, good), 10)
        wait_for(lambda: sum(r.status == "failed" for r in records(cfg.database)) == 5, 15)
    by = {Path(r.path).name: r for r in records(cfg.database)}
    assert by[good].status == "done"
    assert "empty" in (by[bad["empty"]].error or "")
    assert "TIFF" in (by[bad["not_tiff"]].error or "")
    assert by[bad["truncated"]].error
    assert "smaller" in (by[bad["tiny"]].error or "")
    assert by[bad["tiny"]].well == "D04"  # where a failed image was taken is kept when known
    assert by[bad["empty"]].attempts == cfg.retry.max_attempts
    assert by[bad["tiny"]].attempts == 1  # permanent: not retried
    assert d.summary is not None and d.summary.failed == 5


def test_file_deleted_before_it_was_read(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    # a long quiet period: the file is still waiting when it is deleted, however slow the test
    cfg = make_config(tmp_path, tiny_model_path, watch={"quiet_period_s": 5.0})
    with running_daemon(cfg, tiny_model) as d:
        doomed = write_tiff(d.daemon.folder / image_name("E01"), 9)
        wait_for(lambda: doomed in d.daemon.tracker, 10)  # seen, waiting to be quiet
        doomed.unlink()
        d.settle()  # the deletion is handled: nothing left waiting, nothing read
        assert len(d.daemon.tracker) == 0
    assert records(cfg.database) == []
    assert d.summary.done == d.summary.failed == d.summary.retries == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files; cannot test here")
def test_permission_denied_is_recorded_as_failed(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    assert cfg.folder is not None
    locked = write_tiff(cfg.folder / image_name("F01"), 11)
    locked.chmod(0)
    try:
        with running_daemon(cfg, tiny_model):
            wait_for(lambda: by_name(cfg.database, locked.name), 10)
    finally:
        locked.chmod(0o644)
    (rec,) = by_name(cfg.database, locked.name)
    assert rec.status == "failed" and "permission" in (rec.error or "").lower()


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_folder_that_disappears_and_comes_back(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, polling: bool
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, watch={"polling": polling})
    folder = cfg.folder
    assert folder is not None
    with running_daemon(cfg, tiny_model) as d:
        write_tiff(folder / image_name("G01"), 12)
        wait_for(lambda: done(cfg.database, image_name("G01")), 10)
        assert d.daemon.watching.is_set()
        shutil.rmtree(folder)  # the share goes away...
        wait_for(lambda: not d.daemon.watching.is_set(), 10)  # ...the daemon notices...
        folder.mkdir()  # ...the share is re-mounted (a new inode)...
        assert d.daemon.watching.wait(10)  # ...and the observer is re-armed on it
        name = image_name("G02")
        write_slowly(folder / name, tiff_bytes(13), chunks=3, pause_s=0.05)
        wait_for(lambda: done(cfg.database, name), 10)


def test_locked_database_delays_but_loses_nothing(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    assert cfg.folder is not None
    with running_daemon(cfg, tiny_model) as d:
        other = sqlite3.connect(cfg.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        names = [image_name("H01", f) for f in (1, 2)]
        for i, n in enumerate(names):
            write_tiff(cfg.folder / n, 20 + i)
        # both images are read and scored (4 tiles each) while the database is locked...
        assert d.daemon.counts.wait_for(lambda c: c.tiles >= 8, 15)
        assert not any(done(cfg.database, n) for n in names)  # ...and none is stored yet
        assert d.daemon.summary.done == 0
        other.execute("ROLLBACK")
        other.close()
        wait_for(lambda: all(done(cfg.database, n) for n in names), 15)
    assert d.summary.done == 2 and d.summary.failed == 0


def test_heartbeat_and_model_are_stored(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    with running_daemon(cfg, tiny_model):

        def running() -> bool:
            conn = store.open_db(cfg.database, readonly=True)
            try:
                hb = store.last_heartbeat(conn)
                return hb is not None and hb.state == "running"
            finally:
                conn.close()

        wait_for(running, 10)
    conn = store.open_db(cfg.database, readonly=True)
    try:
        hb = store.last_heartbeat(conn)
        model = store.current_model(conn)
        folders = store.watched_folders(conn)
    finally:
        conn.close()
    assert hb is not None and hb.state == "stopped"
    assert model is not None and model.model_hash == tiny_model.model_hash
    assert model.provider == "CPUExecutionProvider"
    # the dashboard serves image files only from under the folders recorded here (issue 13)
    assert cfg.folder is not None
    assert [f.path for f in folders] == [str(cfg.folder.resolve())]


def test_other_bit_depths_and_layouts_are_processed(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    import numpy as np
    import tifffile

    cfg = make_config(tmp_path, tiny_model_path)
    assert cfg.folder is not None
    rng = np.random.default_rng(0)
    images = {
        image_name("J01"): (rng.random((256, 256)) * 255).astype(np.uint8),
        image_name("J02"): (rng.random((256, 256, 3)) * 255).astype(np.uint8),  # RGB
        image_name("J03"): rng.random((256, 256)).astype(np.float32),
        image_name("J04"): (rng.random((200, 300)) * 4095).astype(np.uint16),  # 12-bit, 3:2
    }
    with running_daemon(cfg, tiny_model):
        for name, arr in images.items():
            tifffile.imwrite(cfg.folder / name, arr)
        wait_for(lambda: len(records(cfg.database)) == len(images), 10)
    by = {Path(r.path).name: r for r in records(cfg.database)}
    assert {n: by[n].status for n in images} == dict.fromkeys(images, "done")
    assert by[image_name("J04")].n_tiles == 6  # 50x75 after x4: 2 x 3 end-aligned 32-px tiles


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_new_subfolders_and_folders_moved_into_place(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, polling: bool
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, watch={"polling": polling})
    assert cfg.folder is not None
    staged = tmp_path / "staging" / "t002"
    write_tiff(staged / image_name("L02"), 31)
    with running_daemon(cfg, tiny_model):
        write_tiff(cfg.folder / "t001" / image_name("L01"), 30)  # folder and file at once
        os.rename(staged, cfg.folder / "t002")  # a whole folder renamed into place
        wait_for(lambda: done(cfg.database, image_name("L01")), 10)
        wait_for(lambda: done(cfg.database, image_name("L02")), 10)


def test_memory_of_recorded_files_is_bounded_and_the_database_covers_the_rest(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, watch={"remembered_files": 2})
    assert cfg.folder is not None
    names = [image_name("A07", f) for f in range(1, 6)]
    with running_daemon(cfg, tiny_model) as d:
        for i, n in enumerate(names):
            write_tiff(cfg.folder / n, 40 + i)
        wait_for(lambda: all(done(cfg.database, n) for n in names), 15)
        assert len(d.daemon.settled) == 2  # the daemon remembers only the last two...
        d.settle()  # ...so the rescan looks the other three up in the database
        assert len(d.daemon.settled) == 2
    assert sorted(Path(r.path).name for r in records(cfg.database)) == sorted(names)
    assert (d.summary.done, d.summary.duplicates) == (5, 0)  # nothing read twice


def test_settle_returns_only_once_every_event_so_far_is_handled(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    with running_daemon(cfg, tiny_model) as d:
        name = image_name("N01")
        write_tiff(d.daemon.folder / name, 50)
        d.daemon.inbox.put(Hint("touch", d.daemon.folder / name))
        d.settle(rescan=False)
        assert done(cfg.database, name)  # no waiting here: it was recorded before settle returned
        assert not d.daemon.tracker and not d.daemon.in_flight

"""The defects of issue 11, each reproduced with the real daemon on a real folder.

Every test here failed before its fix (see the issue's numbered list, cited per test). Waits
follow the daemon's events, counts or the database, never the clock.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from monitor_helpers import (
    DaemonThread,
    by_name,
    image_name,
    make_config,
    records,
    running_daemon,
    tiff_bytes,
    wait_for,
    write_tiff,
)
from PIL import Image
from webhook import Hook

from monitor import pipeline as pipeline_module
from monitor.inference import LoadedModel
from monitor.supervise import ThreadDiedError
from stemwatch import store
from stemwatch.core import imaging
from stemwatch.core.errors import ImageReadError


def done(db: Path, name: str) -> bool:
    return any(r.status == "done" for r in by_name(db, name))


def heartbeat_at(db: Path) -> float:
    conn = store.open_db(db, readonly=True)
    try:
        hb = store.last_heartbeat(conn)
        return 0.0 if hb is None else hb.at
    finally:
        conn.close()


# -- 1. a file name that is not UTF-8 -----------------------------------------------------------


def test_non_utf8_file_name_is_recorded_and_the_daemon_goes_on(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    folder = os.fsencode(cfg.folder)
    raw_name = b"P9_D01_latin1_\xe4\xf6\xfc_f01_t001.tif"
    with running_daemon(cfg, tiny_model) as d:
        fd = os.open(folder + b"/" + raw_name, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, tiff_bytes(1))
        os.close(fd)
        stored = r"P9_D01_latin1_\xe4\xf6\xfc_f01_t001.tif"  # the bytes, escaped
        wait_for(lambda: by_name(cfg.database, stored), 15)
        good = image_name("D02")
        write_tiff(d.daemon.folder / good, 2)  # the writer is alive: the next file is stored
        wait_for(lambda: done(cfg.database, good), 15)
    (rec,) = by_name(cfg.database, stored)
    assert rec.status == "done"
    with running_daemon(cfg, tiny_model) as again:  # a restart finds the record: no re-read
        again.settle()
    assert again.summary is not None and again.summary.done == again.summary.failed == 0
    assert len(by_name(cfg.database, stored)) == 1


# -- 2. decoded pixels are limited ---------------------------------------------------------------


def test_image_declaring_more_pixels_than_the_limit_fails_before_decoding(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, watch={"max_megapixels": 1.0})
    name = image_name("E01")
    big = np.zeros((2048, 2048), np.uint16)  # 4.2 MP of zeros: a ~20 KB compressed file
    with running_daemon(cfg, tiny_model) as d:
        tifffile.imwrite(d.daemon.folder / name, big, compression="zlib", tile=(256, 256))
        wait_for(lambda: by_name(cfg.database, name), 15)
    (rec,) = by_name(cfg.database, name)
    assert rec.status == "failed" and rec.attempts == 1  # permanent: not tried again and again
    assert "2048x2048 px" in (rec.error or "") and "watch.max_megapixels" in (rec.error or "")
    assert d.summary is not None and d.summary.tiles == 0  # never decoded, never scored


# -- 3. a transient read error is retried, even after it was recorded as failed ------------------


class Flaky:
    """``read_bytes`` that fails with "permission denied" while ``denied`` is set."""

    def __init__(self) -> None:
        self.denied = threading.Event()
        self.denied.set()
        self.calls = 0

    def __call__(self, path: str | Path) -> bytes:
        self.calls += 1
        if self.denied.is_set():
            err = PermissionError(13, "Permission denied", str(path))
            raise imaging._open_error(Path(path), err, "read")
        return imaging.read_bytes(path)


def test_file_unreadable_for_a_while_is_analysed_once_readable(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, monkeypatch: Any
) -> None:
    flaky = Flaky()
    monkeypatch.setattr(pipeline_module, "read_bytes", flaky)
    cfg = make_config(tmp_path, tiny_model_path, retry={"max_attempts": 2, "recheck_failed_s": 0.3})
    name = image_name("F01")
    with running_daemon(cfg, tiny_model) as d:
        write_tiff(d.daemon.folder / name, 3)
        wait_for(lambda: [r.status for r in by_name(cfg.database, name)] == ["failed"], 15)
        assert "permission denied" in (by_name(cfg.database, name)[0].error or "")
        flaky.denied.clear()  # readable again: the daemon reads it again without any event
        wait_for(lambda: done(cfg.database, name), 15)
    assert [r.status for r in by_name(cfg.database, name)] == ["done"]  # the same record


def test_transient_failure_is_read_again_after_a_restart(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, monkeypatch: Any
) -> None:
    flaky = Flaky()
    monkeypatch.setattr(pipeline_module, "read_bytes", flaky)
    cfg = make_config(
        tmp_path, tiny_model_path, retry={"max_attempts": 1, "recheck_failed_s": 3600.0}
    )
    name = image_name("F02")
    with running_daemon(cfg, tiny_model) as d:
        write_tiff(d.daemon.folder / name, 4)
        wait_for(lambda: by_name(cfg.database, name), 15)
    flaky.denied.clear()
    # the next daemon reads it when its recheck time has come: here, after a restart with a
    # short recheck interval the stored time is still an hour away, so it is tracked...
    with running_daemon(cfg, tiny_model) as again:
        assert again.daemon.folder / name in again.daemon.tracker  # ...not forgotten
    conn = store.open_db(cfg.database)
    conn.execute("UPDATE images SET retry_at = 0")  # ...and once due, it is read
    conn.close()
    with running_daemon(cfg, tiny_model):
        wait_for(lambda: done(cfg.database, name), 15)
    assert [r.status for r in by_name(cfg.database, name)] == ["done"]


# -- 4. a blocked writer stops neither the heartbeat nor the disk alert ---------------------------
# The writer's own connection refuses every write (as on a full disk: each transaction fails
# and is retried); the disk check is made to fire by asking for 100 % free space.


def test_full_database_stops_neither_heartbeat_nor_disk_alert(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    hook = Hook()
    cfg = make_config(
        tmp_path,
        tiny_model_path,
        heartbeat_interval_s=0.2,
        instrument_check_interval_s=1.0,
        alerts={"channels": {"lab": hook.url}, "min_free_percent": 100.0},  # disk "full"
    )
    name = image_name("G01")
    try:
        with running_daemon(cfg, tiny_model) as d:
            assert d.daemon.pipeline is not None
            writer_db = d.daemon.pipeline.db
            writer_db.execute("PRAGMA query_only = ON")  # every write of the writer fails
            write_tiff(d.daemon.folder / name, 5)
            wait_for(lambda: d.daemon.pipeline and d.daemon.pipeline.writer_problem, 15)
            t0 = heartbeat_at(cfg.database)
            wait_for(lambda: heartbeat_at(cfg.database) > t0, 10)  # still beating...
            wait_for(lambda: any("disk" in p["title"] for p in hook.payloads), 10)  # ...alerting
            assert not by_name(cfg.database, name)  # while nothing could be stored
            writer_db.execute("PRAGMA query_only = OFF")  # space again
            wait_for(lambda: done(cfg.database, name), 15)  # nothing was lost
    finally:
        hook.close()


# -- 5. a rewrite with the same size and mtime is analysed again --------------------------------


def _same_size_rewrite(path: Path, seed: int) -> None:
    st = path.stat()
    data = tiff_bytes(seed)
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the acquisition time stamp kept


def test_rewrite_keeping_size_and_mtime_is_analysed_again(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    name = image_name("H01")
    with running_daemon(cfg, tiny_model) as d:
        path = write_tiff(d.daemon.folder / name, 6)
        wait_for(lambda: done(cfg.database, name), 15)
        _same_size_rewrite(path, 7)
        wait_for(lambda: len(by_name(cfg.database, name)) == 2, 15)
    old, new = by_name(cfg.database, name)
    assert old.superseded_by == new.id and new.status == "done"
    assert old.content_hash != new.content_hash
    # ...and while the daemon is down, too
    _same_size_rewrite(path, 8)
    with running_daemon(cfg, tiny_model) as again:
        wait_for(lambda: len(by_name(cfg.database, name)) == 3, 15)
        again.settle()
    assert [r.superseded_by is None for r in by_name(cfg.database, name)] == [False, False, True]


def test_touch_or_chmod_rereads_but_never_reanalyses(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    name = image_name("H02")
    with running_daemon(cfg, tiny_model) as d:
        path = write_tiff(d.daemon.folder / name, 9)
        wait_for(lambda: done(cfg.database, name), 15)
        path.chmod(0o600)  # a new ctime, the same content
        d.settle()
    assert len(by_name(cfg.database, name)) == 1
    with running_daemon(cfg, tiny_model) as again:  # the record remembers the new ctime
        again.settle()
    assert again.summary is not None and again.summary.duplicates == 0


# -- 6. images without a field number are all kept -----------------------------------------------


def test_fields_without_a_number_are_each_counted(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(
        tmp_path,
        tiny_model_path,
        plate={"user_regex": r"(?:^|/)(?P<plate>P\d)_(?P<well>[A-H]\d\d)_tile\d+\.tif$"},
    )
    names = [f"P1_A01_tile{i}.tif" for i in range(10)]
    with running_daemon(cfg, tiny_model) as d:
        for i, n in enumerate(names):
            write_tiff(d.daemon.folder / n, 20 + i)
        wait_for(lambda: all(done(cfg.database, n) for n in names), 20)
        d.settle()
    conn = store.open_db(cfg.database, readonly=True)
    try:
        (point,) = store.well_series(conn, "P1", "A01")
        images = store.images_for_well(conn, "P1", "A01")
    finally:
        conn.close()
    assert {i.field for i in images} == {None}  # no field was made up
    assert point.n_fields == 10  # the well's value is the median of ten, not one tile
    probs = sorted(float(i.probability or 0) for i in images)
    assert point.probability == pytest.approx((probs[4] + probs[5]) / 2)


# -- 8. a watched folder missing at start is waited for -----------------------------------------


def test_folder_missing_at_start_is_waited_for_and_alerted(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(
        tmp_path,
        tiny_model_path,
        folder=tmp_path / "share" / "export",
        alerts={"folder_missing_alert_s": 0.3},
    )
    assert cfg.folder is not None and not cfg.folder.exists()
    with running_daemon(cfg, tiny_model) as d:  # starts: no exit 2 at boot
        assert not d.daemon.watching.is_set()

        def folder_alert() -> bool:
            conn = store.open_db(cfg.database, readonly=True)
            try:
                return any(a.kind == "folder" for a in store.list_alerts(conn))
            finally:
                conn.close()

        wait_for(folder_alert, 10)
        write_tiff(cfg.folder / image_name("J01"), 10)  # the share is mounted at last
        assert d.daemon.watching.wait(10)
        wait_for(lambda: done(cfg.database, image_name("J01")), 15)


# -- 9. a file moved or renamed after analysis is not analysed again ----------------------------


def test_renamed_file_keeps_its_record(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    old, new = image_name("K01"), image_name("K02")
    with running_daemon(cfg, tiny_model) as d:
        write_tiff(d.daemon.folder / old, 11)
        wait_for(lambda: done(cfg.database, old), 15)
        (d.daemon.folder / "moved").mkdir()
        os.rename(d.daemon.folder / old, d.daemon.folder / "moved" / new)
        wait_for(lambda: by_name(cfg.database, new), 15)
        d.settle()
    recs = records(cfg.database)
    assert len(recs) == 1  # one record, now at the new path: never two current copies
    assert Path(recs[0].path) == d.daemon.folder / "moved" / new and recs[0].status == "done"
    assert recs[0].well == "K02"  # the location follows the new name
    assert d.summary is not None and (d.summary.done, d.summary.moved) == (1, 1)


# -- 10. two daemons on one database --------------------------------------------------------------


def test_second_daemon_on_the_same_database_stops_with_a_clear_message(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    with running_daemon(cfg, tiny_model):
        second = DaemonThread(cfg, tiny_model)
        second.thread.start()
        second.thread.join(20)
        if second.thread.is_alive():  # it must not run: stop it before failing
            second.stop_event.set()
            second.thread.join(20)
            pytest.fail("a second daemon ran on the same database")
        assert isinstance(second.error, store.StoreLockedError)
        assert "another stemwatch daemon" in str(second.error)
        assert f"pid {os.getpid()}" in str(second.error)
    with running_daemon(cfg, tiny_model):  # once the first stopped, the lock is free
        pass


# -- 11. reasons that say what is wrong -----------------------------------------------------------


def test_png_named_tif_tiny_and_truncated_files_get_the_right_reason(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path)
    png, tiny, cut = image_name("L01"), image_name("L02"), image_name("L03")
    noise = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    with running_daemon(cfg, tiny_model) as d:
        Image.fromarray(noise).save(d.daemon.folder / png, format="PNG")  # a PNG named .tif
        tifffile.imwrite(d.daemon.folder / tiny, np.ones((1, 1), np.uint16))
        (d.daemon.folder / cut).write_bytes(tiff_bytes(12)[:4000])
        wait_for(lambda: all(by_name(cfg.database, n) for n in (png, tiny, cut)), 20)
    by = {Path(r.path).name: r for r in records(cfg.database)}
    assert by[png].status == "done"
    assert by[tiny].status == "failed" and by[tiny].attempts == 1  # not retried 5 times
    assert "1x1 px, smaller than" in (by[tiny].error or "")
    assert (by[cut].error or "").startswith("truncated")


# -- 12. junk files are refused cheaply ---------------------------------------------------------


def test_sparse_4_gb_junk_is_refused_without_being_read(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, monkeypatch: Any
) -> None:
    reads: list[Path] = []

    def counting(path: str | Path) -> bytes:
        reads.append(Path(path))
        return imaging.read_bytes(path)

    monkeypatch.setattr(pipeline_module, "read_bytes", counting)
    cfg = make_config(tmp_path, tiny_model_path)
    huge, junk = image_name("M01"), image_name("M02")
    with running_daemon(cfg, tiny_model) as d:
        with (d.daemon.folder / huge).open("wb") as fh:
            fh.truncate(4_000_000_000)  # sparse: 4 GB that cost no disk
        with (d.daemon.folder / junk).open("wb") as fh:
            fh.truncate(20_000_000)  # 20 MB of zeros named .tif
        wait_for(lambda: by_name(cfg.database, huge) and by_name(cfg.database, junk), 20)
    by = {Path(r.path).name: r for r in records(cfg.database)}
    assert by[huge].attempts == 1 and "above watch.max_file_mb" in (by[huge].error or "")
    assert "not a TIFF" in (by[junk].error or "")
    assert reads == []  # neither was ever read whole: 16 bytes told the junk apart


# -- supervision: a dead thread stops the daemon --------------------------------------------------


def test_a_thread_that_dies_stops_the_daemon_with_a_clear_error(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, monkeypatch: Any
) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(store, "record_result", broken)
    monkeypatch.setattr(store, "record_failure", broken)
    cfg = make_config(tmp_path, tiny_model_path)
    d = DaemonThread(cfg, tiny_model)
    d.thread.start()
    try:
        assert d.daemon.started.wait(10)
        write_tiff(d.daemon.folder / image_name("N01"), 13)
        d.thread.join(30)  # the writer dies: the daemon stops by itself
        assert not d.thread.is_alive()
    finally:
        d.stop_event.set()
        d.thread.join(10)
    assert isinstance(d.error, ThreadDiedError)
    assert "stemwatch-writer" in str(d.error) and "injected fault" in str(d.error)
    assert d.error.exit_code == 70
    conn = store.open_db(cfg.database, readonly=True)
    try:
        hb = store.last_heartbeat(conn)
    finally:
        conn.close()
    assert hb is not None and hb.state == "crashed"


# -- channels and planes ------------------------------------------------------------------------


def test_channels_not_selected_are_recorded_as_ignored(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    cfg = make_config(tmp_path, tiny_model_path, plate={"channels": ["1"]})
    phase = "Plate1_B03_T0001F001L01A01Z01C01.tif"
    fluo = "Plate1_B03_T0001F001L01A01Z01C02.tif"
    mask = "Plate1_B03_T0001F001L01A01Z01C01_mask.tif"
    with running_daemon(cfg, tiny_model) as d:
        for i, n in enumerate((phase, fluo, mask)):
            write_tiff(d.daemon.folder / n, 30 + i)
        wait_for(lambda: done(cfg.database, phase), 15)
        d.settle()
    assert [Path(r.path).name for r in records(cfg.database)] == [phase]
    conn = store.open_db(cfg.database, readonly=True)
    try:
        skipped = store.skipped_file(conn, str(d.daemon.folder / fluo))
        masked = store.skipped_file(conn, str(d.daemon.folder / mask))
        (img,) = store.images_for_well(conn, "Plate1", "B03")
    finally:
        conn.close()
    assert skipped is not None and "channel 2 is not among plate.channels" in skipped[1]
    assert masked is not None and "'mask'" in masked[1]
    assert (img.channel, img.z, img.timepoint, img.field) == (1, 1, 1, 1)
    assert d.summary is not None and d.summary.ignored == 2


def test_an_unplaced_image_is_stored_with_why(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    """Nothing is placed in a wrong well: no evidence, or conflicting evidence, leaves the image
    unplaced, and the reason is stored for the dashboard (``images.unplaced_reason``)."""
    cfg = make_config(
        tmp_path, tiny_model_path, plate={"user_regex": r"(?:^|/)(?P<well>[A-H]\d\d)/[^/]+$"}
    )
    plain = "scan_0001.tif"
    conflict = "B03/Plate1_C05_T0001F001L01A01Z01C01.tif"  # user_regex: B03; the name: C05
    with running_daemon(cfg, tiny_model) as d:
        (d.daemon.folder / "B03").mkdir()
        for i, n in enumerate((plain, conflict)):
            write_tiff(d.daemon.folder / n, 40 + i)
        wait_for(lambda: done(cfg.database, plain) and done(cfg.database, Path(conflict).name), 15)
        d.settle()
    conn = store.open_db(cfg.database, readonly=True)
    try:
        unplaced = {Path(r.path).name: r for r in store.unplaced_images(conn)}
    finally:
        conn.close()
    assert set(unplaced) == {plain, Path(conflict).name}
    why = unplaced[plain].unplaced_reason
    assert why is not None and why.startswith("cannot tell the well") and "user_regex" in why
    clash = unplaced[Path(conflict).name].unplaced_reason
    assert clash is not None and clash.startswith("conflicting well evidence")
    assert "B03" in clash and "C05" in clash


def test_multi_channel_ome_tiff_analyses_the_chosen_plane_and_says_so(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.pipeline")
    cfg = make_config(tmp_path, tiny_model_path, plate={"channels": ["GFP"]})
    name = image_name("P01")
    planes = np.zeros((2, 3, 256, 256), np.uint16)  # channel x z
    rng = np.random.default_rng(1)
    planes[1, 0] = rng.normal(20000, 4000, (256, 256)).clip(0, 65535)  # GFP, plane 1: texture
    buf = io.BytesIO()
    tifffile.imwrite(
        buf, planes, ome=True, metadata={"axes": "CZYX", "Channel": {"Name": ["BF", "GFP"]}}
    )
    with running_daemon(cfg, tiny_model) as d:
        (d.daemon.folder / name).write_bytes(buf.getvalue())
        wait_for(lambda: done(cfg.database, name), 15)
    conn = store.open_db(cfg.database, readonly=True)
    try:
        (img,) = store.images_for_well(conn, "P1", "P01")
    finally:
        conn.close()
    assert (img.channel, img.channel_name, img.z) == (2, "GFP", 1)
    assert img.n_tiles and img.n_tiles > 0
    assert "the file holds 2 channel(s), 3 plane(s): analysed channel 2 (GFP)" in caplog.text


def test_unsupported_formats_and_cellomics_dib_reach_the_resolver(
    tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel
) -> None:
    from stemwatch.core import dib

    cfg = make_config(tmp_path, tiny_model_path)
    rng = np.random.default_rng(2)
    pixels = rng.normal(2000, 400, (256, 256)).clip(0, 4095).astype(np.uint16)
    nd2 = "WellA01_ChannelDAPI_Seq0001.nd2"
    c01 = "AS_09125_050116030001_D03f00d0.C01"
    with running_daemon(cfg, tiny_model) as d:
        (d.daemon.folder / nd2).write_bytes(b"ND2 data")
        (d.daemon.folder / c01).write_bytes(dib.encode(pixels, compressed=True))
        wait_for(lambda: done(cfg.database, c01), 15)
        d.settle()
    conn = store.open_db(cfg.database, readonly=True)
    try:
        unsupported = store.skipped_file(conn, str(d.daemon.folder / nd2))
        (img,) = store.images_for_well(conn, "AS_09125_050116030001", "D03")
    finally:
        conn.close()
    assert unsupported is not None and unsupported[0] == "unsupported"
    assert "Nikon ND2" in unsupported[1]
    assert img.field == 1 and img.channel == 1  # f00 and d0 count from 0


def test_thread_deaths_are_escalated_not_swallowed_by_a_slow_shutdown() -> None:
    from monitor.supervise import Supervisor

    seen: list[str] = []
    sup = Supervisor(lambda f: seen.append(f.thread))
    t = sup.thread(lambda: None, "stemwatch-test-returns")  # ends though nobody said stop
    t.start()
    t.join(5)
    assert seen == ["stemwatch-test-returns"]
    with pytest.raises(ThreadDiedError, match="ended unexpectedly"):
        sup.raise_if_failed()
    quiet = Supervisor(lambda f: seen.append("wrong"))
    quiet.stopping.set()
    t2 = quiet.thread(lambda: None, "stemwatch-test-stopping")
    t2.start()
    t2.join(5)
    assert quiet.failure is None and seen == ["stemwatch-test-returns"]


def test_no_sleep_is_needed_to_see_heartbeats(tmp_path: Path) -> None:
    """The heartbeat counts what it wrote; its thread ends when told."""
    from monitor.heartbeat import DaemonLoad, Heartbeat

    db = store.open_db(tmp_path / "s.db")
    hb = Heartbeat(db, interval_s=0.05, load=lambda: DaemonLoad("x", 0))
    t = threading.Thread(target=hb.run, name="stemwatch-test-heartbeat")
    t.start()
    try:
        wait_for(lambda: hb.beats >= 3, 10)
    finally:
        hb.stop()
        t.join(5)
        db.close()
    assert not t.is_alive()
    assert time.time() - heartbeat_at(tmp_path / "s.db") < 60


def test_read_error_kinds_decide_the_retries() -> None:
    err = imaging._open_error(Path("/x.tif"), PermissionError(13, "denied"), "read")
    assert err.failure == "transient"
    assert ImageReadError("/x.tif", "truncated").failure == "incomplete"

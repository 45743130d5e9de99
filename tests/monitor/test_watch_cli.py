"""`stemwatch watch` as a user runs it: --once, SIGTERM, startup errors, restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from monitor_helpers import by_name, image_name, records, wait_for, write_tiff

from stemwatch import store


def watch(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stemwatch", "watch", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    folder = tmp_path / "plate"
    for i, well in enumerate(["A01", "A02", "B01"]):
        write_tiff(folder / image_name(well), i)
    old = time.time() - 60  # written a minute ago: past any quiet period
    for f in folder.iterdir():
        os.utime(f, (old, old))
    return folder


def test_once_processes_everything_then_exits(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    db = tmp_path / "s.db"
    r = watch(plate, "--db", db, "--model", tiny_model_path, "--once")
    assert r.returncode == 0, r.stderr
    assert "3 processed" in r.stdout
    assert sorted(rec.well or "" for rec in records(db)) == ["A01", "A02", "B01"]
    assert "CPUExecutionProvider" in r.stderr  # the provider in use is logged


def test_restart_scans_what_arrived_while_stopped_and_never_duplicates(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    db = tmp_path / "s.db"
    assert watch(plate, "--db", db, "--model", tiny_model_path, "--once").returncode == 0
    write_tiff(plate / image_name("C01"), 10)  # arrived while the daemon was down
    old = time.time() - 60
    os.utime(plate / image_name("C01"), (old, old))
    r = watch(plate, "--db", db, "--model", tiny_model_path, "--once")
    assert r.returncode == 0, r.stderr
    assert "1 processed" in r.stdout
    r = watch(plate, "--db", db, "--model", tiny_model_path, "--once")
    assert "0 processed" in r.stdout
    assert len(records(db)) == 4 and all(rec.status == "done" for rec in records(db))


def test_done_files_are_never_redone_failed_ones_only_once_they_change(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    """The one "already recorded?" rule (store.already_recorded), across restarts."""
    db = tmp_path / "s.db"
    tiny = write_tiff(plate / image_name("D04"), 7, size=64)  # smaller than a tile: fails
    old = time.time() - 60
    os.utime(tiny, (old, old))
    r = watch(plate, "--db", db, "--model", tiny_model_path, "--once")
    assert "3 processed, 1 failed" in r.stdout, r.stderr
    # a done file touched (same content, new mtime) and the failed file unchanged: nothing
    os.utime(plate / image_name("A01"), (old + 1, old + 1))
    r = watch(plate, "--db", db, "--model", tiny_model_path, "--once")
    assert "0 processed, 0 failed" in r.stdout, r.stderr
    assert len(records(db)) == 4
    # the failed file rewritten: tried again, and now it is done
    write_tiff(tiny, 8)
    os.utime(tiny, (old + 2, old + 2))
    r = watch(plate, "--db", db, "--model", tiny_model_path, "--once")
    assert "1 processed, 0 failed" in r.stdout, r.stderr
    (failed, redone) = by_name(db, tiny.name)
    assert (failed.status, redone.status, failed.superseded_by) == ("failed", "done", redone.id)


def test_sigterm_finishes_flushes_and_exits_zero(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    db = tmp_path / "s.db"
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("watch:\n  quiet_period_s: 0.2\nheartbeat_interval_s: 0.2\n")
    cmd = [sys.executable, "-m", "stemwatch", "watch", str(plate), "--config", str(cfg)]
    proc = subprocess.Popen(
        [*cmd, "--db", str(db), "--model", str(tiny_model_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(records(db)) == 3, 30)
        write_tiff(plate / image_name("D01"), 20)  # a live arrival, via the observer
        wait_for(lambda: by_name(db, image_name("D01")), 10)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "4 processed" in out
    conn = store.open_db(db, readonly=True)
    try:
        hb = store.last_heartbeat(conn)
    finally:
        conn.close()
    assert hb is not None and hb.state == "stopped"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/nowhere", "--model", "{model}"], "watched folder does not exist"),
        (["{tmp}", "--model", "{tmp}/missing.onnx"], "missing.onnx: model file not found"),
        (["{tmp}", "--model", "{model}", "--config", "{tmp}/bad.yaml"], "watch.quiet_perod_s"),
        (["{tmp}", "--model", "{tmp}/junk.onnx"], "not a loadable ONNX model"),
        (["{tmp}", "--model", "{model}", "--require-gpu"], "--require-gpu"),
        (["{tmp}", "--model", "{model}", "--db", "{tmp}/ro/s.db"], "read-only"),
        (["{tmp}", "--model", "{model}", "--db", "{tmp}/junk.db"], "junk.db"),
    ],
    ids=["folder", "model", "config", "not-onnx", "gpu", "readonly-db", "not-a-db"],
)
def test_startup_errors_are_one_line_and_exit_2(
    tmp_path: Path, tiny_model_path: Path, args: list[str], message: str
) -> None:
    if "--require-gpu" in args:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            pytest.skip("CUDA present: --require-gpu succeeds here")
    (tmp_path / "bad.yaml").write_text("watch:\n  quiet_perod_s: 1\n")
    (tmp_path / "junk.onnx").write_text("not onnx")
    (tmp_path / "junk.db").write_text("this is not an SQLite database " * 100)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "s.db").write_bytes(b"")
    os.chmod(ro / "s.db", 0o444)
    if os.geteuid() == 0 and "ro/s.db" in " ".join(args):
        pytest.skip("root writes read-only files; cannot test here")
    filled = [a.format(tmp=tmp_path, model=tiny_model_path) for a in args]
    if "--db" not in filled:
        filled += ["--db", str(tmp_path / "ok.db")]
    r = watch(*filled, "--once")
    assert r.returncode == 2, r.stderr
    error_lines = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(error_lines) == 1 and message in error_lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_a_file_name_cannot_forge_a_log_line(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    """Issue 11 #12: a newline in a file name split the log line (a forged entry)."""
    forged = "P1_A05_1_2026y01m05d_09h00m\n2026-01-01 00:00:00 ERROR   stemwatch: forged.tif"
    write_tiff(plate / forged, 30)
    old = time.time() - 60
    os.utime(plate / forged, (old, old))
    r = watch(plate, "--db", tmp_path / "s.db", "--model", tiny_model_path, "--once")
    assert r.returncode == 0, r.stderr
    assert "4 processed" in r.stdout
    assert not [ln for ln in r.stderr.splitlines() if ln.startswith("2026-01-01 00:00:00")]
    assert "09h00m\\n2026-01-01 00:00:00 ERROR" in r.stderr  # the name, escaped on one line


def test_once_exits_1_when_an_image_failed(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    """Issue 11 #14: `watch --once` exited 0 although images had failed."""
    tiny = write_tiff(plate / image_name("D04"), 7, size=64)  # smaller than one tile
    old = time.time() - 60
    os.utime(tiny, (old, old))
    r = watch(plate, "--db", tmp_path / "s.db", "--model", tiny_model_path, "--once")
    assert r.returncode == 1, r.stderr
    assert "3 processed, 1 failed" in r.stdout and "`stemwatch status`" in r.stdout


INJECT_FAULT = """
import sys
from stemwatch import store
def boom(*args, **kwargs):
    raise RuntimeError("injected fault")
store.record_result = store.record_failure = boom
from stemwatch.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_a_dead_thread_exits_70_for_systemd_to_restart(
    tmp_path: Path, plate: Path, tiny_model_path: Path
) -> None:
    """Issue 11 #1: a dead writer thread left the process running (and storing nothing)."""
    r = subprocess.run(
        [sys.executable, "-c", INJECT_FAULT, "watch", str(plate), "--db", str(tmp_path / "s.db"),
         "--model", str(tiny_model_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert r.returncode == 70, r.stderr
    assert "thread stemwatch-writer died" in r.stderr and "injected fault" in r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert "exit status 70" in line


def test_folder_missing_at_start_is_waited_for_by_the_service(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    """Issue 11 #8: a share not mounted at boot made the daemon exit 2 for good."""
    folder = tmp_path / "share"
    db = tmp_path / "s.db"
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("watch:\n  quiet_period_s: 0.2\n  folder_check_interval_s: 0.2\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stemwatch", "watch", str(folder), "--config", str(cfg),
         "--db", str(db), "--model", str(tiny_model_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def waiting() -> bool:
            if proc.poll() is not None:
                return True  # it exited: the assertions below say why
            try:
                conn = store.open_db(db, readonly=True)
            except store.StoreError:
                return False
            try:
                hb = store.last_heartbeat(conn)
            finally:
                conn.close()
            return hb is not None and "waiting for the watched folder" in (hb.detail or "")

        wait_for(waiting, 30)
        assert proc.poll() is None, proc.communicate()[1]
        write_tiff(folder / image_name("A01"), 1)  # the share appears
        wait_for(lambda: by_name(db, image_name("A01")), 30)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "watched folder does not exist (a share not mounted yet?); waiting for it" in err

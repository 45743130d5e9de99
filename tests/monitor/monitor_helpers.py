"""Helpers for the monitor tests: real TIFF files, a daemon in a thread, waits for events.

Waits follow what the daemon reports (its ``started`` and ``watching`` events, :func:`settle`
on :meth:`~monitor.daemon.Daemon.sync`, its counts) or what the database shows; no test sleeps
to let something happen or to show that nothing does.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from monitor.config import MonitorConfig
from monitor.daemon import Daemon, RunSummary
from monitor.inference import LoadedModel
from stemwatch import store


def image_name(well: str = "A01", field: int = 1, hour: int = 9, plate: str = "P1") -> str:
    """An IncuCyte-style name the plate resolver understands."""
    return f"{plate}_{well}_{field}_2026y01m05d_{hour:02d}h00m.tif"


def tiff_bytes(
    seed: int = 0, size: int = 256, *, compression: str | None = None, pages: int = 1
) -> bytes:
    """A textured uint16 (OME-)TIFF as bytes."""
    rng = np.random.default_rng(seed)
    base = rng.normal(20000, 4000, size=(pages, size, size)).clip(0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    axes = "ZYX" if pages > 1 else "YX"
    tifffile.imwrite(
        buf,
        base if pages > 1 else base[0],
        compression=compression,
        ome=True,
        metadata={"axes": axes},
    )
    return buf.getvalue()


def write_tiff(path: Path, seed: int = 0, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiff_bytes(seed, **kwargs))
    return path


def write_slowly(path: Path, data: bytes, chunks: int, pause_s: float) -> None:
    """Write ``data`` under its final name in ``chunks`` pieces, pausing between them."""
    step = -(-len(data) // chunks)
    with path.open("wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            if i + step < len(data):
                time.sleep(pause_s)


def make_config(root: Path, model_path: Path, **overrides: Any) -> MonitorConfig:
    """A fast test configuration: short quiet period, quick retries and checks."""
    folder = root / "incoming"
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "folder": folder,
        "database": root / "stemwatch.db",
        "heartbeat_interval_s": 0.5,
        "instrument_check_interval_s": 0.5,
        "watch": {
            "quiet_period_s": 0.3,
            "rescan_interval_s": 30.0,
            "folder_check_interval_s": 0.2,
            "polling_interval_s": 0.1,
        },
        "inference": {"model": model_path, "decode_workers": 1, "batch_wait_s": 0.01},
        "retry": {"max_attempts": 3, "initial_backoff_s": 0.1, "max_backoff_s": 0.3},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return MonitorConfig.model_validate(data)


class DaemonThread:
    """A :class:`Daemon` running in a thread until :meth:`stop`."""

    def __init__(self, config: MonitorConfig, model: LoadedModel | None = None) -> None:
        self.stop_event = threading.Event()
        self.daemon = Daemon(config, stop=self.stop_event, model=model)
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-daemon")

    def _run(self) -> None:
        try:
            self.summary = self.daemon.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def settle(self, timeout_s: float = 20.0, *, rescan: bool = True) -> None:
        """Wait until the daemon has handled every event so far (after a rescan of the folder,
        by default) and has nothing waiting or in flight."""
        assert self.daemon.sync(rescan=rescan).wait(timeout_s), "daemon did not settle"
        assert self.thread.is_alive() and self.error is None, "daemon stopped"

    def stop(self, timeout_s: float = 20.0) -> RunSummary:
        self.stop_event.set()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "daemon did not stop"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


@contextlib.contextmanager
def running_daemon(
    config: MonitorConfig, model: LoadedModel | None = None
) -> Iterator[DaemonThread]:
    """Run a daemon for the ``with`` block, from its first scan on (the suite's
    ``no_leaked_threads`` fixture checks it left no thread behind)."""
    d = DaemonThread(config, model)
    d.thread.start()
    try:
        wait_for(lambda: d.daemon.started.is_set() or not d.thread.is_alive(), 10)
        assert d.daemon.started.is_set(), "daemon did not start"  # stop() raises its error
        yield d
    finally:
        d.stop()


def wait_for(cond: Callable[[], object], timeout_s: float = 10.0, every_s: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(every_s)


@dataclass(frozen=True)
class Row:
    """One image version as stored, with its prediction if any (history included)."""

    id: int
    path: str
    status: str
    error: str | None
    attempts: int
    size: int | None
    content_hash: str | None
    superseded_by: int | None
    plate: str | None
    well: str | None
    probability: float | None
    model_hash: str | None
    n_tiles: int | None


def records(db: Path | str) -> list[Row]:
    """Every image record (any status, superseded versions included), oldest first.

    Reads the tables directly: the store's read API shows current versions only.
    """
    db = Path(db)  # (a config's `database:` is a string: a path or a URL)
    if not db.exists():
        return []
    try:  # the store's read-only open checks the schema: the daemon may be creating it now
        store.open_db(db, readonly=True).close()
    except store.StoreError:
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT i.id, i.path, i.status, i.error, i.attempts, i.size, i.content_hash, "
            "i.superseded_by, i.plate, i.well, p.probability, p.model_hash, p.n_tiles "
            "FROM images i LEFT JOIN predictions p ON p.image_id = i.id ORDER BY i.id"
        ).fetchall()
    finally:
        conn.close()
    return [Row(*tuple(r)) for r in rows]


def by_name(db: Path | str, name: str) -> list[Row]:
    return [r for r in records(db) if Path(r.path).name == name]

"""One daemon per (database, instrument): the ownership lock a daemon holds while it runs.

Two daemons writing as one instrument into one database would each analyse every file and
share one heartbeat. :func:`claim_daemon` takes the lock before the daemon does anything else;
a second daemon fails at once with :class:`StoreLockedError` naming the owner. Daemons of
*different* instruments share a database freely (the facility store).

- **SQLite**: an OS lock (``flock``) on a small file beside the database, one per instrument
  (``stemwatch.db.<instrument>.lock``). The kernel frees it when the owner exits, however it
  exits, so a crash never leaves a stale lock; the file's text only says who holds it.
- **PostgreSQL**: a session advisory lock keyed by the instrument, on a connection of its own
  held for the daemon's life; the server frees it when that session ends. The owner is named
  from its heartbeat.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import time
from pathlib import Path

from stemwatch.store.database import Database
from stemwatch.store.errors import StoreError
from stemwatch.store.target import parse_target, sqlite_path


class StoreLockedError(StoreError):
    """Another daemon holds the database for this instrument; ``exit_code`` tells systemd to
    try again later."""

    exit_code = 75  # EX_TEMPFAIL: the other daemon may stop; a restart may succeed


class DaemonLock:
    """A held ownership lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, *, fd: int | None = None, db: Database | None = None, key: str = "") -> None:
        self._fd = fd
        self._db = db
        self._key = key

    @property
    def held(self) -> bool:
        return self._fd is not None or self._db is not None

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        if self._db is not None:
            db, self._db = self._db, None
            try:  # at once, not whenever the server notices the session ended
                db.scalar("SELECT pg_advisory_unlock(hashtextextended(?, 0))", (self._key,))
            except StoreError:
                pass  # the session is gone, and the lock with it
            finally:
                db.close()

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(database: str | Path, instrument: str) -> Path:
    """The lock file of ``instrument`` on an SQLite database."""
    p = Path(database)
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", instrument)[:40]
    digest = hashlib.sha1(instrument.encode()).hexdigest()[:8]
    return p.with_name(f"{p.name}.{slug}-{digest}.lock")


def claim_daemon(
    target: str | os.PathLike[str], *, instrument: str, watching: str | Path
) -> DaemonLock:
    """Take the daemon lock of ``instrument`` on the database ``target`` (a file path or a
    ``postgresql://`` URL) for a daemon watching ``watching``.

    Raises :class:`StoreLockedError` naming the owner when another daemon holds it, and
    :class:`StoreError` when the lock cannot be taken at all.
    """
    t = parse_target(target)
    if t.engine == "postgresql":
        return _claim_postgres(target, instrument)
    return _claim_file(sqlite_path(t), instrument, watching)


def _claim_file(database: Path, instrument: str, watching: str | Path) -> DaemonLock:
    path = lock_path(database, instrument)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot create the daemon lock file ({exc.strerror or exc}); make the "
            "database's folder writable"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = _file_owner(fd)
        os.close(fd)
        raise StoreLockedError(
            f"{database}: another stemwatch daemon is using this database as instrument "
            f"{instrument!r} ({owner}); stop it first, or give this one its own --db or "
            "--instrument"
        ) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "instrument": instrument,
        "watching": str(watching),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    return DaemonLock(fd=fd)


def _file_owner(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return "owner unknown"
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')}, watching "
        f"{info.get('watching', '?')} since {info.get('since', '?')}"
    )


def _claim_postgres(target: str | os.PathLike[str], instrument: str) -> DaemonLock:
    from stemwatch.store.connection import open_db
    from stemwatch.store.daemon import last_heartbeat

    db = open_db(target, instrument=instrument)
    key = f"stemwatch-daemon\x1f{instrument}"
    try:
        got = db.scalar("SELECT pg_try_advisory_lock(hashtextextended(?, 0))", (key,))
        if got:
            return DaemonLock(db=db, key=key)
        hb = last_heartbeat(db, instrument=instrument)
        owner = "owner unknown" if hb is None else f"pid {hb.pid} on {hb.host}"
        raise StoreLockedError(
            f"{db.source}: another stemwatch daemon is using this database as instrument "
            f"{instrument!r} ({owner}); stop it first, or give this one its own --instrument"
        )
    except BaseException:
        db.close()
        raise

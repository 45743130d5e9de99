"""One daemon per database: the ownership lock a daemon holds while it runs.

Two daemons on one database would each analyse every file and write one heartbeat row
between them. :func:`claim_daemon` takes the lock before the daemon opens anything; a second
daemon fails at once with :class:`StoreLockedError` naming the owner (pid, host, the folder
it watches, since when).

For SQLite the lock is an OS lock (``flock``) on a file beside the database
(``stemwatch.db.lock``): the kernel releases it when the owner exits, however it exits, so
a crash never leaves a stale lock behind; the file's text only says who holds it. The lock
belongs to the store because its scope is the engine's: a server database shared by several
instruments would hold one lock per (database, watched folder), e.g. a PostgreSQL session
advisory lock keyed by the folder, which is why the claim names the folder it is for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from stemwatch.store.errors import StoreError


class StoreLockedError(StoreError):
    """Another daemon holds the database; ``exit_code`` tells systemd to try again later."""

    exit_code = 75  # EX_TEMPFAIL: the other daemon may stop; a restart may succeed


class DaemonLock:
    """A held ownership lock; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(database: str | Path) -> Path:
    """The lock file of an SQLite database."""
    p = Path(database)
    return p.with_name(p.name + ".lock")


def claim_daemon(database: str | Path, *, watching: str | Path) -> DaemonLock:
    """Take the daemon lock of ``database`` for a daemon watching ``watching``.

    Raises :class:`StoreLockedError` naming the owner when another daemon holds it, and
    :class:`StoreError` when the lock file cannot be created.
    """
    path = lock_path(database)
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
        owner = _owner(fd)
        os.close(fd)
        raise StoreLockedError(
            f"{database}: another stemwatch daemon is using this database ({owner}); stop it "
            "first, or give this one its own --db"
        ) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "watching": str(watching),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    return DaemonLock(path, fd)


def _owner(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return "owner unknown"
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')}, watching "
        f"{info.get('watching', '?')} since {info.get('since', '?')}"
    )

"""Opening the database, the handle callers hold, transactions, locks and errors.

:func:`open_db` returns a :class:`Database`: the only thing the applications hold. They pass
it to the store's functions and close it; they never see a cursor, a row or an engine error.
Everything SQLite-specific about connections lives here: WAL mode, ``busy_timeout``, the
``mode=ro`` URI of read-only opens, the translation of SQLite's errors into
:class:`StoreError` with the file's name and the fix.

Threads may share a :class:`Database`: every statement, read or write, takes its lock, so a
thread never sees another thread's transaction half-done, and a write transaction holds the
lock from ``BEGIN IMMEDIATE`` to ``COMMIT``. The daemon nevertheless gives each of its
threads that touch the database a connection of its own (no waiting on each other's locks).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from stemwatch.store.errors import StoreBusyError, StoreError
from stemwatch.store.schema import SCHEMA_VERSION, migrate, schema_version

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0
LOCK_RETRIES = 5

Params = Sequence[Any]


class Database:
    """An open stemwatch database. Pass it to the store's functions; close it when done.

    Usable as a context manager (``with store.open_db(path) as db: ...`` closes it).
    """

    def __init__(self, conn: sqlite3.Connection, source: str, *, readonly: bool) -> None:
        self._conn = conn
        self.source = source  # what messages name: the file
        self.readonly = readonly
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writable"
        return f"<stemwatch.store.Database {self.source} ({mode})>"

    @property
    def local_path(self) -> Path:
        """The database file (its disk is watched for free space)."""
        return Path(self.source)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- statements (the store's modules only) ----------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """Run one statement; SQLite's errors become :class:`StoreError`."""
        with self._lock:
            try:
                return self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise _translate(exc, self.source) from exc

    def rows(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.execute(sql, params).fetchall()

    def row(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row (the statement is run to its end: an INSERT ... RETURNING too)."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Params = ()) -> Any:
        r = self.row(sql, params)
        return None if r is None else r[0]

    def executemany(self, sql: str, seq: Sequence[Params]) -> None:
        with self._lock:
            try:
                self._conn.executemany(sql, seq)
            except sqlite3.Error as exc:
                raise _translate(exc, self.source) from exc

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _translate(exc: sqlite3.Error, source: str) -> StoreError:
    if _is_locked(exc):
        return StoreBusyError(
            f"{source}: database is locked; is another process holding a long write transaction?"
        )
    if "readonly" in str(exc).lower():
        return StoreError(
            f"{source}: attempt to write a read-only database; make the file and its folder "
            "writable (the dashboard and `stemwatch status` open it read-only on purpose)"
        )
    return StoreError(f"{source}: {exc}")


# --------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------


def _retry(fn: Callable[[], T], source: str) -> T:
    """Run ``fn``; on a lock that outlasted busy_timeout, back off and retry a few times."""
    delay = 0.2
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn()
        except StoreBusyError:
            if attempt == LOCK_RETRIES:
                raise StoreBusyError(
                    f"{source}: database stayed locked after {LOCK_RETRIES} retries; "
                    "is another process holding a long write transaction?"
                ) from None
            log.warning("%s: database locked, retry %d in %.1f s", source, attempt + 1, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """A write transaction (``BEGIN IMMEDIATE``: takes the write lock up front).

    Nested use in one thread joins the outer transaction; another thread sharing ``db`` waits
    until it is over (reads included).
    """
    with db._lock:
        if db.in_transaction:  # nested: join the outer one
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db._conn.execute("ROLLBACK")
            raise
        else:
            try:
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db._conn.execute("ROLLBACK")
                raise


@contextmanager
def batch(db: Database) -> Iterator[Database]:
    """Many writes as one transaction (bulk loading: a benchmark's database, a re-analysis):
    every store write inside joins it; all or nothing."""
    with transaction(db):
        yield db


def write(db: Database, fn: Callable[[Database], T]) -> T:
    """Run ``fn`` in one write transaction, retried as a whole while the file is locked."""

    def attempt() -> T:
        with transaction(db):
            return fn(db)

    with db._lock:  # (waits for another thread's transaction to end)
        if db.in_transaction:  # this thread's outer transaction: join it, it owns the retries
            return fn(db)
    return _retry(attempt, db.source)


@contextmanager
def snapshot(db: Database) -> Iterator[Database]:
    """Several reads that must agree with each other (one read transaction)."""
    with db._lock:
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            if db.in_transaction:
                db._conn.execute("COMMIT")


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def open_db(
    path: str | Path, *, readonly: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> Database:
    """Open (and for writing, create and migrate) the stemwatch database at ``path``.

    ``readonly=True`` opens with ``mode=ro`` (the dashboard, ``stemwatch status``): the file
    must exist and already carry the current schema.
    """
    p = Path(path)
    if readonly:
        return _open_readonly(p, busy_timeout_s)

    if p.exists() and not os.access(p, os.W_OK):
        raise StoreError(
            f"{p}: database file is read-only; make it writable (chmod u+w) or open it "
            "read-only (the dashboard does)"
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise StoreError(f"{p}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise StoreError(
            f"{p}: folder {parent} is not writable (SQLite needs it for the WAL files); "
            "choose a writable local folder"
        )
    try:
        conn = _connect(str(p), busy_timeout_s)
        foreign = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        if schema_version(conn) == 0 and foreign:
            conn.close()
            raise StoreError(
                f"{p}: another program's database (tables {', '.join(sorted(foreign)[:5])}, "
                "no stemwatch schema); point `database:` / --db at a new file"
            )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{p}: cannot open as SQLite database ({exc}); check the path") from None
    if str(mode).lower() != "wal":
        log.warning(
            "%s: WAL mode unavailable (journal_mode=%s); is it on a network share?", p, mode
        )
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        _retry(lambda: _migrate(conn, str(p)), str(p))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(
            f"{p}: cannot create or migrate the stemwatch schema ({exc}); is this another "
            "program's database? Point `database:` / --db at a new file"
        ) from None
    except StoreError:
        conn.close()
        raise
    return Database(conn, str(p), readonly=False)


def _migrate(conn: sqlite3.Connection, source: str) -> int:
    try:
        return migrate(conn, source)
    except sqlite3.OperationalError as exc:
        if _is_locked(exc) or "readonly" in str(exc).lower():
            raise _translate(exc, source) from exc
        raise


def _open_readonly(p: Path, busy_timeout_s: float) -> Database:
    if not p.is_file():
        raise StoreError(
            f"{p}: database not found; start the daemon (`stemwatch watch`) to create it, "
            "or pass the right --db"
        )
    try:
        uri = f"file:{urllib.parse.quote(p.resolve().as_posix())}?mode=ro"
        conn = _connect(uri, busy_timeout_s, uri=True)
        version = schema_version(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{p}: cannot open read-only ({exc}); is it a stemwatch database on a local "
            "disk, with its -wal/-shm files readable?"
        ) from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{p}: schema version {version} is newer than this stemwatch understands "
            f"(up to {SCHEMA_VERSION}); upgrade stemwatch"
        )
    if version < SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"{p}: schema version {version}, expected {SCHEMA_VERSION}; "
            "run the daemon once to migrate it (a read-only open cannot)"
            if version
            else f"{p}: not a stemwatch database (no schema); check the --db path"
        )
    return Database(conn, str(p.resolve()), readonly=True)


def _connect(target: str, busy_timeout_s: float, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target,
        timeout=busy_timeout_s,
        isolation_level=None,  # autocommit; transactions are explicit (BEGIN IMMEDIATE)
        uri=uri,
        check_same_thread=False,  # threads may share a Database: its lock serialises them
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn

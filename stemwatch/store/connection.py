"""Opening a database, transactions and the retry of writes, for every engine.

:func:`open_db` returns a :class:`~stemwatch.store.database.Database`: the only thing the
applications hold. A file path opens SQLite (:mod:`~stemwatch.store.sqlite_engine`, the
embedded default); a ``postgresql://`` URL opens PostgreSQL
(:mod:`~stemwatch.store.postgres_engine`, the facility store). Either is created and migrated
to the current schema when opened for writing.

:func:`write` runs a function in one write transaction and retries it as a whole while the
database is busy (another writer's lock; on PostgreSQL also a dropped connection);
:func:`snapshot` groups reads that must agree.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from stemwatch.store.database import Database
from stemwatch.store.errors import StoreBusyError
from stemwatch.store.postgres_engine import open_postgres, wal_position
from stemwatch.store.sqlite_engine import migrate_file, open_sqlite
from stemwatch.store.target import check_instrument, parse_target, sqlite_path

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0
LOCK_RETRIES = 5

# --------------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------------


def _retry(fn: Callable[[], T], source: str) -> T:
    """Run ``fn``; while the database is busy (a lock that outlasted the busy timeout, a
    dropped server connection), back off and retry a few times."""
    delay = 0.2
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn()
        except StoreBusyError as exc:
            if attempt == LOCK_RETRIES:
                raise StoreBusyError(
                    f"{exc} (still so after {LOCK_RETRIES} retries; database stayed locked "
                    "or unreachable)"
                ) from None
            log.warning("%s, retry %d in %.1f s", exc, attempt + 1, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """A write transaction (SQLite: ``BEGIN IMMEDIATE``, the write lock up front).

    Nested use in one thread joins the outer transaction; another thread sharing ``db`` waits
    until it is over (reads included).
    """
    with db._lock:
        if db.in_transaction:  # nested: join the outer one
            yield db
            return
        db._begin_write()
        try:
            yield db
        except BaseException:
            db._rollback()
            raise
        else:
            try:
                db._commit()
            except BaseException:
                if db.in_transaction:
                    db._rollback()
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
        db._begin_snapshot()
        try:
            yield db
        finally:
            if db.in_transaction:
                db._commit()


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def open_db(
    target: str | os.PathLike[str],
    *,
    readonly: bool = False,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
    instrument: str | None = None,
) -> Database:
    """Open (and for writing, create and migrate) the stemwatch database at ``target``: a
    file path (SQLite) or a ``postgresql://`` URL.

    ``readonly=True`` (the dashboard, ``stemwatch status``) cannot write and cannot migrate:
    the database must exist and carry the current schema. ``instrument``: the daemon's name,
    stamped on what this handle writes and scoping its own questions (see
    :class:`~stemwatch.store.database.Database`); None opens a facility-wide handle.
    """
    if instrument is not None:
        check_instrument(instrument)
    t = parse_target(target)
    if t.engine == "postgresql":
        db: Database = open_postgres(
            t, readonly=readonly, busy_timeout_s=busy_timeout_s, instrument=instrument
        )
    else:
        p = sqlite_path(t)
        if readonly:
            db, _ = open_sqlite(
                p, readonly=True, busy_timeout_s=busy_timeout_s, instrument=instrument
            )
        else:  # daemons starting together on a new file: a lock while creating it is retried
            db = _retry(lambda: _open_sqlite_writable(p, busy_timeout_s, instrument), str(p))
    if instrument is not None and not readonly:
        _warn_if_a_stranger(db, instrument)
    return db


def _open_sqlite_writable(p: Path, busy_timeout_s: float, instrument: str | None) -> Database:
    db, conn = open_sqlite(p, readonly=False, busy_timeout_s=busy_timeout_s, instrument=instrument)
    try:
        migrate_file(conn, str(p))
    except BaseException:
        db.close()
        raise
    return db


def _warn_if_a_stranger(db: Database, instrument: str) -> None:
    """A daemon whose instrument has no images in a database where others do: say so (a
    renamed host or a new --instrument starts over; the old name continues the records)."""
    if db.row("SELECT 1 FROM images WHERE instrument = ? LIMIT 1", (instrument,)) is not None:
        return
    others = [
        f"{r[0] or '(unnamed)'} ({r[1]} images)"
        for r in db.rows(
            "SELECT instrument, count(*) FROM images GROUP BY instrument ORDER BY instrument"
        )
    ]
    if others:
        log.warning(
            "%s: instrument %r has no images here yet; %s. If this daemon continues one of "
            "them, pass its name with --instrument (else its images are analysed again)",
            db.source,
            instrument,
            ", ".join(others[:5]),
        )


def change_stamp(
    target: str | os.PathLike[str], *, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> tuple[object, ...]:
    """A value that changes whenever anything is committed to the database at ``target``, for
    readers that cache (the dashboard): a SQLite file's and its write-ahead log's
    (mtime_ns, size), read without opening it (None for a missing file); a PostgreSQL
    server's write-ahead-log position (:class:`StoreError` where it cannot be read)."""
    t = parse_target(target)
    if t.engine == "postgresql":
        return ("postgresql", wal_position(t, busy_timeout_s=busy_timeout_s))
    path = os.fspath(sqlite_path(t))
    out: list[tuple[int, int] | None] = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(path + suffix)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size))
    return tuple(out)

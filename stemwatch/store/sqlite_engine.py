"""SQLite: the embedded default (one file beside the daemon, nothing to set up).

Everything SQLite-specific lives here: WAL mode, ``busy_timeout``, the ``mode=ro`` URI of
read-only opens, ``BEGIN IMMEDIATE`` write transactions, ``PRAGMA user_version`` migrations and
the translation of SQLite's errors into :class:`StoreError` with the file's name and the fix.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sqlite3
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from stemwatch.store.database import Database, Params
from stemwatch.store.errors import StoreBusyError, StoreError, StoreMissingError
from stemwatch.store.schema import MIGRATIONS, SCHEMA_VERSION, check_not_newer, check_readable

log = logging.getLogger(__name__)


class SqliteDatabase(Database):
    engine = "sqlite"

    def __init__(
        self, conn: sqlite3.Connection, source: str, *, readonly: bool, instrument: str | None
    ) -> None:
        super().__init__(source, readonly=readonly, instrument=instrument)
        self._conn = conn

    @property
    def local_path(self) -> Path:
        return Path(self.source)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def _execute(self, sql: str, params: Params) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate(exc, self.source) from exc

    def _executemany(self, sql: str, seq: Sequence[Params]) -> None:
        try:
            self._conn.executemany(sql, seq)
        except sqlite3.Error as exc:
            raise translate(exc, self.source) from exc

    def _begin_write(self) -> None:
        self._execute("BEGIN IMMEDIATE", ())  # the write lock up front: no upgrade deadlocks

    def _begin_snapshot(self) -> None:
        self._execute("BEGIN", ())

    def _commit(self) -> None:
        self._execute("COMMIT", ())

    def _rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    def _close(self) -> None:
        self._conn.close()


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def translate(exc: sqlite3.Error, source: str) -> StoreError:
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
# Schema version and migrations
# --------------------------------------------------------------------------------------------


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the file (``PRAGMA user_version``)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one (split where SQLite says a
    statement is complete, so a ``;`` inside a string literal stays put)."""
    out, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                out.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \n\t;"):
        out.append(buffer.strip())
    return out


def migrate(conn: sqlite3.Connection, source: str = "database") -> int:
    """Apply the pending migrations in order; return the resulting version.

    Each runs with the version bump in one ``BEGIN IMMEDIATE`` transaction that reads the
    version first, so daemons starting together on a new file migrate it once (the others
    wait for the write lock, then find it done). Foreign keys are off meanwhile (a table
    rebuild drops a table others refer to) and checked before each commit.
    """
    check_not_newer(schema_version(conn), source)
    if schema_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it first
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = schema_version(conn)
                check_not_newer(version, source)
                if version == SCHEMA_VERSION:
                    conn.execute("COMMIT")
                    return version
                log.info("%s: migrating schema v%d -> v%d", source, version, version + 1)
                for statement in statements(MIGRATIONS[version].sqlite):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(
                        f"{source}: migration to v{version + 1} would break {len(broken)} "
                        f"references (first: {tuple(broken[0])}); the file was left at "
                        f"v{version}"
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


# --------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------


def open_sqlite(
    p: Path, *, readonly: bool, busy_timeout_s: float, instrument: str | None
) -> tuple[SqliteDatabase, sqlite3.Connection]:
    """Open the file (creating and migrating it for writing); the handle and its connection."""
    if readonly:
        conn = _open_readonly(p, busy_timeout_s)
        return SqliteDatabase(conn, str(p.resolve()), readonly=True, instrument=instrument), conn
    conn = _open_writable(p, busy_timeout_s)
    return SqliteDatabase(conn, str(p), readonly=False, instrument=instrument), conn


def _open_writable(p: Path, busy_timeout_s: float) -> sqlite3.Connection:
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
        if _is_locked(exc):  # another daemon is creating the file right now: retried
            raise translate(exc, str(p)) from exc
        raise StoreError(f"{p}: cannot open as SQLite database ({exc}); check the path") from None
    if str(mode).lower() != "wal":
        log.warning(
            "%s: WAL mode unavailable (journal_mode=%s); is it on a network share?", p, mode
        )
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def migrate_file(conn: sqlite3.Connection, source: str) -> int:
    """:func:`migrate`, with SQLite's lock and read-only errors as :class:`StoreError`; other
    SQLite errors become one naming the file (is it another program's database?)."""
    try:
        return migrate(conn, source)
    except sqlite3.OperationalError as exc:
        if _is_locked(exc) or "readonly" in str(exc).lower():
            raise translate(exc, source) from exc
        raise StoreError(
            f"{source}: cannot create or migrate the stemwatch schema ({exc}); is this another "
            "program's database? Point `database:` / --db at a new file"
        ) from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{source}: cannot create or migrate the stemwatch schema ({exc}); is this another "
            "program's database? Point `database:` / --db at a new file"
        ) from None


def _open_readonly(p: Path, busy_timeout_s: float) -> sqlite3.Connection:
    if not p.is_file():
        raise StoreMissingError(
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
    try:
        check_readable(version, str(p))
    except StoreError:
        conn.close()
        raise
    return conn


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
    if not _has_math_functions():  # the store's SQL uses floor(), as PostgreSQL has it
        conn.create_function("floor", 1, _floor, deterministic=True)
    return conn


@functools.cache
def _has_math_functions() -> bool:
    """Whether this SQLite library has its math functions (built with them since 3.35, but
    not everywhere)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT floor(1.5)")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return True


def _floor(x: float | None) -> float | None:
    return None if x is None else float(math.floor(x))

"""PostgreSQL: the facility store (several daemons, one dashboard, one database server).

Through psycopg 3 (the optional ``postgres`` extra, imported only when a ``postgresql://`` URL
is opened). Everything PostgreSQL-specific lives here:

- placeholders: the store writes ``?``; they become ``%s`` (and a literal ``%`` becomes ``%%``);
- transactions: the connection is in autocommit and the store's transactions are explicit:
  writes run at READ COMMITTED (PostgreSQL's default; writers of different instruments touch
  different rows), and the few read-then-write steps that must not interleave (one well's
  series and onset against a reset, one image file's versions) take a transaction-scoped
  advisory lock on their key (:meth:`PostgresDatabase.lock`); reads that must agree run in one
  REPEATABLE READ, READ ONLY transaction (one snapshot);
- read-only opens set ``default_transaction_read_only`` (the dashboard cannot write by accident);
- ``lock_timeout`` plays SQLite's ``busy_timeout``: a lock held too long, a serialisation
  failure or a deadlock is a :class:`StoreBusyError`, and writes retry as a whole;
- a connection the server dropped (a restart) is reopened before the next statement outside a
  transaction, so a daemon outlives a database restart;
- migrations: the version lives in the table ``stemwatch_schema``; daemons starting together
  take a session advisory lock around "read the version, apply what is missing", so exactly
  one of them migrates and the others then find the schema current; the pending versions run
  in one transaction (PostgreSQL's DDL is transactional), so readers never see one in between.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from stemwatch.store.database import Database, Params
from stemwatch.store.errors import StoreBusyError, StoreError, StoreMissingError
from stemwatch.store.schema import MIGRATIONS, SCHEMA_VERSION, check_not_newer, check_readable
from stemwatch.store.target import Target

log = logging.getLogger(__name__)

VERSION_TABLE = "stemwatch_schema"
MIGRATION_LOCK = "stemwatch: schema migration"
MIGRATION_WAIT_S = 300.0  # another daemon may be migrating a large database
CONNECT_TIMEOUT_S = 10


class Row:
    """A result row: indexable by position (``r[0]``) and by column name (``r["id"]``)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))})"


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = [c.name for c in cursor.description or ()]
    index = {n: i for i, n in enumerate(names)}
    return lambda values: Row(values, index)


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (literal ``%`` doubled)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class PostgresDatabase(Database):
    engine = "postgresql"

    def __init__(
        self,
        target: Target,
        *,
        readonly: bool,
        instrument: str | None,
        busy_timeout_s: float,
    ) -> None:
        super().__init__(target.display, readonly=readonly, instrument=instrument)
        self._target = target
        self._busy_timeout_s = busy_timeout_s
        self._closed = False
        self._conn: Any = connect(target, readonly=readonly, busy_timeout_s=busy_timeout_s)

    # -- connection ---------------------------------------------------------------------------

    def _alive(self) -> Any:
        """The connection; one dropped by the server is reopened (outside a transaction)."""
        if self._closed:
            raise StoreError(f"{self.source}: the database handle was closed")
        if self._conn.closed or self._conn.broken:
            log.warning("%s: connection lost; reconnecting", self.source)
            with contextlib.suppress(Exception):  # already gone
                self._conn.close()
            self._conn = connect(
                self._target, readonly=self.readonly, busy_timeout_s=self._busy_timeout_s
            )
        return self._conn

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        if self._conn.closed or self._conn.broken:  # a dropped connection holds nothing
            return False
        return bool(self._conn.info.transaction_status != TransactionStatus.IDLE)

    def _execute(self, sql: str, params: Params) -> Any:
        import psycopg

        conn = self._conn if self.in_transaction else self._alive()
        try:
            if params:
                return conn.execute(to_postgres(sql), tuple(params))
            return conn.execute(sql)
        except psycopg.Error as exc:
            raise translate(exc, self.source) from exc

    def _executemany(self, sql: str, seq: Sequence[Params]) -> None:
        import psycopg

        if not seq:
            return
        conn = self._conn if self.in_transaction else self._alive()
        try:
            with conn.cursor() as cur:
                cur.executemany(to_postgres(sql), [tuple(p) for p in seq])
        except psycopg.Error as exc:
            raise translate(exc, self.source) from exc

    def lock(self, *key: str) -> None:
        assert self.in_transaction, "Database.lock() belongs inside a write transaction"
        self._execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ("\x1f".join(key),))

    def _begin_write(self) -> None:
        self._execute("BEGIN", ())

    def _begin_snapshot(self) -> None:
        self._execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", ())

    def _commit(self) -> None:
        self._execute("COMMIT", ())

    def _rollback(self) -> None:
        if self._conn.closed:
            return
        try:
            self._conn.execute("ROLLBACK")
        except Exception as exc:  # the connection broke mid-transaction: nothing to roll back
            log.debug("%s: rollback failed (%s)", self.source, exc)

    def _close(self) -> None:
        self._closed = True
        self._conn.close()


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def translate(exc: Exception, source: str) -> StoreError:
    from psycopg import OperationalError, errors

    what = _first_line(exc)
    if isinstance(exc, errors.LockNotAvailable | errors.SerializationFailure):
        return StoreBusyError(
            f"{source}: database is locked ({what}); is another writer holding a long transaction?"
        )
    if isinstance(exc, errors.DeadlockDetected):
        return StoreBusyError(f"{source}: deadlock with another writer ({what}); retrying helps")
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return StoreError(
            f"{source}: attempt to write through a read-only connection (the dashboard and "
            "`stemwatch status` open the database read-only on purpose)"
        )
    if isinstance(exc, errors.InsufficientPrivilege):
        return StoreError(
            f"{source}: {what}; grant the daemon's role the rights on the stemwatch tables "
            "(or let it own the database: createdb -O ROLE DBNAME)"
        )
    if isinstance(exc, OperationalError):  # the connection dropped, the server restarts...
        return StoreBusyError(f"{source}: lost the connection to the server ({what})")
    return StoreError(f"{source}: {what}")


# --------------------------------------------------------------------------------------------
# Connecting, schema version, migrations
# --------------------------------------------------------------------------------------------


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "postgresql:// databases need the PostgreSQL driver: pip install 'stemwatch[postgres]'"
            " (psycopg 3)"
        ) from None
    return psycopg


def connect(target: Target, *, readonly: bool, busy_timeout_s: float) -> Any:
    """A new autocommit connection with the store's settings; StoreError saying what is wrong."""
    psycopg = _driver()
    try:
        conn = psycopg.connect(
            target.location,
            autocommit=True,
            row_factory=_row_factory,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="stemwatch",
        )
    except psycopg.OperationalError as exc:
        what = _first_line(exc)
        if "does not exist" in what and "database" in what:
            raise StoreMissingError(
                f"{target.display}: {what}; create it (e.g. `createdb -O ROLE DBNAME` on the "
                "server) and start the daemon on it"
            ) from None
        raise StoreError(
            f"{target.display}: cannot connect ({what}); is the server running, and are the "
            "host, port, user and database right? (password: PGPASSWORD or ~/.pgpass)"
        ) from None
    try:
        settings = f"SET lock_timeout = {int(busy_timeout_s * 1000)}"
        conn.execute(settings)
        if readonly:
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise translate(exc, target.display) from exc
    return conn


def wal_position(target: Target, *, busy_timeout_s: float) -> str:
    """The server's current write-ahead-log position: it moves with every commit (of any
    database on the server), so a reader that caches on it re-reads after each change. On a
    standby, the position replayed so far."""
    import psycopg

    conn = connect(target, readonly=True, busy_timeout_s=busy_timeout_s)
    try:
        return str(
            conn.execute(
                "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
                "ELSE pg_current_wal_insert_lsn() END"
            ).fetchone()[0]
        )
    except psycopg.Error as exc:
        raise translate(exc, target.display) from exc
    finally:
        conn.close()


def _tables(conn: Any) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        ).fetchall()
    ]


def schema_version(conn: Any) -> int:
    """The version in ``stemwatch_schema``; 0 where the table is absent (a new database)."""
    if VERSION_TABLE not in _tables(conn):
        return 0
    v = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
    return 0 if v is None else int(v[0])


def migrate(conn: Any, source: str) -> int:
    """Create or migrate the schema; one daemon at a time (a session advisory lock)."""
    conn.execute(f"SET lock_timeout = {int(MIGRATION_WAIT_S * 1000)}")
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))
    try:
        tables = _tables(conn)
        if VERSION_TABLE not in tables and tables:
            raise StoreError(
                f"{source}: another program's tables are here ({', '.join(sorted(tables)[:5])}) "
                "and no stemwatch schema; give stemwatch a database of its own "
                "(createdb -O ROLE stemwatch) or an empty schema"
            )
        current = schema_version(conn)
        check_not_newer(current, source)
        if current == SCHEMA_VERSION:
            return current
        # DDL is transactional here: every pending version in one transaction, so readers see
        # the old schema or the new one, never a version in between.
        with conn.transaction():
            if current == 0:
                conn.execute(f"CREATE TABLE {VERSION_TABLE} (version BIGINT NOT NULL)")
                conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (0)")
            for version in range(current, SCHEMA_VERSION):
                log.info("%s: migrating schema v%d -> v%d", source, version, version + 1)
                conn.execute(MIGRATIONS[version].postgres)
                conn.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (version + 1,))
        return schema_version(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))


def open_postgres(
    target: Target, *, readonly: bool, busy_timeout_s: float, instrument: str | None
) -> PostgresDatabase:
    psycopg = _driver()
    db = PostgresDatabase(
        target, readonly=readonly, instrument=instrument, busy_timeout_s=busy_timeout_s
    )
    conn = db._conn
    try:
        if readonly:
            version = schema_version(conn)
            if version == 0:
                raise StoreMissingError(
                    f"{target.display}: no stemwatch schema in this database yet; start the "
                    "daemon (`stemwatch watch --db URL`) to create it, or check the URL"
                )
            check_readable(version, target.display)
        else:
            migrate(conn, target.display)
            conn.execute(f"SET lock_timeout = {int(busy_timeout_s * 1000)}")
    except psycopg.Error as exc:
        db.close()
        raise translate(exc, target.display) from exc
    except BaseException:
        db.close()
        raise
    return db

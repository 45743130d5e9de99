"""The handle callers hold: :class:`Database`, the same for every engine.

Applications get one from :func:`stemwatch.store.open_db`, pass it to the store's functions and
close it; they never see a cursor, a row or an engine error. The store's own modules run
statements through it (``?`` placeholders; each engine translates them). What differs between
SQLite and PostgreSQL (how a write transaction begins, how writers serialise on a key, which
errors mean "busy") lives in the two engine subclasses, :mod:`~stemwatch.store.sqlite_engine` and
:mod:`~stemwatch.store.postgres_engine`.

Threads may share a :class:`Database`: every statement, read or write, takes its lock, so a
thread never sees another thread's transaction half-done, and a write transaction holds the
lock from its ``BEGIN`` to its ``COMMIT``.

Instruments: a database opened *for* an instrument (``open_db(..., instrument="leica-1")``,
what each daemon does) stamps that name on the rows it writes and answers that instrument's
questions ("already recorded?", its heartbeat, its alert conditions). One opened without an
instrument is a facility-wide reader: listings cover every instrument; rows it writes on its
own behalf carry this computer's host name (:func:`~stemwatch.store.target.default_instrument`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from stemwatch.store.target import Engine, default_instrument

Params = Sequence[Any]


class Database:
    """An open stemwatch database. Pass it to the store's functions; close it when done.

    Usable as a context manager (``with store.open_db(target) as db: ...`` closes it).
    """

    engine: ClassVar[Engine]

    def __init__(self, source: str, *, readonly: bool, instrument: str | None) -> None:
        self.source = source  # what messages name: the file, or the URL without password
        self.readonly = readonly
        self.instrument = instrument  # None: a facility-wide handle
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writable"
        who = f", instrument {self.instrument}" if self.instrument else ""
        return f"<stemwatch.store.Database {self.engine} {self.source} ({mode}{who})>"

    @property
    def writer(self) -> str:
        """The instrument name stamped on the rows this handle writes."""
        return self.instrument or default_instrument()

    @property
    def local_path(self) -> Path | None:
        """The database file on this computer (its disk is watched for free space); None for
        a database on a server."""
        return None

    def close(self) -> None:
        with self._lock:
            self._close()

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

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement (``?`` placeholders); engine errors become StoreError."""
        with self._lock:
            return self._execute(sql, params)

    def rows(self, sql: str, params: Params = ()) -> list[Any]:
        """Every row; each indexable by position and by column name."""
        with self._lock:
            return list(self._execute(sql, params).fetchall())

    def row(self, sql: str, params: Params = ()) -> Any | None:
        """The first row (the statement is run to its end: an INSERT ... RETURNING too)."""
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Params = ()) -> Any:
        r = self.row(sql, params)
        return None if r is None else r[0]

    def executemany(self, sql: str, seq: Sequence[Params]) -> None:
        with self._lock:
            self._executemany(sql, seq)

    def lock(self, *key: str) -> None:
        """Inside a write transaction: wait until no other writer holds ``key``, then hold it
        to the end of the transaction (read-then-write steps of one well, one image file).

        SQLite needs nothing: its write transactions already exclude each other."""

    # -- the engine's part -------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def _execute(self, sql: str, params: Params) -> Any:
        raise NotImplementedError

    def _executemany(self, sql: str, seq: Sequence[Params]) -> None:
        raise NotImplementedError

    def _begin_write(self) -> None:
        raise NotImplementedError

    def _begin_snapshot(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

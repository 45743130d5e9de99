"""Where the database is (a SQLite file or a PostgreSQL URL) and who writes to it (an instrument).

``database:`` in the monitor configuration and ``--db`` on the command line take either a file
path (SQLite, the embedded default) or a ``postgresql://`` URL (the facility store). This module
tells them apart, validates them and names them in messages without a password. It also owns
the rule for instrument names: every daemon writes its rows under one, by default this
computer's host name.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stemwatch.store.errors import StoreError

Engine = Literal["sqlite", "postgresql"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_HELP = "postgresql://USER@HOST[:PORT]/DBNAME (password in PGPASSWORD or ~/.pgpass)"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")

MAX_INSTRUMENT_LENGTH = 64


@dataclass(frozen=True)
class Target:
    """A database to open: its engine and its location (a file path or a libpq URL)."""

    engine: Engine
    location: str

    @property
    def display(self) -> str:
        """What messages name: the path, or the URL without its password."""
        return redact(self.location) if self.engine == "postgresql" else self.location

    def __str__(self) -> str:
        return self.display


def parse_target(value: str | os.PathLike[str]) -> Target:
    """A file path (SQLite) or a ``postgresql://`` URL; :class:`StoreError` for anything else."""
    text = os.fspath(value).strip()
    if not text:
        raise StoreError(
            "no database given: pass a file path (SQLite, e.g. stemwatch.db) or " + URL_HELP
        )
    m = _SCHEME.match(text)
    if m is None:
        return Target("sqlite", text)
    scheme = m.group(1).lower()
    if scheme not in POSTGRES_SCHEMES:
        raise StoreError(
            f"{redact(text)}: unsupported database URL scheme {scheme!r}; use a file path "
            f"(SQLite) or {URL_HELP}"
        )
    parts = urllib.parse.urlsplit(text)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise StoreError(
            f"{redact(text)}: the port is not a number 1-65535; use {URL_HELP}"
        ) from None
    if parts.path.count("/") > 1:
        raise StoreError(f"{redact(text)}: {parts.path!r} is not a database name; use {URL_HELP}")
    return Target("postgresql", text)


def redact(url: str) -> str:
    """``url`` without a password (in the user part or as a ``password=`` parameter)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://…"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}"
    query = urllib.parse.urlencode(
        [
            (k, "***" if k.lower() == "password" else v)
            for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/*",
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def sqlite_path(target: Target) -> Path:
    return Path(target.location).expanduser()


# -- instruments --------------------------------------------------------------------------------


def default_instrument() -> str:
    """This computer's host name: the instrument a daemon writes as unless told otherwise."""
    return socket.gethostname() or "localhost"


def check_instrument(name: str) -> str:
    """``name`` if it can name an instrument, else :class:`StoreError` saying why."""
    if not name or name != name.strip():
        raise StoreError(
            f"instrument name {name!r}: must be non-empty, without leading or trailing spaces "
            "(e.g. `leica-sp8` or `incucyte-2`)"
        )
    if len(name) > MAX_INSTRUMENT_LENGTH:
        raise StoreError(
            f"instrument name {name[:20]!r}...: longer than {MAX_INSTRUMENT_LENGTH} characters; "
            "choose a short name (e.g. `leica-sp8`)"
        )
    if any(not c.isprintable() for c in name):
        raise StoreError(
            f"instrument name {name!r}: contains control characters; use letters, digits, "
            "`-`, `_` or `.`"
        )
    return name

"""A real PostgreSQL server for the tests, from the distribution's packages, in a temp folder.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl start`` on a fresh data folder, listening
on a Unix socket in that folder only (no TCP port to collide with another test run). The server
refuses to run as root, so as root the folder is handed to an unprivileged user (``postgres``,
which Debian's package creates, else ``nobody``) and the binaries run as that user. Each test
gets a database of its own (:meth:`PostgresServer.new_database`). ``stop()`` stops the server
and removes the folder.

Where the binaries are absent, :func:`find_bindir` returns None and the fixtures skip with the
reason (``scripts/ensure-postgres.sh``, called by ``make install-dev``, installs them).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "stemwatch_test"


def find_bindir() -> Path | None:
    """The folder of ``initdb``/``pg_ctl``: Debian's /usr/lib/postgresql/N/bin, else PATH."""
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when not root; else the user the server runs as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither user postgres nor nobody exists")


@dataclass
class PostgresServer:
    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swpg-")))
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _unprivileged_user()
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            argv,
            check=check,
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "TZ": "UTC"},
            **kwargs,
        )

    def start(self) -> PostgresServer:
        user = _unprivileged_user()
        if user is not None:
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
            # No TCP (listen_addresses empty), the socket in our folder, durability off (tests).
            opts = (
                f"-c listen_addresses='' -k {self.socket_dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                opts,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            )
        except subprocess.CalledProcessError as exc:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.cleanup()
            raise RuntimeError(
                f"PostgreSQL did not start: {' '.join(exc.cmd)}\n{exc.stdout}{exc.stderr}{tail}"
            ) from None
        return self

    def url(self, database: str = "postgres") -> str:
        """A libpq URL over the Unix socket (the socket folder as the ``host`` parameter)."""
        host = urllib.parse.quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@{host}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = self._run(
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        )
        return out.stdout.strip()

    def new_database(self, prefix: str = "t") -> str:
        """A new, empty database; its URL."""
        name = f"{prefix}{next(self._names)}_{os.getpid()}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "stop",
                check=False,
            )
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

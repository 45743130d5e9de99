"""`stemwatch dashboard`: Open the Streamlit dashboard on a results database.

Runs ``streamlit run dashboard/app.py -- --db PATH|URL`` headless (no browser is opened, no
usage statistics are sent) through :mod:`dashboard.serve`, which imports the page's modules
before the server reports ready, replacing this process so that stopping it stops the server.

The database is fixed here, on the command line (a SQLite file, or a facility's
``postgresql://`` URL: every instrument's plates): a visitor of the page cannot open another.
It must be a stemwatch database (checked read-only before serving; a missing file, or a
server database without the schema yet, is an error unless ``--wait`` says the daemon will
create it). The server listens on 127.0.0.1 unless ``--address`` says otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import socket
import sys
from pathlib import Path

from stemwatch.core.errors import StemwatchError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8501


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="Open the Streamlit dashboard on a results database",
        description=(
            "Serve the Streamlit dashboard (plate view, per-well probability over time, "
            "onsets, alerts) for the database the `stemwatch watch` daemon writes."
        ),
    )
    p.add_argument(
        "--db",
        default=os.environ.get("STEMWATCH_DB"),
        required="STEMWATCH_DB" not in os.environ,
        metavar="PATH|URL",
        help="the database `stemwatch watch` writes: a SQLite file, or a facility's "
        "postgresql://USER@HOST/DBNAME (every instrument's plates); default $STEMWATCH_DB",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port to serve on (default: {DEFAULT_PORT})",
    )
    p.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 serves the lab network, without a password "
        "(default: 127.0.0.1, this computer only)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="serve even if the database does not exist yet, and show it once the daemon "
        "(`stemwatch watch --db ...`) has created it",
    )
    p.set_defaults(func=run)


def app_path() -> Path:
    """The Streamlit script of the dashboard package (located without running it)."""
    spec = importlib.util.find_spec("dashboard.app")
    if spec is None or spec.origin is None:
        raise StemwatchError(
            "the dashboard package is not installed; run `pip install -e .` in the repository"
        )
    return Path(spec.origin).resolve()


def streamlit_argv(db: Path | str, *, port: int, address: str) -> list[str]:
    """The command line that serves the dashboard headless on ``address:port`` for ``db``:
    Streamlit's ``run``, through :mod:`dashboard.serve`, which imports the page's modules
    before the server reports ready (the first visitor does not wait for them)."""
    return [
        sys.executable,
        "-m",
        "dashboard.serve",
        "run",
        str(app_path()),
        "--server.headless=true",
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=minimal",
        "--theme.base=light",
        "--",
        "--db",
        str(db),
    ]


def check_database(db: Path | str, *, wait: bool = False) -> None:
    """Raise :class:`StemwatchError` unless ``db`` (a SQLite file or a ``postgresql://`` URL)
    is a stemwatch database this version can read (opened read-only, nothing written), or is
    missing and ``wait`` allows that: a file whose folder exists, a database on a server that
    answers but holds no stemwatch schema yet (the daemon creates both)."""
    from stemwatch import store

    try:
        target = store.parse_target(db)
    except store.StoreError as exc:
        raise StemwatchError(f"--db {exc}") from None
    if target.engine == "sqlite":
        path = Path(target.location)
        if not path.exists():
            if wait and path.parent.is_dir():
                return
            if wait:
                raise StemwatchError(
                    f"--db {path}: folder {path.parent} does not exist; create it or pass the "
                    "right path"
                )
            raise StemwatchError(
                f"--db {path}: no such database; start the daemon first (`stemwatch watch "
                f"FOLDER --db {path}`), pass --wait to serve until it has created the file, or "
                "check the path"
            )
    try:
        with store.open_db(target.location, readonly=True):
            pass
    except store.StoreMissingError as exc:  # a server's database without the schema yet
        if not wait:
            raise StemwatchError(
                f"--db {exc} (or pass --wait to serve until the daemon has created it)"
            ) from None
    except store.StoreError as exc:
        raise StemwatchError(f"--db {exc}") from None


def check_args(db: Path | None, port: int, address: str) -> None:
    """Raise :class:`StemwatchError` for a database path or port that cannot work (``db``
    None: a database on a server, checked by :func:`check_database`)."""
    if db is not None and db.is_dir():
        raise StemwatchError(
            f"--db {db}: is a folder; pass the SQLite database file that `stemwatch watch` writes"
        )
    if not 1 <= port <= 65535:
        raise StemwatchError(f"--port {port}: not a TCP port; use a number from 1024 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the server binds: a port whose last server just stopped (its connections in
        # TIME_WAIT) is free, one a server listens on is not
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            raise StemwatchError(
                f"--port {port}: cannot listen on {address}:{port} ({exc.strerror}); "
                "choose a free port with --port"
            ) from None


def run(args: argparse.Namespace) -> int:
    from stemwatch import store

    try:
        target = store.parse_target(args.db)
    except store.StoreError as exc:
        raise StemwatchError(f"--db {exc}") from None
    db: Path | str = target.location
    if target.engine == "sqlite":
        db = Path(target.location).expanduser().resolve()
        check_args(db, args.port, args.address)
    else:
        check_args(None, args.port, args.address)
    check_database(db, wait=args.wait)
    if isinstance(db, Path) and not db.exists():
        log.warning(
            "%s does not exist yet; the dashboard will wait for the daemon to create it", db
        )
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "serving on %s: anyone who can reach this computer on port %d sees the dashboard "
            "and can acknowledge alerts (there is no password); put it behind your lab's "
            "proxy with authentication, or keep the default 127.0.0.1",
            args.address,
            args.port,
        )
    argv = streamlit_argv(db, port=args.port, address=args.address)
    log.info("dashboard for %s on http://%s:%d", target.display, args.address, args.port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # pragma: no cover  (execv does not return)

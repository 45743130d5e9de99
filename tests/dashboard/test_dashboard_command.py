"""`stemwatch dashboard`: its Streamlit command line and its argument checks."""

from __future__ import annotations

import socket
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
from pgserver import PostgresServer

from stemwatch import store
from stemwatch.cli import build_parser, main
from stemwatch.commands import dashboard as command
from stemwatch.core.errors import StemwatchError


def test_streamlit_command_line_is_headless_and_private(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    argv = command.streamlit_argv(db, port=8642, address="127.0.0.1")
    assert argv[:4] == [sys.executable, "-m", "dashboard.serve", "run"]
    assert Path(argv[4]) == Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    assert Path(argv[4]).is_file()
    for option in (
        "--server.headless=true",
        "--server.port=8642",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
    ):
        assert option in argv
    assert argv[-3:] == ["--", "--db", str(db)]


def test_database_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.shell import database_argument

    monkeypatch.setenv("STEMWATCH_DB", "/env.db")
    assert database_argument(["--db", "/cli.db"]) == "/cli.db"
    assert database_argument(["-x", "tests/dashboard"]) == "/env.db"
    monkeypatch.delenv("STEMWATCH_DB")
    assert database_argument([]) == ""


def test_folder_as_database_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", "--db", str(tmp_path), "--port", "8643"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path) in line and "is a folder" in line


def test_busy_port_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--db", str(tmp_path / "r.db"), "--port", str(port)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"--port {port}" in line and "choose a free port" in line


def test_a_port_whose_server_just_stopped_is_free() -> None:
    """Restarting the dashboard on its port at once: the stopped server's connections wait
    in TIME_WAIT for a minute, which Streamlit's own bind allows, so the check must too."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server side closes first: its address goes to TIME_WAIT
            client.recv(1)
    command.check_args(None, port, "127.0.0.1")


def test_port_out_of_range_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--db", str(tmp_path / "r.db"), "--port", "70000"]) == 2
    assert "not a TCP port" in capsys.readouterr().err


def test_a_file_that_is_not_a_stemwatch_database_is_refused_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (issue 13, item 10): `stemwatch dashboard` served any file and exited 0."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 100)
    assert main(["dashboard", "--db", str(notes), "--port", "8644"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(notes) in line and "stemwatch database" in line
    foreign = tmp_path / "other.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE secrets (x)")
    assert main(["dashboard", "--db", str(foreign), "--port", "8644"]) == 2
    assert str(foreign) in capsys.readouterr().err


def test_a_missing_database_is_an_error_unless_told_to_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "later.db"
    assert main(["dashboard", "--db", str(missing), "--port", "8645"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(missing) in line and "stemwatch watch" in line and "--wait" in line
    command.check_database(missing, wait=True)  # the daemon will create it: fine
    with pytest.raises(StemwatchError, match="does not exist"):
        command.check_database(tmp_path / "no-folder" / "x.db", wait=True)
    assert not missing.exists()


def test_without_db_the_command_says_it_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dashboard"])
    assert exit_.value.code == 2
    assert "--db" in capsys.readouterr().err


def test_serves_only_this_computer_by_default() -> None:
    args = build_parser().parse_args(["dashboard", "--db", "x.db"])
    assert args.address == "127.0.0.1"


def test_a_postgres_url_is_checked_like_a_file(
    postgres_server: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A facility's database: refused until a daemon created the schema, unless --wait; a
    server that cannot be reached is refused either way (a wrong URL, not a first boot)."""
    url = postgres_server.new_database()
    assert main(["dashboard", "--db", url, "--port", "8646"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "no stemwatch schema" in line and "--wait" in line
    with pytest.raises(StemwatchError, match=r"no stemwatch schema.*--wait"):
        command.check_database(url)
    command.check_database(url, wait=True)  # the daemon will create the schema
    store.open_db(url).close()  # ...as it does when it starts
    command.check_database(url)
    down = f"postgresql://nobody@{str(tmp_path).replace('/', '%2F')}/stemwatch"
    with pytest.raises(StemwatchError, match="cannot connect"):
        command.check_database(down, wait=True)

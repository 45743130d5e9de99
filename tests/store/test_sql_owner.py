"""The store is the only module that speaks SQL: no statement, no cursor, no sqlite3 elsewhere.

Scans the source of every package (not the tests, which may inspect a database file) with
``ast``: calls of ``.execute(``/``.executemany(``/``.executescript(``, ``import sqlite3``, and
string literals (f-strings included, docstrings excluded) that hold an SQL statement.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stemwatch", "monitor", "trainer", "dashboard")
STORE = ROOT / "stemwatch" / "store"

SQL_STATEMENT = re.compile(
    r"\bSELECT\b.*\bFROM\b"
    r"|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\b(?:CREATE|DROP|ALTER)\s+(?:TABLE|INDEX|VIEW|TRIGGER)\b"
    r"|\bPRAGMA\s+\w+",
    re.DOTALL,
)
DB_CALLS = {"execute", "executemany", "executescript"}
DB_MODULES = {"sqlite3", "sqlite_utils", "psycopg", "psycopg2", "sqlalchemy"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _text(node: ast.AST) -> str | None:
    """The literal text of a string constant or f-string (each placeholder as ``x``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
            for v in node.values
        )
    return None


def sql_in(source: str, filename: str = "<string>") -> list[str]:
    """Every place in ``source`` that speaks SQL, as ``file:line: what``."""
    tree = ast.parse(source, filename)
    docs = _docstrings(tree)
    found = []
    inside_fstring: set[int] = set()
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.JoinedStr):
            inside_fstring.update(id(v) for v in node.values)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in DB_CALLS
        ):
            found.append(f"{where}: .{node.func.attr}(...) call")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            for name in names:
                if name.split(".")[0] in DB_MODULES:
                    found.append(f"{where}: imports {name}")
        elif id(node) not in docs and id(node) not in inside_fstring:
            text = _text(node)
            if text is not None and SQL_STATEMENT.search(text):
                found.append(f"{where}: SQL statement {text.strip()[:60]!r}")
    return found


def package_sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return [p for p in files if STORE not in p.parents]


def test_no_sql_outside_the_store() -> None:
    sources = package_sources()
    assert len(sources) > 50  # the scan really covers the tree
    found = [
        hit
        for path in sources
        for hit in sql_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == [], "SQL belongs in stemwatch/store (add a named function there):\n" + (
        "\n".join(found)
    )


def test_the_store_itself_is_seen_as_sql() -> None:
    """The scanner finds the store's own SQL (so it would find it anywhere else)."""
    hits = [
        hit
        for path in sorted(STORE.glob("*.py"))
        for hit in sql_in(path.read_text(encoding="utf-8"), path.name)
    ]
    assert any("images.py" in h and "SQL statement" in h for h in hits)
    assert any("sqlite_engine.py" in h and "imports sqlite3" in h for h in hits)
    assert any("postgres_engine.py" in h and "imports psycopg" in h for h in hits)


@pytest.mark.parametrize(
    "planted",
    [
        'conn.execute("select 1")',
        "db.executemany(sql, rows)",
        "c.executescript(script)",
        'q = "SELECT path FROM images WHERE id = ?"',
        'q = ("SELECT count(*) "\n     "FROM images")',
        'q = f"UPDATE {table} SET status = ?"',
        'q = "INSERT OR IGNORE INTO images (path) VALUES (?)"',
        'q = "DELETE FROM well_series"',
        'q = "CREATE INDEX x ON images(path)"',
        "import sqlite3",
        "from sqlite3 import connect",
        "import psycopg",
        "from psycopg import errors",
        'x = "PRAGMA user_version"',
    ],
)
def test_scanner_catches_planted_sql(planted: str) -> None:
    assert sql_in(f"def f(conn, db, c, sql, rows, script, table):\n    {planted}\n"), planted


@pytest.mark.parametrize(
    "innocent",
    [
        '"""Docstring: SELECT path FROM images is how the store reads it."""',
        'msg = "select the well from the list, then update the plate"',
        'label = "Images analysed"',
        "executor.submit(job)",
    ],
)
def test_scanner_leaves_prose_alone(innocent: str) -> None:
    assert sql_in(innocent + "\n") == []

"""The house reads top-down: no import cycles, and no import against the floors.

The import graph is built from source with :mod:`ast` (module-level imports, imports inside
functions and ``TYPE_CHECKING`` blocks alike), so a cycle hidden behind a function-level import
fails here even though Python would run it. The floors (issue 12)::

    stemwatch.cli / stemwatch.commands / stemwatch.demo / stemwatch.evaluation   (top)
    dashboard   monitor   trainer   stemwatch.synth      (core and store only, not each other)
    stemwatch.store                                      (core only)
    stemwatch.core                                       (nothing above it)

Importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``; those implicit edges are
left out (the package ``__init__`` files are docstrings, apart from the command registry).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("stemwatch", "monitor", "trainer", "dashboard")

CORE, STORE, MIDDLE, TOP = 0, 1, 2, 3
FLOOR_NAMES = {CORE: "core", STORE: "store", MIDDLE: "component", TOP: "top"}
# Edges the floors forbid that another branch of issue 12 is removing right now; each names
# the branch. Empty once those land (test_known_exceptions_still_exist then says so).
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} ({self.where})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            mods[module_name(path)] = path
    return mods


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to: itself, else its closest enclosing module."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                yield Edge(module, resolved, where)


def import_graph() -> list[Edge]:
    modules = project_modules()
    return [e for mod, path in modules.items() for e in imports_of(mod, path, modules)]


def floor(module: str) -> int:
    top = ("stemwatch.cli", "stemwatch.commands", "stemwatch.demo", "stemwatch.evaluation")
    if module == "stemwatch.__main__" or any(
        module == t or module.startswith(t + ".") for t in top
    ):
        return TOP
    if module == "stemwatch" or module.startswith("stemwatch.core"):
        return CORE
    if module.startswith("stemwatch.store"):
        return STORE
    if module.split(".", maxsplit=1)[0] in ("monitor", "trainer", "dashboard") or module.startswith(
        "stemwatch.synth"
    ):
        return MIDDLE
    raise AssertionError(f"{module}: on no floor; place it in tests/test_layers.py floor()")


def component(module: str) -> str:
    """The component of a middle-floor module: monitor, trainer, dashboard or stemwatch.synth."""
    return (
        "stemwatch.synth"
        if module.startswith("stemwatch.synth")
        else module.split(".", maxsplit=1)[0]
    )


def against_the_floors(edge: Edge) -> str | None:
    """Why ``edge`` breaks the floors, or None when it is allowed."""
    src, dst = floor(edge.source), floor(edge.target)
    if src == TOP:
        return None
    if dst > src:
        return f"{FLOOR_NAMES[src]} imports the {FLOOR_NAMES[dst]} floor above it"
    if src == dst == STORE or src == dst == CORE:
        return None
    if src == dst == MIDDLE and component(edge.source) != component(edge.target):
        return f"{component(edge.source)} imports {component(edge.target)} (a sibling)"
    return None


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_graph()


def test_the_graph_sees_function_level_imports(edges: list[Edge]) -> None:
    """The parser must see an import inside a function (the demo imports the daemon there)."""
    found = {(e.source, e.target) for e in edges}
    assert ("stemwatch.demo", "monitor.daemon") in found
    assert ("stemwatch.cli", "stemwatch.commands") in found


def test_no_import_cycles(edges: list[Edge]) -> None:
    found = cycles(edges)
    detail = []
    for comp in found:
        members = set(comp)
        detail.append(
            "cycle: "
            + ", ".join(str(e) for e in edges if e.source in members and e.target in members)
        )
    assert not found, "\n".join(detail)


def test_imports_follow_the_floors(edges: list[Edge]) -> None:
    bad = []
    for e in edges:
        why = against_the_floors(e)
        if why is not None and (e.source, e.target) not in KNOWN_EXCEPTIONS:
            bad.append(f"{e}: {why}")
    assert not bad, "\n".join(bad)


def test_known_exceptions_still_exist(edges: list[Edge]) -> None:
    """An exception whose import is gone must be removed from the list."""
    found = {(e.source, e.target) for e in edges}
    assert not KNOWN_EXCEPTIONS - found, KNOWN_EXCEPTIONS - found


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("stemwatch.core.imaging", "stemwatch.store", False),
        ("stemwatch.store", "stemwatch.core.errors", True),
        ("stemwatch.store", "monitor.onset", False),
        ("monitor.pipeline", "stemwatch.store", True),
        ("dashboard.data", "monitor.onset", False),
        ("trainer.export", "stemwatch.synth.plate", False),
        ("trainer.distributed", "stemwatch.commands.train", False),
        ("stemwatch.demo", "trainer.train", True),
        ("stemwatch.evaluation.onset_eval", "monitor.onset", True),
    ],
)
def test_floor_rule(source: str, target: str, allowed: bool) -> None:
    assert (against_the_floors(Edge(source, target, "x")) is None) is allowed


def test_cycle_finder_finds_a_hidden_cycle() -> None:
    edges = [Edge("a", "b", "x"), Edge("b", "c", "x"), Edge("c", "a", "x"), Edge("c", "d", "x")]
    assert cycles(edges) == [["a", "b", "c"]]

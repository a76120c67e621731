"""The engine is pure (DESIGN.md, the one-way-house issue): nothing in ``matchers/`` imports the
front door or the ground floor of ``dumpwatch/``, nor the crawler or the alerts; it is handed its
limits, the key and the indexes; and no two engine modules import each other, directly or in a
circle. Read from the source (every import, also inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import matchers

ENGINE = Path(matchers.__file__).parent
ABOVE = ("dumpwatch", "crawler", "alerts", "scrapy", "sqlite_utils", "apscheduler", "httpx")


def imports(path: Path, *, runtime: bool = False) -> set[str]:
    """Modules ``path`` imports (``from matchers import x`` counts as ``matchers.x``); ``runtime``:
    not those under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                typing_only |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            if node.module == "matchers":
                found |= {f"matchers.{a.name}" for a in node.names}
    return found


def circles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Every import circle of ``graph`` (module -> modules it imports), each as its sorted members."""
    found = set()
    for start in graph:
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    found.add(tuple(sorted(path)))
                elif nxt not in path and nxt in graph:
                    stack.append((nxt, path + (nxt,)))
    return found


def test_the_engine_imports_nothing_above_it():
    bad = {f"{p.name}: {m}" for p in ENGINE.rglob("*.py") for m in imports(p)
           if m.split(".")[0] in ABOVE}
    assert not bad, f"the engine must be handed what it needs, not import it: {sorted(bad)}"


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dumpwatch.config import key_id\n    import crawler.run\n")
    assert imports(module) == {"dumpwatch.config", "crawler.run"}


def test_no_engine_modules_import_each_other_in_a_circle():
    graph = {f"matchers.{p.stem}": {m for m in imports(p, runtime=True) if m.startswith("matchers.")}
             for p in ENGINE.glob("*.py")}
    assert not circles(graph), f"engine import circles: {sorted(circles(graph))}"


def test_the_circle_check_finds_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b", "c")}
    assert circles({"a": {"b"}, "b": set()}) == set()

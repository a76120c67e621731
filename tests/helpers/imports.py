"""Read the imports of a module from its source (every import, also inside functions), and find circles.

Used by the layout tests: ``tests/test_layout.py`` (imports point down) and
``tests/matchers/test_engine_is_pure.py`` (the engine imports nothing of the project, no circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = ("matchers", "dumpwatch", "crawler", "alerts")


def imports(path: Path, *, runtime: bool = False) -> set[str]:
    """Modules ``path`` imports. ``from matchers import x`` counts as ``matchers.x`` too, and
    ``from matchers.extract import y`` as ``matchers.extract.y`` (``x`` or ``y`` may be a module), for
    the project's packages. ``runtime``: leave out imports under ``if TYPE_CHECKING:`` (annotations
    only, never executed); by default they count too."""
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
            if node.module.split(".")[0] in PROJECT:
                found |= {f"{node.module}.{a.name}" for a in node.names}
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

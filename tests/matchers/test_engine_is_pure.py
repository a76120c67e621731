"""The engine is pure (DESIGN.md, the one-way-house issue): nothing in ``matchers/`` imports the
front door or the ground floor of ``dumpwatch/``, nor the crawler or the alerts; it is handed its
limits, the key and the indexes. Read from the source (every import, also inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import matchers

ENGINE = Path(matchers.__file__).parent
ABOVE = ("dumpwatch", "crawler", "alerts", "scrapy", "sqlite_utils", "apscheduler", "httpx")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_engine_imports_nothing_above_it():
    bad = {f"{p.name}: {m}" for p in ENGINE.rglob("*.py") for m in imports(p)
           if m.split(".")[0] in ABOVE}
    assert not bad, f"the engine must be handed what it needs, not import it: {sorted(bad)}"


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dumpwatch.config import key_id\n    import crawler.run\n")
    assert imports(module) == {"dumpwatch.config", "crawler.run"}

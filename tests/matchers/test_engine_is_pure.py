"""The engine is pure (DESIGN.md, the one-way-house issue): nothing in ``matchers/`` imports the
front door or the ground floor of ``dumpwatch/``, nor the crawler or the alerts; it is handed its
limits, the key and the indexes; and no two engine modules import each other, directly or in a
circle (the ``matchers.extract`` subpackage included). Read from the source (every import, also
inside functions and under ``if TYPE_CHECKING:``)."""

from __future__ import annotations

from pathlib import Path

import matchers
from tests.helpers.imports import circles, imports

ENGINE = Path(matchers.__file__).parent
ABOVE = ("dumpwatch", "crawler", "alerts", "scrapy", "sqlite_utils", "apscheduler", "httpx")


def module_name(path: Path) -> str:
    """``matchers/extract/text.py`` → ``matchers.extract.text``; a package's ``__init__`` is the package."""
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_graph() -> dict[str, set[str]]:
    """Every engine module (subpackages included) -> the engine modules it imports."""
    graph = {module_name(p): imports(p) for p in ENGINE.rglob("*.py")}
    return {name: {m for m in found if m in graph and m != name} for name, found in graph.items()}


def test_the_engine_imports_nothing_above_it():
    bad = {f"{p.name}: {m}" for p in ENGINE.rglob("*.py") for m in imports(p)
           if m.split(".")[0] in ABOVE}
    assert not bad, f"the engine must be handed what it needs, not import it: {sorted(bad)}"


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dumpwatch.home import Home\n    import crawler.run\n")
    assert imports(module) == {"dumpwatch.home", "dumpwatch.home.Home", "crawler.run"}


def test_no_engine_modules_import_each_other_in_a_circle():
    graph = engine_graph()
    assert not circles(graph), f"engine import circles: {sorted(circles(graph))}"


def test_the_circle_check_reads_the_extract_subpackage():
    graph = engine_graph()
    assert {"matchers.scan", "matchers.match", "matchers.extract", "matchers.extract.text"} <= set(graph)
    assert "matchers.extract.text" in graph["matchers.extract"]          # the package's own modules
    assert "matchers.extract" in graph["matchers.scan"]
    assert "matchers.match" in graph["matchers.parallel"]               # parallel uses match, not scan
    assert "matchers.scan" not in graph["matchers.parallel"]


def test_the_circle_check_finds_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {("a", "b", "c")}
    assert circles({"a": {"b"}, "b": set()}) == set()

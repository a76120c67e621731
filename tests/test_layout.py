"""The one-way house (README "Layout"): imports point down, never up, read from the source.

    front door   dumpwatch/cli/  dumpwatch/daemon/  dumpwatch/devkit/    may import anything below
    services     crawler/  ->  alerts/                                   the crawler hands findings to alerts
    ground floor dumpwatch/*.py (errors, home, tables, clock, store, …)   may use the engine's types
    engine       matchers/                                               imports nothing of the project

Within the front door the CLI is on top: the daemon and the devkit never import the CLI, and the
daemon never imports the devkit (synthetic data and test servers stay out of production). Every
import counts, also one inside a function; ``if TYPE_CHECKING:`` blocks (annotations only) do not.
The engine's own rules (no import of the project, no circle between engine modules) are in
``tests/matchers/test_engine_is_pure.py``; this test draws the rest of the house with the same reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.imports import imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("matchers", "dumpwatch", "crawler", "alerts")
FRONT = ("dumpwatch.cli", "dumpwatch.daemon", "dumpwatch.devkit")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str | None:
    """The floor of the house a module is on, or None for a module outside the project."""
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if top == "dumpwatch":
        for front in FRONT:
            if module == front or module.startswith(front + "."):
                return front
        return "ground"
    return top


# floor -> the floors it may import (its own floor always allowed)
MAY_IMPORT = {
    "matchers": set(),
    "ground": {"matchers"},
    "alerts": {"matchers", "ground"},
    "crawler": {"matchers", "ground", "alerts"},
    "dumpwatch.devkit": {"matchers", "ground", "alerts", "crawler"},
    "dumpwatch.daemon": {"matchers", "ground", "alerts", "crawler"},
    "dumpwatch.cli": {"matchers", "ground", "alerts", "crawler", "dumpwatch.daemon", "dumpwatch.devkit"},
}


def allowed(importer: str, imported: str) -> bool:
    src, dst = part_of(importer), part_of(imported)
    if dst is None or src == dst:
        return True
    rule = MAY_IMPORT[src]
    return dst in rule or imported in rule or any(imported.startswith(r + ".") for r in rule)


def project_modules() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]


def test_imports_point_down():
    wrong = sorted(f"{module_name(p)} imports {m}" for p in project_modules()
                   for m in imports(p, runtime=True) if not allowed(module_name(p), m))
    assert not wrong, "imports that point up (see tests/test_layout.py's docstring):\n" + "\n".join(wrong)


@pytest.mark.parametrize("importer, imported, ok", [
    ("matchers.scan", "dumpwatch.errors", False),
    ("dumpwatch.store", "crawler.health", False),
    ("dumpwatch.errors", "matchers.errors", True),
    ("dumpwatch.home", "matchers.scan", True),
    ("dumpwatch.home", "alerts.settings", False),
    ("alerts.outbox", "crawler.health", False),
    ("crawler.pipelines", "alerts.outbox", True),
    ("dumpwatch.daemon.jobs", "dumpwatch.cli", False),
    ("dumpwatch.daemon.jobs", "dumpwatch.devkit.synth", False),
    ("dumpwatch.cli.engine", "dumpwatch.devkit.demo", True),
    ("dumpwatch.cli", "dumpwatch.daemon.scheduler", True),
    ("crawler.run", "dumpwatch.cli", False),
    ("crawler.run", "scrapy", True),
])
def test_the_rule_itself(importer, imported, ok):
    assert allowed(importer, imported) is ok


def test_every_module_is_on_a_floor():
    assert {part_of(module_name(p)) for p in project_modules()} <= set(MAY_IMPORT)

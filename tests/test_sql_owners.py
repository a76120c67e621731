"""Each table's SQL lives in the module that owns it (``dumpwatch.migrations.TABLE_OWNERS``).

Read from the source of every module (no import): a string literal holding a SQL statement that
names a table (``FROM``, ``JOIN``, ``INTO``, ``UPDATE``, ``TABLE``), or a ``db["table"]``
subscript (``db`` by the project's naming), outside that table's owner fails. The migrations (``_mNNN_*`` in ``dumpwatch/migrations.py``)
create every table and are exempt.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dumpwatch.migrations import TABLE_OWNERS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dumpwatch", "crawler", "alerts", "matchers", "bench")
STATEMENT = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|REPLACE)\b")
NAMED = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?[\"'`\[]?(\w+)", re.I)
MIGRATION = re.compile(r"_m\d{3}_")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if ".venv" not in p.parts)


def _name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _literals(node: ast.AST) -> str:
    """The text of a string literal, or of an f-string's literal parts (placeholders as ``?``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "?" for v in node.values)
    return ""


def _is_db(node: ast.AST) -> bool:
    """``db``, ``self.db``, ``self.state.db``... (a sqlite-utils Database by the project's naming)."""
    return (isinstance(node, ast.Name) and node.id == "db") or (isinstance(node, ast.Attribute) and node.attr == "db")


def tables_used(source: str) -> list[tuple[int, str, str]]:
    """``(line, table, how)`` for every owned table a module's code names in SQL or as ``db["table"]``."""
    tree = ast.parse(source)
    exempt: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and MIGRATION.match(fn.name):
            exempt.update(id(n) for n in ast.walk(fn))
        if isinstance(fn, ast.JoinedStr):  # its literal parts are read with it
            exempt.update(id(v) for v in fn.values)
    found = []
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Subscript) and _is_db(node.value):
            key = _literals(node.slice)
            if key in TABLE_OWNERS:
                found.append((node.lineno, key, f'[{key!r}]'))
        elif isinstance(node, (ast.Constant, ast.JoinedStr)):
            text = _literals(node)
            if text and STATEMENT.search(text):
                for table in NAMED.findall(text):
                    if table in TABLE_OWNERS:
                        found.append((node.lineno, table, " ".join(text.split())[:80]))
    return found


def test_every_owner_is_a_module():
    modules = {_name(p) for p in _modules()}
    for table, owners in TABLE_OWNERS.items():
        assert owners and set(owners) <= modules, (table, owners)


def test_sql_of_a_table_lives_in_its_owner():
    strays = []
    for path in _modules():
        module = _name(path)
        for line, table, how in sorted(tables_used(path.read_text())):
            if module not in TABLE_OWNERS[table]:
                strays.append(f"{path.relative_to(ROOT)}:{line}: {table} ({how}) belongs to "
                              f"{' / '.join(TABLE_OWNERS[table])}")
    assert not strays, "SQL outside its table's owner module:\n" + "\n".join(strays)


@pytest.mark.parametrize(("code", "expected"), [
    ('db.execute("SELECT id FROM findings WHERE x = ?")', ["findings"]),
    ('db.execute(f"DELETE FROM alerts WHERE id IN ({ids})")', ["alerts"]),
    ('db.execute("SELECT (SELECT count(*) FROM alerts) + (SELECT 1 FROM alert_notifications)")',
     ["alerts", "alert_notifications"]),
    ('db["alert_receivers"].rows', ["alert_receivers"]),
    ('self.state.db["crawl_runs"].insert({})', ["crawl_runs"]),
    ('x = "alerts from the findings"', []),  # prose, not a statement
    ('summary["alerts"] = 3', []),  # a dict, not the database
    ('db.execute("CREATE TEMP TABLE _t (id INTEGER)")', []),  # not an owned table
    ('def _m001_core(db):\n    db["findings"].create({})', []),  # a migration
])
def test_the_checker_sees_sql_and_tables(code, expected):
    """The check itself: it finds what it must (so it can fail), and nothing else."""
    assert [t for _, t, _ in tables_used(code)] == expected

"""SQL dumps → tables: the most common way a stolen database is shared.

Recognised (line by line, streaming):

* ``INSERT INTO t [(columns)] VALUES (...), (...);`` — one row per tuple, including mysqldump's
  extended inserts (thousands of tuples on one line) and ``REPLACE``/``INSERT IGNORE``;
* ``COPY t (columns) FROM stdin;`` blocks of pg_dump (tab-separated rows up to ``\\.``);
* ``CREATE TABLE t (...)`` gives the column names when an ``INSERT`` does not list them.

Each run of rows of one SQL table becomes ``Table(kind="delimited", header=columns)``, values
unquoted (``'O\\'Brien'`` → ``O'Brien``, ``NULL``/``\\N`` → ""). Other lines (comments, ``SET``,
``LOCK TABLES``, chatter around a pasted dump) go to ``Table(kind="text")`` runs, so every line
lands in exactly one table. A tuple cut by the line-length cap is lost, never mis-parsed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from matchers.extract.model import Table

_INSERT = re.compile(
    r"^\s*(?:INSERT(?:\s+IGNORE)?|REPLACE)\s+INTO\s+([`\"\[\]\w.]+)\s*(\(([^)]*)\))?\s*VALUES\s*", re.I)
_COPY = re.compile(r"^\s*COPY\s+([`\"\w.]+)\s*(?:\(([^)]*)\))?\s+FROM\s+stdin", re.I)
_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([`\"\[\]\w.]+)\s*\(", re.I)
_COLUMN = re.compile(r"^\s*[`\"\[]?(\w+)[`\"\]]?\s+\w")
_NOT_COLUMN = {"primary", "key", "unique", "index", "constraint", "foreign", "check", "fulltext"}
# One parenthesised tuple of values: quoted strings (with \' or '' escapes) and bare tokens.
# Possessive quantifiers: an unbalanced quote (``'LBM Côte d'Émeraude'``, written by hand) must not
# make the search backtrack exponentially (a hostile one-line INSERT would hang the scan).
_TUPLE = re.compile(r"\(((?:'(?:[^'\\]++|\\.|'')*+'|[^'()]++)*+)\)")
SQL_SAMPLE = re.compile(r"^\s*(?:INSERT(?:\s+IGNORE)?\s+INTO|REPLACE\s+INTO|COPY\s+\S+.*FROM\s+stdin)\b",
                        re.I | re.M)


def looks_sql(sample: str) -> bool:
    """A sample holding INSERT statements or a COPY block."""
    return SQL_SAMPLE.search(sample) is not None


def _name(token: str) -> str:
    return token.strip("`\"[]").rsplit(".", 1)[-1].strip("`\"[]")


def _columns(text: str) -> tuple[str, ...]:
    return tuple(_name(c.strip()) for c in text.split(",") if c.strip())


def _values(inner: str) -> list[str]:
    """The values of one tuple: csv (C speed) with SQL's quoting; NULL → ""."""
    row = next(csv.reader([inner], quotechar="'", escapechar="\\", doublequote=True,
                          skipinitialspace=True), [])
    return ["" if v.upper() == "NULL" else v.strip() for v in row]


class _Lines:
    def __init__(self, lines: Iterator[str]):
        self._it = iter(lines)
        self._back: list[str] = []

    def next(self) -> str | None:
        if self._back:
            return self._back.pop()
        return next(self._it, None)

    def push(self, line: str) -> None:
        self._back.append(line)


def sql_tables(lines: Iterator[str], source: str, encoding: str | None) -> Iterator[Table]:
    """Tables of a SQL dump (see the module docstring); consume each table before the next."""
    src = _Lines(lines)
    known: dict[str, tuple[str, ...]] = {}  # table -> columns, from CREATE TABLE
    while (line := src.next()) is not None:
        m = _INSERT.match(line)
        if m:
            table = _name(m.group(1))
            header = _columns(m.group(3)) if m.group(2) else known.get(table)
            src.push(line)
            yield Table(f"{source}#{table}", "delimited", header, _insert_rows(src, table), encoding)
            continue
        m = _COPY.match(line)
        if m:
            table = _name(m.group(1))
            header = _columns(m.group(2)) if m.group(2) else known.get(table)
            yield Table(f"{source}#{table}", "delimited", header, _copy_rows(src), encoding)
            continue
        m = _CREATE.match(line)
        if m:
            known[_name(m.group(1))] = _create_columns(src)
            continue
        src.push(line)
        yield Table(source, "text", None, _text_rows(src), encoding)


def _insert_rows(src: _Lines, table: str) -> Iterator[list[str]]:
    while (line := src.next()) is not None:
        m = _INSERT.match(line)
        if not m or _name(m.group(1)) != table:
            src.push(line)
            return
        for t in _TUPLE.finditer(line, m.end()):
            yield _values(t.group(1))


def _copy_rows(src: _Lines) -> Iterator[list[str]]:
    while (line := src.next()) is not None:
        if line.rstrip() == "\\.":
            return
        yield ["" if v == "\\N" else v for v in line.split("\t")]


def _create_columns(src: _Lines) -> tuple[str, ...]:
    """Column names of a CREATE TABLE, one definition per line as dumps write them."""
    cols = []
    while (line := src.next()) is not None:
        if line.lstrip().startswith(")"):
            break
        m = _COLUMN.match(line)
        if m and m.group(1).lower() not in _NOT_COLUMN:
            cols.append(m.group(1))
        if line.rstrip().endswith(";"):
            break
    return tuple(cols)


def _text_rows(src: _Lines) -> Iterator[str]:
    while (line := src.next()) is not None:
        if _INSERT.match(line) or _COPY.match(line) or _CREATE.match(line):
            src.push(line)
            return
        yield line

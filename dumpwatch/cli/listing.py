"""How the list commands print rows: ``--format table|json|csv`` (``--json`` is ``--format json``).

- ``table``: aligned columns for a terminal, every value through :func:`dumpwatch.escape.terminal`
  and cut to 60 characters; ``(none)`` when there is no row;
- ``json``: one JSON object per line, every column (:func:`dumpwatch.escape.json_line`);
- ``csv``: a header and one line per row, the table's columns, for a spreadsheet. Values are shown
  as :func:`~dumpwatch.escape.terminal` shows them (control and bidi characters escaped, never
  cut), JSON columns as JSON, and a text that a spreadsheet would run as a formula (starting with
  ``=``, ``+``, ``-``, ``@``) gets a leading ``'``: a URL or error written by a page never runs.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from dumpwatch.escape import json_line, terminal

FORMATS = ("table", "json", "csv")


def format_option(f):
    """``--format`` and ``--json`` (the latter kept as a short ``--format json``)."""
    f = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(f)
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table (terminal), json (one object per line) or csv (spreadsheet).")(f)


def chosen(fmt: str, as_json: bool) -> str:
    return "json" if as_json else fmt


def table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    rows = [{c: "" if r.get(c) is None else terminal(r.get(c)) for c in cols} for r in rows]
    widths = {c: min(60, max(len(c), *(len(r[c]) for r in rows))) for c in cols}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            cells.append((v[: widths[c] - 1] + "…" if len(v) > widths[c] else v).ljust(widths[c]))
        click.echo("  ".join(cells).rstrip())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str):
        value = terminal(value, limit=None)
        if value[:1] in ("=", "+", "-", "@"):
            value = "'" + value
    return value


def emit(rows: list[dict[str, Any]], cols: list[str], fmt: str) -> None:
    """Print ``rows`` in ``fmt``; ``cols`` are the columns of the table and of the CSV."""
    if fmt == "json":
        for r in rows:
            click.echo(json_line(r, sort_keys=True, default=str))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in cols])
        sys.stdout.flush()
        click.echo(buf.getvalue(), nl=False)
    else:
        table(rows, cols)

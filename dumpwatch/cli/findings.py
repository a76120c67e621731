"""`dumpwatch findings export` and `dumpwatch findings patients`: a finding for analysts, and for a lab.

The ``findings`` group itself (``list``, ``show``) is in :mod:`dumpwatch.cli.alerts`, which adds the
commands of :data:`COMMANDS` to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dumpwatch.errors import DumpwatchError


def _finding(db: Any, finding_id: int) -> dict[str, Any]:
    import sqlite_utils

    from dumpwatch import store

    try:
        return store.get_finding(db, finding_id)
    except sqlite_utils.db.NotFoundError:
        raise DumpwatchError(f"no finding {finding_id}; see: dumpwatch findings list") from None


@click.command("export")
@click.argument("finding_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["misp", "stix"]), required=True,
              help="misp: a MISP event (JSON, for MISP's import); stix: a STIX 2.1 bundle.")
@click.option("--tlp", type=click.Choice(["white", "green", "amber", "red"]), default="amber", show_default=True,
              help="Traffic Light Protocol marking of the export.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to this file (default stdout).")
@click.pass_obj
def findings_export(obj: Any, finding_id: int, fmt: str, tlp: str, output: str | None) -> None:
    """Export a finding for analysts: a MISP event or a STIX 2.1 bundle.

    The export holds the URL, source, times, the content's SHA-256 and size, the verdict, the
    leak's name, the counts and the categories of data exposed; never a cleartext identifier, nor
    the redacted sample. Needs the 'export' extra (pip install 'dumpwatch[export]').

    \b
    Examples:
      dumpwatch findings export 7 --format misp -o finding-7.misp.json
      dumpwatch findings export 7 --format stix --tlp green > finding-7.stix.json
    """
    from alerts.export import export
    from dumpwatch import store

    db = obj.db()
    f = _finding(db, finding_id)
    if f["verdict"] not in ("repost", "schema-match"):
        raise DumpwatchError(f"finding {finding_id} is a {f['verdict']} finding: only reposts and schema "
                             "matches are exported")
    leak = store.get_leak(db, f["leak"]) if f.get("leak") else None
    text = export(f, fmt, leak=leak, tlp=tlp)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        click.echo(f"finding {finding_id} exported to {output} ({fmt}, TLP:{tlp.upper()})", err=True)
    else:
        click.echo(text)


COMMANDS = [findings_export]

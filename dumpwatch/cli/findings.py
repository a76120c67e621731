"""`dumpwatch findings …`: list and show recorded findings, export one for analysts, list a lab's patients.

Stored text is printed through :func:`dumpwatch.escape.terminal` (JSON through
:func:`dumpwatch.escape.json_line`): what a page wrote never drives the terminal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from dumpwatch.cli.listing import chosen, emit, format_option
from dumpwatch.cli.listing import table as _table
from dumpwatch.errors import DumpwatchError
from dumpwatch.escape import json_line, terminal


@click.group("findings")
def findings_group() -> None:
    """Inspect recorded findings (reposts, schema matches, source health).

    \b
    Example:
      dumpwatch findings list --verdict repost
    """


@findings_group.command("list")
@click.option("--verdict", type=click.Choice(["repost", "schema-match", "source-health"]), help="Only this verdict.")
@click.option("--leak", help="Only this leak.")
@click.option("--lab", help="Only copies holding records of this lab (as in the enrolled file's lab column).")
@click.option("--source", help="Only this source (a configured source's name, or 'tip' for scan --record).")
@click.option("--since", help="Only findings detected since: a duration back from now (24h, 7d) or an "
                              "ISO 8601 time (UTC if no offset).")
@click.option("--limit", default=50, show_default=True, help="At most this many, newest first.")
@format_option
@click.pass_obj
def findings_list(obj: Any, verdict: str | None, leak: str | None, lab: str | None, source: str | None,
                  since: str | None, limit: int, fmt: str, as_json: bool) -> None:
    """List findings, newest first.

    \b
    Examples:
      dumpwatch findings list --leak labos-2021 --json
      dumpwatch findings list --lab "Biolab Vannes" --since 7d --verdict repost
      dumpwatch findings list --source tip --format csv > tips.csv
    """
    from dumpwatch import clock, store
    from dumpwatch.tables import parse_duration

    cutoff = None
    if since:
        try:
            cutoff = clock.cutoff(parse_duration(since))
        except ValueError:
            try:
                cutoff = clock.iso(clock.parse(since))
            except ValueError:
                raise click.BadParameter(f"{since!r} is neither a duration (24h, 7d) nor an ISO 8601 time",
                                         param_hint="--since") from None
    where, params = store.finding_filter(verdict=verdict, leak=leak, lab=lab, source=source, since=cutoff)
    rows = store.findings(obj.db(), where=where, params=params or None, limit=limit)
    emit(rows, ["id", "verdict", "leak", "matched_records", "source", "detected_at", "url"], chosen(fmt, as_json))


@findings_group.command("show")
@click.argument("finding_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_obj
def findings_show(obj: Any, finding_id: int, as_json: bool) -> None:
    """Show one finding and the alerts it caused.

    \b
    Example:
      dumpwatch findings show 7
    """
    import sqlite_utils

    from alerts import grouping
    from dumpwatch import store

    db = obj.db()
    try:
        f = store.get_finding(db, finding_id)
    except sqlite_utils.db.NotFoundError:
        raise DumpwatchError(f"no finding {finding_id}; see: dumpwatch findings list") from None
    alerts = grouping.alerts_of_finding(db, finding_id)
    if as_json:
        click.echo(json_line({**f, "alerts": alerts}, sort_keys=True, default=str))
        return
    for k, v in f.items():
        click.echo(f"{k:16} {json_line(v) if isinstance(v, (dict, list)) else terminal(v)}")
    click.echo("")
    _table(alerts, ["id", "receiver", "lab", "severity", "status", "incident_id", "notification_id"])


def _finding(db: Any, finding_id: int) -> dict[str, Any]:
    import sqlite_utils

    from dumpwatch import store

    try:
        return store.get_finding(db, finding_id)
    except sqlite_utils.db.NotFoundError:
        raise DumpwatchError(f"no finding {finding_id}; see: dumpwatch findings list") from None


@findings_group.command("export")
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


@findings_group.command("patients")
@click.argument("finding_id", type=int)
@click.option("--lab", help="The lab (as in the enrolled file's lab column); its rows only.")
@click.option("--author", default=lambda: os.environ.get("USER") or os.environ.get("LOGNAME", ""),
              help="Who asks (default $USER), written in the look-up log.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: file, SHA-256, rows.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the rows to this file (mode 0600) instead of stdout.")
@click.option("--log", "show_log", is_flag=True, help="Show the look-up log of this finding instead (no rows).")
@click.pass_obj
def findings_patients(obj: Any, finding_id: int, lab: str | None, author: str, as_json: bool,
                      output: str | None, show_log: bool) -> None:
    """Which of a lab's patients are in a copy (GDPR Art. 34): row numbers of the enrolled file.

    For one lab only: the row numbers, in the enrolled file (named with its SHA-256, so the DPO
    knows which file they refer to), of that lab's records confirmed in the copy of FINDING, for the
    DPO to find them in the lab's own export and inform them. Rows are counted from 1, over the data
    rows (a header line is not counted: in a CSV with one header line, row N is line N+1). Nothing
    else about the records is given; every use is logged (who, when, finding, lab, how many rows).

    \b
    Examples:
      dumpwatch findings patients 7 --lab "Biolab Vannes"
      dumpwatch findings patients 7 --lab "Biolab Vannes" --json -o vannes-finding-7.json
      dumpwatch findings patients 7 --log
    """
    import json

    import numpy as np

    from alerts import patients
    from dumpwatch.cli.listing import table
    from matchers.index import LeakIndex

    db = obj.db()
    f = _finding(db, finding_id)
    if show_log:
        table(patients.lookups(db, finding_id=finding_id), ["id", "at", "by", "lab", "rows"])
        return
    if not lab:
        raise click.UsageError("give --lab LAB: a listing holds one lab's rows only (see: dumpwatch findings "
                               f"show {finding_id} for the labs of this copy)")
    held = patients.labs_of(db, finding_id)
    if lab not in held:
        from dumpwatch.tables import did_you_mean

        if f.get("leak") and f["verdict"] == "repost" and not held:
            raise DumpwatchError(f"finding {finding_id} holds no record positions (recorded before dumpwatch "
                                 "kept them, or its leak was removed or enrolled again since)")
        labs = ", ".join(repr(x) for x in held) or "none"
        raise DumpwatchError(f"finding {finding_id} holds no confirmed record of lab {lab!r}; "
                             f"{did_you_mean(lab, held)}its labs: {labs}")
    directory = obj.home.index_dir / str(f["leak"])
    if not (directory / "meta.json").exists():
        raise DumpwatchError(f"leak {f['leak']!r} is not enrolled any more: its row numbers are gone")
    index = LeakIndex.load(directory)
    rows_of = index.row_numbers
    if rows_of is None:
        raise DumpwatchError(f"the index of {f['leak']!r} was enrolled by an older dumpwatch, without row "
                             "numbers: enroll the leak again (dumpwatch enroll FILE --leak NAME --replace)")
    found = patients.positions(db, finding_id, lab)
    if found is None or (len(found) and int(found.max()) >= len(rows_of)):
        raise DumpwatchError(f"the positions of finding {finding_id} do not fit the index of {f['leak']!r}")
    rows = sorted(int(r) for r in np.asarray(rows_of)[found])
    sha = index.meta.get("source_sha256")
    source = index.meta.get("source_file") or "?"
    patients.log_lookup(db, finding_id=finding_id, lab=lab, rows=len(rows), by=author)
    if as_json:
        text = json.dumps({"finding": finding_id, "leak": f["leak"], "lab": lab, "file": source,
                           "file_sha256": sha, "row_base": "1-based data rows, header not counted",
                           "rows": rows}, ensure_ascii=False)
    else:
        text = "\n".join([
            f"# finding {finding_id}, leak {f['leak']}, lab {lab}: {len(rows)} record(s) of the enrolled file",
            f"# file: {source}  SHA-256: {sha or '(not recorded: enrolled before dumpwatch kept it)'}",
            "# rows counted from 1 over the data rows (a CSV's header line is not counted: row N is line N+1)",
            *map(str, rows)])
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        click.echo(f"{len(rows)} row(s) of lab {terminal(lab)} written to {terminal(output)} (mode 0600); "
                   "this look-up is logged", err=True)
    else:
        click.echo(terminal(text, multiline=True, limit=None))
        click.echo("this look-up is logged (see: dumpwatch findings patients "
                   f"{finding_id} --log)", err=True)


COMMANDS = [findings_group]

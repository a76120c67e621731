"""`dumpwatch leaks`: list the enrolled leaks, and remove one (`dumpwatch leaks remove NAME`).

Removing a leak deletes its fingerprint index and its row in the database; its findings stay (they
are the record of what was found) and each gets a note saying the leak was removed, when and by
whom. The index is first moved aside, so a failed database write puts it back: a leak is never
half removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from typing import Any

import click

from dumpwatch.cli.listing import FORMATS, emit
from dumpwatch.errors import DumpwatchError, SecretKeyError
from dumpwatch.escape import json_line, terminal


@click.group("leaks", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of the leaks (every field).")
@click.option("--format", "fmt", type=click.Choice(("text", *FORMATS)), default="text", show_default=True,
              help="text (a line per leak), table, json (one object per line) or csv.")
@click.pass_context
def leaks_group(ctx: click.Context, as_json: bool, fmt: str) -> None:
    """List the enrolled leaks (counts and labs only: nothing identifying); `leaks remove` removes one.

    \b
    Examples:
      dumpwatch leaks
      dumpwatch leaks --format csv > leaks.csv
      dumpwatch leaks remove labos-2021
    """
    if ctx.invoked_subcommand is not None:
        return
    from dumpwatch import store

    rows = store.leaks(ctx.obj.db())
    if as_json:
        click.echo(json_line(rows, indent=1))
        return
    if fmt != "text":
        emit([{**r, "labs": len(r["labs"] or {})} for r in rows],
             ["name", "records", "labs", "categories", "enrolled_at", "source_file"], fmt)
        return
    if not rows:
        click.echo("No leak enrolled (see: dumpwatch enroll --help).")
    for r in rows:
        click.echo(terminal(f"{r['name']}: {r['records']} records, {len(r['labs'] or {})} labs, enrolled "
                            f"{r['enrolled_at']} from {r['source_file']}; categories: "
                            f"{', '.join(r['categories'] or [])}", limit=None))


@leaks_group.command("remove")
@click.argument("name")
@click.option("--author", default=lambda: os.environ.get("USER") or os.environ.get("LOGNAME", ""),
              help="Who removes it (default $USER), noted on its findings.")
@click.option("--force", is_flag=True,
              help="Remove it even though it was enrolled with another key than the current one.")
@click.pass_obj
def leaks_remove(obj: Any, name: str, author: str, force: bool) -> None:
    """Remove the enrolled leak NAME: its fingerprint index and its entry; its findings are kept,
    each with a note that the leak was removed.

    The index must have been built with the current key (its key id is checked): an index built
    with another key usually means DUMPWATCH_KEY or DUMPWATCH_KEY_FILE points at the wrong key, and
    removing it would not be what you meant; --force removes it anyway.

    \b
    Example:
      dumpwatch leaks remove labos-2021
    """
    import json

    from dumpwatch import clock, store
    from matchers.fingerprint import key_id

    db = obj.db()
    directory = obj.home.index_dir / name
    row = store.get_leak(db, name)
    meta_path = directory / "meta.json"
    if row is None and not directory.is_dir():
        known = ", ".join(r["name"] for r in store.leaks(db)) or "none"
        raise DumpwatchError(f"no enrolled leak {name!r} (enrolled: {known}); see: dumpwatch leaks")
    index_key = row["key_id"] if row else None
    if meta_path.exists():
        try:
            index_key = json.loads(meta_path.read_text()).get("key_id") or index_key
        except (OSError, ValueError) as exc:  # its row's key id is the one to check
            click.echo(f"warning: {terminal(str(meta_path))} cannot be read ({type(exc).__name__}): "
                       "checking the key id of its database row", err=True)
    try:
        current = key_id(obj.home.load_key())
    except SecretKeyError:
        current = None
    if index_key and index_key != current and not force:
        raise DumpwatchError(
            f"leak {name!r} was enrolled with key id {index_key}, and the current key is "
            f"{current or 'missing'}: check DUMPWATCH_KEY / DUMPWATCH_KEY_FILE, or pass --force to remove it anyway")
    aside = None
    if directory.exists():
        aside = directory.with_name(f".{name}.removed-{secrets.token_hex(4)}")
        os.replace(directory, aside)
    note = {"at": clock.utcnow(), "by": author or "unknown",
            "note": f"leak {name} was removed; its index is gone, this finding is kept as a record"}
    try:
        from alerts.patients import forget_leak

        forget_leak(db, name)  # positions in the index being removed mean nothing any more
        noted = store.remove_leak(db, name, note)
    except BaseException:
        if aside is not None:
            os.replace(aside, directory)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    click.echo(f"Removed leak {terminal(name)}: index deleted; {noted} finding(s) kept, each noted "
               f"'leak removed' (see: dumpwatch findings list --leak {terminal(name)}).")


COMMANDS = [leaks_group]

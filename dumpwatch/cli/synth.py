"""`dumpwatch synth`: synthetic leaks and reposts from the command line, to try dumpwatch without real data.

A thin front over :mod:`dumpwatch.devkit.synth`, the generator the tests, the benchmark and the demo
use: made-up patients of French medical labs (Faker's ``fr_FR`` names, NIRs with a valid check
key, random phones). The same ``--seed`` gives the same people, and the first N people of a seed
are the same whatever the size asked, so a repost drawn with the leak's seed holds records of that
leak (``--skip`` and ``--rows`` choose which), and ``--strangers`` mixes in people who are not in it.
Faker is in the ``demo`` and ``test`` extras, not in the monitor's own dependencies.
"""

from __future__ import annotations

from pathlib import Path

import click

from dumpwatch.escape import terminal

FORMATS = ("csv", "json", "jsonl", "json-object", "kv", "html", "chatter")


@click.group("synth")
def synth_group() -> None:
    """Write synthetic leaks and reposts (no real person) to try dumpwatch.

    Needs Faker: pip install 'dumpwatch[demo]'.

    \b
    Examples:
      dumpwatch synth leak leak.csv --rows 3000
      dumpwatch synth repost copy.json --rows 200 --format json --english --spaced
      dumpwatch synth repost mixed.csv.gz --rows 50 --skip 1000 --strangers 500 --compress gzip
      dumpwatch enroll leak.csv --leak demo --lab-column laboratoire && dumpwatch scan copy.json
    """


@synth_group.command("leak")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--rows", type=click.IntRange(min=1), default=3000, show_default=True, help="Patients in the leak.")
@click.option("--seed", type=int, default=2021, show_default=True, help="Same seed, same people.")
@click.option("--labs", "n_labs", type=click.IntRange(1, 12), default=12, show_default=True,
              help="How many labs the patients belong to (column 'laboratoire').")
@click.option("--delimiter", default=";", show_default=True, help="CSV delimiter.")
@click.option("--encoding", default="utf-8", show_default=True, help="e.g. utf-8, cp1252, latin-1.")
def synth_leak(out: str, rows: int, seed: int, n_labs: int, delimiter: str, encoding: str) -> None:
    """Write a synthetic leaked file OUT: the lab export as it was sold (French header, CSV).

    \b
    Example:
      dumpwatch synth leak leak.csv --rows 5000 --labs 3
      dumpwatch enroll leak.csv --leak demo --lab-column laboratoire
    """
    from dumpwatch.devkit import synth

    people = synth.generate(rows, seed=seed, labs=synth.LABS[:n_labs])
    path = synth.write_csv(people, out, delimiter=delimiter, encoding=encoding)
    click.echo(f"wrote {rows} synthetic patients of {n_labs} lab(s) to {terminal(str(path))} (seed {seed}); "
               f"enroll it with: dumpwatch enroll {terminal(str(path))} --leak NAME --lab-column laboratoire")


@synth_group.command("repost")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--rows", type=click.IntRange(min=0), default=200, show_default=True,
              help="Patients of the leak in the copy.")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True,
              help="Start after this many patients of the leak (the copy holds patients SKIP+1 … SKIP+ROWS).")
@click.option("--seed", type=int, default=2021, show_default=True, help="The leak's seed (synth leak --seed).")
@click.option("--labs", "n_labs", type=click.IntRange(1, 12), default=12, show_default=True,
              help="As given to synth leak.")
@click.option("--strangers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Add this many people who are NOT in the leak.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="The shape of the copy: csv, a JSON array, JSON lines, a JSON object, 'Nom: …' blocks, "
                   "an HTML table, or a few rows inside chat noise.")
@click.option("--columns", help="Comma-separated subset of the leak's columns (default: all).")
@click.option("--english", is_flag=True, help="Translate the header (nom → last_name …).")
@click.option("--shuffle-columns", is_flag=True, help="Reorder the columns.")
@click.option("--spaced", is_flag=True, help="Write NIRs with spaces (1 85 05 …).")
@click.option("--intl", is_flag=True, help="Write phones as +33 6 …")
@click.option("--typos", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of rows with a typo in the surname.")
@click.option("--compress", type=click.Choice(["gzip", "zip"]), default=None, help="Compress the copy.")
@click.option("--encoding", default="utf-8", show_default=True, help="e.g. utf-8, cp1252, utf-16.")
def synth_repost(out: str, rows: int, skip: int, seed: int, n_labs: int, strangers: int, fmt: str,
                 columns: str | None, english: bool, shuffle_columns: bool, spaced: bool, intl: bool,
                 typos: float, compress: str | None, encoding: str) -> None:
    """Write a synthetic repost OUT: patients of a synthetic leak (same --seed), reshaped.

    \b
    Examples:
      dumpwatch synth repost copy.csv --rows 100
      dumpwatch synth repost paste.txt --rows 12 --format chatter --intl
      dumpwatch synth repost dump.zip --rows 300 --format json --english --compress zip
      dumpwatch synth repost other.csv --rows 0 --strangers 400   # a schema match, no repost
    """
    from dumpwatch.devkit import synth

    if rows + strangers == 0:
        raise click.UsageError("the copy would be empty: give --rows or --strangers")
    labs = synth.LABS[:n_labs]
    people = synth.generate(skip + rows, seed=seed, labs=labs)[skip:] if rows else []
    if strangers:
        people += synth.generate(strangers, seed=seed + 7919, labs=labs)
    cols = None
    if columns:
        cols = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in cols if c not in synth.COLUMNS]
        if unknown:
            raise click.BadParameter(f"unknown column(s) {', '.join(unknown)}; the columns are: "
                                     f"{', '.join(synth.COLUMNS)}", param_hint="--columns")
    path = synth.write_repost(people, out, fmt=fmt, encoding=encoding, compress=compress, seed=seed,
                              columns=cols, english=english, shuffle_columns=shuffle_columns, spaced=spaced,
                              intl=intl, typos=typos)
    click.echo(f"wrote {terminal(str(Path(path)))}: {rows} patient(s) of the leak (seed {seed}, from #{skip + 1})"
               + (f" and {strangers} stranger(s)" if strangers else "") + f", format {fmt}"
               + (f", {compress}" if compress else ""))


COMMANDS = [synth_group]

"""`dumpwatch demo`: the engine end to end, offline, on synthetic data.

Generates a synthetic leak, enrolls it in a throw-away home, writes reposts of it in the shapes
dumps take (reformatted CSV, JSON, a key-value paste, rows hidden in chatter, a zip) next to
unrelated files, and scans them all with the real `dumpwatch scan`. (The crawl, alert and daemon
parts of the demo arrive with their issues.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from dumpwatch import synth


@click.command()
@click.option("--rows", default=5000, show_default=True, help="Size of the synthetic leak.")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep the demo's files and home in this directory (default: a temporary one).")
@click.pass_context
def demo(ctx: click.Context, rows: int, keep: str | None) -> None:
    """Run the pipeline offline on bundled synthetic data (no real person, no network).

    \b
    Example:
      dumpwatch demo
      dumpwatch demo --rows 20000 --keep /tmp/dw-demo
    """
    from dumpwatch.cli import cli

    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="dumpwatch-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    click.secho(f"1. Generating {rows} synthetic patients of {len(synth.LABS)} labs in {work}", bold=True)
    people = synth.generate(rows, seed=2021)
    leak = synth.write_csv(people, work / "leak_labos_2021.csv")
    click.secho("2. Enrolling the leak (only keyed fingerprints are kept)", bold=True)
    base = ["--home", str(home)]
    cli.main(args=base + ["enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire"],
             standalone_mode=False)
    found = work / "found"
    found.mkdir(exist_ok=True)
    strangers = synth.generate(300, seed=7)
    synth.write_repost(people[:1200], found / "repost_reformatted.csv", english=True, shuffle_columns=True,
                       spaced=True, intl=True, typos=0.05, encoding="cp1252", delimiter="|")
    synth.write_repost(people[2000:2400], found / "repost.json", fmt="json", english=True)
    synth.write_repost(people[3000:3012], found / "paste_fullz.txt", fmt="kv", spaced=True)
    synth.write_repost(people[3100:3115], found / "forum_thread.txt", fmt="chatter",
                       columns=["nom", "prenom", "nir", "telephone", "ville"])
    synth.write_repost(people[4000:4500], found / "base.zip", compress="zip", fmt="csv")
    synth.write_repost(strangers, found / "other_lab_unknown.csv", fmt="csv")
    (found / "shopping_list.csv").write_text("item;qty\npain;2\nlait;1\n")
    click.secho(f"3. Scanning {found} (real `dumpwatch scan`)", bold=True)
    cli.main(args=base + ["scan", str(found)], standalone_mode=False)
    click.secho("\nWhere to look next:", bold=True)
    click.echo(f"  dumpwatch --home {home} scan {found} --json    # the JSON contract (README, 'Scan JSON')")
    click.echo(f"  ls {home}/index/labos-2021                    # the fingerprint index: no cleartext")
    click.echo("  README.md: enrolling a leak, the privacy model, configuration")

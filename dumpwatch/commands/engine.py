"""`dumpwatch enroll`, `dumpwatch scan`, `dumpwatch leaks`: the engine's commands."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from dumpwatch.config import DumpwatchError, section

_KINDS_HELP = "nir, email, phone, last_name, first_name, full_name, birth_date, postcode, lab, …"


def _progress_bar(total: int | None, desc: str):
    """A tqdm bar on stderr when it is a terminal; otherwise nothing (a no-op callback)."""
    if not sys.stderr.isatty():
        return None, lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, leave=False)
    return bar, bar.update


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--leak", required=True, help="Name of the leak (letters, digits, . _ -).")
@click.option("--lab-column", help="Column holding the lab of each record (for per-lab counts).")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=KIND",
              help=f"Override the column mapping (KIND: {_KINDS_HELP}; empty KIND ignores the column).")
@click.pass_obj
def enroll(obj, file: str, leak: str, lab_column: str | None, maps: tuple[str, ...]) -> None:
    """Fingerprint a leaked FILE: keep keyed fingerprints only, never the cleartext.

    The file may be CSV (any delimiter, any encoding), JSON, HTML, key-value text, gzip or zip.
    The key is created on first use in HOME/secret/key (mode 0600) unless DUMPWATCH_KEY or
    DUMPWATCH_KEY_FILE is set. Enrolling the same leak name again replaces its index.

    \b
    Example:
      dumpwatch enroll export_labos.csv --leak labos-2021 --lab-column laboratoire
      dumpwatch enroll dump.json --leak other --map "num_ss=nir" --map "commentaire="
    """
    from dumpwatch import store
    from matchers.enroll import enroll_stream
    from matchers.index import check_leak_name
    from matchers.scan import ScanSettings

    check_leak_name(leak)
    overrides = {}
    for m in maps:
        col, sep, kind = m.partition("=")
        if not sep or not col:
            raise click.BadParameter(f"{m!r} is not COLUMN=KIND", param_hint="--map")
        overrides[col] = kind
    home = obj.home.ensure()
    key = home.load_key(create=True)
    path = Path(file)
    bar, cb = _progress_bar(path.stat().st_size, f"enroll {path.name}")
    with path.open("rb") as fh:
        index, report = enroll_stream(fh, str(path), leak=leak, key=key, lab_column=lab_column,
                                      overrides=overrides, limits=ScanSettings.from_config(obj.config).limits,
                                      progress=cb)
    if bar:
        bar.close()
    index.save(home.index_dir / leak)
    db = obj.db()
    store.save_leak(db, {"name": leak, "enrolled_at": store.utcnow(), "source_file": path.name,
                         "records": report.records, "columns": report.columns, "labs": report.labs,
                         "categories": index.meta["categories"], "key_id": index.meta["key_id"]})
    click.echo(f"Enrolled leak {leak!r}: {report.records} records fingerprinted"
               + (f", {report.skipped} rows without NIR/email/phone skipped" if report.skipped else "") + ".")
    click.echo("Columns: " + ", ".join(f"{c}→{k}" for c, k in report.columns.items()))
    if report.labs and list(report.labs) != ["(unknown)"]:
        click.echo(f"Labs: {len(report.labs)} (" + ", ".join(f"{n}: {c}" for n, c in
                                                         sorted(report.labs.items(), key=lambda x: -x[1])[:5])
                   + (", …" if len(report.labs) > 5 else "") + ")")
    for err in report.errors:
        click.echo(f"warning: {err}", err=True)
    click.echo(f"Index: {home.index_dir / leak}  (key: kept apart, never in the database)")


def _inputs(targets: tuple[str, ...]) -> Iterator[str]:
    for t in targets:
        if t.startswith(("http://", "https://")):
            yield t
            continue
        p = Path(t)
        if p.is_dir():
            yield from (str(f) for f in sorted(p.rglob("*")) if f.is_file())
        else:
            yield t


def _fetch(url: str, max_bytes: int):
    """Download a URL into a spooled temporary file (bounded); returns (file, error)."""
    import httpx

    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    error = None
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=30.0,
                          headers={"User-Agent": "dumpwatch (leak monitor)"}) as resp:
            if resp.status_code >= 400:
                error = f"{url}: HTTP {resp.status_code}"
            else:
                n = 0
                for chunk in resp.iter_raw():
                    n += len(chunk)
                    if n > max_bytes:
                        error = f"{url}: larger than {max_bytes} bytes; refused (raise limits.max_bytes)"
                        break
                    spool.write(chunk)
    except httpx.HTTPError as exc:
        error = f"{url}: {type(exc).__name__}: {exc}"
    if error:
        spool.close()
        return None, error
    spool.seek(0)
    return spool, None


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input on stdout, one per line.")
@click.option("--threshold", type=click.IntRange(min=1), default=None,
              help="Confirmed records needed for a 'repost' verdict (default 3, or scan.repost_threshold).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for one large plain CSV file (default: scan.workers, else the number of CPUs).")
@click.pass_obj
def scan(obj, targets: tuple[str, ...], as_json: bool, threshold: int | None, workers: int | None) -> None:
    """Scan files, directories (recursively) and http(s) URLs for reposts of enrolled leaks.

    Verdicts: 'repost' (at least THRESHOLD records of an enrolled leak confirmed, each by two
    independent fields), 'schema-match' (a table of the same kind, or many valid NIRs, with no
    confirmed record: possibly a new leak), 'none'. Problems with one input go to its 'errors'
    and the scan goes on. The JSON fields are documented in the README ("Scan JSON").

    \b
    Examples:
      dumpwatch scan ~/Downloads/dump.zip
      dumpwatch scan ./collected/ https://paste.example/raw/Xy12 --json > results.jsonl
    """
    from matchers.finding import Finding
    from matchers.scan import Scanner, ScanSettings

    home = obj.home
    settings = ScanSettings.from_config(obj.config, threshold=threshold, workers=workers)
    if not workers and "workers" not in section(obj.config, "scan"):
        settings = dataclasses.replace(settings, workers=os.cpu_count() or 1)
    limits = settings.limits
    try:
        key = home.load_key()
    except DumpwatchError:
        key = os.urandom(32)  # nothing enrolled: schema matching only, no fingerprint to compare
    scanner = Scanner.from_index_dir(home.index_dir, key, settings)
    if not scanner.indexes and not as_json:
        click.echo("note: no leak enrolled yet; only schema matches can be reported "
                   "(see: dumpwatch enroll --help)", err=True)
    counts = {"repost": 0, "schema-match": 0, "none": 0}
    for target in _inputs(targets):
        if target.startswith(("http://", "https://")):
            fh, err = _fetch(target, limits.max_bytes)
            if err:
                finding = Finding(input=target, errors=(err,))
            else:
                with fh:
                    finding = scanner.scan_stream(fh, target)
        else:
            p = Path(target)
            if not p.exists():
                finding = Finding(input=target, errors=(f"{target}: no such file or directory",))
            else:
                bar, cb = _progress_bar(p.stat().st_size, p.name) if p.stat().st_size > 8 << 20 else (None, None)
                finding = scanner.scan_path(p, progress=cb)
                if bar:
                    bar.close()
        counts[finding.verdict] += 1
        if as_json:
            click.echo(json.dumps(finding.to_json(), ensure_ascii=False))
        else:
            click.echo(_summary(finding))
    if not as_json:
        click.echo(f"{sum(counts.values())} input(s): {counts['repost']} repost, "
                   f"{counts['schema-match']} schema-match, {counts['none']} none")


def _summary(f) -> str:
    head = {"repost": "REPOST", "schema-match": "SCHEMA-MATCH", "none": "none"}[f.verdict]
    lines = [f"{head:12} {f.input}"]
    if f.verdict != "none" or f.matched_records:
        lines.append(f"  leak {f.leak or '-'}: {f.matched_records} confirmed records of {f.records_seen} seen; "
                     f"schema score {f.schema_score:.2f}")
        if f.categories:
            lines.append(f"  data exposed: {', '.join(f.categories)}")
        if f.labs:
            lines.append("  by lab: " + ", ".join(f"{k} {v}" for k, v in sorted(f.labs.items(), key=lambda x: -x[1])))
        if f.sample:
            lines.append(f"  redacted sample: {', '.join(f.sample)}")
    for e in f.errors:
        lines.append(f"  error: {e}")
    return "\n".join(lines)


@click.command("leaks")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_obj
def leaks_cmd(obj, as_json: bool) -> None:
    """List the enrolled leaks (counts and labs only: nothing identifying).

    \b
    Example:
      dumpwatch leaks
    """
    from dumpwatch import store

    rows = store.leaks(obj.db())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not rows:
        click.echo("No leak enrolled (see: dumpwatch enroll --help).")
    for r in rows:
        click.echo(f"{r['name']}: {r['records']} records, {len(r['labs'] or {})} labs, enrolled {r['enrolled_at']} "
                   f"from {r['source_file']}; categories: {', '.join(r['categories'] or [])}")


COMMANDS = [enroll, scan, leaks_cmd]

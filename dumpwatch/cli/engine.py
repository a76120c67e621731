"""`dumpwatch enroll`, `dumpwatch scan`: the engine's commands (`dumpwatch leaks` is in :mod:`dumpwatch.cli.leaks`).

`scan` never reports an input it could not read as clean: such an input has the verdict ``error``
with its reason, one read in part is marked incomplete, and the exit status says whether every
input was read in full (0), not (1), the command was misused (2), or ``--fail-on`` matched (3).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click

from dumpwatch.cli import tips
from dumpwatch.errors import DumpwatchError
from dumpwatch.escape import json_line, terminal
from dumpwatch.tables import table_of
from matchers.finding import ERROR, NONE, REPOST, SCHEMA_MATCH, VERDICTS, Finding


class _MapOption(click.Option):
    """``--map``: its help lists the kinds from the one place that defines them (matchers.schema),
    imported only when the help is shown."""

    def get_help_record(self, ctx: click.Context):
        from matchers.schema import KINDS

        self.help = (f"Override the column mapping; KIND is one of: {', '.join(KINDS)}. An empty KIND "
                     "ignores the column. COLUMN is a header name, a JSON key or a position (0, 1, …). "
                     "An unknown KIND or COLUMN is refused (exit 2).")
        return super().get_help_record(ctx)


class _EnrollProgress:
    """An enrollment's progress (``enroll_file``'s ``progress(nbytes, rows)``): a tqdm bar on stderr
    when it is a terminal (bytes read, rows enrolled, rows a second), otherwise one line on stderr
    every :attr:`EVERY` seconds (a 33-million-row file takes minutes; a log must show it moving)."""

    EVERY = 30.0

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.bytes, self.rows = total, desc, 0, 0
        self.start = self.said = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=desc, file=sys.stderr, leave=False)

    def __call__(self, nbytes: int, rows: int = 0) -> None:
        self.bytes += nbytes
        self.rows += rows
        now = time.monotonic()
        rate = self.rows / max(now - self.start, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.rows:,} rows, {rate:,.0f} rows/s", refresh=False)
            self.bar.update(nbytes)
        elif now - self.said >= self.EVERY:
            self.said = now
            done = f"{self.bytes / self.total:.0%} of {self.total / 1e9:.2f} GB, " if self.total else ""
            click.echo(f"{self.desc}: {done}{self.rows:,} rows enrolled, {rate:,.0f} rows/s "
                       f"({now - self.start:.0f} s)", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds: the hidden build directory and the workers go with it


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
@click.option("--map", "maps", multiple=True, metavar="COLUMN=KIND", cls=_MapOption)
@click.option("--replace", is_flag=True, help="Replace the index of a leak already enrolled under this name.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for a large plain CSV file (default: the number of CPUs).")
@click.pass_obj
def enroll(obj, file: str, leak: str, lab_column: str | None, maps: tuple[str, ...], replace: bool,
           workers: int | None) -> None:
    """Fingerprint a leaked FILE: keep keyed fingerprints only, never the cleartext.

    The file may be CSV (any delimiter, any encoding), JSON, HTML, key-value text, gzip or zip.
    The key is created on first use in HOME/secret/key (mode 0600) unless DUMPWATCH_KEY or
    DUMPWATCH_KEY_FILE is set. A name already enrolled is refused unless --replace is given
    (then its index is replaced by this file's; see also: dumpwatch leaks remove).

    --map checks each KIND against the schema's kinds at once, and each COLUMN against the
    file's columns once the file is read; either mistake exits with status 2, naming the valid
    ones (a mistyped --map would otherwise drop that column's fingerprints without a word).

    \b
    Examples:
      dumpwatch enroll export_labos.csv --leak labos-2021 --lab-column laboratoire
      dumpwatch enroll dump.json --leak other --map "num_ss=nir" --map "commentaire="
    """
    from dumpwatch import clock, store
    from matchers.enroll import MapError, check_map, enroll_file
    from matchers.index import check_leak_name
    from dumpwatch.engine_settings import limits_from

    check_leak_name(leak)
    if not replace:
        _refuse_enrolled(obj, leak)
    overrides = {}
    for m in maps:
        col, sep, kind = m.partition("=")
        if not sep or not col.strip():
            raise click.BadParameter(f"{m!r} is not COLUMN=KIND", param_hint="--map")
        overrides[col.strip()] = kind.strip()
    try:
        check_map(overrides)
    except MapError as exc:
        raise click.BadParameter(str(exc), param_hint="--map") from None
    home = obj.home.ensure()
    key = home.load_key(create=True)
    path = Path(file)
    progress = _EnrollProgress(path.stat().st_size, f"enroll {path.name}")
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main else None
    try:
        try:  # built beside where it is saved (memory-mapped, never all in memory), then renamed
            index, report = enroll_file(path, leak=leak, key=key, lab_column=lab_column, overrides=overrides,
                                        limits=limits_from(obj.config), progress=progress, stage=home.index_dir,
                                        workers=workers or os.cpu_count() or 1)
        except MapError as exc:
            raise click.BadParameter(str(exc), param_hint="--map") from None
        finally:
            progress.close()
        # meta["source_sha256"]: which file `findings patients` row numbers refer to
        try:
            db = obj.db()
            if replace:  # positions of earlier findings point into the old index: forgotten with it
                from alerts.patients import forget_leak

                forget_leak(db, leak)
            index.save(home.index_dir / leak)
        finally:
            index.discard()  # the hidden build directory, if it was not saved
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    store.save_leak(db, {"name": leak, "enrolled_at": clock.utcnow(), "source_file": path.name,
                         "records": report.records, "columns": report.columns, "labs": report.labs,
                         "categories": index.meta["categories"], "key_id": index.meta["key_id"]})
    click.echo(f"Enrolled leak {leak!r}: {report.records} records fingerprinted"
               + (f", {report.skipped} rows without NIR/email/phone skipped" if report.skipped else "") + ".")
    click.echo("Columns: " + ", ".join(f"{terminal(c)}→{k}" for c, k in report.columns.items()))
    if report.labs and list(report.labs) != ["(unknown)"]:
        click.echo(f"Labs: {len(report.labs)} (" + ", ".join(f"{terminal(n)}: {c}" for n, c in
                                                         sorted(report.labs.items(), key=lambda x: -x[1])[:5])
                   + (", …" if len(report.labs) > 5 else "") + ")")
    for err in report.errors:
        click.echo(f"warning: {terminal(err)}", err=True)
    click.echo(f"Index: {home.index_dir / leak}  (key: kept apart, never in the database)")


def _refuse_enrolled(obj, leak: str) -> None:
    """Exit 2 when ``leak`` is already enrolled: replacing it (3,000 records by 500) must be asked for."""
    from dumpwatch import store

    row = store.get_leak(obj.db(), leak) if obj.home.db_path.exists() else None
    if row is None and not (obj.home.index_dir / leak / "meta.json").exists():
        return
    held = terminal(f" ({row['records']} records, enrolled {row['enrolled_at']} from {row['source_file']})") if row else ""
    raise click.UsageError(f"leak {leak!r} is already enrolled{held}: pass --replace to replace its index, "
                           f"or choose another --leak name (see: dumpwatch leaks)")


def _is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


def _inputs(targets: tuple[str, ...]) -> Iterator[tuple[str, Finding | None]]:
    """Each input to scan, with the finding already known for one that cannot be read at all.

    Directories are walked recursively (symbolic links to directories are not followed); a
    directory that cannot be listed is an input of its own with verdict ``error``, never skipped.
    """
    for t in targets:
        if _is_url(t) or t == tips.STDIN:
            yield t, None
            continue
        try:
            st = os.stat(t)
        except FileNotFoundError:
            if "://" in t:
                yield t, Finding.unreadable(t, f"{t}: not a file, and not an http:// or https:// URL "
                                                "(the only ones scan fetches)")
            else:
                yield t, Finding.unreadable(t, f"{t}: no such file or directory")
            continue
        except OSError as exc:
            yield t, Finding.unreadable(t, f"{t}: cannot read ({exc.strerror or exc})")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(t)
        elif stat.S_ISREG(st.st_mode):
            yield t, None
        else:  # a pipe could block the scan forever, a device never end
            yield t, Finding.unreadable(t, f"{t}: not a regular file (device, pipe or socket); not read")


def _walk(top: str) -> Iterator[tuple[str, Finding | None]]:
    failed: list[OSError] = []
    for root, dirs, files in os.walk(top, onerror=failed.append):
        while failed:
            exc = failed.pop(0)
            where = exc.filename or root
            yield where, Finding.unreadable(where, f"{where}: cannot list this directory "
                                                   f"({exc.strerror or exc}); its files were not scanned")
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError as exc:
                yield path, Finding.unreadable(path, f"{path}: cannot read ({exc.strerror or exc})")
                continue
            if regular:  # pipes, sockets and devices in a directory hold no document: not inputs
                yield path, None
    for exc in failed:  # the top directory itself could not be listed
        where = exc.filename or top
        yield where, Finding.unreadable(where, f"{where}: cannot list this directory "
                                               f"({exc.strerror or exc}); its files were not scanned")


def _scan_file(scanner, path: str) -> Finding:
    try:  # fail here, with the reason, rather than as a scan of nothing
        with open(path, "rb"):
            pass
    except OSError as exc:
        return Finding.unreadable(path, f"{path}: cannot read ({exc.strerror or exc})")
    p = Path(path)
    size = p.stat().st_size
    bar, cb = _progress_bar(size, p.name) if size > 8 << 20 else (None, None)
    try:
        return scanner.scan_path(p, progress=cb)  # verdict error if it cannot be opened after all
    finally:
        if bar:
            bar.close()


def _scan_url(scanner, url: str, policy, limits, max_size: int | None, max_time: float, timeout: float) -> Finding:
    from dumpwatch.fetch import fetch

    cap, label = ((max_size, "--max-size") if max_size and max_size < limits.max_bytes
                  else (limits.max_bytes, "limits.max_bytes"))
    got = fetch(url, policy=policy, max_bytes=cap, max_time=max_time, timeout=timeout, size_limit=label)
    if got.body is None:
        return Finding.unreadable(url, got.error or f"{url}: nothing received")
    with got.body as fh:
        finding = scanner.scan_stream(fh, url)
    if got.error:  # only a first part was received: its verdict stands, marked incomplete
        finding = dataclasses.replace(finding, errors=(*finding.errors, got.error), complete=False)
    return finding


EXIT_OK, EXIT_UNREAD, EXIT_USAGE, EXIT_FOUND = 0, 1, 2, 3


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input on stdout, one per line.")
@click.option("--threshold", type=click.IntRange(min=1), default=None,
              help="Confirmed records needed for a 'repost' verdict (default 3, or scan.repost_threshold).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for one large plain CSV file (default: scan.workers, else the number of CPUs).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for a server (to connect, then between two reads of a URL).")
@click.option("--max-time", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              help="Seconds a URL's whole download may take (redirects included); past it the URL is "
                   "not scanned (verdict 'error').")
@click.option("--max-size", type=click.IntRange(min=1), default=None, metavar="BYTES",
              help="Bytes of a URL downloaded at most; past it the first part is scanned and marked "
                   "incomplete (default: [limits] max_bytes, 2 GiB).")
@click.option("--allow-private", is_flag=True,
              help="Fetch URLs on loopback and private networks (refused by default, like "
                   "[network] allow_private_networks = true; see docs/security.md).")
@click.option("--fail-on", "fail_on", type=click.Choice(["repost", "schema-match"]), default=None,
              help="Exit with status 3 when an input has this verdict ('schema-match': or 'repost').")
@click.option("--record", "record", is_flag=True,
              help="Record each repost or schema-match as a finding (alerts, evidence), like a crawled document.")
@click.option("--note", help="With --record: the tipster's note, kept with each finding (detail.tip).")
@click.option("--author", default=lambda: os.environ.get("USER") or os.environ.get("LOGNAME", ""),
              help="With --record: who records the tip (default $USER).")
@click.pass_obj
def scan(obj, targets: tuple[str, ...], as_json: bool, threshold: int | None, workers: int | None,
         timeout: float, max_time: float, max_size: int | None, allow_private: bool, fail_on: str | None,
         record: bool, note: str | None, author: str) -> None:
    """Scan files, directories (recursively) and http(s) URLs for reposts of enrolled leaks.

    Verdicts: 'repost' (at least THRESHOLD records of an enrolled leak confirmed, each by two
    independent fields), 'schema-match' (a table of the same kind, or many valid NIRs, with no
    confirmed record: possibly a new leak), 'none' (nothing of these in what was read), 'error' (could
    not be read at all: missing file, HTTP 404 or 5xx, refused connection, unknown host, malformed
    URL, timeout, an address the network policy refuses, longer than --max-time; the reason is in
    'errors'). An input read only in part keeps its verdict and is
    marked incomplete ('complete': false; its counts are a lower bound). One input's problems never
    stop the others. The JSON fields are documented in the README ("Scan JSON"). '-' reads standard
    input.

    With --record, a tip becomes a finding: each input with the verdict 'repost' or 'schema-match'
    is recorded like a crawled document (source 'tip'; the URL or file name, content SHA-256 and
    size, the --note), its alerts routed as configured; the JSON object gains 'finding_id'.

    \b
    Exit status:
      0  every input was read in full
      1  at least one input could not be read, or was read only in part (see its 'errors')
      2  usage error (bad option, missing key for an enrolled index, ...)
      3  with --fail-on: an input had that verdict (wins over 1; the errors are still printed)

    \b
    Examples:
      dumpwatch scan ~/Downloads/dump.zip
      dumpwatch scan ./collected/ https://paste.example/raw/Xy12 --json > results.jsonl
      dumpwatch scan https://paste.example/raw/Xy12 --fail-on repost || echo "look at it"
      curl -s https://paste.example/raw/Xy12 | dumpwatch scan -
      dumpwatch scan --record https://paste.example/raw/Xy12 --note "tip from a journalist, 2021-02-23"
    """
    from dumpwatch.engine_settings import scan_settings_from
    from dumpwatch.netpolicy import NetworkPolicy
    from matchers.scan import Scanner

    home = obj.home
    policy = NetworkPolicy.from_config(obj.config)
    if allow_private:
        policy = policy.opened()
    settings = scan_settings_from(obj.config, threshold=threshold, workers=workers)
    if not workers and "workers" not in table_of(obj.config, "scan"):
        settings = dataclasses.replace(settings, workers=os.cpu_count() or 1)
    limits = settings.limits
    try:
        key = home.load_key()
    except DumpwatchError:  # the key (dumpwatch.errors.SecretKeyError)
        if any(home.index_dir.glob("*/meta.json")):
            raise  # leaks are enrolled but their key is gone: scanning would find nothing of them
        key = os.urandom(32)  # nothing enrolled: schema matching only, no fingerprint to compare
    scanner = Scanner.from_index_dir(home.index_dir, key, settings)
    if not scanner.indexes and not as_json:
        click.echo("note: no leak enrolled yet; only schema matches can be reported "
                   "(see: dumpwatch enroll --help)", err=True)
    counts = dict.fromkeys(VERDICTS, 0)
    incomplete = 0
    if note and not record:
        raise click.UsageError("--note is kept only with --record")
    if record:
        obj.config  # a configuration error is said before anything is scanned
    for target, known in _inputs(targets):
        if known is not None:
            finding = known
        elif target == tips.STDIN:
            finding = tips.scan_stdin(scanner, limits.max_bytes)
        elif _is_url(target):
            finding = _scan_url(scanner, target, policy, limits, max_size, max_time, timeout)
        else:
            finding = _scan_file(scanner, target)
        counts[finding.verdict] += 1
        incomplete += finding.verdict != ERROR and not finding.complete
        recorded = tips.record(obj, finding, note=note, author=author) if record else None
        if as_json:
            click.echo(json_line({**finding.to_json(), **({"finding_id": recorded[0]} if recorded else {})}))
        else:
            click.echo(_summary(finding) + (f"\n  {recorded[1]}" if recorded else ""))
    total = sum(counts.values())
    tail = (f"{total} input(s): {counts[REPOST]} repost, {counts[SCHEMA_MATCH]} schema-match, "
            f"{counts[NONE]} none, {counts[ERROR]} error (could not be read)"
            + (f"; {incomplete} read only in part" if incomplete else ""))
    if not as_json:
        click.echo(tail)
    elif counts[ERROR] or incomplete:
        click.echo(f"dumpwatch scan: {tail}", err=True)
    if not total and not as_json:
        click.echo("note: no file found in the given directories", err=True)
    found = counts[REPOST] + (counts[SCHEMA_MATCH] if fail_on == SCHEMA_MATCH else 0)
    if fail_on and found:
        click.get_current_context().exit(EXIT_FOUND)
    if counts[ERROR] or incomplete:
        click.get_current_context().exit(EXIT_UNREAD)


def _summary(f: Finding) -> str:
    head = {REPOST: "REPOST", SCHEMA_MATCH: "SCHEMA-MATCH", NONE: "none", ERROR: "ERROR"}[f.verdict]
    t = terminal  # every value here may come from the input: its name, its members, its rows
    lines = [f"{head:12} {t(f.input)}"]
    if f.verdict == ERROR:
        lines.append("  could not be read: nothing in it was scanned")
    elif f.verdict != NONE or f.matched_records:
        which = f"leak {t(f.leak)}" if f.leak else "no enrolled leak (the schema of a lab-patient file)"
        lines.append(f"  {which}: {f.matched_records} confirmed records of {f.records_seen} seen; "
                     f"schema score {f.schema_score:.2f}")
        if f.categories:
            lines.append(f"  data exposed: {t(', '.join(f.categories))}")
        if f.labs:
            lines.append("  by lab: " + ", ".join(f"{t(k)} {v}" for k, v in sorted(f.labs.items(), key=lambda x: -x[1])))
        if f.sample:
            lines.append(f"  redacted sample: {', '.join(t(s) for s in f.sample)}")
    if f.verdict != ERROR and not f.complete:
        lines.append("  INCOMPLETE: part of this input could not be read; the counts are a lower bound")
    for e in f.errors:
        lines.append(f"  error: {t(e)}")
    return "\n".join(lines)


COMMANDS = [enroll, scan]

"""Enrollment: read a leaked file once, keep only keyed fingerprints of its records.

The cleartext file is streamed through extraction and the schema matcher (whose column mapping a
user can override); each row becomes strong fingerprints (NIR body, emails, phones, name + birth
date) and salted secondary fingerprints (name, surname, first name, birth date, postcode, name
bigrams), and its row number in the file (so that `dumpwatch findings patients` can tell a lab which
of its rows were found; a number, meaningless without the file). Nothing else of a row is kept; lab
names (the controllers) are kept in clear to attribute matches.

A large plain delimited file (:func:`enroll_file`) is enrolled on every core, as
:mod:`matchers.parallel` scans one: the head is read once through the normal extraction (encoding,
dialect, header, column mapping), the rest is cut into byte ranges on line ends, and each range is
read by ``csv.reader`` and fingerprinted in a forked process that writes an
:class:`~matchers.indexbuild.IndexPart`; the parent joins the parts in file order (record and row
numbers as a single process would give them). Anything unusual (compressed, not delimited, a header
that is not the first line, cells holding line breaks) is enrolled in one process.

The index is built in a hidden ``.enroll-*`` directory beside where it is saved, removed on every
exit path Python sees (an error, Ctrl-C, SIGTERM turned into an exception by the command); one left
by a killed enrollment is removed by the next (:func:`matchers.indexbuild.remove_stale`), and a
worker whose parent died stops at its next read. ``progress(nbytes, rows)`` is told the bytes read
and rows enrolled as they are done.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from matchers.errors import EnrollError, MapError
from matchers.fingerprint import key_id
from matchers import identifiers as ids
from matchers import schema as sch
from matchers.extract import Limits, extract
from matchers.fingerprint import Fingerprinter
from matchers.index import FORMAT, LeakIndex, check_leak_name
from matchers.indexbuild import IndexBuilder, IndexPart, finish_index, remove_stage, stage_dir
from matchers.profiles import PROFILE_ROWS
from matchers.enrollrows import enroll_rows

log = logging.getLogger(__name__)

MIN_PARALLEL_BYTES = 16 * 1024 * 1024  # smaller files are enrolled in one process
_MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")


def check_map(overrides: dict[str, str], columns: list[str] | None = None, width: int = 0) -> None:
    """Refuse a mapping override that would be silently ignored: an unknown kind, or (given the
    ``columns`` the file's tables have) a column the file lacks. An empty kind ignores a column;
    a column may also be given by its position (``0`` to ``width - 1``).

    Kinds are the schema's (:data:`matchers.schema.KINDS`). The message names the valid ones and
    the closest, so ``nir=nirr`` says "did you mean 'nir'?" instead of enrolling without NIRs.
    """
    from rapidfuzz import fuzz, process, utils

    def closest(word: str, choices: list[str]) -> str:
        best = process.extractOne(word, choices, scorer=fuzz.ratio, processor=utils.default_process,
                                  score_cutoff=70)
        return f"did you mean {best[0]!r}? " if best else ""

    for col, kind in overrides.items():
        if kind and kind not in sch.KINDS:
            raise MapError(f"unknown kind {kind!r} for column {col!r}: {closest(kind, list(sch.KINDS))}"
                           f"valid kinds: {', '.join(sch.KINDS)} (or nothing after '=' to ignore the column)")
    if columns is None:
        return
    # Matched as matchers.schema.map_columns matches: a position, a JSON key, or a folded name.
    folded = {ids.fold(c) for c in columns} - {""}
    for col in overrides:
        if not (col in columns or (int(col) < width if col.isdigit() else ids.fold(col) in folded)):
            shown = ", ".join(columns) if columns else "none (no table found)"
            raise MapError(f"no column {col!r} in the file: {closest(col, columns)}its columns: {shown}")


@dataclass(frozen=True)
class EnrollReport:
    leak: str
    records: int
    skipped: int  # rows without any usable identifier
    columns: dict[str, str]  # column name -> kind
    labs: dict[str, int]
    errors: tuple[str, ...]


def enroll_stream(stream: BinaryIO, name: str, *, leak: str, key: bytes, lab_column: str | None = None,
                  overrides: dict[str, str] | None = None, limits: Limits | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  stage: Path | None = None) -> tuple[LeakIndex, EnrollReport]:
    """Fingerprint every record of a leaked file; returns the index (not yet saved) and a report.

    ``stage``: the directory the index will be saved in (``HOME/index``); it is built there in a
    hidden directory, memory-mapped, and saving it is a rename. Without it, it is built in memory."""
    builder = None
    try:  # (an interrupt may come at any point: the builder is made inside, then discarded)
        builder = IndexBuilder(Fingerprinter(key), stage)
        return _enroll_stream(stream, name, builder, leak=leak, key=key, lab_column=lab_column,
                              overrides=overrides, limits=limits, progress=progress)
    except BaseException:
        if builder is not None:
            builder.discard()
        raise


def _enroll_stream(stream: BinaryIO, name: str, builder: IndexBuilder, *, leak: str, key: bytes,
                   lab_column: str | None, overrides: dict[str, str] | None, limits: Limits | None,
                   progress: Callable[[int, int], None] | None) -> tuple[LeakIndex, EnrollReport]:
    check_leak_name(leak)
    user_map = dict(overrides or {})
    check_map(user_map)
    overrides = dict(user_map)
    seen_columns: list[str] = []  # for the --map check: every table's column names, and widest row
    seen_width = 0
    if lab_column:
        overrides[lab_column] = "lab"
    errors: list[str] = []
    columns: dict[str, str] = {}
    header: list[str] = []
    skipped = 0
    row_number = 0  # 1-based data row of the file (header lines not counted), across its tables
    reader = _Progress(stream, progress) if progress else stream
    for table in extract(reader, name, limits or Limits(), errors):
        rows = iter(table.rows)
        sample = list(itertools.islice(rows, PROFILE_ROWS))
        if not sample:
            continue
        mapping = sch.map_columns(table.header, sample, overrides)
        seen_columns.extend(c for c in _column_names(table.header, sample) if c not in seen_columns)
        seen_width = max(seen_width, *(len(r) for r in sample if not isinstance(r, dict)), 0)
        if not mapping.kinds & {"nir", "email", "phone"}:
            errors.append(f"{table.source}: no NIR, email or phone column recognised; skipped "
                          "(name the columns with --map COLUMN=KIND)")
            continue
        if lab_column and "lab" not in mapping.kinds:
            raise EnrollError(f"{table.source}: no column named {lab_column!r} "
                              f"(columns: {', '.join(map(str, table.header or [])) or 'no header'})")
        names = table.header or [str(c) for c in range(max(len(r) for r in sample))] \
            if not isinstance(sample[0], dict) else list(sample[0])
        for col, kind in mapping.columns.items():
            label = names[col] if isinstance(col, int) and col < len(names) else str(col)
            columns[label] = kind
        header = header or list(table.header or [])
        n, skip = enroll_rows(itertools.chain(sample, rows), mapping, builder, row_number,
                              counted=(lambda k: progress(0, k)) if progress else None)
        row_number += n
        skipped += skip
    check_map(user_map, seen_columns, seen_width)
    if not len(builder):
        raise EnrollError(f"{name}: no record with a NIR, email or phone was found"
                          + (f" ({'; '.join(errors[:3])})" if errors else ""))
    index = builder.build(_meta(leak, key, columns, header, name))
    report = EnrollReport(leak=leak, records=len(index), skipped=skipped, columns=columns,
                          labs=dict(index.meta["lab_counts"]), errors=tuple(errors))
    return index, report


def enroll_file(path: Path, *, leak: str, key: bytes, lab_column: str | None = None,
                overrides: dict[str, str] | None = None, limits: Limits | None = None,
                progress: Callable[[int, int], None] | None = None, stage: Path | None = None,
                workers: int = 1, min_bytes: int = MIN_PARALLEL_BYTES) -> tuple[LeakIndex, EnrollReport]:
    """:func:`enroll_stream` of a file, on ``workers`` processes when it is a large plain delimited
    file (see the module's docstring); the index's meta holds the file's SHA-256 (``source_sha256``),
    computed by the parent while the workers fingerprint."""
    path = Path(path)
    check_leak_name(leak)
    user_map = dict(overrides or {})
    check_map(user_map)
    overrides = {**user_map, **({lab_column: "lab"} if lab_column else {})}
    head = _plan(path, limits or Limits(), overrides, workers, min_bytes)
    if head is None:
        with path.open("rb") as fh:
            index, report = enroll_stream(fh, str(path), leak=leak, key=key, lab_column=lab_column,
                                          overrides=user_map, limits=limits, progress=progress, stage=stage)
            index.meta["source_sha256"] = _sha256(path)
            return index, report
    table, mapping, sample, ranges, errors = head
    if lab_column and "lab" not in mapping.kinds:
        raise EnrollError(f"{path}: no column named {lab_column!r} "
                          f"(columns: {', '.join(map(str, table.header or [])) or 'no header'})")
    check_map(user_map, _column_names(table.header, sample), max(len(r) for r in sample))
    stage_ = None
    try:
        stage_ = stage_dir(stage)
        started = time.monotonic()
        parts, sha = _run_parts(path, key, table, mapping, ranges, stage_, progress)
        rows = [p[1] for p in parts]
        log.info("%s: %d rows fingerprinted by %d processes in %.0f s; joining the parts",
                 path.name, sum(rows), len(ranges), time.monotonic() - started)
        started = time.monotonic()
        names = list(table.header) if table.header else [str(c) for c in range(max(len(r) for r in sample))]
        columns = {(names[c] if c < len(names) else str(c)): k for c, k in mapping.columns.items()}
        meta = {**_meta(leak, key, columns, list(table.header or []), str(path)), "source_sha256": sha}
        index = finish_index(meta, [p[0] for p in parts], stage_,
                             [sum(rows[:i]) for i in range(len(rows))], in_memory=stage is None)
        log.info("%s: parts joined in %.0f s", path.name, time.monotonic() - started)
    except BaseException:
        if stage_ is not None:
            remove_stage(stage_)
        raise
    if not len(index):
        index.discard()
        raise EnrollError(f"{path}: no record with a NIR, email or phone was found")
    report = EnrollReport(leak=leak, records=len(index), skipped=sum(p[2] for p in parts), columns=columns,
                          labs=dict(index.meta["lab_counts"]), errors=tuple(errors))
    return index, report


def _sha256(path: Path, tick: Callable[[], None] | None = None) -> str:
    """The file's SHA-256 (``tick()`` called every 64 MB read: the workers' progress meanwhile)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for i in itertools.count():
            if not (chunk := fh.read(1 << 20)):
                break
            h.update(chunk)
            if tick and i % 64 == 63:
                tick()
    return h.hexdigest()


def _plan(path: Path, limits: Limits, overrides: dict[str, str], workers: int, min_bytes: int):
    """The head of a file that can be enrolled on ``workers`` processes, and its byte ranges (cut
    on line ends after the header); None when it must be read in one go."""
    size = path.stat().st_size
    if workers < 2 or size < max(min_bytes, 1):
        return None
    errors: list[str] = []
    with path.open("rb") as fh:
        if fh.read(8).startswith(_MAGIC):
            return None
        fh.seek(0)
        table = next(extract(fh, str(path), limits, errors), None)
        if table is None or table.kind != "delimited" or table.source != str(path) or not table.encoding:
            return None
        dialect = getattr(table.rows, "dialect", None)
        sample = list(itertools.islice(table.rows, PROFILE_ROWS))
    enc = table.encoding.lower().replace("_", "-")
    if dialect is None or not sample or "\n".encode(enc, "ignore") != b"\n" or enc.startswith(("utf-16", "utf-32")):
        return None
    if any("\n" in c or "\r" in c for r in sample for c in r):
        return None
    mapping = sch.map_columns(table.header, sample, overrides)
    if not mapping.kinds & {"nir", "email", "phone"}:
        return None  # the sequential path says why
    with path.open("rb") as fh:
        start = 0
        if table.header:
            first = fh.readline().decode("utf-8-sig" if enc == "utf-8" else enc, "replace")
            if next(csv.reader([first.rstrip("\r\n")], dialect), None) != list(table.header):
                return None  # the header is not simply the first line: do not guess
            start = fh.tell()
        cuts = [start]
        for k in range(1, workers):
            fh.seek(start + (size - start) * k // workers)
            fh.readline()
            cuts.append(max(fh.tell(), cuts[-1]))
        cuts.append(size)
    return table, mapping, sample, list(zip(cuts, cuts[1:])), errors


class _Range(io.RawIOBase):
    """A read-only window ``[start, end)`` of a binary file; counts what it read in ``done``. Read
    by a worker: it raises once the process that started it (``parent``) is gone."""

    def __init__(self, path: Path, start: int, end: int, done=None, parent: int | None = None):
        self.fh = path.open("rb")
        self.fh.seek(start)
        self.left, self.done, self.parent = end - start, done, parent

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.parent is not None and os.getppid() != self.parent:
            raise EnrollError("the enrollment this worker was part of is gone")
        data = self.fh.read(min(len(b), self.left)) if self.left > 0 else b""
        b[:len(data)] = data
        self.left -= len(data)
        if self.done is not None:
            with self.done.get_lock():
                self.done.value += len(data)
        return len(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


def _part(key: bytes, path: Path, enc: str, dialect, mapping: sch.Mapping, rng: tuple[int, int],
          directory: Path, done, rows_done=None, parent: int | None = None):
    """Fingerprint one byte range of the file into an :class:`IndexPart`: (summary, rows, skipped)."""
    if rng[0] == 0 and enc.lower().replace("_", "-") == "utf-8":
        enc = "utf-8-sig"
    part = IndexPart(Fingerprinter(key), directory)

    def counted(k: int) -> None:
        with rows_done.get_lock():
            rows_done.value += k

    with io.TextIOWrapper(io.BufferedReader(_Range(path, *rng, done, parent), 1 << 20), encoding=enc,
                          errors="replace", newline="") as text:
        rows, skipped = enroll_rows(csv.reader(text, dialect), mapping, part,
                                    counted=counted if rows_done is not None else None)
    return part.finish(), rows, skipped


def _child(conn, *args) -> None:
    try:
        conn.send_bytes(pickle.dumps(_part(*args)))
    except BaseException as exc:  # its type only: the message may quote a cell
        conn.send_bytes(pickle.dumps(EnrollError(f"enrollment worker failed with {type(exc).__name__}")))
    finally:
        conn.close()


def _run_parts(path: Path, key: bytes, table, mapping, ranges, stage: Path, progress):
    """One forked process per range; the parent hashes the file meanwhile. Returns each range's
    ``(summary, rows, skipped)`` in file order, and the file's SHA-256."""
    ctx = multiprocessing.get_context("fork")
    done, rows_done = ctx.Value("q", 0), ctx.Value("q", 0)
    procs = []
    reported = [0, 0]

    def report() -> None:
        if progress and (done.value, rows_done.value) != tuple(reported):
            now = done.value, rows_done.value
            progress(now[0] - reported[0], now[1] - reported[1])
            reported[:] = now

    finished = False
    try:
        for i, rng in enumerate(ranges):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, daemon=True,
                            args=(send, key, path, table.encoding, table.rows.dialect, mapping, rng,
                                  stage / f"part-{i}", done, rows_done, os.getpid()))
            p.start()
            send.close()
            procs.append((p, recv))
        sha = _sha256(path, report)
        out = []
        for p, recv in procs:
            while not recv.poll(0.5):  # returns at once when the worker exits: then recv raises EOFError
                report()
            try:
                got = pickle.loads(recv.recv_bytes())
            except EOFError:
                p.join(timeout=5)
                raise EnrollError(f"enrollment worker {p.pid} died (exit code {p.exitcode})") from None
            if isinstance(got, BaseException):
                raise got
            out.append(got)
        report()
        finished = True
        return out, sha
    finally:
        for p, recv in procs:
            recv.close()
            if not finished:  # an error or an interrupt: the others' work is lost anyway
                p.kill()
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


def _meta(leak: str, key: bytes, columns: dict[str, str], header: list[str], name: str) -> dict[str, Any]:
    kinds = set(columns.values())
    categories = [c for c, ks in (("identity", {"last_name", "first_name", "full_name", "birth_date"}),
                                  ("contact", {"email", "phone", "address"}), ("nir", {"nir"}),
                                  ("health", set(sch.HEALTH_KINDS))) if kinds & ks]
    return {"name": leak, "key_id": key_id(key), "columns": columns, "header": header,
            "categories": categories, "source_file": Path(name).name, "version": FORMAT}


def _column_names(header, sample) -> list[str]:
    """A table's column names as a ``--map`` gives them: its header, its JSON keys, or (no header)
    the positions ``0``, ``1``, …"""
    if isinstance(sample[0], dict):
        keys: list[str] = []
        for row in sample:
            keys.extend(str(k) for k in row if str(k) not in keys)
        return keys
    if header:
        return [str(h) for h in header if h]
    return [str(i) for i in range(max(len(r) for r in sample))]


class _Progress:
    """A stream that tells ``cb(nbytes, 0)`` how far into it reading got (a part read again after
    a seek back, as sniffing the head does, is not counted twice)."""

    def __init__(self, raw: BinaryIO, cb: Callable[[int, int], None]):
        self.raw, self.cb, self.seen = raw, cb, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        try:
            pos = self.raw.tell()
        except (OSError, ValueError, AttributeError):  # a pipe
            pos = self.seen + len(data)
        if pos > self.seen:
            self.cb(pos - self.seen, 0)
            self.seen = pos
        return data

    def __getattr__(self, item):
        return getattr(self.raw, item)

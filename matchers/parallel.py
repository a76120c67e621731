"""One large delimited file scanned on several cores: byte ranges cut on line ends.

Used by :meth:`matchers.scan.Scanner.scan_path` for plain (uncompressed) delimited files of at
least :data:`MIN_BYTES` when the scanner was given ``workers > 1``. The parent reads the head of
the file through the normal extraction to learn its encoding, dialect, header and column mapping
(:func:`plan`); each range is then parsed by its own ``csv.reader`` with that dialect and matched
with the same batch path (:meth:`matchers.match.Matcher.match_rows`), in forked children (the
memory-mapped indexes are shared by the fork), and the ranges' tallies are merged. Anything
unusual (a compressed or multi-table file, an encoding whose newline is not one byte, quoted
fields holding line breaks, a child that dies) makes the caller fall back to the sequential scan.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import multiprocessing
import pickle
from dataclasses import dataclass
from pathlib import Path


from matchers import schema as sch
from matchers.extract import Limits, extract
from matchers.match import Matcher
from matchers.tally import Tally, tally_for

log = logging.getLogger(__name__)

MIN_BYTES = 32 * 1024 * 1024
_MAGIC = (b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"Rar!")
PARENT_SHARE = 0.45  # the parent also hashes the whole file: give it a little less to parse


class WorkerFailed(RuntimeError):
    """A scan worker died or raised; the message names the cause, never the data."""


@dataclass(frozen=True)
class Plan:
    encoding: str
    dialect: type[csv.Dialect] | csv.Dialect
    mapping: sch.Mapping
    sample: list
    ranges: list[tuple[int, int]]


class _Range(io.RawIOBase):
    """A read-only window ``[start, end)`` of a binary file."""

    def __init__(self, path: Path, start: int, end: int, progress=None, scale: float = 1.0):
        self.fh = path.open("rb")
        self.fh.seek(start)
        self.left = end - start
        self.progress, self.scale = progress, scale

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        data = self.fh.read(n)
        b[: len(data)] = data
        self.left -= len(data)
        if self.progress:
            self.progress(int(len(data) * self.scale))
        return len(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


def plan(path: Path, limits: Limits, workers: int) -> Plan | None:
    """How to split ``path`` into ``workers`` ranges, or ``None`` when it must be scanned in one go."""
    size = path.stat().st_size
    if workers < 2 or size < MIN_BYTES:
        return None
    with path.open("rb") as fh:
        head = fh.read(8)
        if head.startswith(_MAGIC):
            return None
        fh.seek(0)
        errors: list[str] = []
        tables = extract(fh, str(path), limits, errors)
        table = next(tables, None)
        if table is None or table.kind != "delimited" or table.source != str(path) or not table.encoding:
            return None
        dialect = getattr(table.rows, "dialect", None)
        sample = list(itertools.islice(table.rows, 200))
    enc = table.encoding
    if dialect is None or "\n".encode(enc, "ignore") != b"\n" or enc.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return None
    if any("\n" in c or "\r" in c for r in sample for c in r):
        return None
    mapping = sch.map_columns(table.header, sample)
    if not mapping.kinds & {"nir", "email", "phone"}:
        return None
    with path.open("rb") as fh:
        start = 0
        if table.header:
            first = fh.readline()
            decoded = first.decode("utf-8-sig" if enc.lower().replace("_", "-") == "utf-8" else enc, "replace")
            if next(csv.reader([decoded.rstrip("\r\n")], dialect), None) != list(table.header):
                return None  # the header is not simply the first line: do not guess
            start = fh.tell()
        cuts = [start]
        for k in range(1, workers):
            share = PARENT_SHARE + (1 - PARENT_SHARE) * (k - 1) / (workers - 1)
            fh.seek(start + int((size - start) * share))
            fh.readline()
            cuts.append(max(fh.tell(), cuts[-1]))
        cuts.append(size)
    return Plan(enc, dialect, mapping, sample, list(zip(cuts, cuts[1:])))


def _match_range(matcher: Matcher, path: Path, plan_: Plan, rng: tuple[int, int],
                 progress=None) -> Tally:
    tally = tally_for(matcher.indexes)
    tally.kinds |= plan_.mapping.kinds
    enc = plan_.encoding
    if rng[0] == 0 and enc.lower().replace("_", "-") == "utf-8":
        enc = "utf-8-sig"
    # The parent's progress stands for all ranges: they advance at about the same pace.
    scale = path.stat().st_size / max(1, rng[1] - rng[0])
    with io.TextIOWrapper(io.BufferedReader(_Range(path, *rng, progress, scale), 1 << 20), encoding=enc,
                          errors="replace", newline="") as text:
        matcher.match_rows(csv.reader(text, plan_.dialect), plan_.mapping, tally)
    return tally


def _child(conn, matcher: Matcher, path: Path, plan_: Plan, rng: tuple[int, int]) -> None:
    try:
        t = _match_range(matcher, path, plan_, rng)
        matched = [h.matched for h in t.leaks]
        t.leaks = []
        conn.send_bytes(pickle.dumps((t, matched)))
    except BaseException as exc:  # report, never hang the parent
        conn.send_bytes(pickle.dumps(exc))
    finally:
        conn.close()


def scan_ranges(matcher: Matcher, path: Path, plan_: Plan, tally: Tally, progress=None) -> str:
    """Match every range into ``tally`` (children for all ranges but the first); returns the SHA-256."""
    ctx = multiprocessing.get_context("fork")
    for index in matcher.indexes:  # built once here, shared by the forked workers
        index.directory()
    procs = []
    for rng in plan_.ranges[1:]:
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(send, matcher, path, plan_, rng), daemon=True)
        p.start()
        send.close()
        procs.append((p, recv))
    try:
        mine = _match_range(matcher, path, plan_, plan_.ranges[0], progress)
        with path.open("rb") as fh:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
        parts = [(mine, None)]
        for p, recv in procs:
            try:
                got = pickle.loads(recv.recv_bytes())
            except EOFError:
                raise WorkerFailed(f"scan worker {p.pid} died (exit code {p.exitcode})") from None
            if isinstance(got, BaseException):  # its type only: the message may quote a cell
                raise WorkerFailed(f"scan worker failed with {type(got).__name__}") from None
            parts.append(got)
    finally:
        for p, recv in procs:
            recv.close()
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    for part, matched in parts:
        tally.merge(part)
        if matched is None:
            matched = [h.matched for h in part.leaks]
        for recs, hits in zip(matched, tally.leaks):
            hits.add(recs)
    return sha

"""The scanner: a document's bytes → tables → records → matches against every enrolled leak → Finding.

A record of a leak is *found* when at least two independent fields of one input record (a row, a
JSON object, a key-value block, or a line of text with its neighbours) match the same enrolled
record. Strong fields (NIR, email, phone) are looked up by keyed fingerprint; secondary fields
(name, birth date, postcode) are then checked against that one candidate with its salted
fingerprints, the name with a typo-tolerant comparison of salted bigram tokens (rapidfuzz), or by
its surname or first name alone when the input gives only one. An input record is credited to at
most one enrolled record, and an enrolled record is counted once.

Proofs are weighed by how often they happen by chance (``matchers.evidence``): a record checked
by secondary fields is confirmed once the whole input is read, only if its proofs keep the input's
expected number of chance confirmations small, and ``repost`` needs far more confirmed records
than chance would give for the input's size.

This module holds the entry points (:class:`Scanner`: a path, a stream, bytes), the hashing of
what is read, and the verdict. The matching itself is :mod:`matchers.match` (the batch path for
delimited tables and the per-record verification), told what each table is by its profile
(:mod:`matchers.profiles`); what one input accumulates is a :class:`matchers.tally.Tally`. A large
plain delimited file is split across processes by :mod:`matchers.parallel` (``workers > 1``).
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from matchers import evidence as ev
from matchers import proximity as prox
from matchers.errors import SettingsError
from matchers.extract import Limits, extract
from matchers.finding import NONE, REPOST, SCHEMA_MATCH, Finding, Positions
from matchers.fingerprint import Fingerprinter, key_id
from matchers.index import LeakIndex, load_all
from matchers.match import Matcher
from matchers.profiles import score_schema
from matchers.tally import LeakHits, Tally, tally_for

log = logging.getLogger(__name__)

SCHEMA_THRESHOLD = 0.45
NIR_THRESHOLD = 10  # valid NIRs (with key) that make an unknown document a schema match


class _HashingReader:
    """A read-only binary stream that hashes (SHA-256, unless the caller knows it) and counts what
    passes through it."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None] | None = None, hashing: bool = True):
        self.raw = raw
        self.sha = hashlib.sha256() if hashing else None
        self.size = 0
        self.progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if self.sha is not None:
            self.sha.update(data)
        self.size += len(data)
        if self.progress and data:
            self.progress(len(data))
        return data

    def read1(self, n: int = -1) -> bytes:
        return self.read(n if n and n > 0 else 65536)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    closed = False

    def close(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass(frozen=True)
class ScanSettings:
    """The engine's settings (the ``[scan]`` and ``[limits]`` tables of dumpwatch.toml, parsed by
    :func:`dumpwatch.engine_settings.scan_settings_from`)."""

    repost_threshold: int = 3
    limits: Limits = field(default_factory=Limits)
    workers: int = 1

    def __post_init__(self) -> None:
        for key in ("repost_threshold", "workers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"must be a whole number >= 1, not {value!r}", key=f"scan.{key}")


class Scanner:
    """Matches documents against the enrolled leaks it was given (pure: no network, no database)."""

    def __init__(self, indexes: Sequence[LeakIndex], key: bytes, *, repost_threshold: int = 3,
                 limits: Limits | None = None, workers: int = 1):
        self.indexes = list(indexes)
        self.workers = workers  # > 1: large plain delimited files are split across processes
        self.fpr = Fingerprinter(key)
        self.repost_threshold = repost_threshold
        self.limits = limits or Limits()
        self.matcher = Matcher(self.indexes, self.fpr)

    @classmethod
    def from_index_dir(cls, index_dir: Path, key: bytes, settings: ScanSettings | None = None,
                       **kwargs) -> "Scanner":
        """Every leak enrolled under ``index_dir``; ``settings`` (or keyword arguments) as in __init__."""
        if settings:
            kwargs = {"repost_threshold": settings.repost_threshold, "limits": settings.limits,
                      "workers": settings.workers, **kwargs}
        return cls(load_all(index_dir, key_id(key)), key, **kwargs)

    # -- entry points ------------------------------------------------------------------------------
    def scan_path(self, path: str | Path, *, progress: Callable[[int], None] | None = None) -> Finding:
        path = Path(path)
        try:
            if self.workers > 1 and self.indexes:
                finding = self._scan_parallel(path, progress)
                if finding:
                    return finding
            with path.open("rb") as fh:
                return self.scan_stream(fh, str(path), progress=progress)
        except OSError as exc:
            return Finding.unreadable(str(path), f"{path}: cannot read ({exc.strerror or type(exc).__name__})")

    def _scan_parallel(self, path: Path, progress: Callable[[int], None] | None = None) -> Finding | None:
        from matchers import parallel

        plan = parallel.plan(path, self.limits, self.workers)
        if plan is None:
            return None
        tally = tally_for(self.indexes)
        score_schema(plan.mapping, len(plan.sample), self.indexes, tally)
        try:
            sha = parallel.scan_ranges(self.matcher, path, plan, tally, progress)
        except Exception as exc:  # a worker died or a bug: the sequential scan reads it all again
            reason = str(exc) if isinstance(exc, parallel.WorkerFailed) else f"{type(exc).__name__} (a bug, please report)"
            log.warning("parallel scan of %s failed: %s; scanning it in one process", path, reason)
            return None
        return self._finding(str(path), tally, sha, path.stat().st_size, [])

    def scan_bytes(self, data: bytes, name: str, *, sha256: str | None = None) -> Finding:
        """Scan bytes in memory. ``sha256``: their SHA-256 (hex) when the caller already has it (the
        crawler does, for its seen-set): the finding carries it and the bytes are not hashed again."""
        import io

        return self.scan_stream(io.BytesIO(data), name, sha256=sha256)

    def scan_stream(self, stream: BinaryIO, name: str, *, progress: Callable[[int], None] | None = None,
                    sha256: str | None = None) -> Finding:
        reader = _HashingReader(stream, progress, hashing=sha256 is None)
        errors: list[str] = []
        tally = tally_for(self.indexes)
        try:
            for table in extract(reader, name, self.limits, errors):
                self.matcher.match_table(table, tally)
            reader.drain()
        except OSError as exc:
            errors.append(f"{name}: read error ({exc})")
        except Exception as exc:  # a bug must not stop a scan of many inputs: report it
            # Never the exception's message: it may quote a cell of the document (an identifier).
            frames = "".join(traceback.format_tb(exc.__traceback__, limit=-3))
            log.warning("scanning %s failed with %s (a bug, please report):\n%s", name, type(exc).__name__, frames)
            errors.append(f"{name}: internal error while scanning ({type(exc).__name__}); the rest was skipped")
        return self._finding(name, tally, sha256 or reader.sha.hexdigest(), reader.size, errors)

    @staticmethod
    def _completeness(t: Tally, errors: list[str]) -> bool:
        """Whether all of the input was matched; if not, say so in ``errors`` (counts, never values).

        An error reported by the extraction (a refused member, a read error, a bug) means part of
        the input was not read; records lost to an internal error are counted by the tally."""
        if t.failed:
            kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(t.failures.items()) if n)
            errors.append(f"{t.failed} record(s) could not be checked because of an internal error "
                          f"({kinds}, a bug, please report): the counts are a lower bound")
        if t.proximity.skipped:
            errors.append(f"{t.proximity.skipped} identifier(s) in text were counted but not checked (more "
                          f"than {prox.MAX_WINDOWS} text windows in one document): the counts are a lower bound")
        return not errors

    # -- verdict -----------------------------------------------------------------------------------
    def _finding(self, name: str, t: Tally, sha256: str, size: int, errors: list[str]) -> Finding:
        complete = self._completeness(t, errors)
        confirmed: dict[str, np.ndarray] = {}
        chance: dict[str, float] = {}
        for h in t.leaks:
            confirmed[h.index.name], chance[h.index.name] = self._decide(h, t)
        per_leak = {k: len(v) for k, v in confirmed.items()}
        best = max(t.leaks, key=lambda h: per_leak[h.index.name], default=None)
        matched = per_leak[best.index.name] if best else 0
        labs: dict[str, int] = {}
        records: Positions | dict = {}
        if best and matched:
            positions = confirmed[best.index.name]
            of_lab = np.asarray(best.index.lab[positions])
            counts = np.bincount(of_lab, minlength=len(best.index.labs))
            labs = {best.index.labs[i]: int(c) for i, c in enumerate(counts) if c}
            # Per lab, as tuples, only when the store reads them: the scan JSON does not print them.
            records = Positions(positions, of_lab, {i: best.index.labs[i] for i, c in enumerate(counts) if c})
        # A repost: enough records, and far more than chance would confirm in an input this size.
        beyond_chance = best is not None and ev.poisson_tail(matched, chance[best.index.name]) < ev.FALSE_ALARM
        if matched >= self.repost_threshold and not beyond_chance:
            log.warning("%s: %d records of %s confirmed, but %.3g are expected by chance in an input "
                        "this size: not called a repost", name, matched, best.index.name, chance[best.index.name])
        if matched >= self.repost_threshold and beyond_chance:
            verdict, leak = REPOST, best.index.name
        elif t.schema_score >= SCHEMA_THRESHOLD or (
                # Many NIRs whose key is right: random 15-digit numbers pass the key 1 time in 97.
                t.nir_keyed >= NIR_THRESHOLD and t.nir_keyed >= 0.5 * t.nir_shaped):
            verdict, leak = SCHEMA_MATCH, (best.index.name if matched else t.schema_leak)
        else:
            verdict, leak = NONE, (best.index.name if matched else None)
        categories = []
        if t.kinds & {"last_name", "first_name", "full_name", "birth_date", "sex", "address"}:
            categories.append("identity")
        if t.kinds & {"email", "phone", "address"}:
            categories.append("contact")
        if "nir" in t.kinds:
            categories.append("nir")
        if t.health or t.kinds & {"blood_group", "treatment", "pathology"}:
            categories.append("health")
        return Finding(
            input=name, verdict=verdict, leak=leak, matched_records=matched,
            records_seen=t.records_seen, schema_score=round(t.schema_score, 3),
            identifiers=dict(sorted(t.identifiers.items())), labs=labs, categories=tuple(categories),
            errors=tuple(errors), sha256=sha256, size=size,
            sample=tuple(t.sample) if matched or verdict != NONE else (),
            leaks={k: v for k, v in per_leak.items() if v}, complete=complete, records=records,
        )

    @staticmethod
    def _decide(hits: LeakHits, t: Tally) -> tuple[np.ndarray, float]:
        """Records of one leak confirmed in this input (sorted record numbers), and ``λ``, how many
        of them chance would give."""
        idx = hits.index
        matched = hits.matched  # two strong identifiers agree (fast path)
        e = t.evidence.get(idx.name)
        lam = 0.0
        if e is None and not len(matched):
            return matched, lam
        enrolled = {k: idx.enrolled(k) for k in ev.STRONG}
        enrolled["records"] = len(idx)
        if e is not None:
            accepted, lam = e.decide(enrolled, t.identifiers)
            matched = _union(matched, accepted)
        if len(hits.matched):
            lam += ev.strong_pair_lambda(enrolled, t.identifiers, e.candidates["phone"] if e else 0)
        return matched, lam


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The union of two sorted arrays of unique record numbers, sorted (a merge: the stable sort
    of two sorted runs is linear)."""
    if not len(a) or not len(b):
        return b if not len(a) else a
    return ev.sorted_unique(np.concatenate([a, b]), stable=True)

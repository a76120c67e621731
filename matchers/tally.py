"""What one input accumulates while the scanner matches it: per enrolled leak, the records two
strong identifiers confirmed at once (:class:`LeakHits`); the evidence of the records checked field
by field (:mod:`matchers.evidence`, decided once the whole input is read); counts of identifiers and
records seen, categories, a redacted sample, and the records an internal error kept from being
checked (the finding is then incomplete). Filled by :mod:`matchers.match`, read by
:mod:`matchers.scan` for the verdict, and merged range by range by :mod:`matchers.parallel`.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field

import numpy as np

from matchers import evidence as ev
from matchers import identifiers as ids
from matchers import proximity as prox
from matchers.index import LeakIndex
from matchers.records import Fields

log = logging.getLogger("matchers.scan")

SAMPLE_SIZE = 3


@dataclass
class LeakHits:
    """The records of one leak two strong identifiers of an input row confirmed at once (the batch
    path); the records checked field by field are in ``Tally.evidence``, decided when the input is
    read. Held as record numbers, gathered in blocks and folded to one sorted array when the blocks
    outgrow it: memory proportional to the input's matches, not to the index."""

    index: LeakIndex
    _folded: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _blocks: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def of(cls, index: LeakIndex) -> "LeakHits":
        return cls(index)

    def add(self, recs: np.ndarray) -> None:
        """Records (numbers in the index) confirmed."""
        if len(recs):
            self._blocks.append(np.asarray(recs, dtype=np.int64))
            if sum(map(len, self._blocks)) > max(len(self._folded), 1 << 16):
                self._fold()

    def _fold(self) -> None:
        self._folded = ev.sorted_unique(np.concatenate([self._folded, *self._blocks]))
        self._blocks = []

    @property
    def matched(self) -> np.ndarray:
        """The records confirmed: sorted, unique record numbers (int64)."""
        if self._blocks:
            self._fold()
        return self._folded

    def __contains__(self, rec: int) -> bool:
        m = self.matched
        i = int(np.searchsorted(m, rec))
        return i < len(m) and int(m[i]) == rec


@dataclass
class Tally:
    """What one input accumulates while its tables are matched."""

    leaks: list[LeakHits]
    # Per leak name: records checked one by one, decided when the input is read (matchers.evidence).
    evidence: dict[str, ev.Evidence] = field(default_factory=dict)
    records_seen: int = 0
    identifiers: dict[str, int] = field(default_factory=dict)
    kinds: set[str] = field(default_factory=set)
    health: bool = False
    schema_score: float = 0.0
    schema_leak: str | None = None
    nir_keyed: int = 0
    nir_shaped: int = 0
    sample: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # exception type -> records lost to it
    proximity: prox.Budget = field(default_factory=prox.Budget)

    def count(self, kind: str, n: int = 1) -> None:
        if n:
            self.identifiers[kind] = self.identifiers.get(kind, 0) + n

    def fail(self, exc: BaseException, records: int, where: str) -> None:
        """Count ``records`` lost to an unexpected error; log it without its message (it may quote
        a cell of the document, an identifier), with the last frames to find the bug."""
        name = type(exc).__name__
        if name not in self.failures:
            frames = "".join(traceback.format_tb(exc.__traceback__, limit=-3))
            log.warning("%s: %s while matching records (a bug, please report); the scan goes on:\n%s",
                        where, name, frames)
        self.failures[name] = self.failures.get(name, 0) + records

    @property
    def failed(self) -> int:
        """Records that could not be checked (an internal error): the counts are a lower bound."""
        return sum(self.failures.values())

    def snapshot(self) -> tuple:
        """The counters a batch adds to (undone when the batch is retried record by record; the
        evidence's per-record chance figures only ever decrease, so a retry sets them again)."""
        counts = {k: (dict(e.candidates), e.namedob_keys) for k, e in self.evidence.items()}
        return (self.records_seen, dict(self.identifiers), set(self.kinds), self.nir_keyed, self.nir_shaped, counts)

    def restore(self, snap: tuple) -> None:
        self.records_seen, self.identifiers, self.kinds, self.nir_keyed, self.nir_shaped, counts = snap
        for k, e in self.evidence.items():
            e.candidates, e.namedob_keys = counts.get(k, (dict.fromkeys(ev.ANCHORS, 0), 0))

    def evidence_of(self, index: LeakIndex) -> ev.Evidence:
        e = self.evidence.get(index.name)
        if e is None:
            e = self.evidence[index.name] = ev.Evidence(len(index))
        return e

    def merge(self, other: "Tally") -> None:
        """Add what another part of the same input gathered (a range scanned by another process):
        counts, categories, evidence, the records it could not check, its samples. The fast path's
        ``LeakHits`` are merged by the caller, which knows how the part sent them."""
        self.records_seen += other.records_seen
        for k, v in other.identifiers.items():
            self.count(k, v)
        self.kinds |= other.kinds
        self.health |= other.health
        self.nir_keyed += other.nir_keyed
        self.nir_shaped += other.nir_shaped
        for k, n in other.failures.items():
            self.failures[k] = self.failures.get(k, 0) + n
        self.merge_evidence(other)
        for s in other.sample:
            if len(self.sample) < SAMPLE_SIZE and s not in self.sample:
                self.sample.append(s)

    def merge_evidence(self, other: "Tally") -> None:
        for name, e in other.evidence.items():
            mine = self.evidence.get(name)
            if mine is None:
                self.evidence[name] = e
            else:
                mine.merge(e)

    def add_sample(self, f: Fields) -> None:
        if len(self.sample) >= SAMPLE_SIZE:
            return
        if f.nirs:
            s = ids.redact_nir(f.nirs[0])
        elif f.emails:
            s = ids.redact_email(f.emails[0])
        elif f.phones:
            s = ids.redact_phone(f.phones[0])
        else:
            return
        if s not in self.sample:
            self.sample.append(s)


def tally_for(indexes: list[LeakIndex]) -> Tally:
    """An empty tally for a scan against ``indexes``."""
    return Tally([LeakHits.of(i) for i in indexes])

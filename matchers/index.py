"""The keyed fingerprint index of one enrolled leak: built once, saved as arrays, memory-mapped.

On disk (``HOME/index/LEAK/``), numpy arrays and a small ``meta.json`` (counts, lab names, column
names, the key's public id), no cleartext value of the leak:

    strong_fp.npy  uint64  sorted keyed fingerprints of NIR bodies, emails, phones, name+birth date
    strong_rec.npy uint32  the enrolled record each belongs to
    strong_kind.npy uint8  which kind (see ``fingerprint.STRONG_KINDS``)
    salt.npy       uint64  per-record random salt of the secondary fingerprints
    name.npy dob.npy postcode.npy  uint64  salted fingerprints (0: field absent)
    surname.npy first_name.npy     uint64  salted fingerprints of the name's parts, when the leak's
                   columns tell them apart (format 2; an index of format 1 has none: see ``load``)
    lab.npy        uint16  index into meta["labs"]
    gram_off.npy gram.npy  uint32  salted name-bigram tokens of each record (CSR layout)
    row.npy        uint32  the record's row number in the enrolled file (1-based data row; format 3;
                   a number, meaningless without the file: see ``row_numbers``)
    dup_fp.npy     uint64  the strong fingerprints held by more than one record (format 4)

Loading maps the files (``mmap_mode="r"``): start-up costs milliseconds whatever the leak's size.
The arrays are handed out as plain ``ndarray`` views of the maps (``np.memmap``'s Python-level
``__getitem__`` cost a microsecond per record read, and nothing here needs the subclass).

Looking fingerprints up: a binary search of 125 million sorted fingerprints (a 33 M-record leak,
1 GB) touches 27 cache lines per query, far apart, most of them cold; the first large lookup of a
large index therefore builds a :class:`Directory` (every 64th fingerprint read once, 0.03–0.2 s
at 33 M records, 8 MB kept in memory), which narrows each query to a window of a few hundred
fingerprints, searched without branches in a few numpy passes: the same answers as
``np.searchsorted``, in half the time or less (docs/benchmarks.md, "Enrollment at scale").

An index of another format is refused with a message that says to enroll the leak again (format 4
changed the salted fingerprints: see :mod:`matchers.fingerprint`).

Building an index (a batch of records at a time, on disk, in a hidden directory beside where it
is saved) is :mod:`matchers.indexbuild`'s; saving it is then a rename (:meth:`LeakIndex.save`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matchers.errors import IndexFileError, LeakNameError
from matchers.fingerprint import STRONG_KINDS


LEAK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ARRAYS = ("strong_fp", "strong_rec", "strong_kind", "salt", "name", "dob", "postcode", "lab",
           "gram_off", "gram")
_OPTIONAL_ARRAYS = ("surname", "first_name")  # added in format 2
_ROW_ARRAY = "row"  # added in format 3
_DUPS = "dup_fp"  # added in format 4
FORMAT = 4


def check_leak_name(name: str) -> str:
    if not LEAK_NAME.fullmatch(name):
        raise LeakNameError(f"invalid leak name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


@dataclass
class LeakIndex:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    dup_fps: frozenset[int] = field(default_factory=frozenset)
    staged: Path | None = None  # the hidden directory it was built in, until saved
    staged_lock: int | None = None  # a descriptor holding its lock (matchers.indexbuild), until then
    _directory: "Directory | None" = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def labs(self) -> list[str]:
        return self.meta["labs"]

    def __len__(self) -> int:
        return int(self.meta["records"])

    # The per-record arrays, by explicit name: ``name`` is the leak's name, ``name_fp`` the
    # salted fingerprint of each record's name (a generic ``__getattr__`` once confused the two).
    @property
    def salt(self) -> np.ndarray:
        return self.arrays["salt"]

    @property
    def name_fp(self) -> np.ndarray:
        return self.arrays["name"]

    @property
    def dob(self) -> np.ndarray:
        return self.arrays["dob"]

    @property
    def postcode(self) -> np.ndarray:
        return self.arrays["postcode"]

    @property
    def surname_fp(self) -> np.ndarray:
        return self.arrays["surname"]

    @property
    def first_name_fp(self) -> np.ndarray:
        return self.arrays["first_name"]

    @property
    def lab(self) -> np.ndarray:
        return self.arrays["lab"]

    @property
    def row_numbers(self) -> np.ndarray | None:
        """Row number in the enrolled file of each record (None for an index built without them)."""
        return self.arrays.get(_ROW_ARRAY)

    def enrolled(self, kind: str) -> int:
        """How many fingerprints of one strong kind (``nir``, ``email``, ``phone``, ``namedob``) the leak holds."""
        counts = self.meta.get("kind_counts")
        if counts is None:  # an index enrolled before format 2
            counts = np.bincount(np.asarray(self.arrays["strong_kind"]), minlength=len(STRONG_KINDS) + 1).tolist()
            self.meta["kind_counts"] = counts
        return int(counts[STRONG_KINDS[kind]])

    def lookup(self, q: np.ndarray, *, shared: bool = False):
        """Enrolled record (int64) of each fingerprint in ``q`` (uint64), -1 when absent; 0 is absent.

        With ``shared``: ``(records, shared)``, ``shared`` true where the fingerprint is held by more
        than one record (it is in :attr:`dup_fps`): the fingerprint after the answer in the sorted
        array is then equal, read beside it (a neighbouring cache line, no second search)."""
        fps = self.arrays["strong_fp"]
        q = np.asarray(q, dtype=np.uint64)
        if len(fps) == 0 or len(q) == 0:
            out = np.full(len(q), -1, dtype=np.int64)
            return (out, np.zeros(len(q), dtype=bool)) if shared else out
        if len(q) <= _FEW:  # one record's identifiers: a search each, no numpy pass over a few
            vals = q.tolist()
            out = np.array([self._find(fps, v) for v in vals], dtype=np.int64)
            if not shared:
                return out
            return out, np.array([r >= 0 and v in self.dup_fps for v, r in zip(vals, out.tolist())], dtype=bool)
        order = np.argsort(q)  # sorted queries walk the index in order: fewer cache misses
        pos = np.empty(len(q), dtype=np.intp)
        d = self.directory() if len(q) >= DIRECTORY_QUERIES else self._directory
        pos[order] = d.lower_bound(fps, q[order]) if d else fps.searchsorted(q[order])
        last = len(fps) - 1
        np.minimum(pos, last, out=pos)  # past the end: compared with the last, never equal
        hit = (fps[pos] == q) & (q != 0)
        out = np.where(hit, self.arrays["strong_rec"][pos].astype(np.int64), -1)
        if not shared:
            return out
        # pos is the first equal one: another record holds it if the next one is equal too.
        has_next = hit & (pos < last)
        pos += has_next
        return out, has_next & (fps[pos] == q)

    def _find(self, fps: np.ndarray, fp: int) -> int:
        """:meth:`lookup` of one fingerprint (a Python int)."""
        d, lo, hi = self._directory, 0, len(fps)
        if d is not None:  # the window of its prefix (it holds the answer: see Directory)
            lo = int(d.start[fp >> d.bits_below])
            hi = min(hi, lo + d.width)
        i = lo + int(fps[lo:hi].searchsorted(np.uint64(fp)))
        return int(self.arrays["strong_rec"][i]) if fp and i < len(fps) and int(fps[i]) == fp else -1

    def directory(self) -> "Directory | None":
        """The lookups' :class:`Directory`, built on first use (None for an index small enough that a
        plain binary search stays in the cache). Built before a scan forks its workers, it is
        shared by them (:mod:`matchers.parallel`)."""
        if self._directory is None and len(self.arrays["strong_fp"]) >= DIRECTORY_MIN:
            self._directory = Directory(self.arrays["strong_fp"])
        return self._directory

    def all_records(self, fp: int) -> list[int]:
        """Every enrolled record holding this fingerprint (shared emails or phones in a family)."""
        fps = self.arrays["strong_fp"]
        lo = int(fps.searchsorted(np.uint64(fp), side="left"))
        hi = int(fps.searchsorted(np.uint64(fp), side="right"))
        return self.arrays["strong_rec"][lo:hi].tolist()

    def grams(self, rec: int) -> list[int]:
        off = self.arrays["gram_off"]
        return self.arrays["gram"][off[rec]:off[rec + 1]].tolist()

    # -- persistence -------------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write atomically: a new index replaces the old one only once fully written (an index
        built in a directory beside ``directory`` is renamed into place, not copied)."""
        directory = Path(directory)
        meta = json.dumps(self.meta, ensure_ascii=False, indent=1, sort_keys=True)
        if self.staged is not None and self.staged.parent.resolve() == directory.parent.resolve():
            tmp = self.staged  # still ``staged`` until renamed: a failure before leaves it to discard()
        else:
            tmp = directory.with_name(f".{directory.name}.tmp-{secrets.token_hex(4)}")
            tmp.mkdir(parents=True)
            for name in _ARRAYS + _OPTIONAL_ARRAYS + (_ROW_ARRAY,):
                np.save(tmp / f"{name}.npy", self.arrays[name])
            np.save(tmp / f"{_DUPS}.npy", np.array(sorted(self.dup_fps), dtype=np.uint64))
        (tmp / "meta.json").write_text(meta)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{secrets.token_hex(4)}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if tmp == self.staged:
            self.staged = None
            self._unlock()  # held until renamed: a stale stage is one no process holds
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return directory

    def discard(self) -> None:
        """Remove the hidden directory it was built in, unless it was saved."""
        if self.staged is not None:
            shutil.rmtree(self.staged, ignore_errors=True)
            self.staged = None
        self._unlock()

    def _unlock(self) -> None:
        if self.staged_lock is not None:
            os.close(self.staged_lock)
            self.staged_lock = None

    @classmethod
    def load(cls, directory: Path, key_id: str | None = None) -> "LeakIndex":
        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"index {directory} is unreadable ({exc}); enroll the leak again") from None
        version = meta.get("version", 1)
        if version != FORMAT:
            older = "an older" if isinstance(version, int) and version < FORMAT else "another"
            raise IndexFileError(
                f"index {directory.name} was enrolled by {older} dumpwatch (index format {version}, this one "
                f"reads format {FORMAT}): enroll the leak again (dumpwatch enroll FILE --leak "
                f"{directory.name} --replace)")
        if key_id and meta.get("key_id") != key_id:
            raise IndexFileError(
                f"index {directory.name} was built with another key (key id {meta.get('key_id')}, "
                f"current {key_id}): set DUMPWATCH_KEY/DUMPWATCH_KEY_FILE to the original key, or re-enroll"
            )
        try:
            arrays = {n: np.load(directory / f"{n}.npy", mmap_mode="r").view(np.ndarray)
                      for n in _ARRAYS + _OPTIONAL_ARRAYS + (_ROW_ARRAY,)}
            dups = frozenset(np.load(directory / f"{_DUPS}.npy").tolist())
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"index {directory} is unreadable ({exc}); enroll the leak again") from None
        return cls(meta=meta, arrays=arrays, dup_fps=dups)


class Directory:
    """Where the search for a fingerprint begins in a large sorted array, and how far it goes.

    Fingerprints are keyed hashes, spread evenly over 64 bits. Every :data:`SAMPLE_EVERY`-th one
    is read once (``sample``); for each value of the top ``bits`` bits of a fingerprint (a prefix),
    ``start`` holds the position of the last sampled fingerprint below the prefix's smallest
    value, and :attr:`width` (a power of two) bounds, for every prefix, the distance from there to
    the first sampled fingerprint above its largest value. The first fingerprint ``>= q`` (what
    ``np.searchsorted(fps, q)`` returns) is therefore in ``[start[prefix], start[prefix] + width]``,
    whatever the values: an uneven spread only widens the window (more passes), never a wrong
    answer. :meth:`lower_bound` then halves that window ``log2(width)`` times for all queries at
    once (one gather and two comparisons a pass), touching a few neighbouring cache lines per query
    instead of 27 scattered ones.
    """

    def __init__(self, fps: np.ndarray, every: int = 0):
        every = every or SAMPLE_EVERY
        n = len(fps)
        self.n = n
        sample = np.array(fps[::every], dtype=np.uint64)  # reads each page of ``fps`` once
        self.bits = max(1, min(32, len(sample).bit_length()))
        self.bits_below = 64 - self.bits
        self.shift = np.uint64(self.bits_below)
        counts = np.bincount((sample >> self.shift).astype(np.intp), minlength=1 << self.bits)
        del sample
        # With below[k] sampled fingerprints under prefix k (the sample is sorted), fps[lo] with
        # lo = (below[k] - 1) * every is under the prefix's smallest value (or lo = 0), and every
        # fingerprint from (below[k] + counts[k]) * every on is over its largest: a window of
        # (counts[k] + 1) * every from lo holds the answer.
        start = np.empty(len(counts), dtype=np.int64)
        np.cumsum(counts, out=start)
        start -= counts + 1
        span = (int(counts.max()) + 1) * every if n else 0
        del counts
        np.maximum(start, 0, out=start)
        start *= every
        self.width = 1 << max(0, span - 1).bit_length()  # the smallest power of two >= span
        np.minimum(start, max(0, n - self.width), out=start)  # shifted left: the window stays inside fps
        self.start = start.astype(np.uint32 if n < 1 << 32 else np.int64)

    def lower_bound(self, fps: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``np.searchsorted(fps, q)`` (side ``left``) for uint64 ``q``; ``fps`` the array it was built on."""
        if self.width > self.n:  # an index smaller than one window (only built that small in tests)
            return fps.searchsorted(q)
        base = self.start[(q >> self.shift).astype(np.intp)].astype(np.intp)
        probe = np.empty_like(base)
        value = np.empty(len(q), dtype=fps.dtype)
        less = np.empty(len(q), dtype=bool)
        half = self.width >> 1
        while half:  # the answer is in [base, base + 2 * half]
            np.add(base, half - 1, out=probe)
            np.take(fps, probe, out=value, mode="clip")  # in range: the window is inside fps
            np.less(value, q, out=less)
            np.add(base, half, out=base, where=less)
            half >>= 1
        np.take(fps, base, out=value, mode="clip")  # the answer is base or base + 1
        np.less(value, q, out=less)
        base += less
        return base


SAMPLE_EVERY = 64  # fingerprints per sampled one: 2 M sampled, 8 MB of directory at 33 M records
DIRECTORY_MIN = 1 << 21  # strong fingerprints (about 550,000 records) from which the directory pays
DIRECTORY_QUERIES = 1024  # a lookup this large builds it (a few identifiers of a post do not)
_FEW = 8


def load_all(index_dir: Path, key_id: str | None = None) -> list[LeakIndex]:
    """Every enrolled leak under ``index_dir`` (sorted by name)."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return []
    return [LeakIndex.load(d, key_id) for d in sorted(index_dir.iterdir())
            if d.is_dir() and not d.name.startswith(".") and (d / "meta.json").exists()]

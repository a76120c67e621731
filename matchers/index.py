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
An index of another format is refused with a message that says to enroll the leak again (format 4
changed the salted fingerprints: see :mod:`matchers.fingerprint`).

Building (:class:`IndexPart`, :func:`assemble`) never holds the leak's fingerprints in Python
objects: records are fingerprinted a batch at a time and written to flat files, strong
fingerprints spread over 64 bucket files by their top bits; joining the parts (one per enrolling
process, in file order) sorts one bucket at a time into the final arrays. 33 million records
stay within a few hundred MB of memory.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matchers.errors import IndexFileError, LeakNameError
from matchers.fingerprint import STRONG_KINDS, Fingerprinter, nir_int


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

    def lookup(self, q: np.ndarray) -> np.ndarray:
        """Enrolled record (int64) of each fingerprint in ``q`` (uint64), -1 when absent; 0 is absent."""
        fps = self.arrays["strong_fp"]
        if len(fps) == 0 or len(q) == 0:
            return np.full(len(q), -1, dtype=np.int64)
        order = np.argsort(q)  # sorted queries walk the index in order: fewer cache misses
        pos = np.empty(len(q), dtype=np.intp)
        pos[order] = np.searchsorted(fps, q[order])
        pos[pos >= len(fps)] = 0
        hit = (fps[pos] == q) & (q != 0)
        return np.where(hit, self.arrays["strong_rec"][pos].astype(np.int64), -1)

    def all_records(self, fp: int) -> list[int]:
        """Every enrolled record holding this fingerprint (shared emails or phones in a family)."""
        fps = self.arrays["strong_fp"]
        lo = int(np.searchsorted(fps, np.uint64(fp), side="left"))
        hi = int(np.searchsorted(fps, np.uint64(fp), side="right"))
        return [int(r) for r in self.arrays["strong_rec"][lo:hi]]

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
            tmp, self.staged = self.staged, None
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
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return directory

    def discard(self) -> None:
        """Remove the hidden directory it was built in, unless it was saved."""
        if self.staged is not None:
            shutil.rmtree(self.staged, ignore_errors=True)
            self.staged = None

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
            arrays = {n: np.load(directory / f"{n}.npy", mmap_mode="r")
                      for n in _ARRAYS + _OPTIONAL_ARRAYS + (_ROW_ARRAY,)}
            dups = frozenset(np.load(directory / f"{_DUPS}.npy").tolist())
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"index {directory} is unreadable ({exc}); enroll the leak again") from None
        return cls(meta=meta, arrays=arrays, dup_fps=dups)


def load_all(index_dir: Path, key_id: str | None = None) -> list[LeakIndex]:
    """Every enrolled leak under ``index_dir`` (sorted by name)."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return []
    return [LeakIndex.load(d, key_id) for d in sorted(index_dir.iterdir())
            if d.is_dir() and not d.name.startswith(".") and (d / "meta.json").exists()]


# -- building: a batch of records at a time, written to disk, sorted by buckets ---------------------------------

_STRONG = np.dtype([("fp", "<u8"), ("rec", "<u4"), ("kind", "u1")])  # one strong fingerprint, packed
_PER_RECORD = (("salt", "<u8"), ("name", "<u8"), ("dob", "<u8"), ("postcode", "<u8"), ("surname", "<u8"),
               ("first_name", "<u8"), ("lab", "<u2"), (_ROW_ARRAY, "<u4"), ("gram_n", "<u4"), ("gram", "<u4"))
BUCKET_BITS = 6  # strong fingerprints are spread over 64 files by their top bits, then each is sorted
BATCH = 1 << 15  # records fingerprinted together
_CHUNK = 1 << 22  # elements copied at a time when the parts are joined


@dataclass(frozen=True)
class PartSummary:
    """What one :class:`IndexPart` wrote: its directory and counts (crosses a process boundary)."""

    directory: Path
    records: int
    strong: int
    grams: int
    labs: tuple[str, ...]  # in the order of the part's own lab numbers
    lab_counts: dict[str, int]
    kind_counts: tuple[int, ...]
    bucket_bits: int


class IndexPart:
    """The records of one stretch of a leaked file, fingerprinted a batch at a time and written to
    ``directory`` as flat files: per-record arrays, and strong fingerprints spread over buckets by
    their top bits (record numbers local to the part). :func:`assemble` joins parts into an index.

    Memory stays that of one batch whatever the file's size; the keyed hashes of secondary values
    that repeat (names, birth dates, postcodes, bigrams) are computed once per distinct value.
    """

    def __init__(self, fingerprinter: Fingerprinter, directory: Path, *, batch: int = BATCH,
                 bucket_bits: int = BUCKET_BITS):
        self.fpr, self.dir, self.batch, self.bits = fingerprinter, Path(directory), batch, bucket_bits
        self.dir.mkdir(parents=True, exist_ok=True)
        self.files = {n: (self.dir / f"{n}.bin").open("wb") for n, _ in _PER_RECORD}
        self.buckets = [(self.dir / f"strong-{b:03d}.bin").open("wb") for b in range(1 << bucket_bits)]
        self.pending: list[tuple] = []
        self.records = self.strong = self.grams = 0
        self.labs: dict[str, int] = {}
        self.lab_counts: dict[str, int] = {}
        self.kind_counts = np.zeros(len(STRONG_KINDS) + 1, dtype=np.int64)

    def __len__(self) -> int:
        return self.records + len(self.pending)

    def add(self, *, nir: str | None, emails: list[str], phones: list[str], name: str | None,
            dob: str | None, postcode: str | None, lab: str | None,
            surname: str | None = None, first_name: str | None = None, row: int = 0) -> int:
        """Add one record from normalised values (``name``: the name key, whose bigrams are kept as
        salted tokens; ``row``: its row number in the enrolled file); returns its record number in
        this part."""
        rec = len(self)
        self.pending.append((nir, emails, phones, name, dob, postcode, lab, surname, first_name, row))
        if len(self.pending) >= self.batch:
            self.flush()
        return rec

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        n, fpr = len(batch), self.fpr
        nirs, emails, phones, names, dobs, postcodes, labs, surnames, firsts, rows = zip(*batch)
        salts = np.frombuffer(secrets.token_bytes(8 * n), dtype="<u8")
        parts: list[tuple[np.ndarray, list[int], int]] = []  # (fingerprints, records, kind)
        recs = [i for i, v in enumerate(nirs) if v]
        parts.append((fpr.numeric("nir", np.array([nir_int(nirs[i]) for i in recs], dtype=np.uint64)), recs, 1))
        recs, vals = [], []
        for i, ps in enumerate(phones):
            for p in dict.fromkeys(ps):
                recs.append(i)
                vals.append(int(p))
        parts.append((fpr.numeric("phone", np.array(vals, dtype=np.uint64)), recs, STRONG_KINDS["phone"]))
        recs, vals = [], []
        digest = fpr.hasher("email")
        for i, es in enumerate(emails):
            for e in dict.fromkeys(es):
                recs.append(i)
                vals.append(digest(e))
        parts.append((np.frombuffer(b"".join(vals), dtype="<u8"), recs, STRONG_KINDS["email"]))
        recs = [i for i in range(n) if names[i] and dobs[i]]
        digest = fpr.hasher("namedob")
        parts.append((np.frombuffer(b"".join([digest(f"{names[i]}|{dobs[i]}") for i in recs]), dtype="<u8"),
                      recs, STRONG_KINDS["namedob"]))
        strong = np.empty(sum(len(r) for _, r, _ in parts), dtype=_STRONG)
        at = 0
        for fps, recs, kind in parts:
            strong["fp"][at:at + len(recs)] = fps
            strong["rec"][at:at + len(recs)] = np.asarray(recs, dtype=np.uint32) + self.records
            strong["kind"][at:at + len(recs)] = kind
            self.kind_counts[kind] += len(recs)
            at += len(recs)
        bucket = (strong["fp"] >> np.uint64(64 - self.bits)).astype(np.intp)
        strong = strong[np.argsort(bucket, kind="stable")]
        ends = np.cumsum(np.bincount(bucket, minlength=len(self.buckets)))
        for b, fh in enumerate(self.buckets):
            strong[(ends[b - 1] if b else 0):ends[b]].tofile(fh)
        self.strong += len(strong)
        out = {"salt": salts, _ROW_ARRAY: np.array(rows, dtype=np.uint32)}
        for kind, values in (("name", names), ("dob", dobs), ("postcode", postcodes), ("surname", surnames),
                             ("first_name", firsts)):
            out[kind] = fpr.salted_many(kind, salts, list(values))
        out["lab"] = np.array([self._lab(lab) for lab in labs], dtype=np.uint16)
        counts, out["gram"] = fpr.tokens_many(salts, list(names))
        out["gram_n"] = counts.astype(np.uint32)
        self.grams += len(out["gram"])
        for name, dtype in _PER_RECORD:
            np.ascontiguousarray(out[name], dtype=dtype).tofile(self.files[name])
        self.records += n

    def _lab(self, lab: str | None) -> int:
        lab = (lab or "").strip() or "(unknown)"
        self.lab_counts[lab] = self.lab_counts.get(lab, 0) + 1
        got = self.labs.setdefault(lab, len(self.labs))
        if got > 0xFFFF:
            raise ValueError("more than 65,536 distinct labs: is --lab-column the right column?")
        return got

    def finish(self) -> PartSummary:
        self.flush()
        for fh in (*self.files.values(), *self.buckets):
            fh.close()
        return PartSummary(self.dir, self.records, self.strong, self.grams, tuple(self.labs), self.lab_counts,
                           tuple(int(c) for c in self.kind_counts), self.bits)


def _npy(path: Path, dtype: str, n: int):
    """A ``.npy`` file opened for writing its ``n`` elements after the header."""
    fh = path.open("wb")
    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                              "fortran_order": False, "shape": (n,)})
    return fh


def _chunks(path: Path, dtype: str):
    with path.open("rb") as fh:
        while len(a := np.fromfile(fh, dtype=dtype, count=_CHUNK)):
            yield a


def assemble(parts: list[PartSummary], directory: Path, row_offsets: list[int]) -> dict[str, Any]:
    """Join parts, in order, into the arrays of one index in ``directory`` (the parts' files are
    removed as they are read); ``row_offsets[i]``: rows of the file before part ``i``. Returns the
    counts for ``meta.json``. Memory: one bucket of strong fingerprints (1/64 of them) at a time."""
    labs: dict[str, int] = {}
    lab_counts: dict[str, int] = {}
    remap = []
    for p in parts:
        remap.append(np.array([labs.setdefault(lab, len(labs)) for lab in p.labs] or [0], dtype=np.uint16))
        for lab, c in p.lab_counts.items():
            lab_counts[lab] = lab_counts.get(lab, 0) + c
    records = sum(p.records for p in parts)
    rec_offsets = np.cumsum([0] + [p.records for p in parts]).tolist()
    for name, dtype in _PER_RECORD:
        if name == "gram_n":
            continue
        n = sum(p.grams for p in parts) if name == "gram" else records
        with _npy(directory / f"{name}.npy", dtype, n) as out:
            for i, p in enumerate(parts):
                for a in _chunks(p.directory / f"{name}.bin", dtype):
                    if name == "lab":
                        a = remap[i][a]
                    elif name == _ROW_ARRAY:
                        a = a + np.uint32(row_offsets[i])
                    a.astype(dtype, copy=False).tofile(out)
    with _npy(directory / "gram_off.npy", "<u4", records + 1) as out:
        carry = np.zeros(1, dtype=np.uint64)
        carry.astype("<u4").tofile(out)
        for p in parts:
            for a in _chunks(p.directory / "gram_n.bin", "<u4"):
                off = np.cumsum(a, dtype=np.uint64) + carry[0]
                off.astype("<u4").tofile(out)
                carry[0] = off[-1]
    total = sum(p.strong for p in parts)
    kinds = np.sum([p.kind_counts for p in parts], axis=0) if parts else np.zeros(len(STRONG_KINDS) + 1)
    dups = []
    outs = [_npy(directory / f"strong_{n}.npy", _STRONG[n].str, total) for n in ("fp", "rec", "kind")]
    try:
        for b in range(1 << (parts[0].bucket_bits if parts else 0)):
            chunk = []
            for p, off in zip(parts, rec_offsets):
                f = p.directory / f"strong-{b:03d}.bin"
                e = np.fromfile(f, dtype=_STRONG)
                f.unlink()
                e["rec"] += np.uint32(off)
                chunk.append(e)
            e = np.concatenate(chunk) if chunk else np.zeros(0, dtype=_STRONG)
            e = e[np.lexsort((e["rec"], e["fp"]))]
            for fh, n in zip(outs, ("fp", "rec", "kind")):
                np.ascontiguousarray(e[n]).tofile(fh)
            fp = e["fp"]
            dups.append(np.unique(fp[1:][fp[1:] == fp[:-1]]))
    finally:
        for fh in outs:
            fh.close()
    np.save(directory / "dup_fp.npy", np.concatenate(dups) if dups else np.zeros(0, dtype=np.uint64))
    for p in parts:
        shutil.rmtree(p.directory, ignore_errors=True)
    return {"records": records, "kind_counts": [int(k) for k in kinds],
            "labs": sorted(labs, key=labs.get), "lab_counts": lab_counts}


def stage_dir(parent: Path | None) -> Path:
    """A new hidden directory in which an index is built (``parent``: where it will be saved, so
    that saving is a rename; ``None``: the system's temporary directory)."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".enroll-", dir=parent))


def finish_index(meta: dict[str, Any], parts: list[PartSummary], stage: Path, row_offsets: list[int],
                 *, in_memory: bool) -> LeakIndex:
    """Assemble ``parts`` into ``stage`` and open the index: memory-mapped and staged there (saving
    it renames the directory), or read into memory and ``stage`` removed."""
    meta = {**meta, **assemble(parts, stage, row_offsets)}
    names = _ARRAYS + _OPTIONAL_ARRAYS + (_ROW_ARRAY,)
    arrays = {n: np.load(stage / f"{n}.npy", mmap_mode=None if in_memory else "r") for n in names}
    dups = frozenset(np.load(stage / "dup_fp.npy").tolist())
    if in_memory:
        shutil.rmtree(stage, ignore_errors=True)
        return LeakIndex(meta=meta, arrays=arrays, dup_fps=dups)
    return LeakIndex(meta=meta, arrays=arrays, dup_fps=dups, staged=stage)


class IndexBuilder:
    """One :class:`IndexPart` for a file read in one go; :meth:`build` makes the :class:`LeakIndex`
    (built in a hidden directory under ``directory``, or in memory when ``directory`` is None)."""

    def __init__(self, fingerprinter: Fingerprinter, directory: Path | None = None, *, batch: int = BATCH):
        self.stage = stage_dir(directory)
        self.in_memory = directory is None
        self.part = IndexPart(fingerprinter, self.stage / "part-0", batch=batch)
        self.add = self.part.add

    def __len__(self) -> int:
        return len(self.part)

    def build(self, meta: dict[str, Any]) -> LeakIndex:
        return finish_index(meta, [self.part.finish()], self.stage, [0], in_memory=self.in_memory)

    def discard(self) -> None:
        """Remove what was written (enrollment failed)."""
        for fh in (*self.part.files.values(), *self.part.buckets):
            fh.close()
        shutil.rmtree(self.stage, ignore_errors=True)

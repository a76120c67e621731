"""Building an index (:mod:`matchers.index`): records fingerprinted a batch at a time, written to
flat files, joined and sorted a bucket at a time; the hidden directory it is built in.

Nothing here holds the leak's fingerprints in Python objects: an :class:`IndexPart` takes records
a field at a time (:class:`Batch`, what :mod:`matchers.enrollrows` gives for a batch of rows, or
one record at a time through :meth:`IndexPart.add`), fingerprints them in a few calls per batch
(:mod:`matchers.fingerprint`) and appends them to files: per-record arrays, and strong
fingerprints spread over 64 bucket files by their top bits. :func:`assemble` joins the parts (one
per enrolling process, in file order) and sorts one bucket at a time into the index's arrays: 33
million records stay within a few hundred MB of memory.

An index is built in a hidden directory (``.enroll-*``) beside where it will be saved, so that
saving it is a rename. The process building it holds a lock on that directory (``flock``, which
the kernel releases when the process dies, however it dies): :func:`remove_stale` removes the
directories of enrollments that were killed, and only those.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matchers.fingerprint import STRONG_KINDS, Fingerprinter, nir_int
from matchers.index import _ARRAYS, _OPTIONAL_ARRAYS, _ROW_ARRAY, LeakIndex

log = logging.getLogger(__name__)

_STRONG = np.dtype([("fp", "<u8"), ("rec", "<u4"), ("kind", "u1")])  # one strong fingerprint, packed
_PER_RECORD = (("salt", "<u8"), ("name", "<u8"), ("dob", "<u8"), ("postcode", "<u8"), ("surname", "<u8"),
               ("first_name", "<u8"), ("lab", "<u2"), (_ROW_ARRAY, "<u4"), ("gram_n", "<u4"), ("gram", "<u4"))
_SALTED = ("name", "dob", "postcode", "surname", "first_name")
BUCKET_BITS = 6  # strong fingerprints are spread over 64 files by their top bits, then each is sorted
BATCH = 1 << 15  # records fingerprinted together
_CHUNK = 1 << 22  # elements copied at a time when the parts are joined
STAGE_PREFIX = ".enroll-"
_HELD: dict[str, int] = {}  # stage directory -> the descriptor holding its lock


@dataclass
class Batch:
    """Records to fingerprint, a field at a time: what :meth:`IndexPart.add_batch` takes.

    Strong identifiers come as numbers (``nir``: :func:`matchers.fingerprint.nir_int` of each
    record's NIR body, 0 without one) or as (record, value) pairs, each value once per record
    (``phone``: 9-digit national numbers; ``email``: normalised emails). The other fields hold one
    value per record (None or "" when absent): the name key (its bigrams become tokens), birth
    date, postcode, surname and first-name keys, the lab as written, and the row number."""

    nir: np.ndarray
    phone_rec: np.ndarray
    phone: np.ndarray
    email_rec: list[int]
    email: list[str]
    name: list[str | None]
    dob: list[str | None]
    postcode: list[str | None]
    surname: list[str | None]
    first_name: list[str | None]
    lab: list[str | None]
    row: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    @classmethod
    def of_records(cls, records: list[tuple]) -> "Batch":
        """From :meth:`IndexPart.add`'s records: (nir, emails, phones, name, dob, postcode, lab,
        surname, first_name, row) each, the emails and phones of a record as lists."""
        nirs, emails, phones, names, dobs, postcodes, labs, surnames, firsts, rows = zip(*records)
        phone_rec, phone, email_rec, email = [], [], [], []
        for i, (ps, es) in enumerate(zip(phones, emails)):
            for p in dict.fromkeys(ps):
                phone_rec.append(i)
                phone.append(int(p))
            for e in dict.fromkeys(es):
                email_rec.append(i)
                email.append(e)
        return cls(nir=np.array([nir_int(v) if v else 0 for v in nirs], dtype=np.uint64),
                   phone_rec=np.array(phone_rec, dtype=np.int64), phone=np.array(phone, dtype=np.uint64),
                   email_rec=email_rec, email=email, name=list(names), dob=list(dobs), postcode=list(postcodes),
                   surname=list(surnames), first_name=list(firsts), lab=list(labs),
                   row=np.array(rows, dtype=np.uint32))


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
        self.labs: dict[str, int] = {}  # lab (stripped) -> its number in this part
        self._lab_of: dict[str | None, int] = {}  # a lab cell as written -> its number
        self._lab_n = np.zeros(0, dtype=np.int64)  # records of each lab number
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

    def add_batch(self, batch: Batch) -> None:
        """Add a batch of records (after any added one at a time), fingerprinted and written at once."""
        self.flush()
        if len(batch):
            self._write(batch)

    def flush(self) -> None:
        if self.pending:
            records, self.pending = self.pending, []
            self._write(Batch.of_records(records))

    def _write(self, b: Batch) -> None:
        n, fpr = len(b), self.fpr
        salts = np.frombuffer(secrets.token_bytes(8 * n), dtype="<u8")
        recs = np.flatnonzero(b.nir)
        email, namedob = fpr.hasher("email"), fpr.hasher("namedob")
        both = np.fromiter(map(bool, b.name), dtype=bool, count=n) & np.fromiter(map(bool, b.dob), dtype=bool, count=n)
        names, dobs = (b.name, b.dob) if both.all() else \
            (list(itertools.compress(b.name, both)), list(itertools.compress(b.dob, both)))
        parts = [(fpr.numeric("nir", b.nir[recs]), recs, STRONG_KINDS["nir"]),
                 (fpr.numeric("phone", b.phone), b.phone_rec, STRONG_KINDS["phone"]),
                 (np.frombuffer(b"".join(map(email, b.email)), dtype="<u8"), b.email_rec, STRONG_KINDS["email"]),
                 (np.frombuffer(b"".join(map(namedob, map("{}|{}".format, names, dobs))), dtype="<u8"),
                  np.flatnonzero(both), STRONG_KINDS["namedob"])]
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
        for k, fh in enumerate(self.buckets):
            strong[(ends[k - 1] if k else 0):ends[k]].tofile(fh)
        self.strong += len(strong)
        out = {"salt": salts, _ROW_ARRAY: b.row}
        for kind in _SALTED:
            out[kind] = fpr.salted_many(kind, salts, getattr(b, kind))
        out["lab"] = self._lab_numbers(b.lab)
        counts, out["gram"] = fpr.tokens_many(salts, b.name)
        out["gram_n"] = counts.astype(np.uint32)
        self.grams += len(out["gram"])
        for name, dtype in _PER_RECORD:
            np.ascontiguousarray(out[name], dtype=dtype).tofile(self.files[name])
        self.records += n

    def _lab_numbers(self, labs: list[str | None]) -> np.ndarray:
        """Each record's lab number (a lab is its cell stripped, "(unknown)" when empty), counted."""
        got = list(map(self._lab_of.get, labs))
        if None in got:
            if len(self._lab_of) > (1 << 18):
                self._lab_of.clear()  # many spellings of few labs: forget the spellings, not the labs
            for i in [i for i, g in enumerate(got) if g is None]:
                lab = labs[i]
                got[i] = self._lab_of.get(lab)
                if got[i] is None:
                    name = (lab or "").strip() or "(unknown)"
                    got[i] = self._lab_of[lab] = self.labs.setdefault(name, len(self.labs))
            if len(self.labs) > 0x10000:
                raise ValueError("more than 65,536 distinct labs: is --lab-column the right column?")
        numbers = np.array(got, dtype=np.int64)
        counts = np.bincount(numbers, minlength=len(self.labs))
        counts[:len(self._lab_n)] += self._lab_n
        self._lab_n = counts
        return numbers.astype(np.uint16)

    @property
    def lab_counts(self) -> dict[str, int]:
        return {lab: int(self._lab_n[i]) for lab, i in self.labs.items()}

    def finish(self) -> PartSummary:
        self.flush()
        self.close()
        return PartSummary(self.dir, self.records, self.strong, self.grams, tuple(self.labs), self.lab_counts,
                           tuple(int(c) for c in self.kind_counts), self.bits)

    def close(self) -> None:
        for fh in (*self.files.values(), *self.buckets):
            fh.close()


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


# -- the hidden directory an index is built in --------------------------------------------------------------------

def stage_dir(parent: Path | None) -> Path:
    """A new hidden directory in which an index is built (``parent``: where it will be saved, so
    that saving is a rename; ``None``: the system's temporary directory), locked by this process
    until :func:`remove_stage`, or the index built there is saved or discarded (it takes the lock
    over: :func:`finish_index`). Stale ones under ``parent`` are removed first."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
        remove_stale(Path(parent))
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=parent))
    fd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new directory: nobody else holds it
    _HELD[str(stage)] = fd
    return stage


def release(stage: Path) -> None:
    """Let go of the lock on a stage directory (removed; an index built there holds its own lock)."""
    fd = _HELD.pop(str(stage), None)
    if fd is not None:
        os.close(fd)


def remove_stage(stage: Path) -> None:
    """Remove a stage directory (the enrollment failed, or its index was read into memory)."""
    shutil.rmtree(stage, ignore_errors=True)
    release(stage)


def remove_stale(parent: Path) -> list[Path]:
    """Remove the ``.enroll-*`` directories under ``parent`` that no living process holds (left by
    an enrollment that was killed); each is logged, and so is one that could not be removed. Returns
    those removed."""
    removed = []
    for d in sorted(Path(parent).glob(f"{STAGE_PREFIX}*")):
        if str(d) in _HELD or not d.is_dir():
            continue
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue  # removed meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # an enrollment still running
        finally:
            os.close(fd)  # (closing it releases the lock just taken)
        try:
            shutil.rmtree(d)
        except OSError as exc:  # said, and not counted as removed: it is tried again next time
            log.warning("could not remove %s, left by an enrollment that did not finish (%s): remove it "
                        "by hand", d, exc)
            continue
        log.warning("removed %s, left by an enrollment that did not finish (killed?)", d)
        removed.append(d)
    return removed


def finish_index(meta: dict[str, Any], parts: list[PartSummary], stage: Path, row_offsets: list[int],
                 *, in_memory: bool) -> LeakIndex:
    """Assemble ``parts`` into ``stage`` and open the index: memory-mapped and staged there (saving
    it renames the directory), or read into memory and ``stage`` removed."""
    meta = {**meta, **assemble(parts, stage, row_offsets)}
    names = _ARRAYS + _OPTIONAL_ARRAYS + (_ROW_ARRAY,)
    arrays = {n: np.load(stage / f"{n}.npy", mmap_mode=None if in_memory else "r") for n in names}
    dups = frozenset(np.load(stage / "dup_fp.npy").tolist())
    if in_memory:
        remove_stage(stage)
        return LeakIndex(meta=meta, arrays=arrays, dup_fps=dups)
    return LeakIndex(meta=meta, arrays=arrays, dup_fps=dups, staged=stage, staged_lock=_HELD.pop(str(stage), None))


class IndexBuilder:
    """One :class:`IndexPart` for a file read in one go; :meth:`build` makes the :class:`LeakIndex`
    (built in a hidden directory under ``directory``, or in memory when ``directory`` is None)."""

    def __init__(self, fingerprinter: Fingerprinter, directory: Path | None = None, *, batch: int = BATCH):
        self.stage = stage_dir(directory)
        self.in_memory = directory is None
        try:
            self.part = IndexPart(fingerprinter, self.stage / "part-0", batch=batch)
        except BaseException:
            remove_stage(self.stage)
            raise
        self.add, self.add_batch = self.part.add, self.part.add_batch

    def __len__(self) -> int:
        return len(self.part)

    def build(self, meta: dict[str, Any]) -> LeakIndex:
        return finish_index(meta, [self.part.finish()], self.stage, [0], in_memory=self.in_memory)

    def discard(self) -> None:
        """Remove what was written (enrollment failed)."""
        self.part.close()
        remove_stage(self.stage)

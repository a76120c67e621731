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

Loading maps the files (``mmap_mode="r"``): start-up costs milliseconds whatever the leak's size.
"""

from __future__ import annotations

import json
import logging
import os
from array import array
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matchers.errors import IndexFileError, LeakNameError
from matchers.fingerprint import NUMERIC_KINDS, STRONG_KINDS, Fingerprinter, nir_int

log = logging.getLogger(__name__)

LEAK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ARRAYS = ("strong_fp", "strong_rec", "strong_kind", "salt", "name", "dob", "postcode", "lab",
           "gram_off", "gram")
# Added in format 2: an older index lacks them and gets zeros (no surname-only or first-name-only proof).
_OPTIONAL_ARRAYS = ("surname", "first_name")
# Added in format 3: an older index has no row numbers (`dumpwatch findings patients` asks to re-enroll).
_ROW_ARRAY = "row"
FORMAT = 3


def check_leak_name(name: str) -> str:
    if not LEAK_NAME.fullmatch(name):
        raise LeakNameError(f"invalid leak name {name!r}: use letters, digits, '.', '_' or '-' (max 64)")
    return name


@dataclass
class LeakIndex:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    dup_fps: frozenset[int] = field(default_factory=frozenset)

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
        """Row number in the enrolled file of each record (None for an index older than format 3)."""
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
        """Write atomically: a new index replaces the old one only once fully written."""
        directory = Path(directory)
        tmp = directory.with_name(f".{directory.name}.tmp-{secrets.token_hex(4)}")
        tmp.mkdir(parents=True)
        for name in _ARRAYS + _OPTIONAL_ARRAYS + ((_ROW_ARRAY,) if _ROW_ARRAY in self.arrays else ()):
            np.save(tmp / f"{name}.npy", self.arrays[name])
        (tmp / "meta.json").write_text(json.dumps(self.meta, ensure_ascii=False, indent=1, sort_keys=True))
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{secrets.token_hex(4)}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory: Path, key_id: str | None = None) -> "LeakIndex":
        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text())
            arrays = {n: np.load(directory / f"{n}.npy", mmap_mode="r") for n in _ARRAYS}
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"index {directory} is unreadable ({exc}); enroll the leak again") from None
        if key_id and meta.get("key_id") != key_id:
            raise IndexFileError(
                f"index {directory.name} was built with another key (key id {meta.get('key_id')}, "
                f"current {key_id}): set DUMPWATCH_KEY/DUMPWATCH_KEY_FILE to the original key, or re-enroll"
            )
        missing = [n for n in _OPTIONAL_ARRAYS if not (directory / f"{n}.npy").exists()]
        for n in _OPTIONAL_ARRAYS:
            arrays[n] = (np.zeros(len(arrays["salt"]), dtype=np.uint64) if n in missing
                         else np.load(directory / f"{n}.npy", mmap_mode="r"))
        if (directory / f"{_ROW_ARRAY}.npy").exists():
            arrays[_ROW_ARRAY] = np.load(directory / f"{_ROW_ARRAY}.npy", mmap_mode="r")
        if missing:
            log.warning("index %s was enrolled by an older dumpwatch (format %s, current %s): a surname "
                        "alone or a first name alone is not a name proof against it; enroll the leak "
                        "again to use them", directory.name, meta.get("version", 1), FORMAT)
        fps = arrays["strong_fp"]
        dups = frozenset(int(x) for x in fps[1:][fps[1:] == fps[:-1]]) if len(fps) > 1 else frozenset()
        return cls(meta=meta, arrays=arrays, dup_fps=dups)


def load_all(index_dir: Path, key_id: str | None = None) -> list[LeakIndex]:
    """Every enrolled leak under ``index_dir`` (sorted by name)."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return []
    return [LeakIndex.load(d, key_id) for d in sorted(index_dir.iterdir())
            if d.is_dir() and not d.name.startswith(".") and (d / "meta.json").exists()]


class IndexBuilder:
    """Accumulates enrolled records' fingerprints; :meth:`build` makes the :class:`LeakIndex`."""

    def __init__(self, fingerprinter: Fingerprinter):
        # Compact typed arrays, not lists of Python ints: 491,840 records stay well under 500 MB.
        self.fpr = fingerprinter
        self.strong = {"value": array("Q"), "rec": array("I"), "kind": array("B")}
        self.numeric = {"value": array("Q"), "rec": array("I"), "kind": array("B")}
        self.salt = array("Q")
        self.name = array("Q")
        self.dob = array("Q")
        self.postcode = array("Q")
        self.surname = array("Q")
        self.first_name = array("Q")
        self.lab = array("H")
        self.gram_off = array("I", [0])
        self.gram = array("I")
        self.row = array("I")
        self.labs: dict[str, int] = {}
        self.lab_counts: dict[str, int] = {}

    def add(self, *, nir: str | None, emails: list[str], phones: list[str], name: str | None,
            dob: str | None, postcode: str | None, lab: str | None, grams: list[str],
            surname: str | None = None, first_name: str | None = None, row: int = 0) -> int:
        """Add one record from normalised values (``row``: its row number in the enrolled file);
        returns its record number."""
        rec = len(self.salt)
        salt = secrets.randbits(64)
        fpr = self.fpr
        # Numeric identifiers are fingerprinted a batch at a time in build().
        if nir:
            self._put(self.numeric, nir_int(nir), rec, "nir")
        for p in dict.fromkeys(phones):
            self._put(self.numeric, int(p), rec, "phone")
        for e in dict.fromkeys(emails):
            self._put(self.strong, fpr.fp("email", e), rec, "email")
        if name and dob:
            self._put(self.strong, fpr.fp("namedob", f"{name}|{dob}"), rec, "namedob")
        self.salt.append(salt)
        self.name.append(fpr.salted(salt, "name", name) if name else 0)
        self.dob.append(fpr.salted(salt, "dob", dob) if dob else 0)
        self.postcode.append(fpr.salted(salt, "postcode", postcode) if postcode else 0)
        self.surname.append(fpr.salted(salt, "surname", surname) if surname else 0)
        self.first_name.append(fpr.salted(salt, "first_name", first_name) if first_name else 0)
        lab = (lab or "").strip() or "(unknown)"
        self.lab.append(self.labs.setdefault(lab, len(self.labs)))
        self.lab_counts[lab] = self.lab_counts.get(lab, 0) + 1
        if grams:
            self.gram.extend(fpr.tokens(salt, grams))
        self.gram_off.append(len(self.gram))
        self.row.append(row)
        return rec

    @staticmethod
    def _put(table: dict[str, array], value: int, rec: int, kind: str) -> None:
        table["value"].append(value)
        table["rec"].append(rec)
        table["kind"].append(STRONG_KINDS[kind])

    def build(self, meta: dict[str, Any]) -> LeakIndex:
        nvalue = np.frombuffer(self.numeric["value"], dtype=np.uint64).copy()
        nkind = np.frombuffer(self.numeric["kind"], dtype=np.uint8)
        for kind in NUMERIC_KINDS:
            rows = nkind == STRONG_KINDS[kind]
            nvalue[rows] = self.fpr.numeric(kind, nvalue[rows])
        fp = np.concatenate([np.frombuffer(self.strong["value"], dtype=np.uint64), nvalue])
        rec = np.concatenate([np.frombuffer(self.strong["rec"], dtype=np.uint32),
                              np.frombuffer(self.numeric["rec"], dtype=np.uint32)])
        kinds = np.concatenate([np.frombuffer(self.strong["kind"], dtype=np.uint8), nkind])
        order = np.argsort(fp, kind="stable")
        arrays = {
            "strong_fp": fp[order],
            "strong_rec": rec[order],
            "strong_kind": kinds[order],
            "salt": np.array(self.salt, dtype=np.uint64),
            "name": np.array(self.name, dtype=np.uint64),
            "dob": np.array(self.dob, dtype=np.uint64),
            "postcode": np.array(self.postcode, dtype=np.uint64),
            "surname": np.array(self.surname, dtype=np.uint64),
            "first_name": np.array(self.first_name, dtype=np.uint64),
            "lab": np.array(self.lab, dtype=np.uint16),
            "gram_off": np.array(self.gram_off, dtype=np.uint32),
            "gram": np.array(self.gram, dtype=np.uint32),
            _ROW_ARRAY: np.array(self.row, dtype=np.uint32),
        }
        meta = {**meta, "records": len(self.salt),
                "kind_counts": np.bincount(kinds, minlength=len(STRONG_KINDS) + 1).tolist(),
                "labs": sorted(self.labs, key=self.labs.get), "lab_counts": self.lab_counts}
        fps = arrays["strong_fp"]
        dups = frozenset(int(x) for x in fps[1:][fps[1:] == fps[:-1]]) if len(fps) > 1 else frozenset()
        return LeakIndex(meta=meta, arrays=arrays, dup_fps=dups)

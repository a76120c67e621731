"""The rows of a leaked file → what its index keeps of each, a batch of rows at a time.

Enrollment (:mod:`matchers.enroll`) keeps of a row its first NIR body, its emails and phones, its
name key (and the surname and first name apart when the columns tell them), its first birth date
and postcode, and its lab: what :func:`matchers.records.from_mapped` finds in the row. For
delimited rows the same fields are computed a column at a time (:class:`_Columns`) and handed to
the index as one :class:`~matchers.indexbuild.Batch`: NIRs and phones written plainly are read
from digit matrices (:func:`nir_ints`, :func:`phone_ints`; any other cell takes the scalar
normaliser, so the result is exactly theirs), values that repeat across millions of rows (birth
dates, postcodes, name parts) are normalised once through a bounded cache. A property test checks
both paths give the same fields. The values live for the time it takes to fingerprint them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from matchers import identifiers as ids
from matchers import schema as sch
from matchers.columns import batched, column, email_column
from matchers.fingerprint import nir_int
from matchers.indexbuild import Batch
from matchers.records import from_mapped

if TYPE_CHECKING:
    from matchers.indexbuild import IndexBuilder, IndexPart

ROWS = 8192  # rows read and normalised together


def enroll_rows(rows: Iterable, mapping: sch.Mapping, builder: IndexBuilder | IndexPart,
                row_number: int = 0, counted: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Add every row that holds a strong identifier to ``builder`` (row numbers counted on from
    ``row_number``); returns how many rows were read and how many had none (skipped).
    ``counted(n)`` is told each batch's ``n`` rows as they are done (progress).

    Rows are taken a batch at a time and normalised a column at a time (:class:`_Columns`, what
    :func:`matchers.records.from_mapped` gives for the fields enrollment keeps; a property test
    checks they agree), handed to the builder as one :class:`~matchers.indexbuild.Batch`; JSON
    objects take ``from_mapped`` itself, one record at a time."""
    n = skipped = 0
    cols = _Columns(mapping)
    for batch in batched(rows, ROWS):
        if set(map(type, batch)) != {list} and any(isinstance(r, dict) for r in batch):
            for f in _fields_per_row(batch, mapping):
                n += 1
                if f is None:
                    skipped += 1
                    continue
                nir, emails, phones, name_key, dob, postcode, lab, last_key, first_key = f
                builder.add(nir=nir, emails=emails, phones=phones, name=name_key, dob=dob, postcode=postcode,
                            lab=lab, surname=last_key, first_name=first_key, row=row_number + n)
        else:
            got, kept = cols.batch(batch, row_number + n)
            if got is not None:
                builder.add_batch(got)
            n += len(batch)
            skipped += len(batch) - len(kept)
        if counted:
            counted(len(batch))
    return n, skipped


def _fields_per_row(batch: list, mapping: sch.Mapping) -> list[tuple | None]:
    """What enrollment keeps of each row (None: no strong identifier), by ``from_mapped``."""
    lab_col = (mapping.cols("lab") or [None])[0]
    out: list[tuple | None] = []
    for row in batch:
        f = from_mapped(row, mapping)
        if not f.has_strong():
            out.append(None)
            continue
        lab = None
        if lab_col is not None:
            lab = row.get(lab_col) if isinstance(row, dict) else (row[lab_col] if lab_col < len(row) else None)
        out.append((f.nirs[0] if f.nirs else None, f.emails, f.phones, f.names[0] if f.names else None,
                    f.dobs[0] if f.dobs else None, f.postcodes[0] if f.postcodes else None, lab,
                    f.last_key, f.first_key))
    return out


class _Memo:
    """A normaliser with a bounded cache, applied to a whole column: birth dates, postcodes and
    name parts repeat across millions of rows, so a column is mostly one C-level pass of look-ups."""

    def __init__(self, fn: Callable[[str], Any], size: int = 1 << 16, empty: Any = None):
        self.fn, self.size, self.empty, self.cache = fn, size, empty, {"": empty}

    def __call__(self, cells: list[str]) -> list:
        cache = self.cache
        out = list(map(cache.get, cells, itertools.repeat(_MISS)))
        if _MISS in out:
            misses = [i for i, v in enumerate(out) if v is _MISS]
            if len(cache) + len(misses) > self.size:
                cache.clear()
                cache[""] = self.empty
            fn = self.fn
            for i in misses:
                c = cells[i]
                out[i] = cache[c] = fn(c) if c else self.empty
        return out


_MISS = object()


def _pair_name(parts: tuple[str, ...]) -> str | None:
    parts = tuple(p for p in parts if p)
    return next((k for i in range(len(parts)) for j in range(i + 1, len(parts))
                 if (k := ids.name_key(parts[i], parts[j]))), None)


def _nir_body(cell: str) -> int:
    p = ids.nir_parts(cell) if cell else None
    return nir_int(p[0]) if p else 0


def _digits(cells: list[str], width: int) -> np.ndarray:
    """Cells of ``width`` ASCII digits each as a matrix of digits (one row per cell)."""
    return (np.frombuffer("".join(cells).encode("ascii"), dtype=np.uint8).reshape(len(cells), width) - 48
            ).astype(np.int64)


def nir_ints(cells: list[str]) -> np.ndarray:
    """:func:`matchers.fingerprint.nir_int` of each cell's NIR body (``identifiers.nir_parts``; 0:
    none). Cells of 15 or 13 ASCII digits (a NIR written plainly) are checked as digit matrices, a
    batch at once; any other cell (spaced, Corsica, not a NIR) takes ``nir_parts`` itself."""
    n = len(cells)
    out = np.zeros(n, dtype=np.uint64)
    if not "".join(cells).isascii():
        return np.fromiter(map(_nir_body, cells), dtype=np.uint64, count=n)
    lengths = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    plain = np.fromiter(map(str.isdigit, cells), dtype=bool, count=n)
    for width in (15, 13):
        at = np.flatnonzero(plain & (lengths == width))
        if not len(at):
            continue
        d = _digits([cells[i] for i in at.tolist()], width)
        body = d[:, :13] @ (10 ** np.arange(12, -1, -1, dtype=np.int64))
        ok = d[:, 0] != 0  # a NIR body starts with 1-9
        if width == 15:
            ok &= 97 - body % 97 == d[:, 13] * 10 + d[:, 14]
        out[at] = np.where(ok, body, 0).astype(np.uint64)
    for i in np.flatnonzero(~plain & (lengths > 0)).tolist():
        out[i] = _nir_body(cells[i])
    return out


_PHONE_SEP = str.maketrans("", "", " .-")


def _phone_nsn(cell: str) -> int:
    p = ids.phone_nsn(cell) if cell else None
    return int(p) if p else 0


def phone_ints(cells: list[str]) -> np.ndarray:
    """The 9-digit national number of each cell as an integer (``identifiers.phone_nsn``; 0: none).
    A cell that is ``0`` and nine digits, the first not 0, apart from spaces, dots and hyphens (a
    French number written plainly) is read from a digit matrix, a batch at once; any other cell
    (international, overseas, not a phone) takes ``phone_nsn`` itself."""
    n = len(cells)
    joined = "\n".join(cells)
    vals = joined.translate(_PHONE_SEP).split("\n")
    if not joined.isascii() or len(vals) != n:
        return np.fromiter(map(_phone_nsn, cells), dtype=np.uint64, count=n)
    lengths = np.fromiter(map(len, vals), dtype=np.int64, count=n)
    plain = np.fromiter(map(str.isdigit, vals), dtype=bool, count=n) & (lengths == 10)
    out = np.zeros(n, dtype=np.uint64)
    at = np.flatnonzero(plain)
    if len(at):
        d = _digits([vals[i] for i in at.tolist()], 10)
        ok = (d[:, 0] == 0) & (d[:, 1] != 0)
        nsn = d[:, 1:] @ (10 ** np.arange(8, -1, -1, dtype=np.int64))
        out[at[ok]] = nsn[ok].astype(np.uint64)
        plain[at[~ok]] = False
    for i in np.flatnonzero(~plain & (lengths > 0)).tolist():
        out[i] = _phone_nsn(cells[i])
    return out


class _Columns:
    """The fields enrollment keeps of a batch of delimited rows, a column at a time."""

    def __init__(self, mapping: sch.Mapping):
        self.m = mapping
        self.dates, self.postcodes = _Memo(ids.date_norm), _Memo(ids.postcode_norm)
        self.words = _Memo(lambda p: tuple(ids.name_tokens(p)), 1 << 17, ())  # each name part's sorted words
        self.pairs = _Memo(_pair_name)

    def _first(self, kind: str, rows: list, norm: _Memo) -> list:
        """The first valid value of the columns of ``kind`` in each row (None: none)."""
        lists = [norm(column(rows, c)) for c in self.m.cols(kind)]
        if not lists:
            return [None] * len(rows)
        return lists[0] if len(lists) == 1 else [next((x for x in xs if x), None) for xs in zip(*lists)]

    def _joined(self, rows: list, kind: str) -> list[str] | None:
        """from_mapped's ``last``/``first``/``full``: non-empty cells, each after a space."""
        cols = [column(rows, c) for c in self.m.cols(kind)]
        if not cols:
            return None
        if len(cols) == 1:  # its words are the cell's (name_tokens splits on spaces)
            return cols[0]
        return ["".join(f" {v}" for v in vs if v) for vs in zip(*cols)]

    def _names(self, rows: list) -> tuple[list, list, list]:
        """Each row's name key, surname key and first-name key (None: none): ``ids.name_key`` of
        (last, first, full), of last, of first, from each part's sorted words (cached); a row with
        no name part written takes the first name key of two headerless alphabetic columns."""
        n = len(rows)
        parts = [self._joined(rows, k) for k in ("last_name", "first_name", "full_name")]
        if all(p is None for p in parts):
            return self._pairs(rows, [None] * n, parts), [None] * n, [None] * n
        last, first, full = (self.words(p) if p is not None else [()] * n for p in parts)
        lw, fw = [" ".join(w) or None for w in last], [" ".join(w) or None for w in first]
        if parts[2] is None:  # the usual file: surname and first-name columns
            names = [(lk if not f else fk if not lt else " ".join(sorted(lt + f)))
                     for lt, f, lk, fk in zip(last, first, lw, fw)]
        else:
            names = [" ".join(sorted(lt + f + u)) or None for lt, f, u in zip(last, first, full)]
        return (self._pairs(rows, names, parts), lw if parts[0] is not None else [None] * n,
                fw if parts[1] is not None else [None] * n)

    def _pairs(self, rows: list, names: list, parts: list) -> list:
        """``names``, with the pair name of the headerless alphabetic columns for each row where
        no name part is written."""
        if not self.m.name_parts:
            return names
        blank = [i for i, ps in enumerate(zip(*(p for p in parts if p is not None))) if not any(ps)] \
            if any(p is not None for p in parts) else range(len(rows))
        if not blank:
            return names
        names = list(names)
        got = self.pairs([tuple(rows[i][c] if c < len(rows[i]) else "" for c in self.m.name_parts)
                          for i in blank])
        for i, g in zip(blank, got):
            names[i] = g
        return names

    def batch(self, rows: list, row_number: int) -> tuple[Batch | None, np.ndarray]:
        """The :class:`~matchers.indexbuild.Batch` of the rows that hold a strong identifier (row
        numbers from ``row_number + 1``; None when none does) and their positions in ``rows``."""
        n, m = len(rows), self.m
        nir = np.zeros(n, dtype=np.uint64)
        for c in m.cols("nir"):
            got = nir_ints(column(rows, c))
            nir = np.where(nir != 0, nir, got)
        phones = [phone_ints(column(rows, c)) for c in m.cols("phone")]
        emails = [email_column(column(rows, c)) for c in m.cols("email")]
        keep = nir != 0
        for p in phones:
            keep |= p != 0
        for e in emails:
            keep |= np.fromiter(map(bool, e), dtype=bool, count=n)
        kept = np.flatnonzero(keep)
        if not len(kept):
            return None, kept
        if len(kept) < n:
            at = kept.tolist()
            rows = [rows[i] for i in at]
            nir, phones = nir[kept], [p[kept] for p in phones]
            emails = [[e[i] for i in at] for e in emails]
        phone_rec, phone = _once_per_record(phones)
        email_rec: list[int] = []
        email: list[str] = []
        for j, col in enumerate(emails):  # each record's emails once, in column order
            at = [i for i, e in enumerate(col) if e and not any(emails[k][i] == e for k in range(j))] if j \
                else list(itertools.compress(range(len(col)), col))
            email_rec += at
            email += [col[i] for i in at] if j or len(at) < len(col) else col
        names, surnames, firsts = self._names(rows)
        labs = column(rows, m.cols("lab")[0]) if m.cols("lab") else [None] * len(rows)
        return Batch(nir=nir, phone_rec=phone_rec, phone=phone, email_rec=email_rec, email=email, name=names,
                     dob=self._first("birth_date", rows, self.dates),
                     postcode=self._first("postcode", rows, self.postcodes), surname=surnames,
                     first_name=firsts, lab=labs,
                     row=(kept + (row_number + 1)).astype(np.uint32)), kept


def _once_per_record(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(record, value) of each non-zero value of the columns, a value once per record."""
    recs, vals = [], []
    for j, col in enumerate(cols):
        ok = col != 0
        for k in range(j):
            ok &= col != cols[k]
        at = np.flatnonzero(ok)
        recs.append(at)
        vals.append(col[at])
    if not recs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(recs).astype(np.int64), np.concatenate(vals).astype(np.uint64)

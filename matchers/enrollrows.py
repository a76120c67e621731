"""The rows of a leaked file → what its index keeps of each, a batch of rows at a time.

Enrollment (:mod:`matchers.enroll`) keeps of a row its first NIR body, its emails and phones, its
name key (and the surname and first name apart when the columns tell them), its first birth date
and postcode, and its lab: what :func:`matchers.records.from_mapped` finds in the row. For
delimited rows the same fields are computed a column at a time (:class:`_Columns`), with the
normalisation of values that repeat across millions of rows (birth dates, postcodes, names)
cached; a property test checks both give the same fields. The values live for
the time it takes to fingerprint them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from matchers import identifiers as ids
from matchers import schema as sch
from matchers.columns import batched, column
from matchers.records import from_mapped

if TYPE_CHECKING:
    from matchers.index import IndexBuilder, IndexPart


def enroll_rows(rows: Iterable, mapping: sch.Mapping, builder: IndexBuilder | IndexPart,
                row_number: int = 0) -> tuple[int, int]:
    """Add every row that holds a strong identifier to ``builder`` (row numbers counted on from
    ``row_number``); returns how many rows were read and how many had none (skipped).

    Rows are taken a batch at a time and normalised a column at a time (:class:`_Columns`, what
    :func:`matchers.records.from_mapped` gives for the fields enrollment keeps; a property test
    checks they agree); JSON objects take ``from_mapped`` itself."""
    n = skipped = 0
    cols = _Columns(mapping)
    for batch in batched(rows, 4096):
        fields = cols.fields if not any(isinstance(r, dict) for r in batch) else _fields_per_row
        for f in fields(batch, mapping):
            n += 1
            if f is None:
                skipped += 1
                continue
            nir, emails, phones, name_key, dob, postcode, lab, last_key, first_key = f
            builder.add(nir=nir, emails=emails, phones=phones, name=name_key, dob=dob, postcode=postcode,
                        lab=lab, surname=last_key, first_name=first_key, row=row_number + n)
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


def _memo(fn: Callable[[str], Any], size: int = 1 << 16) -> Callable[[str], Any]:
    """``fn`` with a bounded cache: birth dates, postcodes and names repeat across millions of rows."""
    cache: dict = {}

    def get(v):
        try:
            return cache[v]
        except KeyError:
            if len(cache) >= size:
                cache.clear()
            got = cache[v] = fn(v)
            return got
    return get


_NO_NAME = (None, None, None)


def _pair_name(parts: tuple[str, ...]) -> str | None:
    parts = tuple(p for p in parts if p)
    return next((k for i in range(len(parts)) for j in range(i + 1, len(parts))
                 if (k := ids.name_key(parts[i], parts[j]))), None)


class _Columns:
    """The fields enrollment keeps of a batch of delimited rows, a column at a time."""

    def __init__(self, mapping: sch.Mapping):
        self.m = mapping
        nir = lambda v: (p[0] if (p := ids.nir_parts(v)) else None)  # noqa: E731
        self.norm = {"nir": nir, "email": ids.email_norm, "phone": ids.phone_nsn,
                     "birth_date": _memo(ids.date_norm), "postcode": _memo(ids.postcode_norm)}
        self.tokens = _memo(ids.name_tokens)  # surnames and first names repeat; full names less
        self.pairs = _memo(_pair_name)

    def _name_fields(self, parts: tuple[str, str, str]) -> tuple[str | None, str | None, str | None]:
        """``ids.name_key(last, first, full)``, ``name_key(last)``, ``name_key(first)`` from each
        part's sorted words (cached): the words of all three, sorted, are the whole name's."""
        last, first, full = parts
        words = [self.tokens(p) if p else [] for p in parts]
        return (" ".join(sorted(words[0] + words[1] + words[2])) or None,
                (" ".join(words[0]) or None) if last else None, (" ".join(words[1]) or None) if first else None)

    def _kind(self, batch: list, kind: str) -> list[list]:
        """One list per column of ``kind``: each cell normalised (None: empty or invalid)."""
        norm = self.norm[kind]
        return [[norm(c) if c else None for c in column(batch, col)] for col in self.m.cols(kind)]

    @staticmethod
    def _first(lists: list[list], n: int) -> list:
        if not lists:
            return [None] * n
        if len(lists) == 1:
            return lists[0]
        return [next((x for x in xs if x), None) for xs in zip(*lists)]

    @staticmethod
    def _all(lists: list[list], n: int) -> list[list]:
        if len(lists) == 1:
            return [[x] if x else [] for x in lists[0]]
        return [[x for x in xs if x] for xs in zip(*lists)] if lists else [[] for _ in range(n)]

    def _joined(self, batch: list, kind: str, n: int) -> list[str]:
        """from_mapped's ``last``/``first``/``full``: non-empty cells, each after a space."""
        cols = [column(batch, c) for c in self.m.cols(kind)]
        if not cols:
            return [""] * n
        return ["".join(f" {v}" for v in vs if v) for vs in zip(*cols)]

    def fields(self, batch: list, mapping: sch.Mapping) -> list[tuple | None]:
        n, m = len(batch), self.m
        nirs = self._first(self._kind(batch, "nir"), n)
        emails = self._all(self._kind(batch, "email"), n)
        phones = self._all(self._kind(batch, "phone"), n)
        dobs = self._first(self._kind(batch, "birth_date"), n)
        postcodes = self._first(self._kind(batch, "postcode"), n)
        labs = column(batch, m.cols("lab")[0]) if m.cols("lab") else [None] * n
        parts = zip(self._joined(batch, "last_name", n), self._joined(batch, "first_name", n),
                    self._joined(batch, "full_name", n))
        pairs = zip(*(column(batch, c) for c in m.name_parts)) if m.name_parts else itertools.repeat(None)
        names = [self._name_fields(p) if any(p) else ((self.pairs(q), None, None) if q else _NO_NAME)
                 for p, q in zip(parts, pairs)]
        return [(nir, em, ph, nm[0], dob, pc, lab, nm[1], nm[2])
                if nir or em or ph else None
                for nir, em, ph, dob, pc, lab, nm in zip(nirs, emails, phones, dobs, postcodes, labs, names)]

"""The per-record verification of rows with one strong identifier, a batch at a time.

On the batch path (:meth:`matchers.match.Matcher.match_rows`) a row whose fields agree on one
enrolled record through two strong identifiers is confirmed at once; a row whose *single* strong
identifier finds a record needs a second, secondary proof of that record: its birth date, postcode
or name against the candidate's salted fingerprints. :func:`verify_single` makes that check for all
such rows of a batch together, deciding each row exactly as :meth:`matchers.match.Matcher._verify`
does for the fields :func:`matchers.records.from_mapped` gives it
(tests/matchers/test_verify_batch.py states it with Hypothesis):

* the secondary fields are normalised a column at a time, each distinct cell once (birth dates,
  postcodes and name words repeat), and the salted fingerprints of a column are one AES call
  (:meth:`matchers.fingerprint.Fingerprinter.salted_many`) compared with the candidates' in numpy;
* the name proof: the full name exact, or the one part the row gives (surname or first name alone),
  or typo-tolerant (rapidfuzz on salted bigrams, row by row, only for the names that are not
  exact); an email that spells the name is one proof, not two;
* what each row proves goes to the evidence model per batch (:meth:`matchers.evidence.Evidence.confirm_many`).

Only tables whose mapping names its name columns take it (:func:`eligible`): headerless name
columns (any two words may be the name) stay on the per-record path.

Also :func:`name_proof`, the name check of that per-record path (one record, one candidate).
"""

from __future__ import annotations

import itertools
import operator
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from matchers import evidence as ev
from matchers import identifiers as ids
from matchers import schema as sch
from matchers.columns import column, email_column
from matchers.fingerprint import Fingerprinter
from matchers.index import LeakIndex

if TYPE_CHECKING:
    from matchers.records import Fields

NAME_DICE = 0.72  # one typo in a short name keeps about 3/4 of its bigrams
_TRIED = 6  # birth dates and postcodes of one record tried (Matcher._verify)
_CACHE = 1 << 17  # distinct cells whose normal form a cache keeps (then starts afresh)
# Name proofs, by code (0: none).
_NAME_KINDS = (None, "name", "name~", "surname", "first_name")
_NEW = object()  # a cell no cache holds yet (Normal.column)


def eligible(mapping: sch.Mapping) -> bool:
    """Whether rows of ``mapping`` may be verified by :func:`verify_single`."""
    return (not mapping.name_parts and len(mapping.cols("birth_date")) <= _TRIED
            and len(mapping.cols("postcode")) <= _TRIED)


class Normal:
    """Bounded caches of the normal form of cells (one per kind of field)."""

    def __init__(self) -> None:
        self._caches: dict[str, dict[str, object]] = {}

    def column(self, kind: str, cells: list[str], fn: Callable[[str], object], empty: object = None) -> list:
        """``fn(cell)`` of each non-empty cell (``empty`` for an empty one), each distinct cell once."""
        cache = self._caches.setdefault(kind, {"": empty})
        if len(cache) > _CACHE:
            cache.clear()
            cache[""] = empty
        out = list(map(cache.get, cells, itertools.repeat(_NEW)))  # C-level: most cells were seen
        if _NEW in out:
            for i in [i for i, v in enumerate(out) if v is _NEW]:
                c = cells[i]
                v = cache.get(c, _NEW)
                out[i] = cache[c] = fn(c) if v is _NEW else v
        return out


def _words(cell: str) -> tuple[str, ...]:
    """The name words of a cell as :func:`matchers.identifiers.name_tokens` takes them."""
    return tuple(w for w in ids.fold(cell).split() if len(w) > 1)


def _joined(per_col: list[list[tuple[str, ...]]], n: int) -> list[tuple[str, ...]]:
    """Per row, the words of every column of one kind, in column order."""
    if not per_col:
        return [()] * n
    if len(per_col) == 1:
        return per_col[0]
    return [sum(ws, ()) for ws in zip(*per_col)]


def verify_single(fpr: Fingerprinter, norm: Normal, rows: Sequence[Sequence[str]], mapping: sch.Mapping,
                  recs: np.ndarray, kinds: list[str], idx: LeakIndex, weigh: ev.Evidence) -> np.ndarray:
    """Verify each row of ``rows`` against its one candidate ``recs[i]``, found by its strong field of
    kind ``kinds[i]``; what each proves goes to ``weigh``. Returns whether each row was confirmed."""
    n = len(rows)
    recs = np.asarray(recs, dtype=np.int64)
    salts = np.asarray(idx.salt[recs], dtype=np.uint64)
    tries: dict[str, np.ndarray] = {}
    for kind, norm_fn, stored_arr in (("dob", ids.date_norm, idx.dob), ("postcode", ids.postcode_norm, idx.postcode)):
        cols = mapping.cols("birth_date" if kind == "dob" else kind)
        stored = np.asarray(stored_arr[recs], dtype=np.uint64)
        hit = np.zeros(n, dtype=bool)
        count = np.zeros(n, dtype=np.int64)
        for c in cols:
            vals = norm.column(kind, column(rows, c), norm_fn)
            present = np.fromiter(map(bool, vals), dtype=bool, count=n)
            count += present
            if present.any():
                hit |= present & (fpr.salted_many(kind, salts, vals) == stored)
        tries[kind] = np.where(hit & (stored != 0), count, 0)

    # Names: the words of each kind of name column, as from_mapped joins them.
    words = {k: _joined([norm.column("words", column(rows, c), _words, ()) for c in mapping.cols(k)], n)
             for k in ("last_name", "first_name", "full_name")}
    w_last, w_first, w_full = words["last_name"], words["first_name"], words["full_name"]
    toks = list(map(sorted, map(operator.add, map(operator.add, w_last, w_first), w_full)))
    keys = list(map(" ".join, toks))  # "" without a name
    has_last = np.fromiter(map(bool, w_last), dtype=bool, count=n)
    has_first = np.fromiter(map(bool, w_first), dtype=bool, count=n)
    name_code = np.zeros(n, dtype=np.int64)
    one_part = has_last != has_first
    part_words: dict[int, list[str]] = {}
    for code, kind, sel, ws, stored_arr in ((3, "surname", one_part & has_last, w_last, idx.surname_fp),
                                            (4, "first_name", one_part & has_first, w_first, idx.first_name_fp)):
        where = np.flatnonzero(sel)
        if len(where):
            values = [" ".join(sorted(ws[i])) for i in where.tolist()]
            stored = np.asarray(stored_arr[recs[where]], dtype=np.uint64)
            ok = (stored != 0) & (fpr.salted_many(kind, salts[where], values) == stored)
            name_code[where[ok]] = code
            for i, v in zip(where[ok].tolist(), np.array(values, dtype=object)[ok].tolist()):
                part_words[i] = v.split()
    full = ~one_part & np.fromiter(map(bool, keys), dtype=bool, count=n)
    stored_name = np.asarray(idx.name_fp[recs], dtype=np.uint64)
    where = np.flatnonzero(full & (stored_name != 0))
    if len(where):
        exact = fpr.salted_many("name", salts[where], [keys[i] for i in where.tolist()]) == stored_name[where]
        name_code[where[exact]] = 1
        where = where[~exact]
    if len(where):  # typo tolerance: Dice of the salted bigram multisets (rapidfuzz on int lists)
        from rapidfuzz import fuzz  # with the first mistyped name: a scan's start-up stays short

        counts, tokens = fpr.tokens_many(salts[where], [keys[i] for i in where.tolist()])
        ends = np.cumsum(counts).tolist()
        for i, end, count in zip(where.tolist(), ends, counts.tolist()):
            grams = idx.grams(int(recs[i]))
            if grams and fuzz.ratio(tokens[end - count:end].tolist(), grams) / 100 >= NAME_DICE:
                name_code[i] = 2
    # An email that spells the name is one proof, not two (jean.dupont@…).
    where = np.flatnonzero((name_code > 0) & (np.array(kinds) == "email"))
    if len(where):
        picked = [rows[i] for i in where.tolist()]
        spells = np.zeros(len(where), dtype=bool)
        for c in mapping.cols("email"):
            emails = email_column(column(picked, c))
            for j, (i, e, local) in enumerate(zip(where.tolist(), emails, _letters(emails))):
                words = part_words.get(i) or toks[i]
                if e and words and all(w in local for w in words):
                    spells[j] = True
        name_code[where[spells]] = 0

    confirmed = (tries["dob"] > 0) | (tries["postcode"] > 0) | (name_code > 0)
    kind_code = np.array([ev.STRONG.index(k) for k in kinds], dtype=np.int64)
    signature = ((kind_code * (_TRIED + 1) + tries["dob"]) * (_TRIED + 1) + tries["postcode"]) * 8 + name_code
    uniq, inverse = np.unique(signature, return_inverse=True)
    table = np.array([_chance(int(s)) for s in uniq.tolist()], dtype=np.float64)
    q = table[inverse]
    for code, kind in enumerate(ev.STRONG):
        of_kind = kind_code == code
        weigh.confirm_many(kind, recs[of_kind & confirmed], q[of_kind & confirmed])
        lost = int(np.count_nonzero(of_kind & ~confirmed))
        if lost:
            weigh.candidates[kind] += lost
    return confirmed


def name_proof(fpr: Fingerprinter, f: Fields, rec: int, salt: int,
               idx: LeakIndex) -> tuple[str, int, list[str]] | None:
    """The name proof the fields ``f`` of one record give for the enrolled record ``rec``
    (:meth:`matchers.match.Matcher._verify`): (kind, values tried, the name's words), or None.

    Kinds: ``name`` (full name, exact), ``surname`` or ``first_name`` (the input gives that part
    alone), ``name_part`` (a word that may be either: a short text line, a headerless column),
    ``name~`` (full name, typo-tolerant)."""
    if bool(f.last_key) != bool(f.first_key):
        # One part only (a "nom" column without "prenom"): compared with that part alone.
        kind, value, stored = (("surname", f.last_key, idx.surname_fp) if f.last_key
                               else ("first_name", f.first_key, idx.first_name_fp))
        s = int(stored[rec])
        if s and fpr.salted(salt, kind, value) == s:
            return kind, 1, value.split()
        return None
    names = f.names[:60]
    stored = int(idx.name_fp[rec])
    if stored and names and any(fpr.salted(salt, "name", n) == stored for n in names):
        return "name", len(names), f.name_tokens
    if f.singles:
        # Words that may be either part: each is tried as both (``name_part`` counts the two tries).
        words = f.singles[:_SINGLES_TRIED]
        for kind, arr in (("surname", idx.surname_fp), ("first_name", idx.first_name_fp)):
            s = int(arr[rec])
            if s:
                for w in words:
                    if fpr.salted(salt, kind, w) == s:
                        return "name_part", len(words), w.split()
    grams = idx.grams(rec) if stored and names else []
    if not grams:
        return None
    # Typo tolerance: Dice coefficient of the salted bigram multisets (rapidfuzz on int lists).
    from rapidfuzz import fuzz

    for n in names[:12]:
        mine = fpr.tokens(salt, ids.bigrams(n))
        if fuzz.ratio(mine, grams) / 100 >= NAME_DICE:
            return "name~", min(len(names), 12), f.name_tokens
    return None


_SINGLES_TRIED = 60  # words of a headerless name tried as either part


def _letters(emails: list[str | None]) -> list[str]:
    """The letters of each email's local part, folded (``fold(local).replace(" ", "")`` of
    :func:`matchers.identifiers.email_spells_name`), for a column in a few C passes."""
    text = "\n".join(e.partition("@")[0] if e else "" for e in emails)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
    return text.encode("ascii", "ignore").lower().translate(None, _NOT_LETTERS).decode("ascii").split("\n")


_NOT_LETTERS = bytes(c for c in range(256) if not (0x61 <= c <= 0x7A or c == 0x0A))


def _chance(signature: int) -> float:
    """``q`` of a row's proofs, built in the order :meth:`matchers.match.Matcher._verify` builds them."""
    rest, name_code = divmod(signature, 8)
    rest, pc = divmod(rest, _TRIED + 1)
    kind_code, dob = divmod(rest, _TRIED + 1)
    anchor = ev.STRONG[kind_code]
    proofs = {anchor: 1}
    if dob:
        proofs["dob"] = dob
    if pc:
        proofs["postcode"] = pc
    if name_code:
        proofs[_NAME_KINDS[name_code]] = 1
    return ev.chance(proofs, anchor)

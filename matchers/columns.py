"""Vectorised columns: a batch of cells of one column as integers, at C speed where possible.

The batch path (:meth:`matchers.match.Matcher.match_rows`) fingerprints whole columns of NIRs
and phones at once; these functions are :func:`matchers.identifiers.nir_parts` and
:func:`~matchers.identifiers.phone_nsn` vectorised with numpy (tests check they agree), plus the
batching and the picking of one column out of a batch of rows.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import operator
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from matchers import identifiers as ids
from matchers.fingerprint import nir_int

_NIR_STRIP = str.maketrans("", "", " .-_\u00a0\t")
_PHONE_STRIP = str.maketrans("", "", " .-_+()/\u00a0\t")
_CC = np.array([33, 262, 590, 594, 596, 269, 508, 681, 687, 689], dtype=np.int64)


def _strip_cells(cells: list[str], table: dict) -> list[str]:
    """``[c.translate(table) for c in cells]`` in two C calls (one join, one translate)."""
    joined = "\n".join(cells)
    out = joined.translate(table).split("\n")
    return out if len(out) == len(cells) else [c.translate(table) for c in cells]


def _int_cells(vals: list[str], longest: int) -> np.ndarray:
    """``[int(c) if c.isdecimal() and len(c) <= longest else 0 for c in vals]`` as int64, in a few
    C passes: the cells that are such numbers are right-aligned with ``0`` (which keeps their value)
    into one digit matrix, read with one dot product; the others (blank, letters, too long) are 0.
    Only non-ASCII decimal digits (``٣``), rare, are read by ``int``."""
    n = len(vals)
    if not n or not 0 < longest <= 18:  # 18 digits: the largest width an int64 always holds
        return np.array([int(c) if c.isdecimal() and len(c) <= longest else 0 for c in vals], dtype=np.int64)
    joined = "".join(vals)
    width = len(vals[0])
    if (0 < width <= longest and len(joined) == width * n and joined.isascii() and joined.isdecimal()
            and min(map(len, vals)) == width):
        # One width, digits only (a column of French phones, of NIRs): no padding needed.
        digits = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(n, width) - 48
        return digits.astype(np.int64) @ _POWERS[18 - width:]
    lengths = np.fromiter(map(len, vals), np.int64, n)
    ok = np.fromiter(map(str.isdecimal, vals), bool, n) & (lengths <= longest)
    cells = vals if ok.all() else [c if k else "" for c, k in zip(vals, ok.tolist())]
    padded = "".join(map(str.rjust, cells, itertools.repeat(longest, n), itertools.repeat("0", n)))
    if not padded.isascii():
        return np.array([int(c) if k else 0 for c, k in zip(cells, ok.tolist())], dtype=np.int64)
    digits = np.frombuffer(padded.encode("ascii"), dtype=np.uint8).reshape(n, longest) - 48
    return digits.astype(np.int64) @ _POWERS[18 - longest:]


_POWERS = 10 ** np.arange(17, -1, -1, dtype=np.int64)


def nir_column(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """NIR bodies of a column of cells as integers (``fingerprint.nir_int``; 0: not a NIR) and
    whether each carried a valid key: :func:`identifiers.nir_parts`, vectorised.

    A NIR never starts with 0, so the magnitude of the integer tells its length: 15 digits (with
    the key) from 10**14, a 13-digit body between 10**12 and 10**13. Corsican NIRs (``2A``/``2B``
    for the department, any case) are read by :func:`_corsican`, a batch of them at a time.
    """
    vals = _strip_cells(cells, _NIR_STRIP)
    v = _int_cells(vals, 18)
    long_ = (v >= 10**14) & (v < 10**15)
    short = (v >= 10**12) & (v < 10**13)
    body = np.where(long_, v // 100, v)
    keyed = long_ & (97 - body % 97 == v % 100)
    body = np.where(short | keyed, body, 0)
    # Cells of 13 or 15 characters that are not numbers: Corsica, or no NIR.
    lengths = np.fromiter(map(len, vals), np.int64, len(vals))
    for width in (13, 15):
        at = np.flatnonzero((v == 0) & (lengths == width))
        if len(at):
            body[at], keyed[at] = _corsican([vals[i] for i in at.tolist()], width)
    return body, keyed


def _corsican(vals: list[str], width: int) -> tuple[np.ndarray, np.ndarray]:
    """``nir_parts`` of cells of ``width`` (13 or 15) characters that are not all digits, as
    (``nir_int`` of the body, key valid): a NIR only if its department is ``2A``/``2B`` (any case),
    every other character a digit, the first not 0, and (15) the key right for the body read with
    19/18 for 2A/2B, as :func:`identifiers.nir_check_key` reads it. Non-ASCII cells: the scalar
    :func:`identifiers.nir_parts`."""
    n = len(vals)
    body = np.zeros(n, dtype=np.int64)
    keyed = np.zeros(n, dtype=bool)
    ascii_ = np.fromiter(map(str.isascii, vals), bool, n)
    for i in np.flatnonzero(~ascii_).tolist():
        p = ids.nir_parts(vals[i])
        if p:
            body[i], keyed[i] = nir_int(p[0]), p[1]
    at = np.flatnonzero(ascii_)
    if not len(at):
        return body, keyed
    m = np.frombuffer("".join([vals[i] for i in at.tolist()]).encode("ascii"), dtype=np.uint8)
    m = m.reshape(len(at), width).copy()
    dept = m[:, 6] & 0xDF  # upper case (ASCII letters; only A and B are kept)
    corsica = (m[:, 5] == 50) & ((dept == 65) | (dept == 66))  # "2" then "A" or "B"
    m[:, 5] = np.where(corsica, 49, m[:, 5])  # 2A → 19, 2B → 18, as the key reads them
    m[:, 6] = np.where(corsica, np.where(dept == 65, 57, 56), m[:, 6])
    digits = m - 48
    ok = corsica & (digits < 10).all(axis=1) & (digits[:, 0] > 0)
    value = digits[:, :13].astype(np.int64) @ _POWERS[5:]
    if width == 15:
        ok &= 97 - value % 97 == digits[:, 13].astype(np.int64) * 10 + digits[:, 14]
    body[at] = np.where(ok, value + np.where(dept == 65, _CORSICA_A, _CORSICA_B), 0)
    keyed[at] = ok & (width == 15)
    return body, keyed


# What nir_int adds to the body read with 19/18 to keep Corsica apart from departments 19 and 18.
_CORSICA_A = nir_int("100002A000000") - 1000019000000
_CORSICA_B = nir_int("100002B000000") - 1000018000000


def phone_column(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """9-digit national numbers of a column of French phones as integers (0: not a phone):
    :func:`identifiers.phone_nsn`, vectorised (``+33 (0)6…``, ``0033…``, overseas codes)."""
    vals = _strip_cells(cells, _PHONE_STRIP)
    v = _int_cells(vals, 14)
    g9, g10 = v // 10**9, v // 10**10
    nsn = np.where(v < 10**9, v, 0)
    nsn = np.where(np.isin(g9, _CC), v % 10**9, nsn)
    nsn = np.where(np.isin(g10, _CC) & (g9 % 10 == 0), v % 10**9, nsn)
    nsn = np.where(nsn >= 10**8, nsn, 0)
    return nsn, nsn > 0


def email_column(cells: list[str]) -> list[str | None]:
    """Normalised emails of a column of cells (None: not an email): :func:`identifiers.email_norm`,
    with the lower-casing done in one C call and the clean cells (most) matched in a C-level map;
    only cells that do not match as they are (spaces, quotes, ``<…>`` around) take the scalar path."""
    joined = "\n".join(cells).lower()
    low = joined.split("\n")
    if len(low) != len(cells):  # a cell held a line break
        return [ids.email_norm(c) if "@" in c else None for c in cells]
    out: list[str | None] = list(map(ids.email_clean, low))
    for i in [i for i, e in enumerate(out) if e is None]:
        c = cells[i]
        out[i] = ids.email_norm(c) if "@" in c else None
    return out


def email_digests(cells: list[str], digest: Callable[[str], bytes]) -> bytes:
    """The 8-byte fingerprints of a column of email cells, joined (``_ZERO`` where a cell holds no
    email): ``digest(email_norm(cell))``, with the lower-casing done in one C call and no pattern
    match for the clean cells (most).

    A cell with nothing around the address (no white space, ``<>``, quote at either end) is
    fingerprinted lower-cased as it is, valid or not: :func:`identifiers.email_norm` would give
    that same text or nothing, and a text it rejects is no enrolled email (the index holds only
    normalised ones), so its fingerprint finds nothing (what an absent email finds). The other
    cells (and empty ones), found by their length stripped or not (C-level maps; skipped when
    one scan of the column finds no character :func:`identifiers.email_norm` strips), take
    :func:`identifiers.email_norm`."""
    joined = "\n".join(cells).lower()
    low = joined.split("\n")
    if len(low) != len(cells):  # a cell held a line break
        return b"".join(digest(e) if (e := ids.email_norm(c) if "@" in c else None) else _ZERO for c in cells)
    out = list(map(digest, low))
    n = len(low)
    if _AROUND.search(joined) is None:  # one C scan: nothing around any cell; only empty ones are odd
        odd = np.fromiter(map(len, low), np.int64, n) == 0 if "" in low else np.zeros(0, dtype=bool)
    else:
        lengths = np.fromiter(map(len, low), np.int64, n)
        odd = (lengths == 0) | (lengths != np.fromiter(map(len, map(_STRIP_ENDS, low)), np.int64, n))
    for i in np.flatnonzero(odd).tolist():
        e = ids.email_norm(cells[i]) if "@" in cells[i] else None
        out[i] = digest(e) if e else _ZERO
    return b"".join(out)


# What email_norm strips at either end of a cell: white space (str.isspace), <>, quotes.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
              "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_STRIP_ENDS = operator.methodcaller("strip", WHITESPACE + "<>\"'")
_AROUND = re.compile(r"[^\S\n]|[<>\"']")  # what _STRIP_ENDS strips, the cells' separator "\n" aside
_ZERO = b"\0" * 8


SHORT = frozenset(range(15))  # cell lengths that cannot hold a NIR with its key


def column(batch: list[Sequence[str]], c: int) -> list[str]:
    """Cell ``c`` of every row ("" where a ragged row is too short), at C speed when none is."""
    try:
        return list(map(operator.itemgetter(c), batch))
    except IndexError:
        return [r[c] if c < len(r) else "" for r in batch]


def pick(cells: list[str], at: np.ndarray) -> list[str]:
    """``[cells[i] for i in at]`` (all of ``cells`` when ``at`` is every row), in one C call."""
    if len(at) == len(cells):
        return cells
    if len(at) == 1:
        return [cells[int(at[0])]]
    return list(operator.itemgetter(*at.tolist())(cells)) if len(at) else []


def batched(it: Iterable, n: int) -> Iterator[list]:
    it = iter(it)
    while batch := list(itertools.islice(it, n)):
        yield batch


@contextlib.contextmanager
def young_generation(size: int) -> Iterator[None]:
    """The cyclic garbage collector's young generation let grow to ``size`` objects (net of those
    freed) while any ``with`` block of this runs (threads or nested: the first one in sets it, at
    least as large as it was; the last one out restores it, whatever the blocks raise).

    A batch of csv rows is thousands of lists that stay alive together: with the default threshold
    (700), reading one set off a dozen collections whose older generations went over the rows
    read so far again and again, and a collection's pass over rows no longer in the CPU's cache
    costs about 1.5 µs per row (12 % of a plain CSV scan's CPU, py-spy; gc callbacks: 0.7 s of a
    4 s scan). A table's batches are freed as the next ones are read, so with room for a few
    batches the young generation's count stays below the threshold and rows are never visited;
    collections still happen (cycles are still freed) once that many objects outlive their batch."""
    global _young_depth, _young_saved
    with _young_lock:
        if _young_depth == 0:
            _young_saved = gc.get_threshold()
            gc.set_threshold(max(_young_saved[0], size), *_young_saved[1:])
        _young_depth += 1
    try:
        yield
    finally:
        with _young_lock:
            _young_depth -= 1
            if _young_depth == 0:
                gc.set_threshold(*_young_saved)


_young_lock = threading.Lock()
_young_depth = 0
_young_saved = gc.get_threshold()

"""Vectorised columns: a batch of cells of one column as integers, at C speed where possible.

The batch path (:meth:`matchers.match.Matcher.match_rows`) fingerprints whole columns of NIRs
and phones at once; these functions are :func:`matchers.identifiers.nir_parts` and
:func:`~matchers.identifiers.phone_nsn` vectorised with numpy (tests check they agree), plus the
batching and the picking of one column out of a batch of rows.
"""

from __future__ import annotations

import itertools
import operator
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
    """``[int(c) if c.isdecimal() and len(c) <= longest else 0 for c in vals]`` as int64, parsed by
    numpy in one call when every cell is such a number (the common case of a clean column)."""
    joined = "".join(vals)
    if vals and joined.isascii() and joined.isdecimal():
        width = len(vals[0])
        if 0 < width <= longest and len(joined) == width * len(vals) and max(map(len, vals)) == width:
            # One width (a column of French phones): the digits as a matrix, one dot product.
            digits = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(vals), width) - 48
            return digits.astype(np.int64) @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))
        if 0 < min(map(len, vals)) and max(map(len, vals)) <= longest:
            return np.array(list(map(int, vals)), dtype=np.int64)
    return np.array([int(c) if c.isdecimal() and len(c) <= longest else 0 for c in vals], dtype=np.int64)


def nir_column(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """NIR bodies of a column of cells as integers (``fingerprint.nir_int``; 0: not a NIR) and
    whether each carried a valid key: :func:`identifiers.nir_parts`, vectorised.

    A NIR never starts with 0, so the magnitude of the integer tells its length: 15 digits (with
    the key) from 10**14, a 13-digit body between 10**12 and 10**13.
    """
    vals = _strip_cells(cells, _NIR_STRIP)
    v = _int_cells(vals, 18)
    long_ = (v >= 10**14) & (v < 10**15)
    short = (v >= 10**12) & (v < 10**13)
    body = np.where(long_, v // 100, v)
    keyed = long_ & (97 - body % 97 == v % 100)
    body = np.where(short | keyed, body, 0)
    # Corsica (2A/2B) and lower-case letters: the scalar path for the few cells with letters.
    for i in np.flatnonzero(v == 0).tolist():
        c = vals[i]
        if (len(c) == 15 or len(c) == 13) and not c.isdecimal():
            p = ids.nir_parts(c)
            if p:
                body[i] = nir_int(p[0])
                keyed[i] = p[1]
    return body, keyed


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
    cells (and empty ones), found by their length stripped or not (C-level maps), take
    :func:`identifiers.email_norm`."""
    joined = "\n".join(cells).lower()
    low = joined.split("\n")
    if len(low) != len(cells):  # a cell held a line break
        return b"".join(digest(e) if (e := ids.email_norm(c) if "@" in c else None) else _ZERO for c in cells)
    out = list(map(digest, low))
    n = len(low)
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
_ZERO = b"\0" * 8


SHORT = frozenset(range(15))  # cell lengths that cannot hold a NIR with its key


def column(batch: list[Sequence[str]], c: int) -> list[str]:
    """Cell ``c`` of every row ("" where a ragged row is too short), at C speed when none is."""
    try:
        return list(map(operator.itemgetter(c), batch))
    except IndexError:
        return [r[c] if c < len(r) else "" for r in batch]


def batched(it: Iterable, n: int) -> Iterator[list]:
    it = iter(it)
    while batch := list(itertools.islice(it, n)):
        yield batch

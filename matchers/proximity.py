"""Proximity: records in shapes no parser knows, as the text around a strong identifier.

Pasted data is often not one record per line: a one-line SQL insert or a minified JSON holds
thousands of records on one line, an XML or YAML-like export spreads one record over many lines,
``key=value`` pairs or ``<key>value</key>`` elements interleave the keys with the values, a paste
viewer's line numbers or a quote prefix (``> ``) glue themselves to the first cell. As
exact-data-match products do, a record is then *the text around a strong identifier* (NIR, email,
phone, the *anchor*): at most :data:`WINDOW` characters on each side, cut at the previous and the
next identifier of the same kind (the neighbouring records' own anchors), never the line.

The matcher (``Matcher._match_proximity``, :mod:`matchers.match`) confirms an anchor's enrolled
record when a second independent field of that same record lies in its window: another strong
identifier that finds the same record, or a name, birth date or postcode checked against it. Only
anchors whose fingerprint finds an enrolled record not yet confirmed get a window built, so a
document of noise costs one pass of three regular expressions and one batched fingerprint lookup.

Bounded: the text is read in blocks of :data:`BLOCK` characters that overlap by a window and the
longest identifier, so each anchor is seen once with its whole window (linear time, bounded
memory); at most :data:`MAX_WINDOWS` windows are verified per document and an enrolled record
whose windows failed :data:`MAX_TRIES` times is not tried again in that document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from matchers import identifiers as ids

log = logging.getLogger(__name__)

WINDOW = 320          # characters of context on each side of an anchor
BLOCK = 64 * 1024     # characters of new text per block
LONGEST_ID = 160      # an identifier longer than this is not held back whole between blocks
MAX_WINDOWS = 1_000_000  # windows verified per document (each costs ~0.1 ms)
MAX_TRIES = 8         # failed windows per enrolled record and document before it is not tried again
STRONG = ("nir", "email", "phone")
SAME_RECORD = 24      # two identifiers of one kind starting closer than this count as one record


@dataclass(frozen=True)
class Anchor:
    """One strong identifier found in a block: its kind, normalised value and span."""

    kind: str
    value: str
    start: int
    end: int
    keyed: bool = False   # a NIR written with its (valid) key


@dataclass
class Block:
    """A stretch of text, every anchor in it, and which of them this block owns (verifies)."""

    text: str
    anchors: list[Anchor]
    own: range            # indices into ``anchors`` verified with this block
    shaped: int = 0       # NIR candidates written with a key (valid or not) in the new text
    new: tuple[int, int] = (0, 0)  # the span of text first seen in this block (counts, health)

    def window(self, i: int) -> tuple[int, int]:
        """The window of anchor ``i``: :data:`WINDOW` characters each side, cut at the neighbouring
        anchors of the same kind."""
        a = self.anchors[i]
        lo, hi = max(0, a.start - WINDOW), min(len(self.text), a.end + WINDOW)
        for j in range(i - 1, -1, -1):
            b = self.anchors[j]
            if b.end <= lo:
                break
            if b.kind == a.kind and b.value != a.value:
                lo = max(lo, b.end)
                break
        for j in range(i + 1, len(self.anchors)):
            b = self.anchors[j]
            if b.start >= hi:
                break
            if b.kind == a.kind and b.value != a.value:
                hi = min(hi, b.start)
                break
        return lo, hi

    def neighbours(self, i: int) -> Iterator[int]:
        """Indices of the other anchors inside anchor ``i``'s window."""
        lo, hi = self.window(i)
        for j in range(i - 1, -1, -1):
            if self.anchors[j].start < lo:
                break
            yield j
        for j in range(i + 1, len(self.anchors)):
            if self.anchors[j].end > hi:
                break
            yield j


def find_anchors(text: str, lo: int = 0, hi: int | None = None) -> tuple[list[Anchor], int]:
    """Strong identifiers of ``text`` in order of position, and how many NIR candidates written
    with a key (valid or not) start in ``[lo, hi)`` (for the scanner's valid-key ratio)."""
    hi = len(text) if hi is None else hi
    out: list[Anchor] = []
    shaped = 0
    if "@" in text:
        for m in ids.EMAIL_IN_TEXT.finditer(text):
            e = ids.email_norm(m.group(0))
            if e:
                out.append(Anchor("email", e, m.start(), m.end()))
    # Neither expression can match without its run of digits in the squeezed text (identifiers.py;
    # the translation is one C pass, the expressions try most positions): a log's timestamps
    # (10 digits) are read for phones only, prose for neither.
    squeezed = ids.squeezed(text)
    if ids.PHONE_RUN not in squeezed and ids.NIR_CORSICA_RUN not in squeezed:
        out.sort(key=lambda a: a.start)
        return out, shaped
    nirs = ids.NIR_IN_TEXT.finditer(text) if ids.NIR_RUN in squeezed or ids.NIR_CORSICA_RUN in squeezed else ()
    for m in nirs:
        raw = m.group(0)
        if m.group(7) and lo <= m.start() < hi:
            shaped += 1
        p = ids.nir_parts(raw)
        if p:
            out.append(Anchor("nir", p[0], m.start(), m.end(), p[1]))
        elif p := ids.nir_without_stolen_key(m):
            out.append(Anchor("nir", p[0], m.start(), m.end(6), p[1]))
    for m in ids.PHONE_IN_TEXT.finditer(text) if ids.PHONE_RUN in squeezed else ():
        p = ids.phone_nsn(m.group(0))
        if p:
            out.append(Anchor("phone", p, m.start(), m.end()))
    out.sort(key=lambda a: a.start)
    return out, shaped


def blocks(pieces: Iterable[str]) -> Iterator[Block]:
    """The text of ``pieces`` (lines, or rows rendered by :func:`row_text`) joined by newlines, in
    overlapping blocks: each anchor is owned by exactly one block, which holds its whole window."""
    keep = WINDOW + LONGEST_ID          # context kept before the first anchor a block may own
    carry = ""                          # the end of the previous block, already owned up to `done`
    done = 0                            # offset in `carry` from which anchors are not yet owned
    parts: list[str] = []
    size = 0
    it = iter(pieces)
    while True:
        piece = next(it, None)
        if piece is not None:
            parts.append(piece)
            size += len(piece) + 1
            if size < BLOCK:
                continue
        if not parts and piece is None and len(carry) <= done:
            return
        text = carry + "\n".join(parts) + ("\n" if parts else "")
        parts, size = [], 0
        final = piece is None
        limit = len(text) if final else max(done, len(text) - keep)
        anchors, shaped = find_anchors(text, done, limit)
        own = [i for i, a in enumerate(anchors) if done <= a.start < limit]
        if own or shaped or final:
            yield Block(text, anchors, range(own[0], own[-1] + 1) if own else range(0), shaped,
                        (done, limit))
        if final:
            return
        cut = max(0, limit - keep)
        carry, done = text[cut:], limit - cut


# -- keys of unknown syntaxes, blanked before names are read --------------------------------------

# `<nom>`, `</nom>`, `<patient id="3">`; `"nom":`, `'nom':`; `nom:`, `nom =`, `N°SS:` (one token).
_KEYS = re.compile(
    r"</?[A-Za-z_][\w.:-]{0,40}(?:\s[^<>]{0,200})?/?>"
    r"|[\"'][^\"'\n]{1,40}[\"']\s*[:=]"
    r"|(?<![\w@.+-])[^\W\d][\w.°-]{0,39}\s*(?:[:=](?!//)|=>)"
)
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


def blank_keys(text: str) -> str:
    """``text`` with the keys of ``key: value``, ``key=value``, ``"key": value`` and
    ``<key>value</key>`` replaced by spaces (offsets unchanged), so that a name's words are next
    to each other again (``<nom>DUPONT</nom><prenom>Jean</prenom>`` → ``DUPONT Jean``)."""
    return _KEYS.sub(lambda m: " " * len(m.group(0)), text)


def row_text(row) -> str:
    """One row of a parsed table as a line of text (cells joined; dict rows as ``key: value``)."""
    if isinstance(row, dict):
        return " ; ".join(f"{k}: {v}" for k, v in row.items())
    return " ; ".join(row)


@dataclass
class Budget:
    """What proximity may still spend on one document (see the module docstring)."""

    windows: int = 0
    skipped: int = 0
    tries: dict = field(default_factory=dict)   # (leak name, record) -> failed windows

    def allow(self) -> bool:
        if self.windows >= MAX_WINDOWS:
            if not self.skipped:
                log.warning("proximity: more than %d windows in one document; the identifiers "
                            "after them are counted, not verified", MAX_WINDOWS)
            self.skipped += 1
            return False
        self.windows += 1
        return True

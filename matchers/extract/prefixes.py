"""The line prefixes a paste viewer or a mail client adds to every line: line numbers (``  12 | …``,
``12: …``) and mail quotes (``> …``).

Such a prefix glues itself to the first cell (``12 | DUPONT;Jean;…``), so the extraction
(:func:`matchers.extract._text`) looks for one on the document's sample (:func:`line_prefix`) and
reads every line without it (:func:`strip_prefix`, :class:`PrefixStripped`) before the document's
shape is decided and the segmenter (:mod:`matchers.extract.text`) cuts it into tables.
"""

from __future__ import annotations

import io
import re

# `  12 | …`, `12: …`, `12. …`, `12) …`, `12<TAB>…`, `12  …`: a viewer's line numbers (copied with the text).
_LINE_NUMBER = re.compile(r"^[ \t]*(\d{1,7})(?:[ \t]*[|:.)\]][ \t]?|\t|[ \t]+(?=\S)|[ \t]*$)")
# `> …`, `>> …`: a quoted message.
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+")
PREFIX_SHARE = 0.95        # share of sample lines that must carry the prefix


def line_prefix(lines: list[str]) -> re.Pattern | None:
    """The prefix every line of a sample carries and the data does not, or None: a paste viewer's
    line numbers (consecutive numbers, each followed by a separator) or a mail quote (``> ``).

    Such a prefix glues itself to the first cell (``12 | DUPONT;Jean;…``): the caller strips it
    from every line before the shape is decided."""
    body = lines[:2000]
    filled = [line for line in body if line.strip()]
    if len(filled) < 3:
        return None
    if sum(1 for line in filled if _QUOTE.match(line)) >= PREFIX_SHARE * len(filled):
        return _QUOTE
    numbers = [m and int(m.group(1)) for m in map(_LINE_NUMBER.match, body)]
    if numbers[0] not in (0, 1) or sum(1 for n in numbers if n is not None) < PREFIX_SHARE * len(body):
        return None   # a viewer numbers every line from 1 (a header without a number: an id column)
    steps = sum(1 for a, b in zip(numbers, numbers[1:]) if a is not None and b == a + 1)
    return _LINE_NUMBER if steps >= PREFIX_SHARE * (len(body) - 1) else None


def strip_prefix(lines: list[str], prefix: re.Pattern) -> list[str]:
    return [prefix.sub("", line, count=1) for line in lines]


class PrefixStripped(io.TextIOBase):
    """A text stream whose lines lose ``prefix`` (see :func:`line_prefix`); only ``readline``,
    which is all the line readers use."""

    def __init__(self, text: io.TextIOBase, prefix: re.Pattern):
        super().__init__()
        self._text = text
        self._prefix = prefix
        self._at_start = True

    def readable(self) -> bool:
        return True

    def readline(self, size: int = -1) -> str:   # type: ignore[override]
        line = self._text.readline(size)
        if self._at_start and line:
            line = self._prefix.sub("", line, count=1) or "\n"
        self._at_start = line.endswith(("\n", "\r"))
        return line

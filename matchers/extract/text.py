"""Text → tables by the *segmenter*: key-value blocks, combo lists, delimited blocks and free text.

The extraction (:mod:`matchers.extract`) sends a document here when its sample is not one
delimited table (that is :mod:`matchers.extract.delimited`'s fast path; :func:`document_plan`
tells them apart). The :class:`Segmenter` streams the lines once and cuts them into consecutive
tables (text, keyvalue, combo, delimited blocks of >= 3 lines, and encoded blobs handed back to
the extraction, :mod:`matchers.extract.blobs`). Every line lands in exactly one table, so the
matcher never counts a record twice.

A log line is text, not a delimited row: the ``;`` and ``,`` inside its quoted fields
(``"GET /a?b=1;c HTTP/1.1"``, ``"Mozilla/5.0 (X11; Linux x86_64)"``) are no columns, and their
number follows the user agent, so the old rule cut a log into thousands of two-column "blocks"
(4,343 tables for 5 MB, each profiled). A delimiter only inside quoted fields bounded by spaces
(:data:`_SPACED_QUOTES`) cuts no cell; one outside them, or in a quoted cell that starts at a
delimiter (``X;"a;b";…``), counts as before. A log is one text table, read by proximity: its
records are the text around each strong identifier, as in any text, not its lines (a line without
NIR, email or phone holds nothing a record is matched by, on either path): ``records_seen`` of a
log counts identifier windows (docs/benchmarks.md, "Noise (issue 9)").

Most lines of a long text can start no other segment (:attr:`_Line.plain`: no ``@``, blob, ``key:
value`` or block delimiter): no look-ahead for them; a line's kind is decided once.

The line prefixes a paste viewer or a mail client adds to every line (line numbers, ``> `` quotes)
are found on the sample and stripped before the shape is decided: :mod:`matchers.extract.prefixes`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from matchers.extract.blobs import BLOB_PROBE, MIN_BLOB, BlobReader, blob_line, decode_blob, readable_blob
from matchers.extract.delimited import DELIMITERS, cell_count, looks_like_header, min_columns, split_cells
from matchers.extract.model import Table

MIN_BLOCK = 3              # lines of a delimited block inside a text
LOOKAHEAD_BLANKS = 8

_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_ALNUM = re.compile(r"[^\W_]")

# `Nom: DUPONT`, `N° SS : 1 85 …`, `Tél = 06 …`, `Adresse......: 3 rue …`, `- nom: X` (a list item)
_KV = re.compile(r"^\s*(?:[-*+\u2022]\s+)?(?P<key>[^\W\d_][^:=;,|\t@<>{}\[\]\"]{0,39}?)[\s.]*[:=]\s*(?P<value>.*?)\s*$")
# `jean.dupont@orange.fr:azerty123` (also `;` or `|`)
_COMBO = re.compile(r"^\s*(?P<email>[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,})\s*(?P<sep>[:;|])"
                    r"(?P<secret>.*\S)\s*$")


def split_lines(text: str) -> list[str]:
    """Lines as ``readline`` sees them (only CR, LF and CRLF end a line), without terminators."""
    lines = _LINE_SPLIT.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# :data:`_KV` without its value: ``(?P<value>.*?)\s*$`` tries the end of the line at each character
# of the value (quadratic); on a line without a line break it is the rest of the line, stripped.
_KV_HEAD = re.compile(_KV.pattern.split("\\s*(?P<value>")[0])


def parse_kv(line: str) -> tuple[str, str] | None:
    if ":" not in line and "=" not in line:
        return None   # no separator: the expression cannot match (a scan of the line in C)
    if "\n" in line:
        match = _KV.match(line)
        if not match:
            return None
        value = match.group("value")
    else:
        match = _KV_HEAD.match(line)
        if not match:
            return None
        value = line[match.end():].strip()
    key = match.group("key").strip()
    if value.startswith("//") or len(key.split()) > 4:
        return None   # a URL (`http://…`) or a sentence with a colon
    return key, value


def parse_combo(line: str) -> tuple[str, str] | None:
    match = _COMBO.match(line)
    if not match:
        return None
    sep, secret = match.group("sep"), match.group("secret")
    if sep in ";|" and sep in secret:
        return None   # a delimited row that starts with an email, not a combo
    return match.group("email"), secret


# -- the segmenter -----------------------------------------------------------------------------


class _Line:
    __slots__ = ("text", "blank", "_kv", "_combo", "_cells", "_unq", "_plain", "detected")

    def __init__(self, text: str):
        self.text = text
        self.blank = not text.strip()
        self._kv: object = _UNSET
        self._combo: object = _UNSET
        self._cells: dict[str, int] = {}
        self._unq: str | None = None
        self._plain: bool | None = None
        self.detected: tuple[str, tuple[str, int] | None] | None = None   # Segmenter.detect's answer

    @property
    def kv(self) -> tuple[str, str] | None:
        if self._kv is _UNSET:
            self._kv = None if self.blank else parse_kv(self.text)
        return self._kv  # type: ignore[return-value]

    @property
    def combo(self) -> tuple[str, str] | None:
        if self._combo is _UNSET:
            self._combo = None if self.blank or "@" not in self.text else parse_combo(self.text)
        return self._combo  # type: ignore[return-value]

    @property
    def starts_record(self) -> bool:
        """A `key: value` line with a value (`et les combos :` does not start a record)."""
        pair = self.kv
        return pair is not None and bool(pair[1])

    @property
    def rule(self) -> bool:
        """A separator line (`-----`, `=====`): no letter or digit."""
        return not self.blank and _ALNUM.search(self.text) is None

    @property
    def plain(self) -> bool:
        """A line that can start no other segment than text (module docstring)."""
        if self._plain is None:
            text = self.text
            plain = not self.blank and "@" not in text and blob_line(text) is None and not self.starts_record
            if plain:
                for d in DELIMITERS:
                    if d in text and self.cells(d) >= _MIN_COLUMNS[d]:
                        plain = False
                        break
            self._plain = plain
        return self._plain

    def cells(self, delimiter: str) -> int:
        n = self._cells.get(delimiter)
        if n is None:
            text = self.text
            if self.blank or delimiter not in text or '"' not in text:
                n = 0 if self.blank else cell_count(text, delimiter)
            else:   # a log line's delimiters only inside its quoted fields cut no cell (module docstring)
                if self._unq is None:
                    self._unq = _SPACED_QUOTES.sub("", text)
                n = cell_count(text, delimiter) if delimiter in self._unq else 1
            self._cells[delimiter] = n
        return n


_UNSET = object()
_MIN_COLUMNS = {d: min_columns(d) for d in DELIMITERS}
# A quoted field of a space-separated line: `"GET /a;b HTTP/1.1"`, `"Mozilla/5.0 (X11; Linux …)"`.
_SPACED_QUOTES = re.compile(r'(?<!\S)"[^"]*"(?!\S)')


class Segmenter:
    """Cuts a stream of lines into consecutive tables of one kind each (see module docstring)."""

    def __init__(self, lines: Iterable[str], source: str, encoding: str | None,
                 open_blob: Callable[[BlobReader, int], Iterator[Table]] | None = None):
        self._open_blob = open_blob
        self._blobs = 0
        self._it = iter(lines)
        self._buf: deque[_Line] = deque()
        self._source = source
        self._encoding = encoding
        self.consumed = 0

    # lookahead ---------------------------------------------------------------------------
    def peek(self, i: int = 0) -> _Line | None:
        buf = self._buf
        if i < len(buf):
            return buf[i]
        while len(buf) <= i:
            nxt = next(self._it, None)
            if nxt is None:
                return None
            buf.append(_Line(nxt))
        return buf[i]

    def pop(self) -> _Line:
        if not self._buf:
            self.peek(0)
        self.consumed += 1
        return self._buf.popleft()

    def _next_filled(self, i: int) -> int | None:
        """Index of the first non-blank line at or after ``i`` (None at EOF or too far)."""
        for j in range(i, i + LOOKAHEAD_BLANKS + 1):
            line = self.peek(j)
            if line is None:
                return None
            if not line.blank:
                return j
        return None

    def _next_data(self, i: int) -> int | None:
        """Like :meth:`_next_filled`, also skipping separator lines (`-----`)."""
        for j in range(i, i + LOOKAHEAD_BLANKS + 1):
            line = self.peek(j)
            if line is None:
                return None
            if not line.blank and not line.rule:
                return j
        return None

    def _at_eof_after(self, i: int) -> bool:
        for j in range(i, i + LOOKAHEAD_BLANKS + 1):
            line = self.peek(j)
            if line is None:
                return True
            if not line.blank:
                return False
        return False

    # classification ----------------------------------------------------------------------
    def detect(self, i: int = 0) -> tuple[str, tuple[str, int] | None]:
        """Kind of the segment starting at line ``i``: text, combo, keyvalue or delimited (decided
        once per line: it depends only on the line and those after it)."""
        line = self.peek(i)
        if line is None:
            return "text", None
        if line.detected is None:
            line.detected = self._detect(i, line)
        return line.detected

    def _detect(self, i: int, line: _Line) -> tuple[str, tuple[str, int] | None]:
        if line.blank:
            j = self._next_filled(i + 1)
            if j is None:
                return "text", None
            kind, info = self.detect(j)
            return (kind, info) if kind != "text" else ("text", None)
        if line.combo:
            j = self._next_filled(i + 1)
            if (j is None and self._at_eof_after(i + 1)) or \
                    (j is not None and self.peek(j).combo):  # type: ignore[union-attr]
                return "combo", None
        if self._open_blob is not None and len(line.text) >= MIN_BLOB:
            kind = self._blob_at(i)
            if kind:
                return "blob", (kind, 0)
        if line.starts_record:
            nxt = self.peek(i + 1)
            if nxt is not None and nxt.kv:
                return "keyvalue", None
        block = self._delimited_block(i)
        if block:
            return "delimited", block
        return "text", None

    def _blob_at(self, i: int) -> str | None:
        """``base64``/``hex`` when lines from ``i`` are an encoded blob that decodes to text or to an
        archive (decided on its first :data:`BLOB_PROBE` characters, read ahead, not consumed)."""
        kind = blob_line(self.peek(i).text)  # type: ignore[union-attr]
        if kind is None:
            return None
        chars, j = "", i
        while len(chars) < BLOB_PROBE and (line := self.peek(j)) is not None \
                and blob_line(line.text, kind):
            chars += line.text.strip()
            j += 1
        try:
            head, _ = decode_blob(chars[:BLOB_PROBE], kind)
        except ValueError:     # binascii.Error: not base64 after all
            return None
        return kind if readable_blob(head) else None

    def _delimited_block(self, i: int) -> tuple[str, int] | None:
        first = self.peek(i)
        if first is None or first.blank:
            return None
        # The first line's candidates first: a line of text has none, and its neighbours are not read.
        candidates = [(d, n) for d in DELIMITERS if (n := first.cells(d)) >= _MIN_COLUMNS[d]]
        if not candidates:
            return None
        window = [self.peek(j) for j in range(i + 1, i + MIN_BLOCK)]
        if any(line is None or line.blank for line in window):
            return None
        best: tuple[str, int] | None = None
        for delimiter, n in candidates:
            if all(line.cells(delimiter) == n for line in window):  # type: ignore[union-attr]
                if best is None or n > best[1]:
                    best = (delimiter, n)
        return best

    # rows of each kind -------------------------------------------------------------------
    def _text_rows(self) -> Iterator[str]:
        buf = self._buf
        line = buf[0] if buf else self.peek(0)
        while line is not None:
            buf.popleft()
            self.consumed += 1
            yield line.text
            line = buf[0] if buf else self.peek(0)
            if line is None or not (line.plain or self.detect(0)[0] == "text"):
                return

    def _combo_rows(self) -> Iterator[dict[str, str]]:
        while (line := self.peek(0)) is not None:
            if line.blank:
                j = self._next_filled(1)
                if j is None:
                    if self._at_eof_after(1):
                        while self.peek(0) is not None:
                            self.pop()
                    return
                if not self.peek(j).combo:  # type: ignore[union-attr]
                    return
                for _ in range(j):
                    self.pop()
                continue
            combo = line.combo
            if not combo:
                return
            self.pop()
            yield {"email": combo[0], "secret": combo[1]}

    def _kv_rows(self) -> Iterator[dict[str, str]]:
        record: dict[str, str] = {}
        buf = self._buf
        while True:
            line = buf[0] if buf else self.peek(0)
            if line is None:
                break
            pair = line.kv
            if pair is not None:                  # the common case first
                key, value = pair
                if key in record:                 # a repeated key starts the next record
                    yield record
                    record = {}
                record[key] = value
                self.pop()
                continue
            if line.blank or line.rule:
                if record:
                    yield record
                    record = {}
                nxt = self._next_data(1)
                if nxt is None or not self.peek(nxt).starts_record:  # type: ignore[union-attr]
                    break
                for _ in range(nxt):
                    self.pop()
                continue
            nxt_line = self.peek(1)
            if record and nxt_line is not None and nxt_line.kv and not line.combo:
                last = next(reversed(record))       # a wrapped value (address on two lines)
                record[last] = f"{record[last]} {line.text.strip()}".strip()
                self.pop()
                continue
            break
        if record:
            yield record

    def _delimited_rows(self, delimiter: str, columns: int) -> Iterator[list[str]]:
        while (line := self.peek(0)) is not None and not line.blank \
                and line.cells(delimiter) == columns:
            self.pop()
            yield split_cells(line.text, delimiter)

    # tables ------------------------------------------------------------------------------
    def tables(self) -> Iterator[Table]:
        while self.peek(0) is not None:
            before = self.consumed
            kind, info = self.detect(0)
            header: tuple[str, ...] | None = None
            rows: Iterator
            if kind == "combo":
                rows, out_kind = self._combo_rows(), "combo"
            elif kind == "keyvalue":
                rows, out_kind = self._kv_rows(), "keyvalue"
            elif kind == "delimited" and info is not None:
                while self.peek(0) is not None and self.peek(0).blank:  # type: ignore[union-attr]
                    self.pop()
                delimiter, columns = info
                sample = [split_cells(self.peek(j).text, delimiter)  # type: ignore[union-attr]
                          for j in range(MIN_BLOCK)]
                if looks_like_header(sample[0], sample[1:]):
                    header = tuple(sample[0])
                    self.pop()
                rows, out_kind = self._delimited_rows(delimiter, columns), "delimited"
            elif kind == "blob" and info is not None and self._open_blob is not None:
                while self.peek(0) is not None and self.peek(0).blank:  # type: ignore[union-attr]
                    self.pop()
                self._blobs += 1
                reader = BlobReader(self, info[0])
                yield from self._open_blob(reader, self._blobs)
                while reader.read(1 << 20):   # what the extraction of the blob left unread
                    pass
                continue
            else:
                rows, out_kind = self._text_rows(), "text"
            yield Table(self._source, out_kind, header, rows, self._encoding)
            for _ in rows:   # the consumer may have stopped early: move past this segment
                pass
            if self.consumed == before:   # never loop: a segment that took nothing is text
                yield Table(self._source, "text", None, iter([self.pop().text]), self._encoding)


def document_plan(sample: str, lines: list[str] | None = None) -> str:
    """``blank``, ``segment`` (key-value / combo / mixed text) or ``delimited`` for a sample
    (``lines``: its :func:`split_lines`, when the caller has them)."""
    lines = split_lines(sample) if lines is None else lines
    filled = [line for line in lines if line.strip()]
    if not filled:
        return "blank"
    probe = filled[:500]
    combos = sum(1 for line in probe if "@" in line and parse_combo(line))
    kvs = sum(1 for line in probe if parse_kv(line))
    if (combos + kvs) * 2 >= len(probe):
        return "segment"
    return "delimited"

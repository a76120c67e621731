"""Text → tables: delimited files, key-value blocks, combo lists and free text.

Two paths:

* a document whose sample is a delimited table (after at most :data:`MAX_LEADING` junk lines)
  becomes one ``delimited`` table whose ``rows`` is the ``csv.reader`` itself, fed by a C-level
  line iterator: no Python code runs per row (the scan's speed floor is a bare csv parse);
* everything else goes through the *segmenter*, which streams the lines once and cuts them into
  consecutive tables (text, keyvalue, combo, delimited blocks of >= 3 lines). Every line lands
  in exactly one table, so the matcher never counts a record twice.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from matchers.extract.model import Context, Table
from matchers.extract.decode import BUFFER_BYTES, TextSource, raw_lines

DELIMITERS = ";,\t|"
MAX_LEADING = 5            # junk lines (a banner, a title) tolerated before a delimited file
CONSISTENT = 0.9           # share of sample records with the modal column count
MIN_BLOCK = 3              # lines of a delimited block inside a text
LOOKAHEAD_BLANKS = 8
SNIFF_LINES = 60

_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_ALNUM = re.compile(r"[^\W_]")

# `Nom: DUPONT`, `N° SS : 1 85 …`, `Tél = 06 …`, `Adresse......: 3 rue …`, `- nom: X` (a list item)
_KV = re.compile(r"^\s*(?:[-*+\u2022]\s+)?(?P<key>[^\W\d_][^:=;,|\t@<>{}\[\]\"]{0,39}?)[\s.]*[:=]\s*(?P<value>.*?)\s*$")
# `jean.dupont@orange.fr:azerty123` (also `;` or `|`)
_COMBO = re.compile(r"^\s*(?P<email>[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,})\s*(?P<sep>[:;|])"
                    r"(?P<secret>.*\S)\s*$")

# Column names a leak's header may use (French and English), compared after normalisation.
KNOWN_COLUMNS = (
    "nom", "prenom", "name", "lastname", "firstname", "surname", "givenname", "fullname", "nomfamille",
    "sexe", "sex", "gender", "genre", "civilite", "datenaissance", "datedenaissance", "naissance",
    "ddn", "birthdate", "dateofbirth", "dob", "adresse", "address", "streetaddress", "street",
    "rue", "codepostal", "cp", "zip", "zipcode", "postalcode", "postcode", "ville", "city",
    "commune", "pays", "country", "telephone", "tel", "phone", "mobile", "portable", "gsm",
    "email", "mail", "courriel", "emailaddress", "nir", "secu", "numsecu", "numerosecu",
    "securitesociale", "nss", "ssn", "insee", "laboratoire", "labo", "lab", "laboratory",
    "groupesanguin", "bloodtype", "bloodgroup", "medecin", "medecintraitant", "doctor",
    "physician", "mutuelle", "insurer", "insurance", "commentaire", "comment", "notes", "note",
    "remarque", "traitement", "treatment", "medication", "pathologie", "pathology", "condition",
    "diagnostic", "diagnosis", "dateprelevement", "sampledate", "date", "id", "identifiant",
    "password", "motdepasse", "pass", "login", "username", "user", "age",
)


def split_lines(text: str) -> list[str]:
    """Lines as ``readline`` sees them (only CR, LF and CRLF end a line), without terminators."""
    lines = _LINE_SPLIT.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_kv(line: str) -> tuple[str, str] | None:
    match = _KV.match(line)
    if not match:
        return None
    key = match.group("key").strip()
    value = match.group("value")
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


def cell_count(line: str, delimiter: str) -> int:
    if delimiter not in line:
        return 1
    if '"' not in line:
        return line.count(delimiter) + 1
    return len(split_cells(line, delimiter))


def split_cells(line: str, delimiter: str) -> list[str]:
    if '"' not in line:
        return line.split(delimiter)
    return next(csv.reader([line], delimiter=delimiter, quotechar='"', strict=False), [])


def min_columns(delimiter: str) -> int:
    # Prose has commas: a comma block needs three columns; the other separators are not prose.
    return 3 if delimiter == "," else 2


# -- prefixes a paste viewer or a mail client adds to every line ----------------------------------

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


# -- header heuristic --------------------------------------------------------------------------

def _normalise(cell: str) -> str:
    folded = unicodedata.normalize("NFKD", cell).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum())


@lru_cache(maxsize=4096)
def known_column(cell: str) -> bool:
    """Whether ``cell`` is (close to) a usual column name; short names must match exactly."""
    norm = _normalise(cell)
    if not norm:
        return False
    if norm in _KNOWN_SET:
        return True
    if len(norm) < 4 or len(norm) > 30:
        return False
    from rapidfuzz import fuzz, process

    return process.extractOne(norm, KNOWN_COLUMNS, scorer=fuzz.ratio, score_cutoff=85) is not None


_KNOWN_SET = frozenset(KNOWN_COLUMNS)


def _dataish(cell: str) -> bool:
    return "@" in cell or any(c.isdigit() for c in cell)


def looks_like_header(first: Iterable[str], later: Iterable[Iterable[str]]) -> bool:
    """The first row is a header when it names usual columns, or when it holds no digit and no
    ``@`` while the rows after it do. Deliberately simple: the schema matcher maps columns."""
    cells = [c.strip() for c in first]
    filled = [c for c in cells if c]
    if not filled or len(filled) * 2 < len(cells):
        return False
    if any(len(c) > 60 for c in filled):
        return False
    known = sum(1 for c in filled if known_column(c))
    if known >= min(2, len(filled)):
        return True
    if any(_dataish(c) for c in filled):
        return False
    rows = [list(r) for r in later]
    data_rows = [r for r in rows if any(_dataish(c) for c in r)]
    return bool(rows) and len(data_rows) * 2 >= len(rows)


# -- whole-document delimited sniffing ---------------------------------------------------------

@dataclass(frozen=True)
class DelimitedGuess:
    delimiter: str
    leading: int                     # junk lines before the table
    columns: int
    quoted: bool                     # the sample uses '"' quoting
    rows: tuple[tuple[str, ...], ...]  # a few sample records (header detection)


def sniff_delimited(lines: list[str]) -> DelimitedGuess | None:
    """A delimiter under which the sample's records have one consistent column count (>= 2).

    Each candidate delimiter present in the sample is tried with ``csv.reader`` (C speed); only
    when several give a consistent table is ``csv.Sniffer`` asked to break the tie (it costs a few
    milliseconds per call, which a crawler handling thousands of small pages feels).
    """
    body = lines[:2000]
    if sum(1 for line in body if line.strip()) < 2:
        return None
    guesses: dict[str, tuple[float, DelimitedGuess]] = {}
    for delimiter in DELIMITERS:
        if any(delimiter in line for line in body[:SNIFF_LINES]):
            guess = _consistent(body, delimiter)
            if guess is not None:
                guesses[delimiter] = guess
    if len(guesses) > 1:
        try:
            sniffed = csv.Sniffer().sniff("\n".join(body[:SNIFF_LINES]), delimiters="".join(guesses)).delimiter
        except csv.Error:
            sniffed = None
        if sniffed in guesses:
            return guesses[sniffed][1]
    best = max(guesses.values(), key=lambda g: g[0], default=None)
    return best[1] if best else None


def _consistent(body: list[str], delimiter: str) -> tuple[float, DelimitedGuess] | None:
    for leading in range(min(MAX_LEADING + 1, len(body) - 1)):
        if not body[leading].strip():
            continue
        records = [r for r in csv.reader(body[leading:], delimiter=delimiter, quotechar='"',
                                         strict=False) if r]
        if len(records) < 2:
            return None
        counts = Counter(len(r) for r in records)
        columns, freq = counts.most_common(1)[0]
        share = freq / len(records)
        if columns >= 2 and share >= CONSISTENT and len(records[0]) == columns:
            quoted = any('"' in line for line in body)
            rows = tuple(tuple(r) for r in records[:20])
            return columns * share, DelimitedGuess(delimiter, leading, columns, quoted, rows)
    return None


class QuoteGuard(io.RawIOBase):
    """Closes a runaway quoted CSV cell (a stray ``"``) at the byte level, under the decoder.

    A quoted cell can only grow across bytes without any quote (a quote may close it). This
    stream counts the bytes since the last quote while the quote parity is odd; past
    ``runaway`` it inserts a ``"`` before the next line end, which the csv reader reads as the
    end of the cell. The reader then never builds a giant cell nor reaches its field limit, and
    no Python code runs per row: the check is one ``bytes.count`` per 64 KiB read. Only for
    encodings where byte 0x22 is always ``"`` (see :class:`TextSource`).
    """

    def __init__(self, raw: io.RawIOBase, runaway: int, on_trip: Callable[[], None]):
        super().__init__()
        self._raw = raw
        self._runaway = runaway
        self._on_trip = on_trip
        self._odd = False
        self._since = 0
        self._pending = b""        # bytes already checked (or inserted), served before reading more
        self.trips = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
        else:
            data = self._raw.read(size) or b""
            if not data:
                return 0
            data = self._check(bytes(data))
            if len(data) > size:
                data, self._pending = data[:size], data[size:] + self._pending
        buffer[:len(data)] = data
        return len(data)

    def _check(self, data: bytes) -> bytes:
        quotes = data.count(b'"')
        if quotes:
            self._odd ^= bool(quotes & 1)
            tail = data.rfind(b'"') + 1
            self._since = len(data) - tail
        else:
            tail = 0
            self._since += len(data)
        if not (self._odd and self._since > self._runaway):
            return data
        newline = data.find(b"\n", tail)
        if newline < 0:
            cut, insert = len(data), b'"\n'
        else:
            cut = newline - 1 if newline > tail and data[newline - 1] == 0x0D else newline
            insert = b'"'
        self._odd = False
        self._since = 0
        self.trips += 1
        self._on_trip()
        self._pending = data[cut:] + self._pending    # quote-free: nothing more to check
        return data[:cut] + insert


def _guarded(lines: Iterator[str], runaway: int, on_trip: Callable[[], None]) -> Iterator[str]:
    """The same guard per line, for text already decoded or in UTF-16/32 (a Python step per line)."""
    inside = False
    open_chars = 0
    for line in lines:
        if '"' in line:
            if line.count('"') & 1:
                inside = not inside
            open_chars = 0
        elif inside:
            open_chars += len(line)
            if open_chars > runaway:
                on_trip()
                inside = False
                open_chars = 0
                yield '"' + line
                continue
        yield line


def ensure_field_limit(cap: int) -> None:
    """Raise csv's (process-wide) field limit above what our line caps let a cell reach."""
    limit = 6 * cap + 4 * BUFFER_BYTES
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def delimited_tables(src: TextSource, guess: DelimitedGuess, source: str, ctx: Context
                     ) -> Iterator[Table]:
    """The fast path: optional leading text lines, then ``csv.reader`` over the rest."""
    cap = ctx.limits.max_line_chars
    runaway = 4 * cap
    ensure_field_limit(cap)

    def trip() -> None:
        ctx.report(source, f"a quoted cell runs over {runaway} characters (a stray '\"'?): it "
                           "was closed at the end of its line")

    if guess.quoted:
        text, guarded = src.open(lambda raw: QuoteGuard(raw, runaway, trip))
    else:
        text, guarded = src.open()
    lines = raw_lines(text, cap)
    if guess.leading:
        leading = [line.rstrip("\r\n") for _, line in zip(range(guess.leading), lines)]
        yield Table(source, "text", None, iter(leading), src.encoding)
    if guess.quoted:
        # A stray '"' could open a cell that swallows the rest of the file (and make the reader
        # raise at its field limit): the guard closes such a cell.
        feed = lines if guarded else _guarded(lines, runaway, trip)
        reader = csv.reader(feed, delimiter=guess.delimiter, quotechar='"', strict=False)
    else:
        # No quote in the sample: quotes are ordinary characters and no cell spans lines.
        reader = csv.reader(lines, delimiter=guess.delimiter, quoting=csv.QUOTE_NONE, strict=False)
    header = None
    if guess.rows and looks_like_header(guess.rows[0], guess.rows[1:]):
        first = next(reader, None)
        header = tuple(first) if first is not None else None
    yield Table(source, "delimited", header, reader, src.encoding)


# -- encoded blobs ------------------------------------------------------------------------------

MIN_BLOB = 64              # characters of the first line of a base64 or hex blob
BLOB_PROBE = 8 * 1024      # characters decoded to decide whether a blob holds text or an archive
_B64_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_HEX_LINE = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"


def blob_line(text: str, kind: str | None = None) -> str | None:
    """``base64`` or ``hex`` when a stripped line is all of one such alphabet (``kind``: only that)."""
    t = text.strip()
    if not t or " " in t:
        return None
    if kind != "base64" and _HEX_LINE.fullmatch(t):
        return "hex"
    if kind != "hex" and _B64_LINE.fullmatch(t):
        return "base64"
    return None


def decode_blob(chars: str, kind: str) -> tuple[bytes, str]:
    """Bytes of the longest decodable prefix of ``chars`` (no whitespace), and the rest."""
    import binascii

    if kind == "hex":
        cut = len(chars) // 2 * 2
        return bytes.fromhex(chars[:cut]), chars[cut:]
    end = chars.find("=")
    if end >= 0:   # padding ends a base64 stream (what follows would be another one)
        end = len(chars) - len(chars[end:].lstrip("="))
        return binascii.a2b_base64(chars[:end].translate(_URLSAFE)), ""
    cut = len(chars) // 4 * 4
    return binascii.a2b_base64(chars[:cut].translate(_URLSAFE)), chars[cut:]


_URLSAFE = str.maketrans("-_", "+/")


def readable_blob(head: bytes) -> bool:
    """Whether decoded bytes are worth extracting: an archive, or text (a BOM, or mostly printable
    ASCII). Keys, hashes, images and random tokens are not: they stay text, nothing is reported."""
    from matchers.extract.containers import container_kind
    from matchers.extract.decode import BOMS

    if len(head) < 16:
        return False
    if container_kind(head) or any(head.startswith(bom) for bom, _ in BOMS):
        return True
    sample = head[:4096]
    return len(sample.translate(None, _PRINTABLE)) <= 0.1 * len(sample)


class BlobReader:
    """``read(n)`` over the decoded bytes of the blob lines at the head of a segmenter."""

    def __init__(self, seg: "Segmenter", kind: str):
        self._seg = seg
        self.kind = kind
        self._rest = ""
        self._out = b""
        self._ended = False

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else 65536
        while len(self._out) < n and not self._ended:
            line = self._seg.peek(0)
            if line is None or blob_line(line.text, self.kind) is None:
                self._ended = True
                break
            self._seg.pop()
            data, self._rest = decode_blob(self._rest + line.text.strip(), self.kind)
            self._out += data
            if self._rest == "" and line.text.rstrip().endswith("="):
                self._ended = True
        out, self._out = self._out[:n], self._out[n:]
        return out


# -- the segmenter -----------------------------------------------------------------------------

class _Line:
    __slots__ = ("text", "blank", "_kv", "_combo", "_cells")

    def __init__(self, text: str):
        self.text = text
        self.blank = not text.strip()
        self._kv: object = _UNSET
        self._combo: object = _UNSET
        self._cells: dict[str, int] = {}

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

    def cells(self, delimiter: str) -> int:
        n = self._cells.get(delimiter)
        if n is None:
            n = self._cells[delimiter] = 0 if self.blank else cell_count(self.text, delimiter)
        return n


_UNSET = object()


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
        while len(self._buf) <= i:
            nxt = next(self._it, None)
            if nxt is None:
                return None
            self._buf.append(_Line(nxt))
        return self._buf[i]

    def pop(self) -> _Line:
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
        """Kind of the segment starting at line ``i``: text, combo, keyvalue or delimited."""
        line = self.peek(i)
        if line is None:
            return "text", None
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
        window = [self.peek(j) for j in range(i, i + MIN_BLOCK)]
        if any(line is None or line.blank for line in window):
            return None
        best: tuple[str, int] | None = None
        for delimiter in DELIMITERS:
            n = window[0].cells(delimiter)  # type: ignore[union-attr]
            if n < min_columns(delimiter):
                continue
            if all(line.cells(delimiter) == n for line in window[1:]):  # type: ignore[union-attr]
                if best is None or n > best[1]:
                    best = (delimiter, n)
        return best

    # rows of each kind -------------------------------------------------------------------
    def _text_rows(self) -> Iterator[str]:
        while self.peek(0) is not None:
            yield self.pop().text
            if self.peek(0) is None or self.detect(0)[0] != "text":
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


def document_plan(sample: str) -> str:
    """``blank``, ``segment`` (key-value / combo / mixed text) or ``delimited`` for a sample."""
    lines = split_lines(sample)
    filled = [line for line in lines if line.strip()]
    if not filled:
        return "blank"
    probe = filled[:500]
    combos = sum(1 for line in probe if "@" in line and parse_combo(line))
    kvs = sum(1 for line in probe if parse_kv(line))
    if (combos + kvs) * 2 >= len(probe):
        return "segment"
    return "delimited"

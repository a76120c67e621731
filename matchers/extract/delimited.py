"""Delimited text → one ``delimited`` table: sniffing the delimiter, the header, the fast csv path.

A document whose sample is a delimited table (after at most :data:`MAX_LEADING` junk lines, see
:func:`sniff_delimited`) becomes one ``delimited`` table whose ``rows`` iterate as the
``csv.reader`` itself, fed by a C-level line iterator (:func:`delimited_tables`): no Python code
runs per row, so the scan's speed floor is a bare csv parse; :class:`DelimitedRows` also hands out
the raw lines, so a block in which the matcher's pre-filter finds nothing is counted, not parsed. A stray quote cannot make a cell swallow the rest of
the file: :class:`QuoteGuard` closes a runaway quoted cell under the decoder.

Also the cell and header helpers the other table readers share: :func:`split_cells`,
:func:`cell_count` (the segmenter's delimited blocks, :mod:`matchers.extract.text`) and
:func:`looks_like_header` (HTML tables, workbook sheets).
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from matchers.extract.decode import BUFFER_BYTES, TextSource, raw_lines
from matchers.extract.model import Context, Table

DELIMITERS = ";,\t|"
MAX_LEADING = 5            # junk lines (a banner, a title) tolerated before a delimited file
CONSISTENT = 0.9           # share of sample records with the modal column count
SNIFF_LINES = 60

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
    if cell.isalpha():   # a word (most header cells): no digit, no "@"; one pass in C
        return False
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
    joined = "".join(body)
    # Without a quote (nor a line break, NUL or a giant cell) every line is one record split at
    # each delimiter: one split per line gives every leading-line choice's records.
    plain = not any(c in joined for c in '"\r\n\x00') and max(map(len, body)) < csv.field_size_limit()
    head = "\n".join(body[:SNIFF_LINES])   # a delimiter in any of its lines
    for delimiter in DELIMITERS:
        if delimiter in head:
            guess = _consistent_plain(body, delimiter) if plain else _consistent(body, delimiter)
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


def _consistent_plain(body: list[str], delimiter: str) -> tuple[float, DelimitedGuess] | None:
    """:func:`_consistent` for a sample without quotes: ``csv.reader`` then reads each line as
    ``line.split(delimiter)`` (an empty line as no record), so the column counts are taken once
    and each choice of leading lines is a slice of them (tests/matchers/test_pages.py)."""
    filled = [i for i, line in enumerate(body) if line]
    widths = [body[i].count(delimiter) + 1 for i in filled]
    for leading in range(min(MAX_LEADING + 1, len(body) - 1)):
        if not body[leading].strip():
            continue
        first = bisect.bisect_left(filled, leading)
        records = widths[first:]
        if len(records) < 2:
            return None
        columns, freq = Counter(records).most_common(1)[0]
        share = freq / len(records)
        if columns >= 2 and share >= CONSISTENT and records[0] == columns:
            rows = tuple(tuple(body[i].split(delimiter)) for i in filled[first:first + 20])
            return columns * share, DelimitedGuess(delimiter, leading, columns, False, rows)
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
    feed: Iterator[str] = lines
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
    yield Table(source, "delimited", header, DelimitedRows(reader, feed, guess.quoted), src.encoding)


class DelimitedRows:
    """The rows of a delimited table: iterating gives the ``csv.reader`` itself (C speed, no Python
    code per row), and what a reader needs to count a block of lines without parsing it.

    ``lines`` is the iterator of physical lines the reader reads, positioned after the last row
    the reader gave (``csv.reader`` never reads ahead); :meth:`parse` reads a list of such lines with
    the same dialect; :meth:`rest` goes on parsing from a block of lines already taken. A line
    without a ``"`` is exactly one record (blank lines give ``[]``), and any line is when quotes
    are not special (``quoted`` False): :func:`matchers.generic.match_generic` counts the lines of
    a block the pre-filter finds nothing in, without parsing them.
    """

    __slots__ = ("reader", "lines", "quoted")

    def __init__(self, reader: Any, lines: Iterator[str], quoted: bool):
        self.reader, self.lines, self.quoted = reader, lines, quoted

    def __iter__(self) -> Iterator[list[str]]:
        return self.reader

    def __next__(self) -> list[str]:
        return next(self.reader)

    @property
    def dialect(self) -> Any:
        return self.reader.dialect

    def parse(self, lines: list[str]) -> list[list[str]]:
        """The rows of ``lines``, which begin and end on record boundaries (no ``"`` in them)."""
        return list(csv.reader(lines, self.reader.dialect))

    def rest(self, taken: list[str]) -> Iterator[list[str]]:
        """The rows of ``taken`` (lines just taken from :attr:`lines`, beginning on a record
        boundary) and of every line after them, parsed as the reader would have."""
        return csv.reader(itertools.chain(taken, self.lines), self.reader.dialect)


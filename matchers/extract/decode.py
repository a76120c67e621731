"""Bytes → text: binary detection, encoding detection on a sample, streaming decoding, bounded lines.

The sample (the first :data:`SAMPLE_BYTES` of a member) decides everything: BOM, then "valid UTF-8
⇒ UTF-8", then charset-normalizer with a bias to cp1252 (the data is French: charset-normalizer
often says cp1250 for cp1252 text, which turns ``è`` into ``č``). The rest of the stream is decoded
by an :class:`io.TextIOWrapper` with ``errors="replace"``: a bad byte later never fails the read.
"""

from __future__ import annotations

import codecs
import functools
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

SAMPLE_BYTES = 64 * 1024
BUFFER_BYTES = 64 * 1024
BATCH_LINES = 1024           # line_batches: lines of one list
BATCH_CHARS = 16 * 1024**2   # ... and the text one list gathers before it is given

# BOM → codec that strips it. UTF-32 first: its little-endian BOM starts with UTF-16's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Formats we recognise but do not read: reported as "binary content (…)".
BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"%PDF-", "PDF document: extract its text first"),
    (b"\x7fELF", "ELF executable"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive: not supported, unpack it first"),
    (b"Rar!\x1a\x07", "RAR archive: not supported, unpack it first"),
    (b"SQLite format 3\x00", "SQLite database: export it to CSV first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE document (old Office format)"),
)

# Control bytes that never occur in text (tab, LF, VT, FF, CR and ESC are allowed).
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 11, 12, 13, 27)) + b"\x7f"
_MAX_CONTROL_RATIO = 0.05

# Single-byte Latin code pages charset-normalizer confuses with cp1252 on French text.
_LATIN_FAMILY = {
    "cp1250", "cp1252", "cp1257", "cp775", "cp850", "cp852", "cp858", "cp437", "latin_1",
    "iso8859_1", "iso8859_2", "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13", "iso8859_15",
    "iso8859_16", "hp_roman8", "mac_roman", "mac_latin2", "cp1254",
}


@dataclass(frozen=True)
class Sniffed:
    """What the sample says: an encoding, or why the content is not text."""

    encoding: str | None
    binary: str | None = None   # reason, e.g. "binary content (PNG image)"


def read_head(read: Callable[[int], bytes], size: int = SAMPLE_BYTES) -> bytes:
    """Up to ``size`` bytes from ``read``, looping over short reads, stopping at EOF."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when every other byte is NUL (ASCII-heavy UTF-16 without BOM)."""
    sample = head[:4096]
    if len(sample) < 16:
        return None
    even = sample[0::2].count(0) / len(sample[0::2])
    odd = sample[1::2].count(0) / len(sample[1::2])
    if odd > 0.4 and even < 0.05:
        codec = "utf-16-le"
    elif even > 0.4 and odd < 0.05:
        codec = "utf-16-be"
    else:
        return None
    text = sample[:len(sample) // 2 * 2].decode(codec, errors="replace")
    bad = sum(1 for c in text if (not c.isprintable() and c not in "\t\n\r\f\v\x1b") or c == "\ufffd")
    return codec if bad <= _MAX_CONTROL_RATIO * len(text) else None


def _valid_utf8(head: bytes, complete: bool) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _normalizer_guess(head: bytes) -> str | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(head[:SAMPLE_BYTES])
    best = matches.best()
    if best is None:
        return None
    encoding = best.encoding
    if encoding in _LATIN_FAMILY and encoding != "cp1252":
        for match in matches:
            if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.01:
                return "cp1252"
        try:
            head.decode("cp1252")
        except UnicodeDecodeError:
            return encoding
        return "cp1252"
    return encoding


def sniff(head: bytes, complete: bool) -> Sniffed:
    """Encoding of a member from its first bytes, or the reason it is binary.

    ``complete`` says whether ``head`` is the whole member (a truncated multi-byte character at
    the end of an incomplete sample is not an error).
    """
    for bom, codec in BOMS:
        if head.startswith(bom):
            return Sniffed(codec)
    for magic, what in BINARY_MAGIC:
        if head.startswith(magic):
            return Sniffed(None, f"binary content ({what}), skipped")
    if b"\x00" in head:
        utf16 = _utf16_without_bom(head)
        if utf16:
            return Sniffed(utf16)
        return Sniffed(None, "binary content (NUL bytes), skipped")
    controls = len(head) - len(head.translate(None, _CONTROL))
    if head and controls / len(head) > _MAX_CONTROL_RATIO:
        return Sniffed(None, "binary content (control bytes), skipped")
    if _valid_utf8(head, complete):
        return Sniffed("utf-8")
    guess = _normalizer_guess(head)
    if guess is None:
        return Sniffed(None, "binary content (no text encoding fits), skipped")
    return Sniffed(guess)


_WIDE = ("utf-16", "utf_16", "utf-32", "utf_32", "utf-7", "utf_7")


class TextSource:
    """The text of one member, opened once: from a raw byte stream in an encoding, or from a str.

    ``open(wrap)`` may slip a byte-level filter (``wrap(raw) -> raw``) under the decoder; it is
    applied only when ASCII bytes mean ASCII characters in the encoding (not UTF-16/32), and
    ``open`` says whether it was.
    """

    def __init__(self, raw: io.RawIOBase | None = None, encoding: str | None = None,
                 text: str | None = None):
        self.raw = raw
        self.encoding = encoding
        self._text = text

    def open(self, wrap: Callable[[io.RawIOBase], io.RawIOBase] | None = None
             ) -> tuple[io.TextIOBase, bool]:
        if self._text is not None or self.raw is None or self.encoding is None:
            return io.StringIO(self._text or ""), False
        if wrap is not None and not self.encoding.lower().startswith(_WIDE):
            return open_text(wrap(self.raw), self.encoding), True
        return open_text(self.raw, self.encoding), False


def open_text(raw: io.RawIOBase, encoding: str) -> io.TextIOWrapper:
    """A streaming text view of ``raw``: invalid bytes become U+FFFD, newlines are kept as-is."""
    buffered = io.BufferedReader(raw, BUFFER_BYTES)
    text = io.TextIOWrapper(buffered, encoding=encoding, errors="replace", newline="")
    text._CHUNK_SIZE = BUFFER_BYTES   # type: ignore[attr-defined]  # 8 KiB: 8x the Python reads
    return text


def raw_lines(text: io.TextIOBase, cap: int) -> Iterator[str]:
    """Physical lines with their terminators, each at most ``cap`` characters (C-level iterator).

    A longer line comes out in pieces; this is what feeds ``csv.reader`` at full speed.
    """
    return iter(functools.partial(text.readline, cap), "")


def text_lines(text: io.TextIOBase, cap: int) -> Iterator[str]:
    """Lines without terminators; a line longer than ``cap`` is split, at a space when there is one
    near the cut, so no giant string is ever built and no word is cut in two when avoidable.

    Read a list at a time (:func:`line_batches`) of at most :data:`BUFFER_BYTES` characters (and
    16 lines more): about what the text stream reads ahead anyway, so a reader of the lines that
    meters other input beside them (the blobs in a text) meters in nearly the same order."""
    return itertools.chain.from_iterable(line_batches(text, cap, BUFFER_BYTES))


def line_batches(text: io.TextIOBase, cap: int, chars: int | None = None) -> Iterator[list[str]]:
    """The lines of :func:`text_lines`, a list at a time, read and stripped of their terminators by
    C-level passes (no Python step per line) until a line reaches ``cap``; from there on, the
    lines go through the splitting of long lines one by one.

    A list holds up to :data:`BATCH_LINES` lines, read a few at a time (as many as
    :data:`BATCH_CHARS` // ``cap``, 1 to 64) until it holds ``chars`` characters
    (:data:`BATCH_CHARS` by default): with the default cap, 16 lines of 1 MiB at most, so a list
    never holds much more than 32 MiB."""
    chars = BATCH_CHARS if chars is None else chars
    chunks = raw_lines(text, cap)
    step = max(1, min(64, BATCH_CHARS // max(cap, 1)))
    while batch := _take(chunks, step, chars):
        if max(map(len, batch)) < cap:   # every piece is one whole line (or the last one)
            yield list(map(str.rstrip, batch, itertools.repeat("\r\n")))
            continue
        pieces = _cut_lines(itertools.chain(batch, chunks), cap)
        while batch := _take(pieces, step, chars):
            yield batch
        return


def _take(items: Iterator[str], step: int, chars: int) -> list[str]:
    """Up to :data:`BATCH_LINES` of ``items``, ``step`` at a time, until they hold ``chars``."""
    batch = list(itertools.islice(items, min(step, BATCH_LINES)))
    size = sum(map(len, batch))
    while (room := BATCH_LINES - len(batch)) > 0 and size < chars and (
            more := list(itertools.islice(items, min(step, room)))):
        batch += more
        size += sum(map(len, more))
    return batch


def _cut_lines(chunks: Iterator[str], cap: int) -> Iterator[str]:
    """Lines from the pieces of :func:`raw_lines` (at most ``cap`` characters each), a long line cut
    at a space near ``cap`` when there is one, a ``\r\n`` split by the cap kept as one terminator."""
    carry = ""
    after_cr = False
    for chunk in chunks:
        if after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]     # "\r\n" split by the cap: the "\n" is not an empty line
            after_cr = False
            if not chunk:
                continue
        if chunk.endswith(("\n", "\r")):
            after_cr = chunk.endswith("\r") and len(chunk) == cap
            yield carry + chunk.rstrip("\r\n")
            carry = ""
            continue
        after_cr = False
        if len(chunk) < cap:      # last line, without terminator
            yield carry + chunk
            carry = ""
            continue
        piece = carry + chunk
        cut = piece.rfind(" ", max(0, len(piece) - 256))
        if cut <= 0:
            cut = len(piece)
        yield piece[:cut]
        carry = piece[cut:]
    if carry:
        yield carry


def decode_sample(head: bytes, encoding: str, complete: bool) -> str:
    """The sample as text; when incomplete, its last (partial) line is dropped."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(head, final=complete)
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[:cut + 1] if cut >= 0 else text
    return text

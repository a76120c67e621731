"""Extraction: the bytes of a paste, post, attachment or file → tables of records, streaming.

The flow, one module per step (this package's ``__init__`` drives it: :func:`extract`)::

    bytes ─► decode.read_head ─► containers.container_kind ◄────────────────┐ a member, a decoded
               │ gzip · bzip2 · xz ─► compressed.Inflate ───────────────────┤ blob: sniffed again
               │ zip · tar ─► archives: one stream per member ──────────────┤ (nested up to
               │              (a workbook: xlsx, one table per sheet)       │ Limits.max_depth)
               │ none                                                       │
               ▼                                                            │
             decode.sniff: binary (skipped, said)? which encoding?          │
               │ text; its first 64 KiB decide the shape                    │
               ├─ htmlsniff ─► htmldoc: each data <table>; the page's       │
               │               visible text goes round this fork again      │
               ├─ jsondoc: arrays, objects of arrays, JSON lines (ijson)    │
               ├─ sqldump: the rows of INSERT and COPY statements           │
               ├─ delimited: one table, the csv.reader itself (fast path)   │
               └─ text: the segmenter: keyvalue · combo · delimited blocks  │
                        · free text; blobs: base64/hex lines, decoded ──────┘
               ▼
    Table(source, kind, header, rows, encoding) ─► matchers.match: rows → records → matches

Every stream between the steps is a :class:`~matchers.extract.containers.SafeReader` (limits,
never raises); ``model`` holds what they share: :class:`Limits`, :class:`Table` and the per-input
``Context`` (the error list and the byte budget).

CONTRACT (the matchers depend on it):

    for table in extract(stream, name, limits=Limits(), errors=errs):
        table.kind     # "delimited" | "json" | "html" | "keyvalue" | "combo" | "text"
        table.source   # "name" or "name!member/path.csv" inside containers (nested:
                       # "a.zip!b.zip!c.csv"); "name#/patients" for an array under a JSON object
                       # member; "name#table2" for the second data table of an HTML page
        table.header   # tuple of column names when the table has a header (delimited, html), else None
        table.encoding # detected text encoding ("utf-8", "cp1252", "utf-16" …), None for str input
        for row in table.rows:   # lazy; exhaust one table's rows before asking for the next table
            ...                  # delimited/html: a sequence of str (aligned with header/column index)
                                 # json/keyvalue/combo: a dict[str, str] (flattened keys)
                                 # text: a str, one line of free text

``errors`` (a list) receives one human-readable string per problem ("name!member: reason"); bad
content never raises out of ``extract`` nor out of iterating ``rows``: a truncated archive, a
bomb, a read error or malformed JSON ends the affected table early and adds an error entry.
Error entries never quote content (names, sizes and causes only).

More precisely:

* ``delimited`` rows of a delimited file iterate as the ``csv.reader`` itself (lists of str;
  a :class:`~matchers.extract.delimited.DelimitedRows`, which also hands out the raw lines), header
  row already consumed when ``header`` is set. Rows may be ragged; a blank line gives ``[]``. No
  Python code runs per row on this path, so a scan can stay close to the speed of a bare
  ``csv.reader``. (A delimited *block* inside a mixed text yields lists from a generator.)
* ``json`` rows: objects flattened (``patient.nom``), lists of scalars joined with ``", "``,
  every value a str. Under a root object, each array is its own table (``name#/patients``) and
  the scalars around them come last as one record (``name``).
* ``combo`` rows are ``{"email": ..., "secret": ...}``; ``keyvalue`` rows are the ``key: value``
  pairs of one record, keys as written (``"N° SS"``, ``"Tél"``).
* Every line of a text document lands in exactly one table: a mixed paste (chatter with a block
  of CSV rows, a banner above ``key: value`` records) comes out as consecutive tables.
* Leaving a table before its end is allowed: asking for the next table skips the rest.
* Binary content (NUL bytes, images, executables), an empty input, or a member refused by a limit
  gives an error entry and no table.

See docs/extraction.md for the formats handled and the limits.
"""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from matchers.extract.containers import SafeReader, container_kind
from matchers.extract.decode import SAMPLE_BYTES, TextSource, decode_sample, read_head, sniff, text_lines
from matchers.extract.delimited import delimited_tables, ensure_field_limit, sniff_delimited
from matchers.extract.htmlsniff import looks_html
from matchers.extract.jsondoc import json_tables
from matchers.extract.jsondoc import probe as json_probe
from matchers.extract.model import (
    KINDS,
    ArchiveBombError,
    Context,
    CorruptInputError,
    ExtractError,
    LimitExceededError,
    Limits,
    Table,
)
from matchers.extract.prefixes import PrefixStripped, line_prefix, strip_prefix
from matchers.extract.sqldump import looks_sql, sql_tables
from matchers.extract.text import Segmenter, document_plan, split_lines

if TYPE_CHECKING:
    from matchers.extract.blobs import BlobReader

# The readers of containers (archives, compressed streams, workbooks: tarfile, tempfile, bz2,
# openpyxl …) are imported by the first input that needs them (:func:`_container`, :func:`_zip`):
# the scan of a plain text or CSV does not pay for them at start-up.

__all__ = [
    "KINDS", "ArchiveBombError", "CorruptInputError", "ExtractError", "LimitExceededError",
    "Limits", "Table", "extract", "extract_bytes", "extract_text",
]

log = logging.getLogger(__name__)

SAMPLE_CHARS = SAMPLE_BYTES
_SUFFIXES = {".gz": "", ".tgz": ".tar", ".gzip": "", ".bz2": "", ".tbz2": ".tar", ".xz": "",
             ".txz": ".tar"}


def extract(stream: BinaryIO, name: str, limits: Limits = Limits(),
            errors: list[str] | None = None) -> Iterator[Table]:
    """Tables of records in a binary stream (file, socket, ``BytesIO``), read once, streaming.

    ``name`` labels the input in table sources and error entries (a path or a URL).
    """
    ctx = Context(limits, errors)
    yield from _never_raise(_input(stream, name, ctx), name, ctx)


def extract_bytes(data: bytes, name: str, limits: Limits = Limits(),
                  errors: list[str] | None = None) -> Iterator[Table]:
    """:func:`extract` over bytes already in memory."""
    return extract(io.BytesIO(data), name, limits, errors)


def extract_text(text: str, name: str, errors: list[str] | None = None, *,
                 limits: Limits = Limits()) -> Iterator[Table]:
    """Tables in content already decoded (a page's text, a post body): no container, no binary
    check, same shapes (HTML, JSON, delimited, key-value, combo, text). ``encoding`` is None."""
    ctx = Context(limits, errors)
    sample, complete = _sample_of(text)
    tables = _text(TextSource(text=text), sample, complete, name, ctx, 0)
    yield from _never_raise(tables, name, ctx)


def _never_raise(tables: Iterator[Table], name: str, ctx: Context) -> Iterator[Table]:
    try:
        yield from tables
    except Exception as exc:  # noqa: BLE001 — a bug must not stop a scan; no message: it may hold data
        frames = "".join(traceback.format_tb(exc.__traceback__, limit=-3))
        log.warning("extraction of %s failed with %s (a bug, please report):\n%s",
                    name, type(exc).__name__, frames)
        ctx.report(name, f"extraction failed ({type(exc).__name__}); the rest of this input "
                         "was skipped")


def _seekable(stream: BinaryIO) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _input(stream: BinaryIO, name: str, ctx: Context) -> Iterator[Table]:
    seekable = _seekable(stream)
    try:
        if seekable:
            start = stream.tell()
            head = read_head(stream.read)
            stream.seek(start)
        else:
            head = read_head(stream.read)
    except OSError as exc:
        ctx.report(name, f"read error ({type(exc).__name__}: {exc.strerror or exc})")
        return
    kind = container_kind(head)
    if kind is None:
        reader = SafeReader(stream.read, ctx, name, head=b"" if seekable else head, meter=True)
        yield from _leaf(reader, head, name, ctx)
    else:
        yield from _container(kind, stream, head, seekable, name, ctx, 0)


def _member(reader: SafeReader, name: str, ctx: Context, depth: int) -> Iterator[Table]:
    """A stream found inside a container: sniff it again (a zip in a zip, a csv in a gzip)."""
    head = read_head(reader.read)
    full = SafeReader(reader.read, ctx, name, head=head)
    kind = container_kind(head)
    if kind is None:
        yield from _leaf(full, head, name, ctx, depth)
    else:
        yield from _container(kind, full, head, False, name, ctx, depth)


def _inner_name(name: str, kind: str, head: bytes) -> str:
    if kind == "gzip" and len(head) > 10 and head[3] & 0x08:
        offset = 10
        if head[3] & 0x04 and len(head) >= 12:
            offset += 2 + int.from_bytes(head[10:12], "little")
        end = head.find(b"\x00", offset)
        if end > offset:
            return head[offset:end].decode("latin-1").rsplit("/", 1)[-1]
    base = name.rsplit("!", 1)[-1].rsplit("/", 1)[-1].split("?", 1)[0]
    for suffix, replacement in _SUFFIXES.items():
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[:-len(suffix)] + replacement
    return "content"


def _container(kind: str, stream: BinaryIO | SafeReader, head: bytes, seekable: bool, name: str,
               ctx: Context, depth: int) -> Iterator[Table]:
    from matchers.extract.archives import spool, tar_members
    from matchers.extract.compressed import Inflate, gzip_bomb_confirmed, gzip_declared_size

    limits = ctx.limits
    if depth >= limits.max_depth:
        ctx.report(name, f"{kind} archive nested deeper than max_depth={limits.max_depth}: "
                         "not opened (raise Limits.max_depth to read it)")
        return
    # The compressed bytes, from their first byte (the head was already read when not seekable).
    source = stream if seekable or isinstance(stream, SafeReader) else \
        SafeReader(stream.read, ctx, name, head=head)
    if kind in ("gzip", "bzip2", "xz"):
        if kind == "gzip" and seekable:
            declared = gzip_declared_size(stream)  # type: ignore[arg-type]
            if declared is not None:
                size, packed = declared
                if size > limits.ratio_grace_bytes and size > limits.max_ratio * packed \
                        and gzip_bomb_confirmed(stream, ctx):  # type: ignore[arg-type]
                    ctx.report(name, f"refused: declares {size} bytes from {packed} compressed, a "
                                     f"ratio above max_ratio={limits.max_ratio:g}, confirmed by its "
                                     "first blocks: a decompression bomb (not expanded)")
                    return
        inflate = Inflate(source.read, kind)
        child_name = f"{name}!{_inner_name(name, kind, head)}"
        child = SafeReader(inflate.read, ctx, child_name, meter=True,
                           compressed=lambda: inflate.consumed)
        try:
            yield from _member(child, child_name, ctx, depth + 1)
        finally:
            child.close()
    elif kind == "zip":
        if seekable:
            yield from _zip(stream, name, ctx, depth)  # type: ignore[arg-type]
            return
        try:
            spooled = spool(source.read, ctx.remaining if not isinstance(stream, SafeReader)
                            else limits.max_bytes)
        except ExtractError as exc:
            ctx.report(name, str(exc))
            return
        with spooled:
            if source.failed or ctx.exhausted:   # already reported
                return
            yield from _zip(spooled, name, ctx, depth)
    elif kind == "tar":
        buffered = io.BufferedReader(source, 64 * 1024) if isinstance(source, SafeReader) \
            else source
        for member_name, member in tar_members(buffered, name, ctx, meter=depth == 0):  # type: ignore[arg-type]
            yield from _member(member, member_name, ctx, depth + 1)


def _zip(fileobj: BinaryIO, name: str, ctx: Context, depth: int) -> Iterator[Table]:
    from matchers.extract.archives import zip_members
    from matchers.extract.xlsx import is_workbook, xlsx_tables

    if is_workbook(fileobj):
        sheets = xlsx_tables(fileobj, name, ctx)
        if sheets is not None:
            yield from sheets
            return
    for member_name, member in zip_members(fileobj, name, ctx):
        yield from _member(member, member_name, ctx, depth + 1)


def _leaf(raw: SafeReader, head: bytes, name: str, ctx: Context, depth: int = 0) -> Iterator[Table]:
    """A stream that is not a container: text in some encoding, or binary content."""
    if not head:  # empty: read in full, nothing in it (not an error; size 0 says it)
        return
    complete = len(head) < SAMPLE_BYTES
    sniffed = sniff(head, complete)
    if sniffed.encoding is None:
        ctx.report(name, sniffed.binary or "binary content, skipped")
        return
    sample = decode_sample(head, sniffed.encoding, complete)
    yield from _text(TextSource(raw, sniffed.encoding), sample, complete, name, ctx, 0, depth)


class _Stripped(TextSource):
    """A text source whose lines lose a prefix (:func:`matchers.extract.prefixes.line_prefix`)."""

    def __init__(self, src: TextSource, prefix):
        super().__init__(encoding=src.encoding)
        self._src = src
        self._prefix = prefix

    def open(self, wrap=None):
        text, wrapped = self._src.open(wrap)
        return PrefixStripped(text, self._prefix), wrapped


def _sample_of(text: str) -> tuple[str, bool]:
    if len(text) <= SAMPLE_CHARS:
        return text, True
    sample = text[:SAMPLE_CHARS]
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    return (sample[:cut + 1] if cut >= 0 else sample), False


def _text(src: TextSource, sample: str, complete: bool, source: str, ctx: Context,
          html_depth: int, depth: int = 0) -> Iterator[Table]:
    """Tables of one text, its shape decided on ``sample`` (its first 64 KiB); ``depth``: the
    containers and encoded blobs it is nested in."""
    limits = ctx.limits
    encoding = src.encoding
    if html_depth < 2 and looks_html(sample):
        page = src.open()[0].read(min(limits.max_json_bytes, limits.max_html_bytes) + 1)
        if len(page) > limits.max_json_bytes:
            ctx.report(source, f"HTML page larger than max_json_bytes={limits.max_json_bytes} "
                               "characters: not parsed (raise Limits.max_json_bytes to read it)")
            return
        try:
            from matchers.extract.htmldoc import html_tables  # BeautifulSoup loads with the first page

            tables, visible = html_tables(page, source, encoding, max_bytes=limits.max_html_bytes)
        except LimitExceededError as exc:
            ctx.report(source, str(exc))
            return
        del page
        yield from tables
        visible_sample, visible_complete = _sample_of(visible)
        visible_src = TextSource(text=visible)
        visible_src.encoding = encoding          # reported on the tables, not used to decode
        yield from _text(visible_src, visible_sample, visible_complete, source, ctx,
                         html_depth + 1, depth)
        return
    shape = json_probe(sample, complete)
    if shape is not None:
        yield from json_tables(src.open()[0], shape, source, encoding, ctx)
        return
    if looks_sql(sample):
        ensure_field_limit(limits.max_line_chars)
        yield from sql_tables(text_lines(src.open()[0], limits.max_line_chars), source, encoding)
        return
    lines = split_lines(sample)   # the sample's lines, split once
    prefix = line_prefix(lines)
    if prefix is not None:   # a paste viewer's line numbers, a mail quote: read without them
        sample = "\n".join(strip_prefix(lines, prefix)) + "\n"
        src = _Stripped(src, prefix)
        lines = split_lines(sample)
    plan = document_plan(sample, lines)
    if plan == "blank" and complete:  # read in full, nothing in it: not an error
        return
    if plan == "delimited":
        guess = sniff_delimited(lines)
        if guess is not None:
            yield from delimited_tables(src, guess, source, ctx)
            return
    ensure_field_limit(limits.max_line_chars)   # the segmenter splits quoted lines with csv
    lines = text_lines(src.open()[0], limits.max_line_chars)

    def open_blob(blob: BlobReader, number: int) -> Iterator[Table]:
        """An encoded blob (base64, hex) in the text, decoded and read like an attachment."""
        name = f"{source}!{blob.kind}-{number}"
        if number > limits.max_members:
            if number == limits.max_members + 1:
                ctx.report(source, f"more than max_members={limits.max_members} encoded blobs: "
                                   "the rest were not decoded")
            return iter(())
        if depth + 1 > limits.max_depth:
            ctx.report(name, f"encoded blob nested deeper than max_depth={limits.max_depth}: "
                             "not decoded (raise Limits.max_depth to read it)")
            return iter(())
        reader = SafeReader(blob.read, ctx, name, meter=True)
        return _member(reader, name, ctx, depth + 1)

    yield from Segmenter(lines, source, encoding, open_blob).tables()

"""Compressed streams: gzip, bzip2 and xz (and a zip member's raw deflate), inflated in bounded steps.

:class:`Inflate` feeds :data:`CHUNK` compressed bytes at a time and returns at most
:data:`~matchers.extract.containers.SPOOL_CHUNK` bytes per read, so the :class:`SafeReader` over
it (:mod:`matchers.extract.containers`) sees a bomb after a bounded overrun. A seekable gzip's
declared size (its ISIZE trailer) is checked before anything is inflated, and trusted only when
its first blocks confirm it (:func:`gzip_bomb_confirmed`): a truncated dump must not be called a
bomb. Used by :mod:`matchers.extract` for compressed inputs and by
:mod:`matchers.extract.archives` for salvaged zip members.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zlib
from collections.abc import Callable
from typing import IO, Any

from matchers.extract.containers import BZIP2_MAGIC, GZIP_MAGIC, SPOOL_CHUNK, XZ_MAGIC
from matchers.extract.model import Context, CorruptInputError, ExtractError

CHUNK = 16 * 1024          # compressed bytes fed per step: bounds the overrun before a bomb is seen


class Inflate:
    """Streaming decompression of gzip / bzip2 / xz / raw deflate with bounded output per call.

    Gzip is inflated as raw deflate with its header and trailer parsed here, so the content is
    delivered *before* a bad CRC is reported (zlib's gzip mode drops the last block's output
    when the check fails). Multi-member gzip (and concatenated bzip2/xz) streams are followed;
    trailing NUL padding is ignored; a stream that ends early raises :class:`CorruptInputError`.
    """

    MAGIC = {"gzip": GZIP_MAGIC, "bzip2": BZIP2_MAGIC, "xz": XZ_MAGIC}
    MAX_HEADER = 64 * 1024

    def __init__(self, read: Callable[[int], bytes], kind: str):
        if kind not in ("gzip", "deflate", "bzip2", "xz"):
            raise ValueError(f"unknown compression {kind!r}")
        self._read = read
        self.kind = kind
        self._zlib = kind in ("gzip", "deflate")
        self._d: Any = None            # decompressor of the current member (None between members)
        self.consumed = 0              # compressed bytes fed so far
        self._eof = False
        self._pending = b""            # fetched input not yet given to a decompressor
        self._members = 0
        self._crc = 0
        self._size = 0

    def _new(self) -> Any:
        if self._zlib:
            return zlib.decompressobj(-zlib.MAX_WBITS)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor()

    def _fetch(self) -> bytes:
        data = self._read(CHUNK)
        self.consumed += len(data)
        return data

    def _truncated(self, what: str = "ends before its end marker") -> CorruptInputError:
        return CorruptInputError(f"truncated {self.kind} stream ({what})")

    @property
    def unused(self) -> int:
        """Compressed bytes fed but not part of the stream (once a raw deflate stream ended)."""
        return len(self._d.unused_data) if self._d is not None and self._d.eof else 0

    def _start_member(self) -> bool:
        buf, self._pending = self._pending, b""
        if self._members:
            while not buf.strip(b"\x00"):          # NUL padding after the last member
                buf = self._fetch()
                if not buf:
                    return False
            buf = buf.lstrip(b"\x00")
            magic = self.MAGIC.get(self.kind)
            if magic is None or not buf.startswith(magic[:len(buf)]):
                raise CorruptInputError(f"trailing data after the {self.kind} stream was ignored")
        if self.kind == "gzip":
            while (size := _gzip_header_size(buf)) is None:
                more = self._fetch()
                if not more or len(buf) > self.MAX_HEADER:
                    raise self._truncated("incomplete gzip header")
                buf += more
            buf = buf[size:]
        self._d = self._new()
        self._pending = buf
        self._members += 1
        self._crc = self._size = 0
        return True

    def _end_member(self) -> None:
        rest = self._d.unused_data
        if self.kind == "deflate":
            self._eof = True
            return
        if self.kind == "gzip":
            while len(rest) < 8:
                more = self._fetch()
                if not more:
                    raise self._truncated("gzip trailer missing")
                rest += more
            crc, size = struct.unpack("<II", rest[:8])
            rest = rest[8:]
            if crc != self._crc or size != self._size & 0xFFFFFFFF:
                raise CorruptInputError("gzip CRC or length check failed: the content read is "
                                        "corrupt or incomplete")
        self._d = None
        self._pending = rest

    def read(self, n: int) -> bytes:
        n = max(1, min(n, SPOOL_CHUNK))
        while not self._eof:
            if self._d is None:
                if not self._start_member():
                    self._eof = True
                    return b""
            d = self._d
            if d.eof:
                self._end_member()
                continue
            if self._pending:
                feed, self._pending = self._pending, b""
            elif self._zlib:
                feed = d.unconsumed_tail or self._fetch()
                if not feed:
                    raise self._truncated()
            elif d.needs_input:
                feed = self._fetch()
                if not feed:
                    raise self._truncated()
            else:
                feed = b""
            out = d.decompress(feed, n)
            if out:
                if self.kind == "gzip":
                    self._crc = zlib.crc32(out, self._crc)
                    self._size += len(out)
                return out
        return b""


def _gzip_header_size(buf: bytes) -> int | None:
    """Length of the gzip member header at the start of ``buf`` (None: need more bytes)."""
    if len(buf) < 10:
        return None
    if buf[:3] != b"\x1f\x8b\x08":
        raise CorruptInputError("not a gzip member (bad header)")
    flags = buf[3]
    pos = 10
    if flags & 0x04:                                   # FEXTRA
        if len(buf) < pos + 2:
            return None
        pos += 2 + int.from_bytes(buf[pos:pos + 2], "little")
    for flag in (0x08, 0x10):                          # FNAME, FCOMMENT (NUL-terminated)
        if flags & flag:
            end = buf.find(b"\x00", pos)
            if end < 0:
                return None
            pos = end + 1
    if flags & 0x02:                                   # FHCRC
        pos += 2
    return pos if len(buf) >= pos else None


def gzip_declared_size(stream: IO[bytes]) -> tuple[int, int] | None:
    """(ISIZE trailer, compressed size) of a seekable gzip, the stream left where it was."""
    try:
        if not stream.seekable():
            return None
        start = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        if end - start < 18:
            stream.seek(start)
            return None
        stream.seek(end - 4)
        (isize,) = struct.unpack("<I", stream.read(4))
        stream.seek(start)
        return isize, end - start
    except (OSError, ValueError):
        return None


def gzip_bomb_confirmed(stream: IO[bytes], ctx: Context) -> bool:
    """Whether the first blocks of a seekable gzip expand beyond ``max_ratio`` (a bomb).

    A gzip trailer is only trusted when this confirms it: the last 4 bytes of a *truncated*
    gzip are arbitrary, and a truncated dump must not be called a bomb. At most
    ``max_ratio`` × 2 chunks are inflated (into a discarded buffer); the stream is rewound.
    """
    limits = ctx.limits
    start = stream.tell()
    inflate = Inflate(stream.read, "gzip")
    out = 0
    try:
        while inflate.consumed <= 2 * CHUNK:
            data = inflate.read(SPOOL_CHUNK)
            if not data:
                return False
            out += len(data)
            if out > limits.ratio_grace_bytes and out > limits.max_ratio * max(inflate.consumed, 1):
                return True
        return False
    except (ExtractError, zlib.error, OSError):
        return False
    finally:
        stream.seek(start)

"""Containers: gzip, bzip2, xz, zip and tar, found by their magic bytes, opened within limits.

Every stream handed to the text layer is a :class:`SafeReader`: it counts decompressed bytes
against ``Limits.max_bytes``, checks the expansion ratio of compressed members against
``Limits.max_ratio`` *while reading* (headers lie), and turns any failure (bomb, truncation, bad
CRC, a read error) into one error entry and a clean end of file, so the csv reader or JSON parser
above it simply stops: nothing ever raises into the consumer's loop.

Declared sizes are checked first, before a byte is inflated: a zip member's ``file_size`` and
``compress_size``, a seekable gzip's ISIZE trailer. Zip needs random access: a non-seekable input
or a nested zip is spooled to a temporary file (bounded by what is left of ``max_bytes``). A zip
whose central directory is missing (truncated download) is salvaged from its local headers.
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from matchers.extract.model import (
    Context,
    CorruptInputError,
    ExtractError,
    LimitExceededError,
)

log = logging.getLogger(__name__)

CHUNK = 16 * 1024          # compressed bytes fed per step: bounds the overrun before a bomb is seen
SPOOL_CHUNK = 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def container_kind(head: bytes) -> str | None:
    """``gzip``, ``bzip2``, ``xz``, ``zip``, ``tar`` or ``None``, from the first bytes only."""
    if head.startswith(GZIP_MAGIC) and len(head) >= 3 and head[2] == 8:
        return "gzip"
    if head.startswith(ZIP_MAGICS):
        return "zip"
    if head.startswith(BZIP2_MAGIC) and len(head) >= 10 and head[3:4].isdigit() \
            and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90"):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def describe(exc: BaseException) -> str:
    """A reason for an error entry; never quotes content (library messages with data are dropped)."""
    if isinstance(exc, ExtractError):
        return str(exc)
    if isinstance(exc, zlib.error):
        return f"corrupt compressed data ({exc})"
    if isinstance(exc, (EOFError, lzma.LZMAError)):
        return f"truncated or corrupt compressed data ({type(exc).__name__})"
    if isinstance(exc, zipfile.BadZipFile):
        return f"corrupt zip member ({exc})"
    if isinstance(exc, tarfile.TarError):
        return f"corrupt tar archive ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"read error ({type(exc).__name__}: {exc.strerror or exc})"
    return f"read failed ({type(exc).__name__})"


class SafeReader(io.RawIOBase):
    """A raw binary stream over ``read`` that never raises: problems become one report and EOF.

    ``head``: bytes already read from ``read`` (the sniffing sample), served first.
    ``meter``: count what is served against ``max_bytes``.
    ``compressed``: how many compressed bytes produced what was served so far (a number or a
    callable); when given, serving more than ``max_ratio`` times that is a bomb.
    """

    def __init__(self, read: Callable[[int], bytes], ctx: Context, source: str, *,
                 head: bytes = b"", meter: bool = False,
                 compressed: int | Callable[[], int] | None = None,
                 on_close: Callable[[], None] | None = None):
        super().__init__()
        self._read = read
        self._ctx = ctx
        self._source = source
        self._head = memoryview(head) if head else None
        self._meter = meter
        self._compressed = compressed
        self._on_close = on_close
        self._failed = False
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._failed:
            return 0
        size = len(buffer)
        if self._head is not None:
            data: Any = self._head[:size]
            self._head = self._head[len(data):] if len(data) < len(self._head) else None
        else:
            try:
                data = self._read(size) or b""   # None (non-blocking, nothing yet) ends it too
            except Exception as exc:  # noqa: BLE001 — the contract: report, never raise
                self.fail(describe(exc))
                return 0
        n = self._count(len(data))
        buffer[:n] = data[:n]
        return n

    def _count(self, n: int) -> int:
        """Account for ``n`` bytes about to be served; returns how many may be served."""
        if self._meter:
            allowed = self._ctx.take(n)
            if allowed < n:
                self.served += allowed
                self.fail(self._ctx.limit_reason())
                return allowed
        self.served += n
        if self._compressed is not None:
            compressed = self._compressed() if callable(self._compressed) else self._compressed
            limits = self._ctx.limits
            if self.served > limits.ratio_grace_bytes and \
                    self.served > limits.max_ratio * max(compressed, 1):
                self.fail(f"refused: expands more than max_ratio={limits.max_ratio:g} times "
                          f"({self.served} bytes from {compressed} compressed), a decompression "
                          "bomb; the rest was not read")
        return n

    def fail(self, reason: str) -> None:
        """Report once and behave as EOF from now on."""
        if not self._failed:
            self._failed = True
            self._head = None
            self._ctx.report(self._source, reason)

    @property
    def failed(self) -> bool:
        return self._failed

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            try:
                self._on_close()
            except Exception:  # noqa: BLE001 — closing a member must not mask the result
                log.debug("closing %s failed", self._source, exc_info=True)
        super().close()


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


def check_declared(ctx: Context, declared: int, compressed: int) -> str | None:
    """Why a member must be refused from its declared sizes alone, or None."""
    limits = ctx.limits
    if declared > ctx.remaining:
        return (f"refused: declares {declared} bytes, more than what is left of max_bytes="
                f"{limits.max_bytes} (raise Limits.max_bytes to read it)")
    if declared > limits.ratio_grace_bytes and declared > limits.max_ratio * max(compressed, 1):
        return (f"refused: declares {declared} bytes from {compressed} compressed, a ratio above "
                f"max_ratio={limits.max_ratio:g}: a decompression bomb (not expanded)")
    return None


def spool(read: Callable[[int], bytes], limit: int) -> IO[bytes]:
    """Copy a stream into a temporary file (random access for zipfile), at most ``limit`` bytes."""
    tmp = tempfile.TemporaryFile(prefix="dumpwatch-spool-")
    total = 0
    try:
        while True:
            chunk = read(SPOOL_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise LimitExceededError(
                    f"more than {limit} bytes to spool (what is left of max_bytes); "
                    "not read (raise Limits.max_bytes to read it)")
            tmp.write(chunk)
        tmp.seek(0)
        return tmp
    except BaseException:
        tmp.close()
        raise


# -- zip ----------------------------------------------------------------------------------------

def zip_members(fileobj: IO[bytes], source: str, ctx: Context) -> Iterator[tuple[str, SafeReader]]:
    """(source, stream) of each readable member; problems with a member are reported and skipped.

    Each stream must be consumed (or abandoned) before the next member is asked for.
    """
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error, NotImplementedError) as exc:
        ctx.report(source, f"zip central directory unreadable ({type(exc).__name__}: truncated "
                           "or corrupt archive); members salvaged from their local headers")
        fileobj.seek(0)
        yield from salvage_zip_members(fileobj, source, ctx)
        return
    with archive:
        infos = archive.infolist()
        limit = ctx.limits.max_members
        if len(infos) > limit:
            ctx.report(source, f"{len(infos)} members, more than max_members={limit}: only the "
                               f"first {limit} were read")
            infos = infos[:limit]
        for info in infos:
            if info.is_dir():
                continue
            name = f"{source}!{info.filename}"
            reason = _zip_refusal(info, ctx)
            if reason:
                ctx.report(name, reason)
                continue
            try:
                member = archive.open(info)
            except Exception as exc:  # noqa: BLE001
                ctx.report(name, describe(exc))
                continue
            reader = SafeReader(_checked_read(member, info), ctx, name, meter=True,
                                compressed=info.compress_size, on_close=member.close)
            try:
                yield name, reader
            finally:
                reader.close()


def _checked_read(member: IO[bytes], info: zipfile.ZipInfo) -> Callable[[int], bytes]:
    """``member.read`` with the CRC checked *after* the content was delivered.

    zipfile raises on a bad CRC inside the read that reaches the end, dropping that read's data
    (all of a small member): its own check is switched off and done here instead. zipfile still
    stops at the declared size, so a member that lies about it cannot expand further.
    """
    if hasattr(member, "_expected_crc"):
        member._expected_crc = None   # type: ignore[attr-defined]
    else:   # pragma: no cover - another zipfile implementation: keep its own check
        return member.read
    state = {"crc": 0, "size": 0}

    def read(n: int) -> bytes:
        data = member.read(n)
        if data:
            state["crc"] = zlib.crc32(data, state["crc"])
            state["size"] += len(data)
        elif state["crc"] != info.CRC or state["size"] != info.file_size:
            raise zipfile.BadZipFile(f"Bad CRC-32 or size for {info.filename!r}: the member is "
                                     "corrupt, or its header lies about its size")
        return data

    return read


def _zip_refusal(info: zipfile.ZipInfo, ctx: Context) -> str | None:
    if info.flag_bits & 0x1:
        return "encrypted member skipped (no password)"
    if info.compress_type not in _ZIP_METHODS:
        return f"compression method {info.compress_type} not supported, member skipped"
    return check_declared(ctx, info.file_size, info.compress_size)


_LOCAL = struct.Struct("<4sHHHHHIIIHH")


def _range_reader(fileobj: IO[bytes], length: int | None) -> Callable[[int], bytes]:
    left = [length]

    def read(n: int) -> bytes:
        if left[0] is not None:
            n = min(n, left[0])
            if n <= 0:
                return b""
        data = fileobj.read(n)
        if left[0] is not None:
            left[0] -= len(data)
        return data

    return read


def salvage_zip_members(fileobj: IO[bytes], source: str, ctx: Context
                        ) -> Iterator[tuple[str, SafeReader]]:
    """Members of a zip without central directory, read in order from their local headers."""
    count = 0
    pos = fileobj.tell()
    while True:
        fileobj.seek(pos)
        raw = fileobj.read(_LOCAL.size)
        if len(raw) < _LOCAL.size or not raw.startswith(b"PK\x03\x04"):
            return
        (_sig, _ver, flags, method, _t, _d, _crc, csize, usize, name_len, extra_len) = _LOCAL.unpack(raw)
        filename = fileobj.read(name_len).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = fileobj.read(extra_len)
        if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
            usize, csize = _zip64_sizes(extra, usize, csize)
        data_start = fileobj.tell()
        name = f"{source}!{filename}"
        sized = not (flags & 0x8) or csize > 0
        count += 1
        if count > ctx.limits.max_members:
            ctx.report(source, f"more than max_members={ctx.limits.max_members} members: the rest "
                               "was not read")
            return
        if filename.endswith("/"):
            pos = data_start + (csize if sized else 0)
            continue
        if flags & 0x1 or method not in (0, 8):
            ctx.report(name, "encrypted member skipped (no password)" if flags & 0x1 else
                       f"compression method {method} not supported, member skipped")
            if not sized:
                ctx.report(source, "cannot find the next member after it: salvage stopped")
                return
            pos = data_start + csize
            continue
        if sized and not (flags & 0x8):
            reason = check_declared(ctx, usize, csize)
            if reason:
                ctx.report(name, reason)
                pos = data_start + csize
                continue
        if method == 0:
            if not sized:
                ctx.report(name, "stored member of unknown size: salvage stopped")
                return
            inflate = None
            reader = SafeReader(_range_reader(fileobj, csize), ctx, name, meter=True)
        else:
            inflate = Inflate(_range_reader(fileobj, csize if sized else None), "deflate")
            reader = SafeReader(inflate.read, ctx, name, meter=True,
                                compressed=lambda inf=inflate: inf.consumed)
        try:
            yield name, reader
            while not reader.failed and reader.read(SPOOL_CHUNK):   # find where the member ends
                pass
        finally:
            reader.close()
        if reader.failed:
            return
        if sized:
            end = data_start + csize
        else:
            assert inflate is not None
            end = data_start + inflate.consumed - inflate.unused
        if flags & 0x8:   # data descriptor: optional signature, crc, sizes (32- or 64-bit)
            fileobj.seek(end)
            desc = fileobj.read(4)
            end += 16 if desc == b"PK\x07\x08" else 12
        pos = end


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        if tag == 0x0001:
            body = extra[i + 4:i + 4 + size]
            values = [struct.unpack_from("<Q", body, j)[0] for j in range(0, len(body) - 7, 8)]
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            break
        i += 4 + size
    return usize, csize


# -- tar ----------------------------------------------------------------------------------------

def tar_members(stream: IO[bytes], source: str, ctx: Context, *, meter: bool = False
                ) -> Iterator[tuple[str, SafeReader]]:
    """Regular files of a tar read as a stream (no seeking): ``tarfile`` mode ``r|``.

    ``meter``: count member bytes against ``max_bytes`` (a bare tar; inside a compressed stream
    the decompressor already counts them).
    """
    try:
        archive = tarfile.open(fileobj=stream, mode="r|")
    except tarfile.TarError as exc:
        ctx.report(source, describe(exc))
        return
    count = 0
    try:
        for info in archive:
            if not info.isfile():
                continue
            count += 1
            if count > ctx.limits.max_members:
                ctx.report(source, f"more than max_members={ctx.limits.max_members} members: "
                                   "the rest was not read")
                return
            name = f"{source}!{info.name}"
            member = archive.extractfile(info)
            if member is None:
                continue
            reader = SafeReader(member.read, ctx, name, meter=meter)
            try:
                yield name, reader
            finally:
                reader.close()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        ctx.report(source, describe(exc))
    finally:
        archive.close()


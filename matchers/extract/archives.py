"""Archives: the members of a zip or a tar, each as a :class:`SafeReader`, within limits.

Declared sizes are checked first, before a byte is inflated (:func:`check_declared`): a zip
member's ``file_size`` and ``compress_size``; encrypted members and unknown methods are refused
(:func:`zip_refusal`, also applied to a workbook's parts by :mod:`matchers.extract.xlsx`). Zip
needs random access: a non-seekable input or a nested zip is spooled to a temporary file
(:func:`spool`, bounded by what is left of ``max_bytes``). A zip whose central directory is
missing (truncated download) is salvaged from its local headers. A tar is read as a stream.

Each member must be consumed (or abandoned) before the next is asked for; :mod:`matchers.extract`
sniffs each member again (a zip in a zip, a csv in a gzip).
"""

from __future__ import annotations

import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO

from matchers.extract.compressed import Inflate
from matchers.extract.containers import SPOOL_CHUNK, SafeReader, describe
from matchers.extract.model import Context, LimitExceededError

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


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
            reason = zip_refusal(info, ctx)
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


def zip_refusal(info: zipfile.ZipInfo, ctx: Context) -> str | None:
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


"""Containers: gzip, bzip2, xz, zip and tar, found by their magic bytes, read through a SafeReader.

:func:`container_kind` names the container from an input's first bytes only. Every stream handed
to the text layer is a :class:`SafeReader`: it counts decompressed bytes against
``Limits.max_bytes``, checks the expansion ratio of compressed members against
``Limits.max_ratio`` *while reading* (headers lie), and turns any failure (bomb, truncation, bad
CRC, a read error) into one error entry (:func:`describe`) and a clean end of file, so the csv
reader or JSON parser above it simply stops: nothing ever raises into the consumer's loop.

The formats themselves: :mod:`matchers.extract.compressed` (gzip, bzip2 and xz streams, inflated
a bounded step at a time) and :mod:`matchers.extract.archives` (zip and tar members, declared
sizes checked before a byte is inflated). :mod:`matchers.extract` sniffs, opens and nests them.
"""

from __future__ import annotations

import io
import logging
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

from matchers.extract.model import Context, ExtractError

log = logging.getLogger(__name__)

SPOOL_CHUNK = 1024 * 1024  # the most one read of a decompressor or a spool returns

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


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


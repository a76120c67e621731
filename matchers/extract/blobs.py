"""Encoded blobs in a text: base64 or hex lines that decode to an archive or to text.

A paste may carry a file as a block of base64 (or hex) lines. The segmenter
(:mod:`matchers.extract.text`) asks :func:`blob_line` whether a line is one, decodes the first
:data:`BLOB_PROBE` characters to decide with :func:`readable_blob` whether the blob is worth
reading (an archive, or text; keys, hashes and images stay text), and hands a
:class:`BlobReader` over the blob's lines to the extraction, which reads it like an attachment.
"""

from __future__ import annotations

import binascii
import re
from typing import Any, Protocol

from matchers.extract.containers import container_kind
from matchers.extract.decode import BOMS

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
    if len(head) < 16:
        return False
    if container_kind(head) or any(head.startswith(bom) for bom, _ in BOMS):
        return True
    sample = head[:4096]
    return len(sample.translate(None, _PRINTABLE)) <= 0.1 * len(sample)


class Lines(Protocol):
    """What a :class:`BlobReader` reads from: the segmenter's lookahead (lines with a ``text``)."""

    def peek(self, i: int = 0) -> Any: ...

    def pop(self) -> Any: ...


class BlobReader:
    """``read(n)`` over the decoded bytes of the blob lines at the head of a segmenter."""

    def __init__(self, seg: Lines, kind: str):
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

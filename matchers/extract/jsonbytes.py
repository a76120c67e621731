"""The bytes ijson reads from a text stream: UTF-8, whatever the source's encoding was.

ijson parses UTF-8 bytes. The extraction opens every input as text (:func:`matchers.extract.decode.
open_text`: the encoding found on a sample, bad bytes replaced by U+FFFD), so the JSON reader used to
encode that text back (:class:`Utf8Text`). When the stream is UTF-8 already, :class:`Utf8Bytes` gives
ijson the bytes under it instead (issue 9: the decoding to text and the encoding back were about 5 %
of a JSON array's scan), checked by a strict decode of each read; from the first byte that is not
UTF-8 on, the rest is decoded with ``errors="replace"`` and encoded, so ijson reads exactly what
:class:`Utf8Text` would give it (``tests/matchers/test_json_batches.py`` states it with Hypothesis).
"""

from __future__ import annotations

import codecs
import io


class Utf8Text:
    """A ``read(n) -> bytes`` view of a text stream: ijson parses UTF-8 whatever the source was."""

    def __init__(self, text: io.TextIOBase):
        self._text = text

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""   # ijson probes the type of the stream with read(0)
        return self._text.read(n if n > 0 else 65536).encode("utf-8", "surrogatepass")


class Utf8Bytes:
    """The bytes under a fresh UTF-8 text stream, as :class:`Utf8Text` would give them, without
    decoding them to text and encoding them back: valid UTF-8 passes as it is (checked by a strict
    decode of each read, an incomplete character kept for the next), and from the first invalid
    byte on, the rest is decoded with ``errors="replace"`` and encoded, as the text stream does."""

    def __init__(self, text: io.TextIOWrapper):
        self._text = text          # kept: the wrapper closes its buffer when it goes
        self._raw = text.buffer
        self._tail = b""
        self._replacing: codecs.IncrementalDecoder | None = None

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        while True:
            data = self._raw.read(n if n > 0 else 65536)
            if self._replacing is not None:
                out = self._replacing.decode(data, final=not data)
                if out or not data:
                    return out.encode("utf-8", "surrogatepass")
                continue   # only the start of a character: read on
            if not data:   # the end: a character cut short there is one U+FFFD, as in the text
                tail, self._tail = self._tail, b""
                return tail.decode("utf-8", "replace").encode("utf-8", "surrogatepass")
            if self._tail:
                data, self._tail = self._tail + data, b""
            if data.isascii():
                return data
            try:
                _, used = codecs.utf_8_decode(data, "strict", False)
            except UnicodeDecodeError:
                self._replacing = codecs.getincrementaldecoder("utf-8")("replace")
                return self._replacing.decode(data).encode("utf-8", "surrogatepass")
            if used == len(data):
                return data
            self._tail = data[used:]
            if used:
                return data[:used]
            # only the start of a character so far: read on


def utf8_reader(text: io.TextIOBase) -> Utf8Text | Utf8Bytes:
    """What ijson reads: the bytes under ``text`` when it is a fresh UTF-8 text stream that
    replaces bad bytes (:func:`matchers.extract.decode.open_text`), else its text encoded."""
    if (isinstance(text, io.TextIOWrapper) and text.errors == "replace"
            and codecs.lookup(text.encoding).name == "utf-8"):
        return Utf8Bytes(text)
    return Utf8Text(text)

"""Keyed fingerprints of normalised values (keyed BLAKE2b, 64 bits).

Strong identifiers (NIR body, email, phone) and the pair name + birth date are fingerprinted with
the key alone, so a copy can be looked up. Secondary fields (name, birth date, postcode, name
bigrams) are fingerprinted with the key *and a random per-record salt*: they can only be compared
with one enrolled record at a time, and equal names in two records give unrelated fingerprints, so
the index reveals no frequencies. Without the key, nothing in the index can be tested against a
guess (NIRs are enumerable: an unkeyed hash would protect nothing).

A salted fingerprint is one AES-256 block (a second key derived from the secret key) of
(keyed BLAKE2b of the value, the record's salt): the value's hash depends on the value alone, so
enrollment computes it once per distinct value (names, birth dates, postcodes and name bigrams
repeat across millions of rows) and encrypts the blocks of a whole batch of records in one call
(:meth:`Fingerprinter.salted_many`, :meth:`Fingerprinter.tokens_many`). Index format 4; format 3
salted each value with BLAKE2b, one call per field and bigram of each record, the bulk of the cost
of enrolling 33 million rows.

Numeric identifiers (the NIR body, the 9-digit national phone number) are fingerprinted with
AES-256 used as a keyed pseudo-random function on one 16-byte block (value, kind), encrypted a
batch at a time by the ``cryptography`` library: a column of 8,192 values costs one call, which
keeps a scan of a 491,840-row file close to the cost of merely parsing it. Textual values
(emails, name + birth date) use keyed BLAKE2b. Both keys are derived from the one secret key.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Iterable

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from matchers.identifiers import bigrams

# blake2b "person" strings: one hash family per kind, so equal strings of two kinds never collide.
STRONG_KINDS = {"nir": 1, "email": 2, "phone": 3, "namedob": 4}
NUMERIC_KINDS = ("nir", "phone")
_CORSICA = {"2A": 1 << 50, "2B": 2 << 50}
_ZERO = bytes(8)
_CACHE = 1 << 18  # distinct secondary values whose hash enrollment keeps (then starts afresh)


def key_id(key: bytes) -> str:
    """A short public identifier of a key, stored with an index to detect a wrong key."""
    return hashlib.blake2b(b"dumpwatch key id", key=key, digest_size=8).hexdigest()


def nir_int(body: str) -> int:
    """The 13-character NIR body as an integer; Corsica (2A/2B) kept distinct from departments 19/18."""
    dept = body[5:7]
    if dept in _CORSICA:
        return int(body[:5] + ("19" if dept == "2A" else "18") + body[7:]) + _CORSICA[dept]
    return int(body)


class Fingerprinter:
    """Computes fingerprints with one key; pre-keyed hash objects are copied for speed."""

    def __init__(self, key: bytes):
        self._key = key
        self._base = {k: hashlib.blake2b(key=key, digest_size=8, person=f"dw1-{k}".encode())
                      for k in STRONG_KINDS}
        aes_key = hashlib.blake2b(b"numeric identifiers", key=key, digest_size=32, person=b"dw1-aes").digest()
        self._aes = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
        salted_key = hashlib.blake2b(b"salted fingerprints", key=key, digest_size=32, person=b"dw2-aes-s").digest()
        self._aes_s = Cipher(algorithms.AES(salted_key), modes.ECB()).encryptor()
        self._values: dict[str, dict] = {}  # enrollment's caches of value hashes, by kind (bounded)
        self._salted_base: dict[str, object] = {}
        self._gram_table = np.zeros(1 << 16, dtype="<u8")  # value hash of each ASCII bigram, once seen
        self._gram_known = np.zeros(1 << 16, dtype=bool)

    def numeric(self, kind: str, values: np.ndarray) -> np.ndarray:
        """Fingerprints (uint64) of integer identifiers; a value of 0 (absent) gives 0."""
        values = np.asarray(values, dtype=np.uint64)
        blocks = np.empty((len(values), 2), dtype="<u8")
        blocks[:, 0] = values
        blocks[:, 1] = STRONG_KINDS[kind]
        out = np.frombuffer(self._aes.update(blocks.tobytes()), dtype="<u8")[0::2].copy()
        out[out == 0] = 1
        out[values == 0] = 0
        return out

    def digest(self, kind: str, value: str) -> bytes:
        h = self._base[kind].copy()
        h.update(value.encode())
        return h.digest()

    def fp(self, kind: str, value: str) -> int:
        """Fingerprint of one normalised value (NIR body, email, 9-digit phone, name|dob)."""
        if kind == "nir":
            return int(self.numeric(kind, np.array([nir_int(value)], dtype=np.uint64))[0])
        if kind == "phone":
            return int(self.numeric(kind, np.array([int(value)], dtype=np.uint64))[0])
        return int.from_bytes(self.digest(kind, value), "little")

    def hasher(self, kind: str):
        """A fast ``value -> 8-byte digest`` function for one kind (the scan's inner loop)."""
        base = self._base[kind]

        def digest(value: str) -> bytes:
            h = base.copy()
            h.update(value.encode())
            return h.digest()

        return digest

    def _value(self, kind: str, value: str) -> bytes:
        """The keyed, unsalted 8-byte hash of a secondary value: never stored, only encrypted with a salt."""
        return self._value_hasher(kind)(value)

    def _value_hasher(self, kind: str):
        """:meth:`_value` for one kind, from a keyed hash object copied (cheaper than keying one per value)."""
        base = self._salted_base.get(kind)
        if base is None:
            base = self._salted_base[kind] = hashlib.blake2b(key=self._key, digest_size=8,
                                                             person=f"dw2-s-{kind}".encode())

        def value_hash(value: str) -> bytes:
            h = base.copy()
            h.update(value.encode())
            return h.digest()

        return value_hash

    def _hashes(self, kind: str, values: Iterable[str | None]) -> bytes:
        """:meth:`_value` of each value end to end (8 zero bytes for an absent one), from a bounded cache."""
        cache = self._values.get(kind)
        if cache is None or len(cache) >= _CACHE:
            cache = self._values[kind] = {None: _ZERO, "": _ZERO}
        values = list(values)
        out = list(map(cache.get, values))  # a C-level pass: most values were seen before
        if None in out:
            # Only C-level passes but the hash itself: the new values, each distinct one hashed once.
            at = itertools.compress(values, map(operator.is_, out, itertools.repeat(None)))
            new = dict.fromkeys(at)
            new.update(zip(new, map(self._value_hasher(kind), new)))
            cache.update(new)
            out = list(map(new.get, values, out))
        return b"".join(out)

    def _grams(self, names: list[str | None]) -> tuple[np.ndarray, bytes]:
        """How many bigrams each name has, and their value hashes end to end. Name keys are ASCII
        (:func:`matchers.identifiers.fold`): a bigram is two bytes, its hash looked up in a table
        of 65,536 filled as bigrams are first seen, for a whole batch in a few numpy passes."""
        keys = [n or "" for n in names]
        lens = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        counts = np.where(lens > 0, lens + 1, 0)
        joined = "".join([f"_{k}_" for k in keys if k]).replace(" ", "_")
        if not joined.isascii():
            return counts, b"".join(self._hashes("gram", bigrams(k)) if k else b"" for k in keys)
        if not joined:
            return counts, b""
        b = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).astype(np.intp)
        keep = np.ones(len(b) - 1, dtype=bool)
        keep[np.cumsum(lens[lens > 0] + 2)[:-1] - 1] = False  # a pair across two names is no bigram
        codes = (b[:-1] * 256 + b[1:])[keep]
        for c in np.unique(codes[~self._gram_known[codes]]).tolist():
            self._gram_table[c] = int.from_bytes(self._value("gram", chr(c >> 8) + chr(c & 255)), "little")
            self._gram_known[c] = True
        return counts, self._gram_table[codes].tobytes()

    def salted(self, salt: int, kind: str, value: str) -> int:
        """Fingerprint of a secondary field of one record (``salt`` is the record's own)."""
        out = self._aes_s.update(self._value(kind, value) + salt.to_bytes(8, "little"))
        return int.from_bytes(out[:8], "little") or 1

    def tokens(self, salt: int, grams: list[str]) -> list[int]:
        """Salted 32-bit tokens of name bigrams, compared as multisets (Dice) with rapidfuzz."""
        s = salt.to_bytes(8, "little")
        out = self._aes_s.update(b"".join(self._value("gram", g) + s for g in grams))
        return sorted(int.from_bytes(out[i:i + 4], "little") for i in range(0, len(out), 16))

    def salted_many(self, kind: str, salts: np.ndarray, values: list[str | None]) -> np.ndarray:
        """:meth:`salted` of each record's value (uint64; 0 where the value is absent), one AES call."""
        blocks = np.empty((len(values), 2), dtype="<u8")
        blocks[:, 0] = np.frombuffer(self._hashes(kind, values), dtype="<u8")
        blocks[:, 1] = salts
        out = np.frombuffer(self._aes_s.update(blocks.tobytes()), dtype="<u8")[0::2].copy()
        out[out == 0] = 1
        out[~np.fromiter(map(bool, values), dtype=bool, count=len(values))] = 0
        return out

    def tokens_many(self, salts: np.ndarray, names: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`tokens` of the bigrams (:func:`matchers.identifiers.bigrams`) of each record's name
        key: ``(counts, tokens)``, the tokens of all records one after the other (uint32, each
        record's sorted), ``counts`` how many each record has (0 without a name)."""
        counts, hashes = self._grams(names)
        if not hashes:
            return counts, np.zeros(0, dtype=np.uint32)
        blocks = np.empty((len(hashes) // 8, 2), dtype="<u8")
        blocks[:, 0] = np.frombuffer(hashes, dtype="<u8")
        blocks[:, 1] = np.repeat(np.asarray(salts, dtype=np.uint64), counts)
        toks = np.frombuffer(self._aes_s.update(blocks.tobytes()), dtype="<u4")[0::4]
        keyed = np.repeat(np.arange(len(names), dtype=np.uint64) << np.uint64(32), counts) | toks
        return counts, np.sort(keyed).astype(np.uint32)  # by record, then token: each record's sorted

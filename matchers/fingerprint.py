"""Keyed fingerprints of normalised values (keyed BLAKE2b, 64 bits).

Strong identifiers (NIR body, email, phone) and the pair name + birth date are fingerprinted with
the key alone, so a copy can be looked up. Secondary fields (name, birth date, postcode, name
bigrams) are fingerprinted with the key *and a random per-record salt*: they can only be compared
with one enrolled record at a time, and equal names in two records give unrelated fingerprints, so
the index reveals no frequencies. Without the key, nothing in the index can be tested against a
guess (NIRs are enumerable: an unkeyed hash would protect nothing).
"""

from __future__ import annotations

import hashlib

# blake2b "person" strings: one hash family per kind, so equal strings of two kinds never collide.
STRONG_KINDS = {"nir": 1, "email": 2, "phone": 3, "namedob": 4}
KIND_NAMES = {v: k for k, v in STRONG_KINDS.items()}


class Fingerprinter:
    """Computes fingerprints with one key; pre-keyed hash objects are copied for speed."""

    def __init__(self, key: bytes):
        self._key = key
        self._base = {k: hashlib.blake2b(key=key, digest_size=8, person=f"dw1-{k}".encode())
                      for k in STRONG_KINDS}

    def digest(self, kind: str, value: str) -> bytes:
        h = self._base[kind].copy()
        h.update(value.encode())
        return h.digest()

    def fp(self, kind: str, value: str) -> int:
        return int.from_bytes(self.digest(kind, value), "little")

    def hasher(self, kind: str):
        """A fast ``value -> 8-byte digest`` function for one kind (the scan's inner loop)."""
        base = self._base[kind]

        def digest(value: str) -> bytes:
            h = base.copy()
            h.update(value.encode())
            return h.digest()

        return digest

    def salted(self, salt: int, kind: str, value: str) -> int:
        """Fingerprint of a secondary field of one record (``salt`` is the record's own)."""
        h = hashlib.blake2b(value.encode(), key=self._key, digest_size=8,
                            salt=salt.to_bytes(8, "little"), person=f"dw1-s-{kind}".encode())
        return int.from_bytes(h.digest(), "little") or 1

    def tokens(self, salt: int, grams: list[str]) -> list[int]:
        """Salted 32-bit tokens of name bigrams, compared as multisets (Dice) with rapidfuzz."""
        s = salt.to_bytes(8, "little")
        key = self._key
        return sorted(
            int.from_bytes(hashlib.blake2b(g.encode(), key=key, digest_size=4, salt=s,
                                           person=b"dw1-s-bigram").digest(), "little")
            for g in grams
        )

"""A caller that already hashed its bytes (the crawler, for its seen-set) hands the hash to the engine."""

from __future__ import annotations

import hashlib

from matchers.scan import Scanner

KEY = bytes(range(32))
DATA = b"nom;prenom;ville\nMartin;Alice;Rennes\nDurand;Paul;Brest\n"


def test_the_engine_hashes_what_it_reads():
    finding = Scanner([], KEY).scan_bytes(DATA, "doc.csv")
    assert (finding.sha256, finding.size) == (hashlib.sha256(DATA).hexdigest(), len(DATA))


def test_a_hash_given_is_the_finding_s_and_the_verdict_is_the_same():
    known = "ab" * 32  # not the data's: shows the engine took it rather than hashing again
    plain = Scanner([], KEY).scan_bytes(DATA, "doc.csv")
    given = Scanner([], KEY).scan_bytes(DATA, "doc.csv", sha256=known)
    assert (given.sha256, given.size) == (known, len(DATA))
    assert given.to_json() | {"sha256": None} == plain.to_json() | {"sha256": None}

"""Keyed fingerprints (matchers.fingerprint): known answers, the key in every kind, kinds kept apart.

The pinned values were computed once with the fixed key below; two of them (a keyed BLAKE2b of an
email, an AES block of a NIR) are also recomputed here from the primitives themselves, so a pin is
not merely the code's own output. If a pin changes, every enrolled index becomes useless: that is a
format change (re-enrollment), never a refactoring.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings, strategies as st

from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.fingerprint import NUMERIC_KINDS, STRONG_KINDS, Fingerprinter, nir_int
from matchers.scan import Scanner

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SALT = 12345

# Synthetic values (no real person): a NIR body, its Corsican forms, a 9-digit phone, an email, a
# name key with a birth date, and the secondary fields of one record.
NIR = "1850578006084"
NIR_2A = "185052A006084"
NIR_2B = "185052B006084"
PHONE = "612345678"
EMAIL = "jeanne.martin@example.org"
NAMEDOB = "jeanne martin|19850512"

PINNED = {
    ("nir", NIR): 16032686547952580926,
    ("nir", NIR_2A): 12469156909429475840,
    ("phone", PHONE): 12860992132585644582,
    ("email", EMAIL): 17362138171240010279,
    ("namedob", NAMEDOB): 11116688387906265470,
}
# Index format 4 (format 3's, one keyed and salted BLAKE2b per value, were 18363643111060355921,
# 16292527683001814609, 13009639552289412170 and tokens [213442110, 1126600041, 2901404831]).
PINNED_SALTED = {
    ("name", "jeanne martin"): 16141728557663275128,
    ("dob", "19850512"): 12217521214973657662,
    ("postcode", "29200"): 5947287467680761861,
}
PINNED_TOKENS = [364877598, 365493302, 4237322536]  # bigrams "_j", "je", "ea" under SALT


@pytest.fixture(scope="module")
def fpr() -> Fingerprinter:
    return Fingerprinter(KEY)


# -- the NIR as an integer -------------------------------------------------------------------------

def test_nir_int_of_a_mainland_body_is_its_number():
    assert nir_int(NIR) == 1850578006084
    assert nir_int("2991299123456") == 2991299123456


def test_corsica_is_kept_apart_from_departments_19_and_18():
    assert nir_int(NIR_2A) == 1850519006084 + (1 << 50)
    assert nir_int(NIR_2B) == 1850518006084 + (2 << 50)
    values = {nir_int(NIR_2A), nir_int(NIR_2B), nir_int("1850519006084"), nir_int("1850518006084")}
    assert len(values) == 4
    # The Corsican offset stays within 64 bits (the AES block holds the value in 8 bytes).
    assert max(values) < 1 << 63


def test_corsica_fingerprints_differ_from_19_and_18(fpr):
    fps = {fpr.fp("nir", b) for b in (NIR_2A, NIR_2B, "1850519006084", "1850518006084")}
    assert len(fps) == 4


# -- known answers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,value", list(PINNED))
def test_pinned_strong_fingerprints(fpr, kind, value):
    assert fpr.fp(kind, value) == PINNED[(kind, value)]


@pytest.mark.parametrize("kind,value", list(PINNED_SALTED))
def test_pinned_salted_fingerprints(fpr, kind, value):
    assert fpr.salted(SALT, kind, value) == PINNED_SALTED[(kind, value)]


def test_pinned_bigram_tokens(fpr):
    assert fpr.tokens(SALT, ["_j", "je", "ea"]) == PINNED_TOKENS


def test_email_pin_is_keyed_blake2b_recomputed_from_hashlib():
    """The textual kinds are keyed BLAKE2b-64, person ``dw1-KIND``, little-endian."""
    h = hashlib.blake2b(EMAIL.encode(), key=KEY, digest_size=8, person=b"dw1-email")
    assert int.from_bytes(h.digest(), "little") == PINNED[("email", EMAIL)]
    h = hashlib.blake2b(NAMEDOB.encode(), key=KEY, digest_size=8, person=b"dw1-namedob")
    assert int.from_bytes(h.digest(), "little") == PINNED[("namedob", NAMEDOB)]


def _aes_block(value: int, kind: int, key: bytes = KEY) -> int:
    aes_key = hashlib.blake2b(b"numeric identifiers", key=key, digest_size=32, person=b"dw1-aes").digest()
    enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    block = value.to_bytes(8, "little") + kind.to_bytes(8, "little")
    return int.from_bytes((enc.update(block) + enc.finalize())[:8], "little")


def test_nir_pin_is_one_aes_block_recomputed_from_cryptography():
    """Numeric kinds: AES-256 (key = keyed BLAKE2b of a constant) of the block (value, kind number)."""
    assert _aes_block(1850578006084, 1) == PINNED[("nir", NIR)]
    assert _aes_block(612345678, 3) == PINNED[("phone", PHONE)]
    assert _aes_block(nir_int(NIR_2A), 1) == PINNED[("nir", NIR_2A)]


def _salted_block(kind: str, value: str) -> bytes:
    """AES-256 (key = keyed BLAKE2b of a constant) of the block (keyed BLAKE2b of the value, salt)."""
    aes_key = hashlib.blake2b(b"salted fingerprints", key=KEY, digest_size=32, person=b"dw2-aes-s").digest()
    enc = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    h = hashlib.blake2b(value.encode(), key=KEY, digest_size=8, person=f"dw2-s-{kind}".encode()).digest()
    return enc.update(h + SALT.to_bytes(8, "little")) + enc.finalize()


def test_salted_pin_recomputed_from_hashlib_and_cryptography():
    assert int.from_bytes(_salted_block("name", "jeanne martin")[:8], "little") == PINNED_SALTED[("name", "jeanne martin")]
    assert int.from_bytes(_salted_block("gram", "je")[:4], "little") in PINNED_TOKENS


def test_kind_numbers_are_the_index_format():
    # strong_kind.npy stores these numbers; the AES block carries them: they never change.
    assert STRONG_KINDS == {"nir": 1, "email": 2, "phone": 3, "namedob": 4}
    assert NUMERIC_KINDS == ("nir", "phone")


# -- the key is in every fingerprint -----------------------------------------------------------------

def test_another_key_changes_every_kind(fpr):
    other = Fingerprinter(OTHER_KEY)
    for kind, value in PINNED:
        assert other.fp(kind, value) != fpr.fp(kind, value), kind
        assert other.hasher(kind)(value) != fpr.hasher(kind)(value), kind
    for kind, value in PINNED_SALTED:
        assert other.salted(SALT, kind, value) != fpr.salted(SALT, kind, value), kind
    assert other.tokens(SALT, ["_j", "je", "ea"]) != fpr.tokens(SALT, ["_j", "je", "ea"])
    values = np.array([1850578006084, 612345678], dtype=np.uint64)
    for kind in NUMERIC_KINDS:
        assert not np.array_equal(other.numeric(kind, values), fpr.numeric(kind, values)), kind


def test_without_the_key_nothing_matches():
    """A leak enrolled with one key is useless with another: its own rows, scanned by a scanner
    holding another key, match no record, and none of their strong identifiers nor secondary
    fields gives a stored fingerprint; with the right key every row matches (the control)."""
    people = synth.generate(40, seed=5)
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    assert Scanner([index], KEY).scan_bytes(data, "leak.csv").matched_records == 40
    wrong = Scanner([index], OTHER_KEY).scan_bytes(data, "leak.csv")
    assert (wrong.matched_records, wrong.verdict == "repost", wrong.records_seen) == (0, False, 40)
    for key, found in ((KEY, True), (OTHER_KEY, False)):
        f = Fingerprinter(key)
        fps = [f.fp(kind, v) for p in people for kind, v in
               (("nir", p["nir"][:13]), ("email", p["email"]), ("phone", p["telephone"].replace(" ", "")[1:]))]
        assert bool((index.lookup(np.array(fps, dtype=np.uint64)) >= 0).all()) is found
        # record 0's birth date under its own salt
        dob = "".join(reversed(people[0]["date_naissance"].split("/")))
        assert (f.salted(int(index.salt[0]), "dob", dob) == int(index.dob[0])) is found


def test_the_same_key_gives_the_same_fingerprints():
    a, b = Fingerprinter(KEY), Fingerprinter(bytes(KEY))
    for kind, value in PINNED:
        assert a.fp(kind, value) == b.fp(kind, value)


# -- kinds, salts and values kept apart ---------------------------------------------------------------

def test_one_number_as_nir_and_as_phone_differs(fpr):
    values = np.array([612345678, 1850578006084], dtype=np.uint64)
    assert not np.any(fpr.numeric("nir", values) == fpr.numeric("phone", values))


def test_one_string_under_two_textual_kinds_differs(fpr):
    assert fpr.fp("email", EMAIL) != fpr.fp("namedob", EMAIL)
    assert fpr.digest("email", NAMEDOB) != fpr.digest("namedob", NAMEDOB)
    s = "29200"
    assert len({fpr.salted(SALT, k, s) for k in ("name", "dob", "postcode")}) == 3


def test_salted_depends_on_value_and_salt(fpr):
    base = fpr.salted(SALT, "dob", "19850512")
    assert fpr.salted(SALT, "dob", "19850513") != base  # another birth date never "confirms"
    assert fpr.salted(SALT + 1, "dob", "19850512") != base  # equal values in two records are unrelated
    assert fpr.salted(SALT, "name", "jeanne martin") != fpr.salted(SALT, "name", "jeanne marin")
    assert fpr.salted(SALT, "postcode", "29200") != fpr.salted(SALT, "postcode", "29000")
    assert fpr.salted(1 << 63, "dob", "19850512") != fpr.salted(1, "dob", "19850512")


def test_tokens_are_a_sorted_salted_multiset(fpr):
    grams = ["_m", "ma", "ar", "rt", "ti", "in", "n_", "ma"]
    toks = fpr.tokens(SALT, grams)
    assert toks == sorted(toks) and len(toks) == len(grams)
    assert len(set(toks)) == len(set(grams))  # "ma" twice gives one token twice
    assert all(0 <= t < 1 << 32 for t in toks)
    assert fpr.tokens(SALT + 1, grams) != toks
    assert fpr.tokens(SALT, []) == []
    assert fpr.tokens(SALT, ["zz"]) != fpr.tokens(SALT, ["_m"])


def test_digest_and_hasher_agree_with_fp(fpr):
    for kind in ("email", "namedob"):
        h = fpr.hasher(kind)
        for value in (EMAIL, NAMEDOB, "x"):
            d = h(value)
            assert len(d) == 8 and d == fpr.digest(kind, value)
            assert int.from_bytes(d, "little") == fpr.fp(kind, value)
        assert h(EMAIL) != h("x")


# -- numeric batches ---------------------------------------------------------------------------------

def test_zero_is_absent_and_stays_zero(fpr):
    values = np.array([0, 1850578006084, 0, 612345678, 0], dtype=np.uint64)
    for kind in NUMERIC_KINDS:
        out = fpr.numeric(kind, values)
        assert out.dtype == np.uint64 and len(out) == 5
        assert out[0] == out[2] == out[4] == 0
        assert out[1] != 0 and out[3] != 0
    assert fpr.numeric("nir", np.array([], dtype=np.uint64)).tolist() == []


def test_numeric_batch_equals_one_at_a_time(fpr):
    values = [1850578006084, nir_int(NIR_2A), 1, 2, 612345678, 799999999]
    batch = fpr.numeric("nir", np.array(values, dtype=np.uint64)).tolist()
    assert batch == [fpr.numeric("nir", np.array([v], dtype=np.uint64))[0] for v in values]
    assert batch[0] == PINNED[("nir", NIR)] and batch[1] == PINNED[("nir", NIR_2A)]
    assert len(set(batch)) == len(values)
    phones = fpr.numeric("phone", np.array([612345678, 612345679], dtype=np.uint64)).tolist()
    assert phones[0] == PINNED[("phone", PHONE)] and phones[1] != phones[0]
    assert fpr.fp("phone", PHONE) == phones[0]


def test_numeric_accepts_python_ints(fpr):
    assert fpr.numeric("phone", [612345678])[0] == PINNED[("phone", PHONE)]


# -- properties ----------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=(1 << 63) - 1), st.sampled_from(NUMERIC_KINDS))
def test_numeric_is_the_aes_block_for_any_value(value, kind):
    fpr = Fingerprinter(KEY)
    got = int(fpr.numeric(kind, np.array([value], dtype=np.uint64))[0])
    expected = _aes_block(value, STRONG_KINDS[kind])
    assert got == (expected or 1)
    assert got != int(Fingerprinter(OTHER_KEY).numeric(kind, np.array([value], dtype=np.uint64))[0])


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.sampled_from(("email", "namedob")))
def test_textual_is_keyed_blake2b_for_any_value(value, kind):
    fpr = Fingerprinter(KEY)
    expected = hashlib.blake2b(value.encode(), key=KEY, digest_size=8, person=f"dw1-{kind}".encode()).digest()
    assert fpr.fp(kind, value) == int.from_bytes(expected, "little")


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=(1 << 64) - 1),
       st.sampled_from(("name", "dob", "postcode")))
def test_salted_is_aes_of_keyed_blake2b_and_salt_for_any_value(value, salt, kind):
    fpr = Fingerprinter(KEY)
    aes_key = hashlib.blake2b(b"salted fingerprints", key=KEY, digest_size=32, person=b"dw2-aes-s").digest()
    h = hashlib.blake2b(value.encode(), key=KEY, digest_size=8, person=f"dw2-s-{kind}".encode()).digest()
    block = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor().update(h + salt.to_bytes(8, "little"))
    assert fpr.salted(salt, kind, value) == (int.from_bytes(block[:8], "little") or 1)

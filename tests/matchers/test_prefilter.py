"""The noise pre-filters (issue 9): a batch is skipped only when it cannot hold a strong identifier.

Invariant, stated with Hypothesis: for any batch of records, if the engine's pattern reading of any
one record (:func:`matchers.records.from_text`) finds a NIR, an email or a phone, then the
pre-filter run once on the whole batch (:func:`matchers.records.may_hold_strong` on the records
joined by line breaks) says it may hold one, so the batch is read record by record as before.
Names and birth dates are second proofs: they are looked up only beside a strong identifier, or
from mapped columns, which the pre-filter never skips. Skipped batches still count their records.
"""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import matchers.generic as match_mod
from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.records import from_text, may_hold_strong
from matchers.scan import Scanner

KEY = bytes(range(32, 64))

_SEPS = st.sampled_from(["", " ", ".", "-", "\u00a0", "  "])


@st.composite
def nirs(draw) -> str:
    rng = random.Random(draw(st.integers(0, 2**32)))
    nir = synth.make_nir(rng, rng.choice("12"), rng.randrange(1930, 2010), rng.randrange(1, 13))
    if draw(st.booleans()):
        nir = nir[:13]  # without its key
    if draw(st.booleans()):
        nir = nir[:5] + draw(st.sampled_from(["2A", "2B", "2a"])) + nir[7:]
    sep = draw(_SEPS)
    groups = [nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]]
    return sep.join(g for g in groups if g)


@st.composite
def phones(draw) -> str:
    digits = f"{draw(st.integers(1, 9))}{draw(st.integers(0, 10**8 - 1)):08d}"
    sep = draw(st.sampled_from(["", " ", ".", "-", "\t", "\u00a0", "\u202f", "\u2009", "\n"]))
    body = sep.join([digits[0]] + [digits[i:i + 2] for i in range(1, 9, 2)])
    prefix = draw(st.sampled_from(["0", "+33 ", "+33", "0033", "+33 (0)", "+262 ", "00590"]))
    return prefix + body


emails = st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9-]{1,12}(\.[a-z]{2,4}){1,2}", fullmatch=True)
identifiers = st.one_of(nirs(), phones(), emails)
noise = st.text(alphabet=st.sampled_from("abcABXYZé 0123456789.,;:-_+()/@\t\n\"'=\u00a0\u3000\u2028"), max_size=40)


@st.composite
def records(draw) -> str:
    """A record's text: noise, or noise around an identifier written one of the usual ways."""
    if draw(st.booleans()):
        return draw(noise)
    return draw(noise) + draw(st.sampled_from(["", " ", ";", ",", ":", "="])) + draw(identifiers) \
        + draw(st.sampled_from(["", " ", ";", ","])) + draw(noise)


@settings(max_examples=400, deadline=None)
@given(st.lists(records(), min_size=1, max_size=12))
def test_a_batch_with_any_strong_identifier_is_never_skipped(batch):
    if any(from_text(text).has_strong() for text in batch):
        assert may_hold_strong("\n".join(batch))


@settings(max_examples=200, deadline=None)
@given(identifiers, noise, noise)
def test_every_identifier_shape_passes_the_prefilter(ident, before, after):
    text = f"{before} {ident} {after}"
    if from_text(text).has_strong():
        assert may_hold_strong(text)


def test_text_without_identifier_is_skipped():
    assert not may_hold_strong("P0000012,lampe de salon,Maison,129.90,14,2.5,acier noir\n"
                               "P0000013,table,Jardin,1200.00,3,45.0,bois de chêne")
    assert not may_hold_strong("ligne sans chiffres ni arobase")


def _noise_csv(rows: int, extra: list[str]) -> bytes:
    rng = random.Random(3)
    out = ["sku,designation,categorie,prix_ht,stock,description"]
    for i in range(rows):
        out.append(f"P{i:07d},lampe {rng.randrange(99)},Maison,{rng.randrange(1, 900)}.{rng.randrange(100):02d},"
                   f"{rng.randrange(50)},acier noir")
    out[rows // 2:rows // 2] = extra
    return ("\n".join(out) + "\n").encode()


def _index_for(people):
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY,
                             lab_column="laboratoire")
    return index


def test_noise_rows_are_counted_without_being_read_as_text(monkeypatch, tmp_path):
    """A table of product rows (no column mapped as an identifier) is counted whole, and no row of
    it goes through the pattern reading: the batch pre-filter found nothing to read."""
    calls = []
    real = match_mod.from_text
    monkeypatch.setattr(match_mod, "from_text", lambda text, **kw: calls.append(1) or real(text, **kw))
    finding = Scanner([], KEY).scan_bytes(_noise_csv(5000, []), "products.csv")
    assert finding.records_seen == 5000
    assert finding.complete
    assert calls == []


def test_a_leaked_row_among_noise_is_still_found(monkeypatch):
    """Rows of the leak written into the product table's free text are read, and the finding is
    the one the engine gives with the pre-filter switched off."""
    people = synth.generate(40, seed=5)
    leaked = [f"P9{i:06d},{p['nom']} {p['prenom']} {p['nir']} {p['telephone']},Maison,1.00,1,x"
              for i, p in enumerate(people[:6])]
    data = _noise_csv(20000, leaked)
    index = _index_for(people)
    with_filter = Scanner([index], KEY).scan_bytes(data, "products.csv")
    monkeypatch.setattr(match_mod, "may_hold_strong", lambda text: True)
    without = Scanner([index], KEY).scan_bytes(data, "products.csv")
    assert with_filter.matched_records == 6
    assert with_filter.to_json() == without.to_json()


# -- fold() in C passes gives what the regular expression gave --------------------------------------

def _fold_reference(text: str) -> str:
    import re
    import unicodedata

    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z]+", " ", t).strip()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from("aAzZéÉçœßİıﬁǅ -_.\t\n\u00a0")), max_size=30))
def test_fold_is_unchanged(text):
    from matchers.identifiers import fold

    assert fold.__wrapped__(text) == _fold_reference(text)


# -- numeric columns parsed by numpy give what the scalar parse gave ---------------------------------

@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.from_regex(r"[0-9]{10}", fullmatch=True), st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                          st.text(alphabet="0123456789 +٣", max_size=16)), max_size=40),
       st.sampled_from([14, 18]))
def test_numeric_cells_parse_as_before(cells, longest):
    import numpy as np

    from matchers.columns import _int_cells

    expected = np.array([int(c) if c.isdecimal() and len(c) <= longest else 0 for c in cells], dtype=np.int64)
    assert _int_cells(cells, longest).tolist() == expected.tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.from_regex(r"0[67][0-9]{8}", fullmatch=True), min_size=1, max_size=30))
def test_a_clean_phone_column_parses_as_before(cells):
    from matchers.columns import _int_cells

    assert _int_cells(cells, 14).tolist() == [int(c) for c in cells]

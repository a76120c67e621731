"""The index built a batch at a time on disk (matchers.indexbuild.IndexPart, assemble) holds what the
one-pass, in-memory builder of format 3 held: the same strong fingerprints in the same order (so
the same lookups), each record's salted fingerprints, bigram tokens, lab and row number, whatever
the batch size, the number of parts and where the file was cut between them.

The reference here is that builder's algorithm, written out plainly (every fingerprint of every
record, one stable sort by fingerprint)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from matchers import identifiers as ids
from matchers.errors import IndexFileError
from matchers.fingerprint import STRONG_KINDS, Fingerprinter, nir_int
from matchers.index import FORMAT, LeakIndex
from matchers.indexbuild import IndexBuilder, IndexPart, finish_index, stage_dir

KEY = bytes(range(32))
FPR = Fingerprinter(KEY)

# Synthetic values only: a few of each, so that records share emails, phones and NIRs (dup_fps).
nirs = st.sampled_from(["1850578006084", "2920135123456", "185052A006084", "1010199123001"])
emails = st.sampled_from(["jeanne.martin@example.org", "p.durand@example.net", "x@example.com"])
phones = st.sampled_from(["612345678", "700000001", "262123456"])
names = st.sampled_from(["jeanne martin", "durand paul", "le gall yann", "ab"])
words = st.sampled_from(["martin", "jeanne", "paul", "le gall"])
records = st.fixed_dictionaries({
    "nir": st.none() | nirs,
    "emails": st.lists(emails, max_size=2),
    "phones": st.lists(phones, max_size=2),
    "name": st.none() | names,
    "dob": st.none() | st.sampled_from(["19850512", "20010101"]),
    "postcode": st.none() | st.sampled_from(["29200", "56100"]),
    "lab": st.none() | st.sampled_from(["Lab A", " Lab B ", "", "Lab C"]),
    "surname": st.none() | words,
    "first_name": st.none() | words,
})


def reference(recs: list[dict]) -> dict[str, np.ndarray]:
    """Format 3's builder: every record's strong fingerprints, one stable sort by fingerprint."""
    fp, rec, kind = [], [], []
    for r, x in enumerate(recs):
        entries = []
        for e in dict.fromkeys(x["emails"]):
            entries.append((FPR.fp("email", e), "email"))
        if x["name"] and x["dob"]:
            entries.append((FPR.fp("namedob", f"{x['name']}|{x['dob']}"), "namedob"))
        if x["nir"]:
            entries.append((FPR.fp("nir", x["nir"]), "nir"))
        for p in dict.fromkeys(x["phones"]):
            entries.append((FPR.fp("phone", p), "phone"))
        for f, k in entries:
            fp.append(f)
            rec.append(r)
            kind.append(STRONG_KINDS[k])
    fp_a = np.array(fp, dtype=np.uint64)
    order = np.lexsort((np.array(rec), fp_a))  # stable by fingerprint: records in order among equals
    return {"strong_fp": fp_a[order], "strong_rec": np.array(rec, dtype=np.uint32)[order],
            "strong_kind": np.array(kind, dtype=np.uint8)[order]}


def build(recs: list[dict], cuts: list[int], tmp_path, batch: int, bits: int, rows: list[int]) -> LeakIndex:
    """``recs`` split at ``cuts`` into parts (as enrolling processes split a file), assembled."""
    stage = stage_dir(tmp_path)
    bounds = [0, *cuts, len(recs)]
    summaries, offsets = [], []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        part = IndexPart(FPR, stage / f"part-{i}", batch=batch, bucket_bits=bits)
        for r in range(a, b):
            part.add(**recs[r], row=rows[r] - (rows[a - 1] if a else 0))
        summaries.append(part.finish())
        offsets.append(rows[a - 1] if a else 0)
    return finish_index({"name": "t", "version": FORMAT}, summaries, stage, offsets, in_memory=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=st.lists(records, min_size=1, max_size=40), data=st.data(),
       batch=st.integers(1, 7), bits=st.integers(0, 3))
def test_parts_assembled_hold_what_the_one_pass_builder_held(recs, data, batch, bits, tmp_path):
    recs = [r for r in recs if r["nir"] or r["emails"] or r["phones"]] or [{**recs[0], "nir": "1850578006084"}]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(recs)), max_size=3)))
    gaps = data.draw(st.lists(st.integers(1, 3), min_size=len(recs), max_size=len(recs)))
    rows = np.cumsum(gaps).tolist()  # row numbers in the file: skipped rows leave gaps
    index = build(recs, cuts, tmp_path, batch, bits, rows)
    ref = reference(recs)
    for name, want in ref.items():
        assert np.array_equal(np.asarray(index.arrays[name]), want), name
    # the same lookups: every fingerprint (and absent ones) finds the same record
    q = np.concatenate([ref["strong_fp"], np.array([0, 1, 2**64 - 1], dtype=np.uint64)])
    pos = np.searchsorted(ref["strong_fp"], q).clip(0, max(0, len(ref["strong_fp"]) - 1))
    hit = ref["strong_fp"][pos] == q if len(ref["strong_fp"]) else np.zeros(len(q), bool)
    assert np.array_equal(index.lookup(q), np.where(hit & (q != 0), ref["strong_rec"][pos].astype(np.int64), -1))
    fps = ref["strong_fp"]
    assert index.dup_fps == frozenset(int(x) for x in fps[1:][fps[1:] == fps[:-1]])
    assert len(index) == len(recs)
    assert index.meta["kind_counts"] == np.bincount(ref["strong_kind"], minlength=5).tolist()
    labs = [(r["lab"] or "").strip() or "(unknown)" for r in recs]
    assert [index.labs[i] for i in np.asarray(index.lab)] == labs
    assert index.labs == list(dict.fromkeys(labs))
    assert index.meta["lab_counts"] == {lab: labs.count(lab) for lab in set(labs)}
    assert np.asarray(index.row_numbers).tolist() == rows
    for r, x in enumerate(recs):
        salt = int(index.salt[r])
        for kind, arr in (("name", index.name_fp), ("dob", index.dob), ("postcode", index.postcode),
                          ("surname", index.surname_fp), ("first_name", index.first_name_fp)):
            value = x[kind]
            assert int(arr[r]) == (FPR.salted(salt, kind, value) if value else 0), kind
        assert index.grams(r) == (FPR.tokens(salt, ids.bigrams(x["name"])) if x["name"] else [])
    assert len(set(np.asarray(index.salt).tolist())) == len(recs)  # a fresh random salt per record
    index.discard()


def test_the_builder_in_memory_and_staged(tmp_path):
    recs = [{"nir": "1850578006084", "emails": ["x@example.com"], "phones": [], "name": "jeanne martin",
             "dob": "19850512", "postcode": None, "lab": "Lab A", "surname": "martin", "first_name": "jeanne"}]
    mem = IndexBuilder(FPR)
    mem.add(**recs[0], row=1)
    index = mem.build({"name": "m", "version": FORMAT})
    assert index.staged is None and not mem.stage.exists()
    assert not isinstance(index.arrays["strong_fp"], np.memmap)
    staged = IndexBuilder(FPR, tmp_path)
    staged.add(**recs[0], row=1)
    index = staged.build({"name": "s", "version": FORMAT})
    assert index.staged.parent == tmp_path and index.staged.name.startswith(".")  # hidden from load_all
    index.save(tmp_path / "s")
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # renamed into place, nothing left behind
    again = LeakIndex.load(tmp_path / "s")
    assert again.lookup(np.array([FPR.fp("nir", "1850578006084")], dtype=np.uint64)).tolist() == [0]
    assert again.dup_fps == frozenset() and again.row_numbers.tolist() == [1]


def test_a_failed_enrollment_leaves_no_directory(tmp_path):
    builder = IndexBuilder(FPR, tmp_path)
    builder.add(nir="1850578006084", emails=[], phones=[], name=None, dob=None, postcode=None, lab=None)
    builder.discard()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", [1, 3, 5])
def test_an_index_of_another_format_says_enroll_again(tmp_path, version):
    builder = IndexBuilder(FPR, tmp_path)
    builder.add(nir="1850578006084", emails=[], phones=[], name=None, dob=None, postcode=None, lab=None)
    index = builder.build({"name": "old", "version": FORMAT})
    index.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "meta.json").read_text())
    (tmp_path / "old" / "meta.json").write_text(json.dumps({**meta, "version": version}))
    with pytest.raises(IndexFileError, match="enroll the leak again .*--leak old --replace"):
        LeakIndex.load(tmp_path / "old")


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.none() | st.text(max_size=12), max_size=30), seed=st.integers(0, 2**32))
def test_salted_many_and_tokens_many_are_salted_and_tokens(values, seed):
    salts = np.random.default_rng(seed).integers(0, 2**64, len(values), dtype=np.uint64)
    got = FPR.salted_many("name", salts, values)
    assert got.tolist() == [FPR.salted(int(s), "name", v) if v else 0 for s, v in zip(salts, values)]
    keys = [ids.name_key(v) if v else None for v in values]
    counts, toks = FPR.tokens_many(salts, keys)
    want = [FPR.tokens(int(s), ids.bigrams(k)) if k else [] for s, k in zip(salts, keys)]
    assert counts.tolist() == [len(w) for w in want]
    assert toks.tolist() == [t for w in want for t in w]


def test_nir_int_is_what_the_builder_fingerprints():
    part_fp = FPR.numeric("nir", np.array([nir_int("185052A006084")], dtype=np.uint64))
    assert int(part_fp[0]) == FPR.fp("nir", "185052A006084")

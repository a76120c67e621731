"""The batch path's index look-ups (issue 9, second wave, task lookups): the same answers as before.

Two look-ups changed:

* whether a strong fingerprint is shared by several enrolled records (a family's phone): the batch
  path searched each column again in the sorted ``dup_fps`` array; ``LeakIndex.lookup(q,
  shared=True)`` now says it from the neighbour of the answer in the sorted fingerprints. A
  Hypothesis property holds it, through every path of the lookup (a few, a batch, the directory),
  to that former check, and ``Matcher._confirm`` (in one call or two, emails after the numeric
  columns) to the former per-column check;
* the name + birth-date candidates of records with no strong hit: one lookup per name × birth
  date of each record, now one lookup for all the records of a call. A property holds
  ``Matcher._lookup_namedob`` to the former per-record function (the same candidates, in the same
  order, shared fingerprints expanded to every record), chunked or not.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpwatch.devkit import synth
from matchers import match as mt
from matchers import schema as sch
from matchers.enroll import enroll_stream
from matchers.index import Directory, LeakIndex
from matchers.match import Matcher
from matchers.records import Fields, from_mapped
from matchers.scan import Scanner

TOP = 2**64 - 1
KEY = bytes(range(64, 96))


def _index(fps: np.ndarray) -> LeakIndex:
    recs = np.arange(len(fps), dtype=np.uint32)[::-1].copy()
    dups = frozenset(np.unique(fps[1:][fps[1:] == fps[:-1]]).tolist())  # as matchers.indexbuild
    return LeakIndex(meta={"name": "t", "records": len(fps) + 1}, arrays={"strong_fp": fps, "strong_rec": recs},
                     dup_fps=dups)


def _old_shared(idx: LeakIndex, fps: np.ndarray) -> np.ndarray:
    """The former check of match.py: each fingerprint searched in the sorted shared ones."""
    if not idx.dup_fps:
        return np.zeros(len(fps), dtype=bool)
    dup = np.array(sorted(idx.dup_fps), dtype=np.uint64)
    return dup[np.minimum(np.searchsorted(dup, fps), len(dup) - 1)] == fps


fingerprints = st.lists(st.one_of(st.integers(1, TOP), st.integers(1, 40), st.sampled_from([1, TOP - 1, TOP])),
                        min_size=1, max_size=300)


@st.composite
def index_and_queries(draw):
    """A sorted index with runs of equal fingerprints (at its ends too), and queries: members,
    their neighbours, 0 (absent), others."""
    base = draw(fingerprints)
    rep = draw(st.lists(st.sampled_from(base), max_size=60))
    fps = np.sort(np.array(base + rep, dtype=np.uint64))
    vals = fps.tolist()
    q = [v + d for v in vals for d in (-1, 0, 1) if 0 <= v + d <= TOP] + [0, TOP] + draw(fingerprints)
    return fps, np.array(q, dtype=np.uint64)


@settings(max_examples=300, deadline=None)
@given(index_and_queries(), st.integers(1, 9), st.booleans())
def test_lookup_says_which_fingerprints_are_shared(data, every, with_directory):
    fps, q = data
    idx = _index(fps)
    if with_directory:
        idx._directory = Directory(fps, every)
    plain = idx.lookup(q)
    for part in (q, q[:5], q[-3:], q[:1]):  # a batch, and the few-fingerprint path
        recs, shared = idx.lookup(part, shared=True)
        assert np.array_equal(recs, idx.lookup(part))
        assert np.array_equal(shared, _old_shared(idx, part)), part
    assert np.array_equal(idx.lookup(q, shared=True)[0], plain)
    empty = idx.lookup(np.array([], dtype=np.uint64), shared=True)
    assert empty[0].tolist() == [] and empty[1].tolist() == []


def test_a_shared_fingerprint_at_the_end_of_the_index():
    fps = np.array([3, 5, 9, 9], dtype=np.uint64)
    idx = _index(fps)
    q = np.array([9, 5, 3, 0, 10] * 300, dtype=np.uint64)  # a batch: the vectorised path
    recs, shared = idx.lookup(q, shared=True)
    assert shared.tolist() == [True, False, False, False, False] * 300
    assert recs.tolist()[:5] == [1, 2, 3, -1, -1]


@settings(max_examples=150, deadline=None)
@given(index_and_queries(), st.integers(1, 4), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_confirm_marks_the_rows_with_a_shared_fingerprint_as_before(data, n_numeric, n_email, seed):
    fps, pool = data
    idx = _index(fps)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    kinds = ["nir", "phone"] * 2
    columns = [(kinds[i], pool[rng.integers(0, len(pool), n)]) for i in range(n_numeric)]
    emails = [("email", np.where(rng.random(n) < 0.3, np.uint64(0), pool[rng.integers(0, len(pool), n)]))
              for _ in range(n_email)]
    want = np.zeros(n, dtype=bool)
    for _, col in columns + emails:
        want |= _old_shared(idx, col)
    first = Matcher._confirm(idx, columns, n)
    both = Matcher._confirm(idx, columns + emails, n, first)  # emails after the numeric columns
    once = Matcher._confirm(idx, columns + emails, n)
    assert np.array_equal(both[3], want) and np.array_equal(once[3], want)
    assert np.array_equal(both[0], once[0]) and np.array_equal(both[1], once[1])
    assert [(k, r.tolist()) for k, r in both[2]] == [(k, r.tolist()) for k, r in once[2]]


# -- name + birth date -----------------------------------------------------------------------------
PEOPLE = synth.generate(120, seed=909)
STRANGERS = synth.generate(40, seed=910)
COLUMNS = ["nom", "prenom", "date_naissance", "code_postal", "telephone", "email", "nir"]


@pytest.fixture(scope="module")
def leak():
    """An enrolled leak where some people appear twice (same name and birth date, other
    identifiers): their name + birth-date fingerprints are shared."""
    twins = []
    for i, p in enumerate(PEOPLE[:30]):
        q = dict(STRANGERS[i])
        q["nom"], q["prenom"], q["date_naissance"] = p["nom"], p["prenom"], p["date_naissance"]
        twins.append(q)
    data = synth.csv_text(*synth.transform(PEOPLE + twins)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="twins", key=KEY, lab_column="laboratoire")
    assert index.dup_fps
    return Scanner([index], KEY)


def _old_namedob(m: Matcher, f: Fields, idx: LeakIndex) -> dict[int, set[str]]:
    """The former ``Matcher._namedob_candidates``: one lookup per name × birth date."""
    out: dict[int, set[str]] = {}
    for name in f.names[:40]:
        for dob in f.dobs[:3]:
            fp = m.fpr.fp("namedob", f"{name}|{dob}")
            rec = int(idx.lookup(np.array([fp], dtype=np.uint64))[0])
            if rec >= 0:
                for r in (idx.all_records(fp) if fp in idx.dup_fps else (rec,)):
                    out.setdefault(r, set()).update(("name", "dob"))
    return out


@st.composite
def records(draw):
    """Rows of leaked people and strangers, strong identifiers kept or blanked, names and birth
    dates kept, swapped, blanked; a few rows with many names (the 40 × 3 bound) or birth dates."""
    rows = []
    for _ in range(draw(st.integers(1, 30))):
        p = dict(draw(st.sampled_from(PEOPLE[:40] + STRANGERS[30:])))
        for k in ("telephone", "email", "nir"):
            if draw(st.integers(0, 3)):
                p[k] = ""
        if draw(st.integers(0, 5)) == 0:
            p["nom"] = ""
        if draw(st.integers(0, 5)) == 0:
            p["date_naissance"] = draw(st.sampled_from(["", "n/a", "01/01/1970"]))
        if draw(st.integers(0, 6)) == 0:
            p["nom"], p["prenom"] = p["prenom"], p["nom"]
        rows.append([p[c] for c in COLUMNS])
    return rows


@settings(max_examples=80, deadline=None)
@given(records(), st.sampled_from([1, 2, 7, mt._NAMEDOB_LOOKUP]))
def test_namedob_candidates_looked_up_together_are_the_former_ones(leak, rows, chunk):
    m = leak.matcher
    idx = m.indexes[0]
    mapping = sch.map_columns(COLUMNS, rows)
    fields = [from_mapped(r, mapping) for r in rows]
    strong = m._lookup_strong(fields, idx)
    saved = mt._NAMEDOB_LOOKUP
    mt._NAMEDOB_LOOKUP = chunk
    try:
        got = m._lookup_namedob(fields, strong, idx)
    finally:
        mt._NAMEDOB_LOOKUP = saved
    for i, f in enumerate(fields):
        asked = not strong[i] and bool(f.dobs and f.names)
        assert (i in got) == asked
        if asked:
            want = _old_namedob(m, f, idx)
            assert list(got[i].items()) == list(want.items())  # same candidates, same order


def test_many_names_and_a_record_that_raises(leak):
    m = leak.matcher
    idx = m.indexes[0]
    mapping = sch.map_columns(COLUMNS, [[PEOPLE[0][c] for c in COLUMNS]])
    shared = PEOPLE[:30]  # each has an enrolled twin: shared name + birth date
    many = Fields(names=[from_mapped([p[c] for c in COLUMNS], mapping).names[0] for p in shared] * 2,
                  dobs=["19000101"] + [from_mapped([p[c] for c in COLUMNS], mapping).dobs[0] for p in shared[:3]])
    bad = Fields(names=["martin \udcff"], dobs=["19700101"])  # cannot be encoded: its own failure
    fields = [many, bad, Fields(names=many.names[:1], dobs=many.dobs[1:2])]
    got = m._lookup_namedob(fields, [{}, {}, {}], idx)
    assert isinstance(got[1], UnicodeEncodeError)
    assert list(got[0].items()) == list(_old_namedob(m, many, idx).items()) and len(got[0]) >= 2
    assert list(got[2].items()) == list(_old_namedob(m, fields[2], idx).items()) and len(got[2]) == 2

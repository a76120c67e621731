"""The lookups' directory (matchers.index.Directory): the same answers as a plain binary search.

A large index narrows each query to a window found through a sampled directory, then searches it
without branches; these properties hold it to ``np.searchsorted`` (and so to the lookups of an
index without a directory) on generated sorted arrays: duplicates, the edge keys 0 and 2^64 - 1,
values crowded under one prefix (the windows widen), arrays shorter than one window, every
sampling step, and ``LeakIndex.lookup`` through each of its paths (a few fingerprints, a batch).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import index as ix
from matchers.index import Directory, LeakIndex

TOP = 2**64 - 1
EDGES = [0, 1, 2**32, 2**63 - 1, 2**63, TOP - 1, TOP]

# Values spread over 64 bits, crowded in a narrow band (one prefix), or on the edges.
values = st.one_of(
    st.integers(0, TOP),
    st.integers(2**40, 2**40 + 300),
    st.integers(TOP - 300, TOP),
    st.sampled_from(EDGES),
)


def sorted_fps(draw_list: list[int]) -> np.ndarray:
    return np.sort(np.array(draw_list, dtype=np.uint64))


def queries_for(fps: np.ndarray, extra: list[int]) -> np.ndarray:
    """Every member, its neighbours, the edges and some others: each side of each boundary."""
    near = [int(v) + d for v in fps.tolist() for d in (-1, 0, 1)]
    q = [v for v in near + EDGES + extra if 0 <= v <= TOP]
    return np.array(q, dtype=np.uint64)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=400), st.lists(values, max_size=50), st.integers(1, 9))
def test_lower_bound_is_searchsorted(fps_list, extra, every):
    fps = sorted_fps(fps_list)
    q = queries_for(fps, extra)
    d = Directory(fps, every)
    assert np.array_equal(d.lower_bound(fps, q), np.searchsorted(fps, q))
    assert np.array_equal(d.lower_bound(fps, np.sort(q)), np.searchsorted(fps, np.sort(q)))


@settings(max_examples=50, deadline=None)
@given(st.integers(2_000, 20_000), st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 16, 64]))
def test_lower_bound_on_keyed_sized_arrays(n, seed, every):
    """Uniform fingerprints with runs of duplicates (shared phones), many windows, all their edges."""
    rng = np.random.default_rng(seed)
    fps = rng.integers(0, 2**64, n, dtype=np.uint64)
    fps = np.sort(np.concatenate([fps, fps[: n // 10], fps[: n // 50]]))
    d = Directory(fps, every)
    assert d.width <= len(fps)  # the branchless search is the one under test, not its fallback
    q = np.concatenate([fps, fps - np.uint64(1), fps + np.uint64(1),
                        rng.integers(0, 2**64, n, dtype=np.uint64), np.array(EDGES, dtype=np.uint64)])
    assert np.array_equal(d.lower_bound(fps, q), np.searchsorted(fps, q))


def test_one_crowded_prefix_widens_the_window_and_stays_right():
    fps = np.arange(10**6, 10**6 + 5_000, dtype=np.uint64)  # every value under one prefix
    d = Directory(fps, 64)
    assert d.width >= len(fps) - 64
    q = np.array([0, 10**6 - 1, 10**6, 10**6 + 2_500, 10**6 + 4_999, 10**6 + 5_000, TOP], dtype=np.uint64)
    assert np.array_equal(d.lower_bound(fps, q), np.searchsorted(fps, q))


def test_empty_and_single():
    fps = np.array([], dtype=np.uint64)
    assert Directory(fps, 4).lower_bound(fps, np.array([0, 5, TOP], dtype=np.uint64)).tolist() == [0, 0, 0]
    one = np.array([7], dtype=np.uint64)
    assert Directory(one, 4).lower_bound(one, np.array([0, 7, 8, TOP], dtype=np.uint64)).tolist() == [0, 0, 1, 1]


def _index(fps: np.ndarray, recs: np.ndarray) -> LeakIndex:
    return LeakIndex(meta={"name": "t", "records": int(recs.max(initial=0)) + 1},
                     arrays={"strong_fp": fps, "strong_rec": recs})


def _plain(fps: np.ndarray, recs: np.ndarray, q: np.ndarray) -> np.ndarray:
    """What ``lookup`` returned before the directory: the record of the first equal fingerprint."""
    if not len(fps):
        return np.full(len(q), -1, dtype=np.int64)
    pos = np.searchsorted(fps, q)
    pos[pos >= len(fps)] = 0
    return np.where((fps[pos] == q) & (q != 0), recs[pos].astype(np.int64), -1)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=300), st.lists(values, max_size=40), st.integers(1, 9), st.booleans())
def test_lookup_through_every_path(fps_list, extra, every, with_directory):
    fps = sorted_fps(fps_list)
    recs = np.arange(len(fps), dtype=np.uint32)[::-1].copy()  # records unrelated to positions
    idx = _index(fps, recs)
    if with_directory:
        idx._directory = Directory(fps, every)
    q = queries_for(fps, extra)
    want = _plain(fps, recs, q)
    assert np.array_equal(idx.lookup(q), want)  # a batch (or, when short, a search each)
    for i in range(0, len(q), 5):  # a few at a time: the path of one record's identifiers
        assert np.array_equal(idx.lookup(q[i:i + 5]), want[i:i + 5])
    assert idx.lookup(np.array([], dtype=np.uint64)).tolist() == []


def test_a_large_lookup_builds_the_directory_once(monkeypatch):
    monkeypatch.setattr(ix, "DIRECTORY_MIN", 1000)
    rng = np.random.default_rng(5)
    fps = np.sort(rng.integers(1, 2**64, 5000, dtype=np.uint64))
    recs = rng.integers(0, 2**32, 5000, dtype=np.uint64).astype(np.uint32)
    idx = _index(fps, recs)
    q = np.concatenate([fps[::3], rng.integers(0, 2**64, 500, dtype=np.uint64)])
    small = q[: ix.DIRECTORY_QUERIES - 1]
    assert np.array_equal(idx.lookup(small), _plain(fps, recs, small))
    assert idx._directory is None  # a small lookup does not build it
    assert len(q) >= ix.DIRECTORY_QUERIES
    assert np.array_equal(idx.lookup(q), _plain(fps, recs, q))
    built = idx._directory
    assert built is not None and idx.directory() is built
    assert np.array_equal(idx.lookup(small), _plain(fps, recs, small))  # now through it
    for v in q[:50].tolist():
        assert idx.lookup(np.array([v], dtype=np.uint64)).tolist() == _plain(fps, recs, np.array([v], dtype=np.uint64)).tolist()


def test_a_small_index_has_none():
    fps = np.arange(1, 100, dtype=np.uint64)
    idx = _index(fps, np.arange(99, dtype=np.uint32))
    assert idx.directory() is None
    assert idx.lookup(fps).tolist() == list(range(99))


def test_loaded_arrays_are_plain_views_of_the_files(tmp_path):
    from matchers.fingerprint import Fingerprinter
    from matchers.indexbuild import IndexBuilder
    from matchers.index import FORMAT

    fpr = Fingerprinter(b"k" * 32)
    b = IndexBuilder(fpr)
    b.add(nir="1850578006084", emails=["x@example.com"], phones=[], name="jeanne martin", dob="19850512",
          postcode=None, lab="Lab A", surname="martin", first_name="jeanne", row=1)
    b.build({"name": "m", "version": FORMAT}).save(tmp_path / "m")
    again = LeakIndex.load(tmp_path / "m")
    for name, arr in again.arrays.items():
        assert type(arr) is np.ndarray, name  # not np.memmap: its __getitem__ costs per record
        assert not arr.flags.writeable and not arr.flags.owndata, name  # still the mapped file
    assert again.lookup(np.array([fpr.fp("nir", "1850578006084")], dtype=np.uint64)).tolist() == [0]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.booleans())
def test_a_repeated_head_is_answered_as_a_new_lookup(seed, change, with_directory):
    """Successive lookups that share a head (the batch path once asked a batch's numeric columns,
    then those and its emails) each equal a lookup from scratch, whatever changed."""
    rng = np.random.default_rng(seed)
    fps = np.sort(rng.integers(0, 2**64, 3000, dtype=np.uint64))
    recs = rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32)
    idx = _index(fps, recs)
    if with_directory:
        idx._directory = Directory(fps, 8)
    head = np.concatenate([fps[rng.integers(0, 3000, ix.DIRECTORY_QUERIES)], rng.integers(0, 2**64, 100, dtype=np.uint64)])
    tail = np.concatenate([fps[rng.integers(0, 3000, 600)], np.zeros(5, dtype=np.uint64)])
    first = idx.lookup(head)
    assert np.array_equal(first, _plain(fps, recs, head))
    first[:] = -7  # a caller writing into an answer changes nothing of the next
    again = head.copy()
    if change == 1:
        again[0] = fps[0] if head[0] != fps[0] else fps[1]  # the head differs in one query
    elif change == 2:
        again = again[:-1]  # shorter: not a repeated head
    elif change == 3:
        tail = tail[:0]  # the same queries again
    q = np.concatenate([again, tail])
    assert np.array_equal(idx.lookup(q), _plain(fps, recs, q))
    assert np.array_equal(idx.lookup(q[:100]), _plain(fps, recs, q[:100]))

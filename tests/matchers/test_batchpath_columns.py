"""The batch path's vectorised NIR and numeric columns give, cell for cell, what the scalar
reading gave (branch ``batchpath``, issue 9): :func:`matchers.columns.nir_column` (Corsican
``2A``/``2B`` NIRs now read a batch at a time) and :func:`matchers.columns._int_cells` (blank and
mixed cells now in the digit matrix), with Hypothesis, as :func:`matchers.columns.email_column`
gives ``email_norm`` of each cell; the batch path's young generation
(:func:`matchers.columns.young_generation`), restored after a table, also when two threads' scans
overlap; :func:`matchers.columns.pick` and the cache of :class:`matchers.verify.Normal`."""

from __future__ import annotations

import gc
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from matchers import identifiers as ids
from matchers import match
from matchers.columns import _int_cells, nir_column, phone_column, pick, young_generation
from matchers.extract.model import Table
from matchers.fingerprint import Fingerprinter, nir_int
from matchers.tally import Tally

_NIR_STRIP = str.maketrans("", "", " .-_\u00a0\t")


def _nir_reference(cells: list[str]) -> tuple[list[int], list[bool]]:
    """The scalar reading of each cell, as main's nir_column gave it: the cell's digits as an
    integer (15 digits: body and key; 13: a body), else ``identifiers.nir_parts`` for a cell of
    13 or 15 characters with letters."""
    bodies, keys = [], []
    for cell in cells:
        c = cell.translate(_NIR_STRIP)
        v = int(c) if c.isdecimal() and len(c) <= 18 else 0
        body, keyed = 0, False
        if 10**14 <= v < 10**15:
            if 97 - (v // 100) % 97 == v % 100:
                body, keyed = v // 100, True
        elif 10**12 <= v < 10**13:
            body = v
        elif v == 0 and len(c) in (13, 15) and not c.isdecimal():
            p = ids.nir_parts(c)
            if p:
                body, keyed = nir_int(p[0]), p[1]
        bodies.append(body)
        keys.append(keyed)
    return bodies, keys


@st.composite
def nir_cells(draw) -> str:
    """NIRs of every shape a column holds: Corsican or not, with a right, wrong or no key, spaced,
    lower-cased, mangled; and blanks, words, other numbers."""
    sex = draw(st.sampled_from("0123478"))
    dept = draw(st.sampled_from(["2A", "2B", "2a", "2b", "19", "18", "75", "2C", "A2", "3A"]))
    body = sex + draw(st.from_regex(r"[0-9]{4}", fullmatch=True)) + dept + draw(st.from_regex(r"[0-9]{6}", fullmatch=True))
    if dept.upper() in ("2A", "2B"):
        right = ids.nir_check_key(body.upper())
    else:
        right = 97 - int(body) % 97 if body.isdigit() else 1
    key = draw(st.sampled_from([f"{right:02d}", f"{(right + 1) % 100:02d}", "", "0", "9A", "٣4"]))
    nir = body + key
    if draw(st.booleans()):
        nir = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}".strip()
    nir = draw(st.sampled_from([nir, nir.replace(" ", "."), nir.replace(" ", "\u00a0"), nir.lower(), "x" + nir[1:],
                                nir[:-1], nir + "0"]))
    other = st.one_of(st.just(""), st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                      st.text(alphabet="0123456789 2AaBb.-٣é\n", max_size=17), st.sampled_from(["n/a", "inconnu"]))
    return draw(st.one_of(st.just(nir), other))


@settings(max_examples=400, deadline=None)
@given(st.lists(nir_cells(), max_size=60))
def test_nir_column_reads_each_cell_as_the_scalar_reading(cells):
    body, keyed = nir_column(cells)
    expected_body, expected_keyed = _nir_reference(cells)
    assert body.tolist() == expected_body
    assert keyed.tolist() == expected_keyed


def test_corsican_nirs_of_a_whole_column():
    """Each of 2A and 2B, any case, keyed right or wrong, 13 or 15 characters, spaced."""
    cells = []
    for dept in ("2A", "2B", "2a", "2b"):
        body = f"18505{dept}123456"
        key = ids.nir_check_key(body.upper())
        cells += [body, body + f"{key:02d}", body + f"{(key + 1) % 100:02d}",
                  f"1 85 05 {dept} 123 456 {key:02d}"]
    body, keyed = nir_column(cells)
    assert body.tolist() == _nir_reference(cells)[0]
    assert keyed.tolist() == [False, True, False, True] * 4
    assert all(b > 0 for b, k in zip(body.tolist(), [1, 1, 0, 1] * 4) if k)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.just(""), st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                          st.from_regex(r"(\+33|0033|0)[67][0-9]{8}", fullmatch=True),
                          st.text(alphabet="0123456789 +()٣a", max_size=16)), max_size=50),
       st.sampled_from([1, 9, 14, 18, 19]))
def test_numeric_cells_with_blanks_parse_as_the_scalar_reading(cells, longest):
    expected = [int(c) if c.isdecimal() and len(c) <= longest else 0 for c in cells]
    assert _int_cells(cells, longest).tolist() == expected


def test_phone_column_with_blanks_agrees_with_phone_nsn():
    cells = ["", "06 12 34 56 78", "+33 6 12 34 56 78", "", "0033612345678", "n/a", "0262 12 34 56"] * 5
    nsn, _ = phone_column(cells)
    assert nsn.tolist() == [int(p) if (p := ids.phone_nsn(c)) else 0 for c in cells]


def test_young_generation_is_sized_for_the_block_then_restored():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with young_generation(3 * 8192):
            assert gc.get_threshold() == (3 * 8192, 10, 10)
            with young_generation(100):  # never smaller than what the caller set
                assert gc.get_threshold() == (3 * 8192, 10, 10)
            assert gc.get_threshold() == (3 * 8192, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        try:
            with young_generation(5000):
                raise ValueError("a bad row")
        except ValueError:
            pass
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_young_generation_is_restored_when_blocks_of_two_threads_overlap():
    """A scan in each of two threads (the daemon's jobs): the first in raises it, the last out
    restores it, whichever order they leave in."""
    before = gc.get_threshold()
    entered, leave_first = threading.Event(), threading.Event()

    def other():
        with young_generation(5000):
            entered.set()
            leave_first.wait(10)

    try:
        gc.set_threshold(700, 10, 10)
        with young_generation(5000):
            th = threading.Thread(target=other)
            th.start()
            assert entered.wait(10)
        assert gc.get_threshold()[0] == 5000  # the other thread's block still runs
        leave_first.set()
        th.join(10)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        leave_first.set()
        gc.set_threshold(*before)


def test_a_scan_sizes_the_young_generation_for_its_batches_and_restores_it(monkeypatch):
    """The batch path reads its rows with room for a few batches in the young generation."""
    seen = []
    real = match.Matcher._seq_batch
    monkeypatch.setattr(match.Matcher, "_seq_batch", lambda self, *a: seen.append(gc.get_threshold()[0]) or real(self, *a))
    before = gc.get_threshold()
    body = 1850578006084
    rows = [[f"{body + i}{97 - (body + i) % 97:02d}", f"x{i}@example.org", f"06123456{i:02d}"] for i in range(10)]
    table = Table(kind="delimited", header=("nir", "email", "telephone"), rows=iter(rows), source="t")
    match.Matcher([], Fingerprinter(bytes(32))).match_table(table, Tally(leaks=[]))
    assert seen and all(s >= 3 * match.BATCH for s in seen)
    assert gc.get_threshold() == before


@given(st.lists(st.text(max_size=3), max_size=20), st.data())
def test_pick_takes_the_cells_of_the_rows_asked(cells, data):
    at = np.array(sorted(data.draw(st.sets(st.integers(0, max(len(cells) - 1, 0)), max_size=len(cells)))),
                  dtype=np.int64) if cells else np.zeros(0, dtype=np.int64)
    assert pick(cells, at) == [cells[i] for i in at.tolist()]


def test_normal_column_normalises_each_distinct_cell_once():
    from matchers.verify import Normal

    calls = []
    norm = Normal()
    fn = lambda c: calls.append(c) or (c.upper() if c != "x" else None)  # noqa: E731
    assert norm.column("k", ["a", "b", "a", "", "x", "x"], fn) == ["A", "B", "A", None, None, None]
    assert norm.column("k", ["b", "c", "x"], fn) == ["B", "C", None]
    assert calls == ["a", "b", "x", "c"]


_emails = st.from_regex(r"[A-Za-zΣσ0-9._+-]{1,12}@[A-Za-z0-9-]{1,8}(\.[A-Za-z]{2,4}){1,2}", fullmatch=True)
_around = st.text(alphabet=st.sampled_from(" \t<>\"'\u00a0\u3000\x0b\x1c\u2028\r"), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_emails, st.tuples(_around, _emails, _around).map("".join), st.just(""),
                          st.text(alphabet=st.sampled_from("aZ0@.-_+ éİẞΣ\"'<>\u00a0,;\n"), max_size=12)),
                max_size=30))
def test_email_column_is_email_norm_of_each_cell(cells):
    """The email-spells-the-name check of verify_single reads its emails by column."""
    from matchers.columns import email_column

    assert email_column(cells) == [ids.email_norm(c) if c else None for c in cells]

"""Web-server logs and long pastes on the text path (issue 9, case b).

Stated here:
- a log line is free text, not a delimited row: the ``;`` and ``,`` inside its quoted fields
  (``"Mozilla/5.0 (X11; Linux x86_64)"``) cut no cells, so a log is one text table read by
  proximity (its records are the text around its identifiers), while a real delimited block,
  quoted cells included, is still one;
- the segmenter's fast paths (a line that can start no other segment, :attr:`_Line.plain`; a
  line's kind decided once) cut a text into the same tables as :meth:`Segmenter.detect` asked
  anew at every line (Hypothesis);
- the identifier, blood-group and medical-word patterns with their first-character look-aheads
  find exactly what the patterns without them found: emails, phones in every French format, NIRs
  with spaces, dots and hyphens, Corsican 2A/2B, among log-like noise (Hypothesis);
- a scan of log-like noise with leaked records embedded gives the same finding as with the old
  segmentation (verdict, confirmed records by lab, categories, sample), only ``records_seen``
  follows the decision above (Hypothesis).
"""

from __future__ import annotations

import io
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchers.extract.text as text_mod
from dumpwatch.devkit import synth
from matchers import identifiers as ids
from matchers.enroll import enroll_stream
from matchers.extract.delimited import cell_count
from matchers.extract.text import Segmenter, split_lines
from matchers.scan import Scanner
from tests.matchers.test_prefilter import emails, nirs, phones

KEY = bytes(range(32, 64))

AGENTS = ('"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"',
          '"curl/8.5.0"', '"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148"',
          '"-"', '"Opera/9.80 (Windows NT 6.1; U; fr) Presto/2.12"')


def log_line(rng: random.Random, request: str | None = None) -> str:
    """One Combined Log Format line with long numeric ids (as bench/bench_noise.py's case b)."""
    ip = ".".join(str(rng.randrange(256)) for _ in range(4))
    url = request or f"/api/orders/{rng.randrange(10**8, 10**rng.randrange(9, 16))}?session={rng.randrange(10**17, 10**19)}"
    return (f'{ip} - - [24/Feb/2021:10:12:{rng.randrange(60):02d} +0100] "GET {url} HTTP/1.1" '
            f'{rng.choice((200, 304, 404))} {rng.randrange(200, 90000)} "-" {rng.choice(AGENTS)} '
            f'req_id={rng.randrange(10**11, 10**20)} rt=0.{rng.randrange(1000):03d}')


def _tables(text: str) -> list[tuple[str, tuple | None, list]]:
    return [(t.kind, t.header, list(t.rows)) for t in Segmenter(split_lines(text), "x", "utf-8").tables()]


# -- what a log line is ------------------------------------------------------------------------


def test_a_web_server_log_is_one_text_table():
    rng = random.Random(3)
    log = "\n".join(log_line(rng) for _ in range(300)) + "\n"
    tables = _tables(log)
    assert [kind for kind, _, _ in tables] == ["text"]
    assert len(tables[0][2]) == 300


def test_delimited_blocks_are_still_blocks():
    """Quoted cells (``"a;b"`` after a delimiter) and delimiters outside quotes keep their cells."""
    block = ('intro line\n'
             'DUPONT;"Jean; Paul";1 85 05 78 006 084 36\n'
             'MARTIN;"Luc";2 90 12 2A 123 456\n'
             'DURAND;"Eve; Anne";1 70 01 75 111 222\n'
             'outro\n')
    kinds = [(kind, len(rows)) for kind, _, rows in _tables(block)]
    assert kinds == [("text", 1), ("delimited", 3), ("text", 1)]
    spaced = 'a "x;y" b;c;d\na "x;y" b;c;d\na "x;y" b;c;d\n'   # delimiters outside the quotes too
    assert [kind for kind, _, _ in _tables(spaced)] == ["delimited"]


@pytest.mark.parametrize("line", [
    '1.2.3.4 - - [x] "GET /a;b HTTP/1.1" 200 5 "-" "Mozilla (X11; Linux)"',
    '"Mozilla (X11; Linux)"',
    'GET "a, b, c" done',
])
def test_delimiters_inside_spaced_quotes_cut_no_cells(line):
    for d in ";,":
        if d in line:
            assert text_mod._Line(line).cells(d) == 1


# -- the segmenter's fast path -----------------------------------------------------------------

_PIECES = st.sampled_from([
    "", "   ", "-----", "nom: DUPONT", "Tél : 06 12 34 56 78", "prenom = Jean", "et les combos :",
    "jean.dupont@orange.fr:azerty", "a@b.fr;x", "a;b;c", "a;b", "x,y,z", "x\ty\tz", "p|q|r",
    '"a;b";c;d', 'k "v;w" z', "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 3, "deadbeef" * 10,
    "1 85 05 78 006 084 36", "plain words", "12:30 done", "- item: x",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.builds(log_line, st.randoms(use_true_random=False))), max_size=25))
def test_the_fast_path_cuts_the_same_tables(lines):
    text = "\n".join(lines) + "\n"
    fast = _tables(text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(text_mod._Line, "plain", property(lambda self: False))   # detect every line,
        mp.setattr(Segmenter, "detect", lambda self, i=0: (                  # every time anew
            ("text", None) if self.peek(i) is None else self._detect(i, self.peek(i))))
        slow = _tables(text)
    assert fast == slow


# -- the patterns with look-aheads find what they found ------------------------------------------

OLD_PHONE = re.compile(
    r"(?<![\w+*])(?:(?:\+|00)\s?(?:33|262|590|594|596|269)[\s.\-]?(?:\(0\)[\s.\-]?)?|0)"
    r"[1-9](?:[\s.\-]?[0-9]{2}){4}(?!\w)")
OLD_BLOOD = re.compile(r"(?<![\w+])(?:AB|A|B|O)\s?(?:\+|-|pos\b|n[ée]g\b)(?![\w+])")
OLD_HEALTH = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in ids.HEALTH_TERMS) + r")")

_WORDS = st.sampled_from(["VIH", "grossesse", "Diabète", "AB+", "O-", "A nég", "B pos", "groupe sanguin",
                          "OS", "Apple", "+", "-", "0", "00", "+33", "(0)", "2A", "2B", "_", "é", "inr2"])
_LOGGY = st.text(alphabet=st.sampled_from("aAbBoO0123456789 .-+_/:;,\"()[]=?&@\t\u00a0é"), max_size=30)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(nirs(), phones(), emails, _WORDS, _LOGGY,
                          st.builds(log_line, st.randoms(use_true_random=False))), max_size=12),
       st.sampled_from(["", " ", "\n", ";", "=", "&tel=", "_"]))
def test_look_aheads_change_no_match(pieces, glue):
    text = glue.join(pieces)
    for new, old in ((ids.PHONE_IN_TEXT, OLD_PHONE), (ids.BLOOD_IN_TEXT, OLD_BLOOD)):
        assert [m.span() for m in new.finditer(text)] == [m.span() for m in old.finditer(text)]
        for lo in (0, 1, len(text) // 2):      # searched from an offset, as proximity does
            assert new.findall(text, lo) == old.findall(text, lo)
    folded = ids.fold(text)
    assert ids._HEALTH_RE.findall(folded) == OLD_HEALTH.findall(folded)


# -- findings on logs with leaked records among the noise ----------------------------------------


@pytest.fixture(scope="module")
def leak():
    people = synth.generate(40, seed=9)
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return _Leak((people, index))


class _Leak(tuple):
    """(people, index); a short repr, so that a failing example's report stays readable."""

    def __repr__(self) -> str:
        return f"<a leak of {len(self[0])} synthetic people>"


def _old_cells(self, delimiter: str) -> int:
    """How the segmenter counted cells before logs were text (the delimiter anywhere in the line)."""
    return 0 if self.blank else cell_count(self.text, delimiter)


def _embedded(p: dict, shape: int, rng: random.Random) -> str:
    nom, prenom = p["nom"].replace(" ", "+"), p["prenom"].replace(" ", "+")
    return [
        log_line(rng, f"/account?nom={nom}&prenom={prenom}&tel={p['telephone'].replace(' ', '')}"),
        log_line(rng, f"/signup?email={p['email']}&nir={p['nir']}"),
        f"{p['nom']};{p['prenom']};{p['nir']};{p['telephone']}",
        f"{p['nom']} {p['prenom']} {p['email']} {p['date_naissance']}",
    ][shape]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.integers(0, 20),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.integers(2, 12)), max_size=8))
def test_findings_on_logs_are_as_before(leak, seed, tail, embeds):
    """Each leaked record on a line of its own, at least two lines of noise from the next: the
    windows of two records' identifiers then never reach each other (a neighbour's email that
    spells a name would take that name's proof: proximity's rule, in any text)."""
    people, index = leak
    rng = random.Random(seed)
    lines = []
    for at, shape, gap in embeds:
        lines += [log_line(rng) for _ in range(gap)]
        lines.append(_embedded(people[at % len(people)], shape, rng))
    lines += [log_line(rng) for _ in range(tail)]
    doc = ("\n".join(lines) + "\n").encode()
    new = Scanner([index], KEY).scan_bytes(doc, "access.log")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(text_mod._Line, "cells", _old_cells)
        old = Scanner([index], KEY).scan_bytes(doc, "access.log")
    same = ("verdict", "leak", "matched_records", "labs", "categories", "leaks", "complete", "errors", "records")
    assert {k: getattr(new, k) for k in same} == {k: getattr(old, k) for k in same}
    # The sample shows each record's redacted identifiers: the text path shows the one it anchored on.
    assert len(new.sample) == len(old.sample)


def test_a_log_counts_the_records_around_its_identifiers(leak):
    """The decision: a log line is text; its records are the identifiers' windows, not its lines."""
    people, index = leak
    rng = random.Random(1)
    lines = [log_line(rng, "/home") for _ in range(50)]
    for k, p in enumerate(people[:3]):
        lines.insert(10 * k, _embedded(p, 0, rng))
    finding = Scanner([index], KEY).scan_bytes(("\n".join(lines) + "\n").encode(), "access.log")
    assert finding.records_seen == 3
    assert finding.matched_records == 3


# -- column profiles of the many short tables of a paste ---------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(nirs(), phones(), emails, _WORDS, _LOGGY, st.sampled_from(["A-1001", "0.12", "5000"])),
                max_size=10))
def test_remembered_kindless_values_change_no_kind_and_keep_no_identifier(values):
    from matchers import schema as sch

    for v in values + values:   # the second time from the remembered set, if it was kept
        assert sch.value_kind(v) == sch._value_kind(v)
    sch.value_kind("lampe de bureau " * 10)   # a long cell: profiled, not kept
    for kept in sch._KINDLESS:
        assert "@" not in kept and sum(c.isdigit() for c in kept) < 9 and len(kept) <= 80
        assert sch._value_kind(kept) is None


def test_long_texts_do_not_fill_the_fold_cache():
    """Memory flat as a log grows: the 64 KiB blocks of a long text are folded for the medical words
    without :func:`ids.fold`'s cache (65,536 entries of 64 KiB each would be gigabytes)."""
    rng = random.Random(2)
    block = "\n".join(log_line(rng) for _ in range(300)) + "\nsous traitement pour le VIH\n"
    before = ids.fold.cache_info().currsize
    assert ids.health_terms(block) == {"traitement", "vih"}
    assert ids.fold.cache_info().currsize == before

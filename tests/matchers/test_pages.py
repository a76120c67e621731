"""The engine's cost per crawled page (issue 9, bench/bench_pages.py): each shortcut finds what the
slower code found.

- the medical words: a trie of the terms (``identifiers._HEALTH_RE``) finds what the alternation
  of the terms found, on any folded text; the blood groups' expression
  with its letter first, and the phones' with their first character first, find what they found;
- ``sniff_delimited`` on a sample without quotes (one split per line) guesses what the
  ``csv.reader`` parses guessed;
- ``parse_kv`` (the expression without its quadratic value part) reads what the whole expression read;
- ``proximity.find_anchors`` runs an expression only where the squeezed text has its digits: the
  anchors and the count of keyed NIR shapes are those of every expression run;
- with all of them undone, the findings on bench_crawl's realistic pages (posts, 200 KB pastes,
  reposts) and on bench_noise's web-server log are the same, every count included;
- records of the leak embedded in a noisy paste (a CSV snippet, a chatter line, a log line) are
  all confirmed.
"""

from __future__ import annotations

import csv
import io
import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matchers.extract.delimited as delim
import matchers.extract.text as text_mod
import matchers.proximity as prox
from dumpwatch.devkit import synth
from matchers import identifiers as ids
from matchers.enroll import enroll_stream
from matchers.scan import Scanner
from tests.matchers.test_prefilter import phones, records

KEY = bytes(range(32, 64))
BENCH = Path(__file__).resolve().parents[2] / "bench"

# -- the reference versions (the code before the shortcuts) ---------------------------------------

OLD_BLOOD = re.compile(r"(?=[ABO])(?<![\w+])(?:AB|A|B|O)\s?(?:\+|-|pos\b|n[ée]g\b)(?![\w+])")
OLD_PHONE = re.compile(
    r"(?=[0+])(?<![\w+*])(?:(?:\+|00)\s?(?:33|262|590|594|596|269)[\s.\-]?(?:\(0\)[\s.\-]?)?|0)"
    r"[1-9](?:[\s.\-]?[0-9]{2}){4}(?!\w)"
)
OLD_HEALTH = re.compile(r"(?=[" + "".join(sorted({t[0] for t in ids.HEALTH_TERMS})) + r"])\b(?:"
                        + "|".join(re.escape(t) for t in ids.HEALTH_TERMS) + r")")


def old_parse_kv(line: str) -> tuple[str, str] | None:
    match = text_mod._KV.match(line)
    if not match:
        return None
    key = match.group("key").strip()
    value = match.group("value")
    if value.startswith("//") or len(key.split()) > 4:
        return None
    return key, value


def old_find_anchors(text: str, lo: int = 0, hi: int | None = None) -> tuple[list, int]:
    hi = len(text) if hi is None else hi
    out: list[prox.Anchor] = []
    shaped = 0
    if "@" in text:
        for m in ids.EMAIL_IN_TEXT.finditer(text):
            e = ids.email_norm(m.group(0))
            if e:
                out.append(prox.Anchor("email", e, m.start(), m.end()))
    for m in ids.NIR_IN_TEXT.finditer(text):
        raw = m.group(0)
        if m.group(7) and lo <= m.start() < hi:
            shaped += 1
        p = ids.nir_parts(raw)
        if p:
            out.append(prox.Anchor("nir", p[0], m.start(), m.end(), p[1]))
        elif p := ids.nir_without_stolen_key(m):
            out.append(prox.Anchor("nir", p[0], m.start(), m.end(6), p[1]))
    for m in ids.PHONE_IN_TEXT.finditer(text):
        p = ids.phone_nsn(m.group(0))
        if p:
            out.append(prox.Anchor("phone", p, m.start(), m.end()))
    out.sort(key=lambda a: a.start)
    return out, shaped


def old_dataish(cell: str) -> bool:
    return "@" in cell or any(c.isdigit() for c in cell)


def undo_shortcuts(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(ids, "_HEALTH_RE", OLD_HEALTH)
    mp.setattr(ids, "BLOOD_IN_TEXT", OLD_BLOOD)
    mp.setattr(ids, "PHONE_IN_TEXT", OLD_PHONE)
    mp.setattr(ids, "health_terms", lambda text: set(OLD_HEALTH.findall(ids.fold.__wrapped__(text))) if text else set())
    mp.setattr(delim, "_consistent_plain", delim._consistent)
    mp.setattr(delim, "_dataish", old_dataish)
    mp.setattr(text_mod, "parse_kv", old_parse_kv)
    mp.setattr(prox, "find_anchors", old_find_anchors)


# -- each shortcut against its reference ---------------------------------------------------------

_WORDS = [*ids.HEALTH_TERMS, "diabete", "hivx", "xhiv", "fausse", "couche", "post", "operatoire",
          "groupe", "sanguin", "inrs", "Grossesse", "HÉPATITE", "traitements"]
_GLUE = st.sampled_from([" ", "", "-", ", ", "\n", "é", "1", "'", "  "])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_WORDS) | st.text("abcdefghijklmnopqrstuvwxyzé ", max_size=8), _GLUE),
                max_size=12))
def test_the_trie_finds_what_the_alternation_found(parts):
    text = "".join(w + g for w, g in parts)
    assert ids.health_terms(text) == set(OLD_HEALTH.findall(ids.fold.__wrapped__(text)))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "AB", "O", "0", " ", "+", "-", "pos", "neg", "nég", "x", "_", "é", "\t",
                                 "groupe ", "\n"]), max_size=10).map("".join), st.integers(0, 4), st.integers(0, 40))
def test_the_blood_groups_letter_first_find_what_they_found(text, lo, hi):
    assert ids.BLOOD_IN_TEXT.findall(text) == OLD_BLOOD.findall(text)
    assert ids.BLOOD_IN_TEXT.findall(text, lo, hi) == OLD_BLOOD.findall(text, lo, hi)


_AROUND = st.sampled_from(["", " ", "a", "*", "+", "_", "1", "0", "é", "\n", "-", "("])


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(["0", "00", "+", "33", "590", "6", "1", "12", "9", " ", ".", "-", "(0)", "a", "*", "_",
                                 "\u00a0", "\n", "é"]), max_size=14).map("".join)
       | st.tuples(_AROUND, phones(), _AROUND).map("".join), st.integers(0, 4))
def test_the_phones_first_character_first_finds_what_it_found(text, lo):
    assert [m.span() for m in ids.PHONE_IN_TEXT.finditer(text)] == [m.span() for m in OLD_PHONE.finditer(text)]
    assert [m.span() for m in ids.PHONE_IN_TEXT.finditer(text, lo)] == [m.span() for m in OLD_PHONE.finditer(text, lo)]
    assert bool(ids.PHONE_IN_TEXT.fullmatch(text)) == bool(OLD_PHONE.fullmatch(text))


_CELL = st.text(alphabet=st.sampled_from("ab1 ;,\t|é-:"), max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(_CELL, min_size=0, max_size=30), st.booleans())
def test_sniffing_without_quotes_guesses_what_the_csv_parses_guessed(lines, quoted):
    if quoted and lines:
        lines[0] = '"' + lines[0]
    new = delim.sniff_delimited(lines)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(delim, "_consistent_plain", delim._consistent)
        old = delim.sniff_delimited(lines)
    assert new == old


def test_a_plain_sample_is_one_split_per_line():
    """A banner, a blank line, then a table: the leading line skipped and the header kept."""
    lines = ["export du 3 mars", "", "a;b;c", "1;2;3", "4;5;6", "7;8;9"]
    guess = delim.sniff_delimited(lines)
    assert guess is not None and (guess.delimiter, guess.leading, guess.columns) == (";", 2, 3)
    assert guess.rows[:2] == (("a", "b", "c"), ("1", "2", "3"))
    assert guess.rows == tuple(tuple(r) for r in csv.reader(lines[2:], delimiter=";"))


_KV_LINE = st.lists(st.sampled_from(["Nom", "N° SS", "Adresse", "a b c d e", " ", "  ", ":", "=", " : ", "- ",
                                      "* ", "\u2022", "DUPONT", "1 85 05", "//x", "http://x", ";", ",", "\t", "@",
                                      "\u00a0", "\x0b", "\x1c", "\n", ".", "...", "{", "\""]),
                     max_size=10).map("".join) | st.text(alphabet=st.sampled_from("aZé :=.;\t@-\u00a0\n"), max_size=30)


@settings(max_examples=1000, deadline=None)
@given(_KV_LINE)
def test_the_key_value_head_reads_what_the_whole_expression_read(line):
    assert text_mod.parse_kv(line) == old_parse_kv(line)


@settings(max_examples=600, deadline=None)
@given(st.lists(records(), max_size=6), st.sampled_from(["\n", " ", "; ", ""]))
def test_anchors_are_those_every_expression_finds(recs, glue):
    text = glue.join(recs)
    assert prox.find_anchors(text) == old_find_anchors(text)
    assert prox.find_anchors(text, 3, max(3, len(text) - 5)) == old_find_anchors(text, 3, max(3, len(text) - 5))


# -- whole findings ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def leak():
    people = synth.generate(200, seed=7)
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return people, index


def _bench(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


def _scan(index, data: bytes) -> dict:
    f = Scanner([index], KEY).scan_bytes(data, "page")
    return {**f.to_json(), "records": f.records}


def test_findings_on_realistic_pages_are_as_before(leak, monkeypatch, tmp_path):
    """bench_crawl's realistic pages (the 20 MB files left out: they take no path changed here
    but the sniffing, which the property above covers) and bench_noise's web-server log."""
    people, index = leak
    crawl = _bench("bench_crawl")
    monkeypatch.setattr(crawl, "big_files", lambda: ["", ""])
    pages = [b for b in crawl.make_pages(60, people, "realistic").values() if len(b) < 1_000_000]
    assert sum(len(b) > 100_000 for b in pages) >= 5   # pastes among them
    log = tmp_path / "access.log"
    _bench("bench_noise").make_logs(log, 1)
    pages.append(log.read_bytes()[:300_000])
    new = [_scan(index, b) for b in pages]
    with pytest.MonkeyPatch.context() as mp:
        undo_shortcuts(mp)
        old = [_scan(index, b) for b in pages]
    assert new == old
    assert sum(f["verdict"] == "repost" for f in new) == 3


def _snippet(p: dict, q: dict) -> str:
    return (f"nom;prenom;nir;telephone\n{p['nom']};{p['prenom']};{p['nir']};{p['telephone']}\n"
            f"{q['nom']};{q['prenom']};{q['nir']};{q['telephone']}\n")


def _chatter(p: dict) -> str:
    return f"salut c'est {p['prenom']} {p['nom']}, rappelle-moi au {p['telephone']} ou {p['email']}\n"


def _log(p: dict, rng: random.Random) -> str:
    return (f"2021-02-24 10:{rng.randrange(60):02d}:01 INFO [api] signup email={p['email']} "
            f"nir={p['nir']} ok\n")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), st.integers(1, 40)),
                                       min_size=1, max_size=6))
def test_records_embedded_in_a_noisy_paste_are_confirmed(leak, seed, embeds):
    people, index = leak
    rng = random.Random(seed)
    lines = [   # bench_crawl's noise lines (local to its make_pages)
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
        "2021-02-24 10:12:01 ERROR [worker-3] connection reset by peer (retry 2/5)\n",
        "sku;designation;prix;stock\nA-1001;Vis inox 4x40;0.12;5000\nB-2001;Perceuse 18V;89.90;14\n",
        "Le far breton : 250 g de farine, 200 g de sucre, 4 oeufs, 1 l de lait, pruneaux.\n",
        "quelqu'un a le lien de la suite ? merci d'avance, le premier est mort\n",
    ]
    parts: list[str] = []
    embedded: set[int] = set()
    for at, shape, gap in embeds:
        parts += [lines[rng.randrange(5)] for _ in range(gap)]
        k = at % (len(people) - 1)
        if shape == 0:
            parts.append(_snippet(people[k], people[k + 1]))
            embedded |= {k, k + 1}
        else:
            parts.append(_chatter(people[k]) if shape == 1 else _log(people[k], rng))
            embedded.add(k)
        parts += [lines[0], lines[3]]   # text between two embedded records: their windows do not meet
    doc = "".join(parts).encode()
    finding = Scanner([index], KEY).scan_bytes(doc, "paste")
    assert finding.matched_records == len(embedded)

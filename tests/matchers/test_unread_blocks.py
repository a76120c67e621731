"""Blocks of a delimited file counted without being parsed (issue 9, noise).

When no column of a delimited table is mapped, :func:`matchers.generic.match_generic` takes the
rows after the profile's as raw blocks of lines (:class:`matchers.extract.delimited.DelimitedRows`),
and a block without a ``"`` in which the pre-filter finds nothing is counted, not parsed. Stated
here: the pre-filter on a block's raw lines says "may hold one" whenever it says so on the cells
the reader gives, joined as the generic path joins them (Hypothesis); a scan gives the same JSON
with and without the raw blocks (Hypothesis, small batches so that every document has many);
and a file of noise is counted whole while only the first rows of each block are parsed.
"""

from __future__ import annotations

import csv
import io
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import matchers.generic as generic
import matchers.match as match_mod
from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.extract.delimited import DelimitedRows
from matchers.profiles import PROFILE_ROWS
from matchers.records import may_hold_strong
from matchers.scan import Scanner
from tests.matchers.test_prefilter import records

KEY = bytes(range(32, 64))


def _lines(text: str) -> list[str]:
    """Physical lines as the extraction reads them (``readline`` on a ``newline=""`` stream)."""
    return io.StringIO(text, newline="").readlines()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(records(), min_size=1, max_size=6), min_size=1, max_size=10),
       st.sampled_from(",;|\t"), st.sampled_from(["\n", "\r\n", "\r"]))
def test_raw_lines_may_hold_whatever_the_parsed_cells_may_hold(rows, delimiter, end):
    """A block without quotes: its raw lines pass the pre-filter whenever its parsed cells, joined
    by " ; " and the rows by line breaks (what the generic path tests), do."""
    lines = [delimiter.join(c.replace('"', "").replace(delimiter, " ").replace("\r", " ").replace("\n", " ")
                            for c in cells) + end for cells in rows]
    raw = "".join(lines)
    parsed = list(csv.reader(_lines(raw), delimiter=delimiter, quotechar='"', strict=False))
    assert len(parsed) == len(_lines(raw))  # one record per line: what the counting relies on
    if may_hold_strong("\n".join(" ; ".join(r) for r in parsed)):
        assert may_hold_strong(raw)


class _Leak(tuple):
    """(people, index); a short repr, so that a failing example's report stays readable."""

    def __repr__(self) -> str:
        return f"<a leak of {len(self[0])} synthetic people>"


@pytest.fixture(scope="module")
def leak():
    people = synth.generate(40, seed=5)
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return _Leak((people, index))


def _noise_row(rng: random.Random, i: int, quoted: bool) -> str:
    words = ("lampe", "table", "acier", "chêne", "bois", "noir")
    text = " ".join(rng.choices(words, k=3))
    cell = f'"{text}, grand"' if quoted else text
    return (f"P{i:07d},{cell},Maison,"
            f"{rng.randrange(1, 900)}.{rng.randrange(100):02d},{rng.randrange(50)},{rng.choice(words)}")


EXTRAS = ("record", "leaked", "blank", "multiline", "stray", "health")


def _extra(kind: str, text: str, person: dict) -> str:
    """A line put among the noise: an identifier in noise (``text``), a leaked person, a blank line,
    a quoted cell over two lines, a quote never closed, a medical word."""
    return {"record": f"P9000000,{text.replace(chr(13), ' ')},Maison,1.00,1,x",
            "leaked": f"P9000001,{person['nom']} {person['prenom']} {person['nir']} {person['telephone']},"
                      "Maison,1.00,1,x",
            "blank": "",
            "multiline": 'P9000002,"lampe\n06 12 34 56 78 de salon",Maison,1.00,1,x',
            "stray": 'P9000003,"lampe de salon,Maison,1.00,1,x',
            "health": "P9000004,lampe,Maison,1.00,1,sous traitement pour diabète"}[kind]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**16), st.integers(PROFILE_ROWS - 20, PROFILE_ROWS + 120),
       st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(EXTRAS), records()), max_size=8),
       st.sampled_from([5, 8, 64]), st.booleans(), st.sampled_from(["\n", "\r\n"]))
@example(seed=0, n=PROFILE_ROWS - 11, extras=[(0, "record", "")], batch=5, quoted_head=False, end="\n")  # found once
def test_a_scan_is_the_same_with_unread_blocks(leak, seed, n, extras, batch, quoted_head, end):
    """The finding (verdict, records, counts, confirmed records, medical words) is the one the
    engine gives when every row is parsed, whatever lines are put among the noise."""
    people, index = leak
    rng = random.Random(seed)
    rows = [_noise_row(rng, i, quoted_head and i == 3) for i in range(n)]
    for at, kind, text in extras:
        rows.insert(PROFILE_ROWS - 10 + at % max(1, len(rows) - PROFILE_ROWS + 11),  # past the end: appended
                    _extra(kind, text, people[at % len(people)]))
    doc = (end.join(["sku,designation,categorie,prix_ht,stock,description"] + rows) + end).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(generic, "BATCH", batch)
        with_blocks = Scanner([index], KEY).scan_bytes(doc, "products.csv")
        mp.setattr(match_mod, "DelimitedRows", type("NotDelimited", (), {}))  # every row parsed
        parsed = Scanner([index], KEY).scan_bytes(doc, "products.csv")
    assert with_blocks.to_json() == parsed.to_json()


def test_noise_is_counted_and_only_the_first_rows_of_each_block_are_parsed(monkeypatch):
    """A CSV of product rows: every record counted, and past the profile's rows the reader parses
    only the first rows of each block (medical words), never a whole block."""
    rng = random.Random(4)
    rows = [_noise_row(rng, i, False) for i in range(3 * generic.BATCH)]
    doc = ("\n".join(["sku,designation,categorie,prix_ht,stock,description"] + rows) + "\n").encode()
    parsed: list[int] = []
    real = DelimitedRows.parse
    monkeypatch.setattr(DelimitedRows, "parse", lambda self, lines: parsed.append(len(lines)) or real(self, lines))
    finding = Scanner([], KEY).scan_bytes(doc, "products.csv")
    assert finding.records_seen == len(rows)
    assert finding.complete
    assert parsed == [PROFILE_ROWS, PROFILE_ROWS]  # the two blocks after the first batch


def test_a_block_with_an_identifier_is_parsed_and_read(leak):
    """The leaked rows in a later block of noise are read (the block is parsed) and confirmed."""
    people, index = leak
    rng = random.Random(6)
    rows = [_noise_row(rng, i, False) for i in range(3 * generic.BATCH)]
    for k, p in enumerate(people[:5]):
        rows.insert(2 * generic.BATCH + 10 * k, f"P9{k:06d},{p['nom']} {p['prenom']} {p['nir']} {p['telephone']},"
                                                f"Maison,1.00,1,x")
    doc = ("\n".join(["sku,designation,categorie,prix_ht,stock,description"] + rows) + "\n").encode()
    finding = Scanner([index], KEY).scan_bytes(doc, "products.csv")
    assert finding.records_seen == len(rows)
    assert finding.matched_records == 5

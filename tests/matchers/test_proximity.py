"""Proximity records (matchers/proximity.py), line prefixes (matchers/extract/text.py) and encoded
blobs (matchers/extract/blobs.py)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random

import pytest

from dumpwatch.devkit import synth
from matchers import proximity as prox
from matchers.enroll import enroll_stream
from matchers.extract import Limits, extract_bytes
from matchers.match import Matcher
from matchers.scan import Scanner

KEY = bytes(range(64, 96))


@pytest.fixture(scope="module")
def leak():
    return synth.generate(200, seed=2021)


@pytest.fixture(scope="module")
def scanner(leak):
    data = synth.csv_text(*synth.transform(leak)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return Scanner([index], KEY)


def _sql(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


# -- windows ------------------------------------------------------------------------------------

def test_a_window_is_cut_at_the_next_identifier_of_the_same_kind():
    a, b = "1850578006084", "2900156123456"
    text = (f"DUPONT Jean {synth.spaced_nir(a + f'{synth.nir_key(a):02d}')} 06 12 34 56 78 ; "
            f"MARTIN Paul {synth.spaced_nir(b + f'{synth.nir_key(b):02d}')} 07 98 76 54 32")
    block = next(prox.blocks([text]))
    kinds = [a.kind for a in block.anchors]
    assert kinds == ["nir", "phone", "nir", "phone"]
    lo, hi = block.window(0)
    assert "MARTIN" in text[lo:hi] and "2 90 01" not in text[lo:hi]   # cut at the second NIR
    lo, hi = block.window(2)
    assert "DUPONT Jean" not in text[lo:hi] and "MARTIN Paul" in text[lo:hi]
    assert list(block.neighbours(0)) == [1]


def test_windows_are_bounded_and_each_anchor_is_owned_by_one_block():
    rng = random.Random(3)
    pieces = [f"x{i} " + " ".join("bla" for _ in range(rng.randint(0, 400))) + f" 06 {i % 90 + 10:02d} 34 56 78"
              for i in range(3000)]
    owned = 0
    for block in prox.blocks(pieces):
        for i in block.own:
            lo, hi = block.window(i)
            assert hi - lo <= 2 * prox.WINDOW + 20
            owned += 1
    assert owned == 3000


def test_blank_keys_brings_the_name_words_together():
    for text in ("<nom>DUPONT</nom><prenom>Jean</prenom>", 'nom=DUPONT prenom=Jean', '"nom": "DUPONT", "prenom": "Jean"',
                 "- nom: DUPONT\n  prenom: Jean"):
        words = [w for w in prox.blank_keys(text).replace('"', " ").replace(",", " ").split() if w.isalpha()]
        assert words == ["DUPONT", "Jean"], text


# -- the scanner ---------------------------------------------------------------------------------

def test_one_line_holding_many_records_is_read_record_by_record(scanner, leak):
    people = leak[:120]
    # phone + full name only, thousands of characters on one line, no parser for it
    line = " || ".join(f"{p['nom']} {p['prenom']} tel {p['telephone']}" for p in people)
    f = scanner.scan_bytes(("dump: " + line + "\n").encode(), "one-line.txt")
    assert f.errors == ()
    assert f.matched_records == 120 and f.records_seen == 120


def test_proximity_does_not_double_count_records_a_table_confirmed(scanner, leak):
    people = leak[:40]
    header, rows = synth.transform(people, columns=["nom", "prenom", "nir", "telephone"])
    table = synth.csv_text(header, rows, ";")
    chatter = "\n".join(f"re: {p['nom']} {p['prenom']} {p['telephone']}" for p in people)
    f = scanner.scan_bytes((table + "\n\n" + chatter + "\n").encode(), "both.txt")
    assert f.errors == ()
    assert f.matched_records == 40


def test_a_stranger_next_to_a_leaked_phone_is_not_confirmed(scanner, leak):
    strangers = synth.generate(60, seed=99)
    # the leaked phone, surrounded by another person's name, birth date and NIR
    text = "\n".join(f"<p><n>{s['nom']} {s['prenom']}</n><d>{s['date_naissance']}</d><nir>{s['nir']}</nir>"
                     f"<t>{p['telephone']}</t></p>" for p, s in zip(leak[:60], strangers))
    f = scanner.scan_bytes(text.encode(), "mixed.xml")
    assert f.errors == ()
    assert f.matched_records == 0


def test_noise_with_numbers_is_none(scanner):
    rng = random.Random(1)
    lines = [f"2021-02-24 12:{i % 60:02d}:00 INFO req={rng.randint(10**14, 10**15 - 1)} "
             f"trace={rng.randint(10**12, 10**13 - 1)} tel=0{rng.randint(600000000, 799999999)}"
             for i in range(3000)]
    f = scanner.scan_bytes("\n".join(lines).encode(), "app.log")
    assert f.verdict == "none" and f.matched_records == 0 and f.errors == ()


def test_tries_per_record_are_bounded(scanner, leak, monkeypatch):
    # The same unconfirmable phone (no second field) repeated: verified MAX_TRIES times, not 5000.
    calls = []
    original = Matcher._verify
    monkeypatch.setattr(Matcher, "_verify", lambda self, *a: calls.append(1) or original(self, *a))
    text = "\n".join(f"appel {i} vers le {leak[0]['telephone']}" for i in range(5000))
    f = scanner.scan_bytes(text.encode(), "calls.txt")
    assert f.matched_records == 0
    assert len(calls) == prox.MAX_TRIES


# -- line prefixes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["{i:>4} | ", "{i}\t", "{i}: ", "> ", ">> "])
def test_line_numbers_and_quote_marks_are_stripped(scanner, leak, prefix):
    people = leak[:30]
    header, rows = synth.transform(people, columns=["nom", "prenom", "nir"])
    lines = synth.csv_text(header, rows, ",").splitlines()
    text = "".join(prefix.format(i=i) + line + "\n" for i, line in enumerate(lines, 1))
    tables = [t for t in extract_bytes(text.encode(), "paste") if t.kind == "delimited"]
    assert tables and tables[0].header == tuple(header)
    f = scanner.scan_bytes(text.encode(), "paste")
    assert (f.matched_records, f.records_seen, f.errors) == (30, 30, ())


def test_an_id_column_is_not_taken_for_line_numbers():
    text = "id\tnom\tville\n" + "".join(f"{i}\tDupont\tVannes\n" for i in range(1, 30))
    table = next(t for t in extract_bytes(text.encode(), "ids.tsv"))
    assert table.header == ("id", "nom", "ville")
    assert list(table.rows)[0] == ["1", "Dupont", "Vannes"]


# -- encoded blobs ---------------------------------------------------------------------------------

def _csv(people) -> bytes:
    return synth.csv_text(*synth.transform(people, columns=["nom", "prenom", "nir", "email"])).encode()


@pytest.mark.parametrize("encode", [
    pytest.param(lambda b: base64.encodebytes(b).decode(), id="base64-mime"),
    pytest.param(lambda b: base64.b64encode(b).decode(), id="base64-one-line"),
    pytest.param(lambda b: base64.urlsafe_b64encode(b).decode(), id="base64-urlsafe"),
    pytest.param(lambda b: b.hex(), id="hex"),
])
@pytest.mark.parametrize("inner", ["plain", "gzip"])
def test_an_encoded_blob_is_decoded_and_read_like_an_attachment(scanner, leak, encode, inner):
    data = _csv(leak[:25])
    if inner == "gzip":
        data = gzip.compress(data)
    text = "voila la base\n\n" + encode(data) + "\n\nbonne lecture\n"
    f = scanner.scan_bytes(text.encode(), "paste")
    assert (f.matched_records, f.errors) == (25, ())
    sources = [t.source for t in extract_bytes(text.encode(), "paste")]
    assert any("!base64-1" in s or "!hex-1" in s for s in sources), sources


def test_blobs_that_are_not_text_stay_text_and_say_nothing():
    rng = random.Random(4)
    noise = bytes(rng.randrange(256) for _ in range(3000))
    text = ("cle:\n" + base64.encodebytes(b"\x89PNG\r\n\x1a\n" + noise).decode() + "\n" + "ab" * 40 + "\n"
            + "sha256 " + "0f" * 32 + "\n")
    errors: list[str] = []
    tables = list(extract_bytes(text.encode(), "keys.txt", errors=errors))
    assert errors == []
    assert {t.kind for t in tables} == {"text"}


def test_blobs_are_bounded_by_depth_and_bytes(leak):
    data = _csv(leak[:5])
    for _ in range(4):   # base64 of base64 of … : each level is one more container level
        data = base64.encodebytes(data)
    errors: list[str] = []
    list(t for t in extract_bytes(data, "deep", Limits(max_depth=2), errors))
    assert any("max_depth=2" in e for e in errors), errors
    errors = []
    big = base64.encodebytes(_csv(leak) * 20)
    for t in extract_bytes(big, "big", Limits(max_bytes=50_000), errors):
        for _ in t.rows:
            pass
    assert any("max_bytes=50000" in e for e in errors), errors


def test_blob_count_is_bounded(leak):
    blob = base64.b64encode(_csv(leak[:2])).decode()
    text = "\n\n".join(["x"] + [blob] * 5) + "\n"
    errors: list[str] = []
    tables = list(extract_bytes(text.encode(), "many", Limits(max_members=3), errors))
    assert sum(1 for t in tables if "!base64-" in t.source and t.kind != "text") == 3
    assert any("max_members=3" in e for e in errors), errors


def test_a_minified_json_in_a_paste_is_read(scanner, leak):
    people = leak[50:90]
    records = [{"patient": {"nom": p["nom"], "prenom": p["prenom"]}, "ids": {"secu": p["nir"]}} for p in people]
    text = "leak 2021 >>> " + json.dumps(records, separators=(",", ":"), ensure_ascii=False) + " <<<"
    f = scanner.scan_bytes(text.encode(), "paste")
    assert (f.matched_records, f.records_seen, f.errors) == (40, 40, ())


def test_windows_per_document_are_capped_and_the_cap_is_said(scanner, leak, monkeypatch, caplog):
    monkeypatch.setattr(prox, "MAX_WINDOWS", 5)
    line = " || ".join(f"{p['nom']} {p['prenom']} tel {p['telephone']}" for p in leak[:30])
    f = scanner.scan_bytes(line.encode(), "capped.txt")
    assert f.matched_records == 5 and f.records_seen == 30
    assert "more than 5 windows" in caplog.text
    # a partial result is marked partial: the finding says the count is a lower bound
    assert f.complete is False
    assert f.errors == ("25 identifier(s) in text were counted but not checked (more than 5 text windows "
                        "in one document): the counts are a lower bound",)

"""Negative pairs: a strong identifier of the leak next to a *wrong* second field is not a record.

For each strong identifier (NIR, phone, email) and each second field (birth date, name, postcode),
in each shape (a CSV table, JSON lines, lines of free text): the right second field confirms the
record, a wrong one (the next day, another name, the next postcode) confirms nothing. Without the
salted check of the second field (a fingerprint that ignores its value, a date parsed wrong, a
name key that drops a word), the wrong half of each pair is "confirmed" and fails.
"""

from __future__ import annotations

import io
import json
import random

import pytest
from rapidfuzz import fuzz

from dumpwatch.devkit import synth
from matchers import identifiers as ids
from matchers.enroll import enroll_stream
from matchers.scan import Scanner

KEY = bytes(range(32))
N = 20


@pytest.fixture(scope="module")
def leak():
    people = synth.generate(600, seed=2021)
    data = synth.csv_text(*synth.transform(people)).encode()
    index, report = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    assert report.records == 600
    return people, Scanner([index], KEY)


def _dice(a: str, b: str) -> float:
    return fuzz.ratio(sorted(ids.bigrams(a)), sorted(ids.bigrams(b))) / 100


def _other_name(p: dict, pool: list[dict]) -> tuple[str, str]:
    """A stranger's name that is not p's, not even with a typo (bigram Dice well under the threshold)."""
    mine = ids.name_key(p["nom"], p["prenom"])
    for s in pool:
        theirs = ids.name_key(s["nom"], s["prenom"])
        if _dice(mine, theirs) < 0.5 and not set(mine.split()) & set(theirs.split()):
            return s["nom"], s["prenom"]
    raise AssertionError("no distinct name in the pool")


def _next_day(dob: str) -> str:
    d, m, y = dob.split("/")
    return f"{int(d) % 28 + 1:02d}/{m}/{y}"  # synthetic birth days are 1..28


def _next_postcode(cp: str) -> str:
    return cp[:2] + f"{(int(cp[2:]) + 1) % 1000:03d}"


def _records(people, strangers, strong: str, second: str, right: bool) -> list[dict[str, str]]:
    out = []
    for p in people:
        r = {strong: p[strong]}
        if second == "name":
            r["nom"], r["prenom"] = (p["nom"], p["prenom"]) if right else _other_name(p, strangers)
        elif second == "date_naissance":
            r[second] = p[second] if right else _next_day(p[second])
        else:
            r[second] = p[second] if right else _next_postcode(p[second])
        out.append(r)
    return out


def _render(records: list[dict[str, str]], shape: str) -> bytes:
    cols = list(records[0])
    if shape == "csv":
        return synth.csv_text(cols, [[r[c] for c in cols] for r in records], ",").encode()
    if shape == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    # Free text: one person per message, quiet lines between them (beyond the two-line window).
    lines = []
    for i, r in enumerate(records):
        lines.append(f"[12:{i:02d}] vendeur: " + " -- ".join(r[c] for c in cols))
        lines += ["quelqu'un a la suite ?", "merci", "lien mort", "up"]
    return "\n".join(lines).encode()


PAIRS = [(s, t) for s in ("nir", "telephone", "email") for t in ("date_naissance", "name", "code_postal")
         if (s, t) != ("email", "name")]  # synthetic emails spell the name: that pair is one proof


@pytest.mark.parametrize("shape", ["csv", "jsonl", "text"])
@pytest.mark.parametrize("strong,second", PAIRS)
def test_the_right_second_field_confirms_a_wrong_one_does_not(leak, strangers, strong, second, shape):
    people, scanner = leak
    sample = random.Random(f"{strong}{second}{shape}").sample(people, N)
    right = scanner.scan_bytes(_render(_records(sample, strangers, strong, second, True), shape), f"right.{shape}")
    assert right.errors == ()
    assert (right.verdict, right.matched_records) == ("repost", N)
    wrong = scanner.scan_bytes(_render(_records(sample, strangers, strong, second, False), shape), f"wrong.{shape}")
    assert wrong.errors == ()
    assert wrong.matched_records == 0 and wrong.verdict != "repost"
    assert wrong.identifiers == right.identifiers  # the strong identifiers were seen both times


@pytest.mark.parametrize("wrong", [None, "date_naissance", "name"])
def test_name_and_birth_date_without_a_strong_identifier(leak, strangers, wrong):
    people, scanner = leak
    sample = people[200:200 + N]
    rows = []
    for p in sample:
        nom, prenom = _other_name(p, strangers) if wrong == "name" else (p["nom"], p["prenom"])
        dob = _next_day(p["date_naissance"]) if wrong == "date_naissance" else p["date_naissance"]
        rows.append([nom, prenom, dob])
    f = scanner.scan_bytes(synth.csv_text(["nom", "prenom", "date_naissance"], rows).encode(), "namedob.csv")
    assert f.errors == ()
    assert f.matched_records == (N if wrong is None else 0)


def test_two_strong_identifiers_of_two_people_confirm_nothing(leak):
    people, scanner = leak
    a, b = people[300:300 + N], people[400:400 + N]
    rows = [[p["nir"], q["telephone"]] for p, q in zip(a, b)]
    f = scanner.scan_bytes(synth.csv_text(["nir", "telephone"], rows).encode(), "two.csv")
    assert f.errors == ()
    assert f.matched_records == 0
    rows = [[p["nir"], p["telephone"]] for p in a]
    f = scanner.scan_bytes(synth.csv_text(["nir", "telephone"], rows).encode(), "one.csv")
    assert f.errors == ()
    assert f.matched_records == N


def test_a_scanner_with_another_key_finds_nothing(leak):
    people, scanner = leak
    other = Scanner(scanner.indexes, bytes(range(1, 33)))
    data = synth.csv_text(*synth.transform(people[:N])).encode()
    assert scanner.scan_bytes(data, "copy.csv").matched_records == N
    f = other.scan_bytes(data, "copy.csv")
    assert f.errors == ()
    assert f.matched_records == 0

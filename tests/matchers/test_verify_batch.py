"""Rows with one strong identifier verified as a batch (issue 9, task strongid; matchers/verify.py).

A row whose single strong identifier finds an enrolled record used to leave the batch path and be
verified one by one (``from_mapped``, the lookups again, the salted fingerprints of the candidate,
the evidence model). :func:`matchers.verify.verify_single` checks all such rows of a batch at once.
It must decide every row as the per-record path does: a Hypothesis property runs both on the same
rows (leaked people and strangers, each keeping one strong identifier; birth dates wrong, postcodes
altered, fields blanked, names mistyped, upper-cased, given in one part or in a full-name column,
phones of another enrolled record) and compares what they leave in the tally: the evidence per
anchor (records and chance figures), the candidates, the confirmed records and the sample.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpwatch.devkit import synth
from matchers import schema as sch
from matchers import verify
from matchers.enroll import enroll_stream
from matchers.match import Matcher
from matchers.scan import Scanner
from matchers.tally import tally_for

KEY = bytes(range(32, 64))
PEOPLE = synth.generate(300, seed=4242)
STRANGERS = synth.generate(60, seed=4243)
COLUMNS = ["nom", "prenom", "date_naissance", "code_postal", "telephone", "email", "nir"]


@pytest.fixture(scope="module")
def scanner():
    data = synth.csv_text(*synth.transform(PEOPLE)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return Scanner([index], KEY)


def _mangle(value: str, how: str, rnd) -> str:
    if how == "blank":
        return ""
    if how == "upper":
        return value.upper()
    if how == "typo":
        return synth.typo(value, rnd) if value else value
    return value


@st.composite
def tables(draw):
    """A header (one of a few name layouts) and rows each keeping one strong identifier."""
    layout = draw(st.sampled_from(["parts", "parts", "surname only", "full name", "no name"]))
    rnd = draw(st.randoms(use_true_random=False))
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        who = draw(st.sampled_from(["leaked"] * 4 + ["stranger"]))
        p = dict((PEOPLE if who == "leaked" else STRANGERS)[draw(st.integers(0, 59))])
        keep = draw(st.sampled_from(["telephone", "email", "nir"]))
        for k in ("telephone", "email", "nir"):
            if k != keep:
                p[k] = ""
        if draw(st.booleans()) and keep == "telephone":  # another enrolled record's phone
            p["telephone"] = PEOPLE[draw(st.integers(60, 299))]["telephone"]
        if draw(st.integers(0, 4)) == 0:
            p["date_naissance"] = draw(st.sampled_from(["01/01/1970", "1938-05-04", "31/12/2001", "", "n/a"]))
        if draw(st.integers(0, 4)) == 0:
            p["code_postal"] = draw(st.sampled_from(["", "75015", "2A004", "1234"]))
        for k in ("nom", "prenom"):
            p[k] = _mangle(p[k], draw(st.sampled_from(["keep", "keep", "upper", "typo", "blank"])), rnd)
        if draw(st.integers(0, 5)) == 0:  # first name and surname swapped
            p["nom"], p["prenom"] = p["prenom"], p["nom"]
        if draw(st.integers(0, 6)) == 0 and p["email"]:  # an email that does not spell the name
            p["email"] = p["email"].replace(".", "-x.", 1)
        if layout == "parts":
            row = [p[c] for c in COLUMNS]
        elif layout == "surname only":
            row = [p[c] for c in COLUMNS if c != "prenom"]
        elif layout == "full name":
            row = [f"{p['prenom']} {p['nom']}".strip()] + [p[c] for c in COLUMNS[2:]]
        else:
            row = [p[c] for c in COLUMNS[2:]]
        rows.append(row)
    header = {"parts": COLUMNS, "surname only": [c for c in COLUMNS if c != "prenom"],
              "full name": ["nom_complet"] + COLUMNS[2:], "no name": COLUMNS[2:]}[layout]
    return header, rows


def _run(matcher: Matcher, header: list[str], rows: list[list[str]]):
    mapping = sch.map_columns(header, rows)
    t = tally_for(matcher.indexes)
    matcher.match_rows(iter(rows), mapping, t)
    return t, mapping


def _state(t):
    e = t.evidence.get("labos")
    evidence = {} if e is None else {a: (e.pairs(a)[0].tolist(), e.pairs(a)[1].tolist()) for a in e.anchors()}
    return {"evidence": evidence, "candidates": e and dict(e.candidates), "namedob": e and e.namedob_keys,
            "matched": t.leaks[0].matched.tolist(), "sample": list(t.sample), "seen": t.records_seen,
            "identifiers": dict(t.identifiers), "failures": dict(t.failures)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables())
def test_the_batch_verification_decides_every_row_as_the_per_record_path(scanner, monkeypatch, table):
    header, rows = table
    matcher = scanner.matcher
    batch, _ = _run(matcher, header, rows)
    with monkeypatch.context() as m:
        m.setattr(verify, "eligible", lambda mapping: False)  # every such row one by one, as before
        one_by_one, _ = _run(matcher, header, rows)
    assert _state(batch) == _state(one_by_one)


def test_rows_with_one_strong_identifier_are_not_verified_one_by_one(scanner, monkeypatch):
    """Before: each such row went through Matcher._resolve (from_mapped, lookups, _verify)."""
    people = PEOPLE[:200]
    header, rows = synth.transform(people, columns=COLUMNS)
    for i, row in enumerate(rows):  # one strong identifier each: the phone or the email
        row[COLUMNS.index("nir")] = ""
        row[COLUMNS.index("email" if i % 2 else "telephone")] = ""
    resolved = []
    real = Matcher._resolve
    monkeypatch.setattr(Matcher, "_resolve", lambda self, fields, t, **kw: (resolved.extend(fields),
                                                                             real(self, fields, t, **kw))[1])
    t, _ = _run(scanner.matcher, header, rows)
    assert len(resolved) < 10  # a few rows whose phone is also another record's, if any
    assert len(t.evidence["labos"].pairs("phone")[0]) + len(t.evidence["labos"].pairs("email")[0]) == 200
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "single.csv")
    assert (f.verdict, f.matched_records, f.records_seen, f.complete) == ("repost", 200, 200, True)


def test_the_evidence_keeps_only_the_records_touched():
    """Evidence memory is proportional to the input: pairs per record touched, the lowest q kept."""
    from matchers import evidence as ev

    e = ev.Evidence(10**9)  # an index of a billion records costs nothing until records are confirmed
    for rec in (5, 7, 5):
        e.confirm(rec, ["phone"], {"phone": 1, "name~" if rec == 7 else "name": 1})
    e.confirm_many("phone", np.array([7, 9]), np.array([1e-4, 0.05]))
    recs, q = e.pairs("phone")
    assert recs.tolist() == [5, 7, 9]
    assert q.tolist() == pytest.approx([1e-4, 1e-4, 0.05])
    accepted, _ = e.decide({"phone": 300, "records": 300}, {"phone": 100})
    assert accepted.tolist() == [5, 7, 9]

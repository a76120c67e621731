"""JSON records as columns (issue 9, one core): flat records with the same keys take the batch path.

JSON lines and arrays of flat objects used to be matched record by record (the generic path); a
batch of records that all have the first record's keys is now matched as columns, like the rows of
a delimited file (:mod:`matchers.flatrecords`). The result must be the one the
generic path gives (but for the order of the three-record redacted sample, which is the batch
path's): a Hypothesis property compares the two on documents of leaked and unknown records with
blanked, mangled, reordered, missing and extra fields, in JSON lines and arrays.
"""

from __future__ import annotations

import io
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matchers.match as match_mod
from matchers import flatrecords
from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.match import Matcher
from matchers.scan import Scanner

KEY = bytes(range(64, 96))
PEOPLE = synth.generate(400, seed=909)
STRANGERS = synth.generate(100, seed=910)


@pytest.fixture(scope="module")
def scanner():
    data = synth.csv_text(*synth.transform(PEOPLE)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return Scanner([index], KEY)


def _generic(scanner, data: bytes, name: str, monkeypatch):
    """The finding of the generic (record by record) path: no JSON table is taken as columns."""
    with monkeypatch.context() as m:
        m.setattr(flatrecords, "columnar", lambda sample, mapping: None)
        return scanner.scan_bytes(data, name)


def test_json_records_with_two_strong_identifiers_are_confirmed_as_columns(scanner, monkeypatch):
    """Before: every JSON record went through the per-record verification."""
    header, rows = synth.transform(PEOPLE[:120], seed=3, shuffle_columns=True, english=True, spaced=True)
    data = synth.render(header, rows, "jsonl", seed=3).encode()
    verified = []
    real = Matcher._verify

    def spy(self, f, cands, idx):
        verified.append(1)
        return real(self, f, cands, idx)

    monkeypatch.setattr(Matcher, "_verify", spy)
    f = scanner.scan_bytes(data, "repost.jsonl")
    assert (f.verdict, f.matched_records, f.records_seen, f.complete) == ("repost", 120, 120, True)
    assert len(verified) < 12  # only the few rows whose mistyped surname makes a lone hit... or none
    assert f.identifiers["nir"] == f.identifiers["email"] == f.identifiers["phone"] == 120


_MANGLE = st.sampled_from(["keep", "keep", "keep", "blank", "garbage"])
_GARBAGE = ("n/a", "jean@", "@orange.fr", "12345", "06 12", "x" * 20, "1 85 12 ?? 123 456", "  ")


@st.composite
def documents(draw):
    """JSON records of leaked people and strangers; fields blanked or mangled, keys reordered,
    missing or extra in some records, in JSON lines or one array."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(1, 60))
    columns = draw(st.sampled_from([None, ["nom", "prenom", "telephone", "email"], ["nir", "date_naissance", "nom"],
                                    ["email", "nom", "prenom", "date_naissance", "code_postal"]]))
    people = [rng.choice(PEOPLE) if rng.random() < 0.7 else rng.choice(STRANGERS) for _ in range(n)]
    header, rows = synth.transform(people, seed=rng.randrange(100), columns=columns, english=draw(st.booleans()),
                                   spaced=draw(st.booleans()), intl=draw(st.booleans()), typos=0.2)
    records = []
    odd = draw(st.sampled_from(["none", "order", "missing", "extra"]))
    for row in rows:
        d = {}
        for k, v in zip(header, row):
            how = draw(_MANGLE)
            d[k] = v if how == "keep" else "" if how == "blank" else rng.choice(_GARBAGE)
        if rng.random() < 0.2:
            keys = list(d)
            if odd == "order":
                rng.shuffle(keys)
                d = {k: d[k] for k in keys}
            elif odd == "missing" and len(keys) > 1:
                del d[rng.choice(keys)]
            elif odd == "extra":
                d["note"] = rng.choice(["rappel", "patiente enceinte", rng.choice(PEOPLE)["telephone"]])
        records.append(d)
    if draw(st.booleans()):
        return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in records).encode()
    return json.dumps(records, ensure_ascii=False).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=documents())
def test_columns_give_what_the_record_by_record_path_gives(scanner, monkeypatch, data):
    name = "doc.json"
    expected = _generic(scanner, data, name, monkeypatch)
    got = scanner.scan_bytes(data, name)
    want, have = expected.to_json(), got.to_json()
    # The redacted sample (the first SAMPLE_SIZE confirmed records) comes in the batch path's order:
    # rows two strong identifiers confirm, then those verified one by one, as for a CSV file.
    assert len(have.pop("sample")) == len(want.pop("sample"))
    assert have == want
    assert got.records == expected.records


def test_records_whose_keys_are_data_stay_on_the_generic_path(scanner):
    """``DUPONT: <NIR>`` blocks read as records: their keys are data, split one record per key."""
    p, q = PEOPLE[0], PEOPLE[1]
    data = json.dumps([{p["nom"]: p["nir"], q["nom"]: q["nir"]}] * 3).encode()
    rows = json.loads(data)
    mapping = match_mod.sch.map_columns(None, rows)
    assert mapping.kinds == {"nir"} and flatrecords.columnar(rows, mapping) is None
    f = scanner.scan_bytes(data, "combo.json")
    assert f.records_seen == 6 and f.identifiers == {"nir": 6}


def test_medical_words_in_a_comment_past_the_profiled_rows_still_count(scanner):
    """The generic path read every record's comment for medical words; the columns do too."""
    people = [dict(p, commentaire="") for p in PEOPLE[:300]]
    people[250]["commentaire"] = "patiente enceinte"
    header, rows = synth.transform(people, columns=["nom", "prenom", "telephone", "email", "commentaire"])
    f = scanner.scan_bytes(synth.render(header, rows, "jsonl").encode(), "notes.jsonl")
    assert f.matched_records == 300 and "health" in f.categories

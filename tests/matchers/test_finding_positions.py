"""The confirmed records of a finding (positions in the enrolled index, per lab: what the Art. 34
look-ups of ``alerts.patients`` store) are built only when read (issue 9, `startup`): a scan whose
finding is printed, never stored, does not turn every confirmed position into a Python tuple."""

from __future__ import annotations

import collections
import io
import pickle

import pytest

from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.finding import Finding, Positions
from matchers.scan import Scanner

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def people():
    return synth.generate(400, seed=2021)


@pytest.fixture(scope="module")
def scanner(people):
    index, report = enroll_stream(io.BytesIO(synth.csv_text(*synth.transform(people)).encode()), "leak.csv",
                                  leak="labos", key=KEY, lab_column="laboratoire")
    assert report.records == 400
    return Scanner([index], KEY)


def test_positions_are_built_when_read_and_right(scanner, people):
    chosen = sorted(range(3, 400, 5))   # 80 enrolled records, in several labs
    header, rows = synth.transform([people[i] for i in chosen], seed=4, shuffle_columns=True, english=True)
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "repost.csv")
    assert f.verdict == "repost" and f.matched_records == len(chosen)
    expected = collections.defaultdict(list)
    for i in chosen:
        expected[people[i]["laboratoire"]].append(i)
    expected = {lab: tuple(p) for lab, p in expected.items()}
    assert len(expected) > 1

    assert isinstance(f.records, Positions)
    assert f.records._built == {}                   # the scan built no tuple
    assert "records" not in f.to_json()              # nor does the scan JSON
    assert f.records._built == {}
    assert sorted(f.records) == sorted(expected)     # the labs, without building their positions
    assert f.records._built == {}
    assert dict(f.records) == expected               # read: the positions of each lab, ascending
    assert f.records == expected and f == Finding(**{**vars(f), "records": expected})
    assert {lab: sum(1 for _ in p) for lab, p in f.records.items()} == f.labs

    back = pickle.loads(pickle.dumps(f))             # the crawler's scan worker sends it so
    assert back.records._built == {} and back.records == expected
    with pytest.raises(KeyError):
        f.records["no such lab"]


def test_a_finding_without_records_has_none(scanner):
    f = scanner.scan_bytes(b"sku,designation,prix\nP1,lampe,12.50\n", "products.csv")
    assert f.matched_records == 0 and dict(f.records) == {}


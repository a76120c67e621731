"""Per-record fault isolation: an unexpected error in one record or batch is counted and said (never
with the value that caused it), the scan goes on with the next, and the finding is marked incomplete."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from dumpwatch.devkit import synth
from matchers import match as match_mod
from matchers import verify as verify_mod
from matchers.enroll import enroll_stream
from matchers.match import Matcher
from matchers.scan import Scanner

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def people():
    return synth.generate(300, seed=88)


@pytest.fixture(scope="module")
def scanner(people):
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return Scanner([index], KEY)


def _poison_records(monkeypatch, scanner, bad: set[int]):
    """Make `_verify` raise (quoting a value, as a careless bug would) for the enrolled records in ``bad``."""
    real = Matcher._verify

    def verify(self, f, cands, idx):
        if set(cands) & bad:
            raise KeyError(f"bad value {f.nirs or f.emails}")
        return real(self, f, cands, idx)

    monkeypatch.setattr(Matcher, "_verify", verify)
    # Rows with one strong identifier are verified as a batch (matchers/verify.py): a batch holding
    # one of ``bad`` raises there, and is then retried record by record.
    real_batch = verify_mod.verify_single

    def verify_batch(fpr, norm, rows, mapping, recs, kinds, idx, weigh):
        if set(np.asarray(recs).tolist()) & bad:
            raise KeyError(f"bad value {rows[0]}")
        return real_batch(fpr, norm, rows, mapping, recs, kinds, idx, weigh)

    monkeypatch.setattr(verify_mod, "verify_single", verify_batch)


# Shapes whose records go through the per-record verification (rows with two agreeing strong
# identifiers are confirmed by the vectorised path without it, JSON records too).
@pytest.mark.parametrize("fmt,columns", [("csv", ["nom", "prenom", "telephone"]),
                                         ("jsonl", ["nom", "prenom", "telephone"]), ("kv", None),
                                         ("chatter", ["nom", "prenom", "telephone", "ville"])])
def test_a_record_that_raises_is_counted_and_the_scan_goes_on(scanner, people, monkeypatch, caplog, fmt, columns):
    sample = people[:60]
    header, rows = synth.transform(sample, columns=columns, seed=2)
    data = synth.render(header, rows, fmt, seed=2, delimiter=",", with_header=True).encode()
    _poison_records(monkeypatch, scanner, {3, 4})  # two records early in the document
    caplog.set_level(logging.INFO)
    f = scanner.scan_bytes(data, "poisoned")
    assert f.complete is False
    assert f.matched_records == 58, f  # every record after the failing ones was still checked
    assert any("2 record(s) could not be checked" in e and "KeyError" in e for e in f.errors), f.errors
    # never the value that caused it, neither in the finding nor in the log
    for p in sample[3:5]:
        for value in (p["nir"], p["email"], p["telephone"]):
            assert value not in " ".join(f.errors) and value not in caplog.text
    assert "KeyError" in caplog.text


def test_a_batch_that_raises_is_retried_record_by_record(scanner, people, monkeypatch, caplog):
    nir = people[0]["nir"]

    def boom(*args, **kwargs):
        raise ValueError(f"cannot parse {nir!r}")

    monkeypatch.setattr(match_mod, "nir_column", boom)
    header, rows = synth.transform(people[:50])
    f = scanner.scan_bytes(synth.csv_text(header, rows).encode(), "bug.csv")
    # the vectorised batch failed; each row went through the per-record path: nothing lost
    assert (f.verdict, f.matched_records, f.records_seen, f.complete) == ("repost", 50, 50, True)
    assert f.errors == ()
    assert "ValueError" in caplog.text and nir not in caplog.text


def test_an_error_while_reading_marks_the_finding_incomplete(scanner, people):
    class Broken:
        """A disk that fails after ``ok`` bytes."""

        def __init__(self, data, ok):
            self.data, self.pos, self.ok = data, 0, ok

        def read(self, n=-1):
            if self.pos >= self.ok:
                raise OSError(5, "Input/output error")
            n = min(n if n > 0 else 4096, 4096, len(self.data) - self.pos)
            self.pos += n
            return self.data[self.pos - n:self.pos]

    # the leaked rows first, then strangers: what was read before the failure is kept and counted
    header, rows = synth.transform(people + synth.generate(1500, seed=5))
    data = synth.csv_text(header, rows).encode()
    for ok in (0, len(data) // 3, len(data) * 9 // 10):
        f = scanner.scan_stream(Broken(data, ok), "disk")
        assert f.complete is False and f.errors, ok
    assert f.matched_records == 300 and f.verdict == "repost"
    assert f.complete is False and f.errors


def test_a_clean_scan_is_complete(scanner, people):
    header, rows = synth.transform(people[:20])
    f = scanner.scan_bytes(synth.csv_text(header, rows).encode(), "ok.csv")
    assert f.complete is True and f.errors == () and f.matched_records == 20
    assert f.to_json()["complete"] is True
    assert scanner.scan_bytes(b"", "empty").complete is True


def test_a_failure_on_the_parallel_path_never_ends_the_command(scanner, people, tmp_path, monkeypatch):
    from matchers import parallel

    monkeypatch.setattr(parallel, "MIN_BYTES", 1)
    header, rows = synth.transform(people)
    path = tmp_path / "big.csv"
    path.write_text(synth.csv_text(header, rows * 3, ","))

    def boom(*args, **kwargs):
        raise IndexError("index 7 is out of bounds")

    monkeypatch.setattr(parallel, "scan_ranges", boom)
    par = Scanner(scanner.indexes, KEY, workers=2)
    f = par.scan_path(path)
    assert (f.verdict, f.matched_records, f.complete) == ("repost", 300, True)


def test_records_a_parallel_range_could_not_check_make_the_finding_incomplete(scanner, people, tmp_path,
                                                                                monkeypatch):
    from matchers import parallel

    monkeypatch.setattr(parallel, "MIN_BYTES", 1)
    header, rows = synth.transform(people, columns=["nom", "prenom", "telephone"], seed=2)
    path = tmp_path / "big.csv"
    path.write_text(synth.csv_text(header, rows * 3, ","))
    _poison_records(monkeypatch, scanner, {3, 4})  # inherited by the forked range workers
    f = Scanner(scanner.indexes, KEY, workers=2).scan_path(path)
    assert f.complete is False
    assert any("6 record(s) could not be checked" in e for e in f.errors), f.errors
    assert f.matched_records == 298 and f.records_seen == 900

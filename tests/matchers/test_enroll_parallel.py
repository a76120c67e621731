"""Enrollment on several processes (matchers.enroll.enroll_file) gives the index one process gives,
and the column-at-a-time fields (matchers.enrollrows) are what records.from_mapped finds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dumpwatch.devkit import synth
from matchers import enrollrows
from matchers import schema as sch
from matchers.enroll import EnrollError, enroll_file, enroll_stream
from matchers.fingerprint import nir_int
from matchers.scan import Scanner

KEY = bytes(range(32))
SAME = ("strong_fp", "strong_rec", "strong_kind", "lab", "row", "gram_off")


@pytest.fixture(scope="module")
def people():
    return synth.generate(900, seed=9)


def leak_file(tmp_path, people, *, blank_every: int = 0, delimiter: str = ";", columns=None):
    header, rows = synth.transform(people, columns=columns)
    rows = [list(r) for r in rows]
    for i, r in enumerate(rows):  # some rows without any strong identifier: counted, skipped
        if i % 7 == 3:
            r[header.index("nir")] = r[header.index("email")] = r[header.index("telephone")] = ""
    text = synth.csv_text(header, rows, delimiter)
    if blank_every:
        lines = text.splitlines(keepends=True)
        text = "".join(line + ("\n" if i % blank_every == 5 else "") for i, line in enumerate(lines))
    path = tmp_path / "leak.csv"
    path.write_text(text, encoding="utf-8")
    return path


def one_process(path):
    return enroll_stream(io.BytesIO(path.read_bytes()), str(path), leak="l", key=KEY, lab_column="laboratoire")


@pytest.mark.parametrize("workers,blank_every", [(2, 0), (3, 40), (5, 0)])
def test_every_core_gives_the_index_of_one(tmp_path, people, workers, blank_every):
    path = leak_file(tmp_path, people, blank_every=blank_every)
    want, want_report = one_process(path)
    got, report = enroll_file(path, leak="l", key=KEY, lab_column="laboratoire", workers=workers,
                              min_bytes=1, stage=tmp_path / "index")
    assert got.staged is not None  # it did take the parallel path (built beside the index dir)
    for name in SAME:
        assert np.array_equal(np.asarray(got.arrays[name]), np.asarray(want.arrays[name])), name
    assert (report.records, report.skipped, report.columns, report.labs) == \
        (want_report.records, want_report.skipped, want_report.columns, want_report.labs)
    assert report.skipped > 0 and got.dup_fps == want.dup_fps
    meta = {k: v for k, v in got.meta.items() if k != "source_sha256"}
    assert meta == want.meta and len(got.meta["source_sha256"]) == 64
    # salted fingerprints differ (fresh salts) but verify the same way: a repost matches in full
    got.save(tmp_path / "index" / "l")
    header, rows = synth.transform(people[:300], columns=["nom", "prenom", "nir", "telephone"])
    data = synth.csv_text(header, rows, ",").encode()
    f_got = Scanner([got], KEY).scan_bytes(data, "r.csv")
    f_want = Scanner([want], KEY).scan_bytes(data, "r.csv")
    assert (f_got.verdict, f_got.matched_records) == (f_want.verdict, f_want.matched_records)
    assert f_got.matched_records > 200
    assert [p.name for p in (tmp_path / "index").iterdir()] == ["l"]


def test_a_file_it_cannot_split_is_enrolled_in_one_process(tmp_path, people):
    path = leak_file(tmp_path, people)
    path.write_text("export du 12/02/2021\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    want, _ = one_process(path)
    got, _ = enroll_file(path, leak="l", key=KEY, lab_column="laboratoire", workers=2, min_bytes=1)
    assert np.array_equal(np.asarray(got.arrays["row"]), np.asarray(want.arrays["row"]))
    assert len(got) == len(want) and len(got.meta["source_sha256"]) == 64


def test_a_missing_lab_column_is_refused_on_every_path(tmp_path, people):
    path = leak_file(tmp_path, people, columns=[c for c in synth.COLUMNS if c != "laboratoire"])
    for workers in (1, 2):
        with pytest.raises(EnrollError, match="no column named 'labo'"):
            enroll_file(path, leak="l", key=KEY, lab_column="labo", workers=workers, min_bytes=1,
                        stage=tmp_path / "index")
    assert not (tmp_path / "index").exists() or list((tmp_path / "index").iterdir()) == []


# -- the column path finds what from_mapped finds ---------------------------------------------------------

KINDS = ("nir", "email", "phone", "birth_date", "postcode", "last_name", "first_name", "full_name", "lab", "city")
cells = st.sampled_from([
    "", " ", "1850578006084", "185057800608446", "185057800608400", "1 85 05 78 006 084 46", "185052A006084",
    "jeanne.martin@example.org", " <P.Durand@Example.NET> ", "pas un mail", "06 12 34 56 78", "+33 (0)6 12 34 56 78",
    "0262123456", "12/05/1985", "1985-05-12", "31/02/1985", "29200", "2920", "MARTIN", "Le Gall", "Jeanne-Marie",
    "Jean Paul", "é", "x", "Lab A",
    # the column path's plain forms, and what only looks like them
    "0612345678", "06.12.34.56.78", "0012345678", "+612345678", "0000612345678", "06 12 34 56 7", "0 612345678",
    "001850578006084", "0185057800608446", "185057800608447", "2850578006084", "1850578006084 ",
    "\u0661\u0668\u0665\u0660\u0665\u0667\u0668\u0660\u0660\u0666\u0660\u0668\u0664", "JEANNE.MARTIN@EXAMPLE.ORG",
])


@settings(max_examples=400, deadline=None)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=6),
       rows=st.lists(st.lists(cells, min_size=0, max_size=7), min_size=1, max_size=12),
       name_parts=st.lists(st.integers(0, 6), max_size=3, unique=True))
def test_columns_give_what_from_mapped_gives(kinds, rows, name_parts):
    mapping = sch.Mapping(columns=dict(enumerate(kinds)), name_parts=tuple(name_parts))
    assert columns_path(rows, mapping, first_row=40) == [
        None if f is None else (nir_int(f[0]) if f[0] else 0, list(dict.fromkeys(f[1])),
                                [int(p) for p in dict.fromkeys(f[2])], *f[3:6],
                                f[6] or None, *f[7:], 41 + i)
        for i, f in enumerate(enrollrows._fields_per_row(rows, mapping))]


def columns_path(rows, mapping, first_row=0):
    """What the column path gives for each row, as ``_fields_per_row`` gives it (None: skipped): NIRs
    as integers, each record's emails and phones in order, a short row's lab "" as None."""
    got, kept = enrollrows._Columns(mapping).batch(rows, first_row)
    out = [None] * len(rows)
    if got is None:
        return out
    phones, emails = [[] for _ in kept], [[] for _ in kept]
    for r, v in zip(got.phone_rec.tolist(), got.phone.tolist()):
        phones[r].append(v)
    for r, e in zip(got.email_rec, got.email):
        emails[r].append(e)
    for j, i in enumerate(kept.tolist()):
        out[i] = (int(got.nir[j]), emails[j], phones[j], got.name[j], got.dob[j], got.postcode[j], got.lab[j] or None,
                  got.surname[j], got.first_name[j], int(got.row[j]))
    return out

"""The matchers end to end: enroll a synthetic leak, recognise its reposts in every shape, and
refuse to call anything else a repost."""

from __future__ import annotations

import collections
import io
import random

import pytest

from dumpwatch.devkit import synth
from matchers.enroll import EnrollError, enroll_stream
from matchers.columns import nir_column, phone_column
from matchers.scan import Scanner
from matchers import identifiers as ids
from matchers.fingerprint import nir_int

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def leak_people():
    return synth.generate(600, seed=2021)


@pytest.fixture(scope="module")
def scanner(leak_people):
    data = synth.csv_text(*synth.transform(leak_people)).encode()
    index, report = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    assert report.records == 600
    return Scanner([index], KEY)


def scan_text(scanner, text: str, name: str = "doc.txt", encoding: str = "utf-8"):
    return scanner.scan_bytes(text.encode(encoding), name)


def repost(people, fmt="csv", *, seed=1, encoding="utf-8", compress=None, tmp_path=None, **changes):
    import gzip
    import zipfile

    header, rows = synth.transform(people, seed=seed, **changes)
    data = synth.render(header, rows, fmt, seed=seed, delimiter=changes.pop("delimiter", ","),
                        with_header=True).encode(encoding)
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("lisez-moi.txt", "rien\n")
            zf.writestr("dump/2021/patients.txt", data)
        data = buf.getvalue()
    return data


SHAPES = [
    pytest.param(dict(fmt="csv"), id="csv"),
    pytest.param(dict(fmt="csv", shuffle_columns=True, english=True), id="csv-reordered-english"),
    pytest.param(dict(fmt="csv", spaced=True, intl=True), id="csv-reformatted-ids"),
    pytest.param(dict(fmt="csv", encoding="cp1252", english=True), id="csv-cp1252"),
    pytest.param(dict(fmt="csv", encoding="utf-8-sig"), id="csv-bom"),
    pytest.param(dict(fmt="json", english=True), id="json-array"),
    pytest.param(dict(fmt="jsonl"), id="json-lines"),
    pytest.param(dict(fmt="json-object", shuffle_columns=True), id="json-object-of-arrays"),
    pytest.param(dict(fmt="kv", spaced=True), id="key-value-paste"),
    pytest.param(dict(fmt="html", english=True), id="html-table"),
    pytest.param(dict(fmt="chatter", columns=["nom", "prenom", "nir", "telephone", "ville"]), id="rows-in-chatter"),
    pytest.param(dict(fmt="csv", compress="gzip"), id="gzip"),
    pytest.param(dict(fmt="json", compress="zip"), id="zip-nested"),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_repost_recognised_in_every_shape(scanner, leak_people, shape):
    sample = random.Random(4).sample(leak_people, 40 if shape.get("fmt") != "chatter" else 12)
    finding = scanner.scan_bytes(repost(sample, **shape), "repost")
    assert finding.verdict == "repost", finding
    assert finding.leak == "labos"
    assert finding.matched_records == len(sample)
    assert finding.errors == ()


def test_headerless_other_delimiters(scanner, leak_people):
    header, rows = synth.transform(leak_people[:50], columns=["nir", "nom", "prenom", "email", "telephone"])
    for delim in ("|", "\t", ";"):
        f = scanner.scan_bytes(synth.csv_text(None, rows, delim).encode(), "x")
        assert f.errors == ()
        assert (f.verdict, f.matched_records) == ("repost", 50), delim


def test_cut_down_and_mistyped_rows_still_count(scanner, leak_people):
    people = leak_people[100:200]
    # no NIR, no email: phone + name (mistyped in half the rows) + birth date
    header, rows = synth.transform(people, columns=["nom", "prenom", "telephone", "date_naissance"], typos=0.5, seed=3)
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "cut.csv")
    assert f.errors == ()
    assert f.verdict == "repost" and f.matched_records == 100
    # no strong identifier at all: name + birth date together still find the record
    header, rows = synth.transform(people, columns=["prenom", "nom", "date_naissance", "ville"], upper_names=True)
    f = scanner.scan_bytes(synth.csv_text(header, rows, ";").encode(), "namedob.csv")
    assert f.errors == ()
    assert f.matched_records == 100


def test_single_field_coincidence_is_not_a_match(scanner, leak_people, strangers):
    # Each row carries the NIR of a leaked person but the name, phone and email of a stranger.
    rows = [[p["nir"], s["nom"], s["prenom"], s["telephone"], s["email"]]
            for p, s in zip(leak_people[:100], strangers[:100])]
    f = scanner.scan_bytes(synth.csv_text(["nir", "nom", "prenom", "tel", "email"], rows).encode(), "mix.csv")
    assert f.errors == ()
    assert f.records_seen == 100
    assert f.matched_records == 0 and f.verdict != "repost"


def test_email_that_spells_the_name_is_not_a_second_proof(scanner, leak_people):
    rows = [[p["prenom"], p["nom"], p["email"]] for p in leak_people[:30]]
    f = scanner.scan_bytes(synth.csv_text(["prenom", "nom", "email"], rows).encode(), "combo.csv")
    assert f.errors == ()
    assert f.records_seen == 30
    assert f.matched_records == 0
    rows = [[p["prenom"], p["nom"], p["email"], p["code_postal"]] for p in leak_people[:30]]
    f = scanner.scan_bytes(synth.csv_text(["prenom", "nom", "email", "cp"], rows).encode(), "combo2.csv")
    assert f.errors == ()
    assert f.matched_records == 30


def test_counts_never_exceed_the_input_and_labs_are_attributed(scanner, leak_people):
    people = leak_people[:60]
    header, rows = synth.transform(people)
    f = scanner.scan_bytes(synth.csv_text(header, rows + rows + rows[:10]).encode(), "dup.csv")
    assert f.errors == ()
    assert f.matched_records == 60
    assert f.labs == dict(collections.Counter(p["laboratoire"] for p in people))
    assert sum(f.labs.values()) == 60


def test_threshold(leak_people, scanner):
    header, rows = synth.transform(leak_people[:2])
    f = scanner.scan_bytes(synth.csv_text(header, rows).encode(), "two.csv")
    assert f.errors == ()
    assert f.matched_records == 2 and f.verdict != "repost"
    strict = Scanner(scanner.indexes, KEY, repost_threshold=2)
    f = strict.scan_bytes(synth.csv_text(header, rows).encode(), "two.csv")
    assert f.errors == () and f.verdict == "repost"


# -- negatives -------------------------------------------------------------------------------------

def test_strangers_with_valid_nirs_are_a_schema_match_not_a_repost(scanner, strangers):
    f = scanner.scan_bytes(synth.csv_text(*synth.transform(strangers)).encode(), "other-lab.csv")
    assert f.errors == ()
    assert f.verdict == "schema-match" and f.matched_records == 0
    assert f.schema_score > 0.8 and "nir" in f.categories and "health" in f.categories


def test_unrelated_csv_is_none(scanner):
    rows = [[f"SKU{i:05d}", f"Widget {i}", f"{i * 1.5:.2f}", f"2021-02-{i % 28 + 1:02d}"] for i in range(500)]
    f = scanner.scan_bytes(synth.csv_text(["sku", "name", "price", "date"], rows).encode(), "catalog.csv")
    assert f.errors == ()
    assert f.verdict == "none" and f.matched_records == 0


def test_logs_full_of_long_numbers_are_none(scanner):
    rng = random.Random(1)
    lines = [f"2021-02-24 12:{i % 60:02d}:00 INFO req={rng.randint(10**14, 10**15 - 1)} "
             f"trace={rng.randint(10**12, 10**13 - 1)} bytes={rng.randint(1, 10**9)}" for i in range(2000)]
    f = scan_text(scanner, "\n".join(lines), "app.log")
    assert f.errors == ()
    assert f.verdict == "none" and f.matched_records == 0


def test_health_chatter_without_records_is_none(scanner):
    text = ("Bonjour, ma femme est enceinte et sous Lévothyrox, le labo a perdu ses résultats de sérologie VIH.\n"
            "Quelqu'un sait si le traitement anticoagulant pose problème ? Merci.\n") * 30
    f = scan_text(scanner, text, "forum.txt")
    assert f.errors == ()
    assert f.verdict == "none"
    assert "health" in f.categories


def test_garbage_inputs_never_crash(scanner):
    rng = random.Random(8)
    junk = "".join(rng.choice("0123456789 +-.@/:;,\n\tAbcZ\u00e92A") for _ in range(20000)).encode()
    cells = [b"", b"1", b"+33", b"@", b"2A", b"0" * 15, b"x;y;z;w;v", b"1 85 05", b"06 12"]
    ragged = b"nir;tel;email;nom\n" + b"\n".join(b";".join(rng.choice(cells) for _ in range(4)) for _ in range(300))
    inputs = (b"", b"\x00" * 1000, bytes(range(256)) * 100, b"\x1f\x8b\x08truncated", b"PK\x03\x04broken",
              # inputs that reach the matchers (tables of text, rows, objects), not only the extractors
              bytes(range(1, 256)) * 100, junk, ragged,
              b'[{"nir": null, "tel": [1, 2], "email": {"a": 1}}, 3, "x", [], {"nom": 1.5}]',
              b'{"a": {"b": {"c": [{"nir": "1850578006084", "x": true}]}}}',
              b"nir: \nemail: @@@\ntel: +\n\nnom: x\n",
              b"<table><tr><td>nir</td><td>tel</td></tr><tr><td>1 85</td><td></td></tr><tr></tr></table>")
    for data in inputs:
        f = scanner.scan_bytes(data, "bad.bin")
        # A crash also gives "none": the errors must not hold an internal error (a read or format
        # error of a broken archive is a fair answer).
        assert not [e for e in f.errors if "internal error" in e], (data[:16], f.errors)
        assert f.verdict == "none"


# -- vectorised columns agree with the scalar normalisers ----------------------------------------------

def test_vectorised_nir_column_agrees_with_nir_parts(leak_people):
    rng = random.Random(3)
    cells = []
    for p in leak_people[:300]:
        cells += [p["nir"], synth.spaced_nir(p["nir"]), p["nir"][:13], p["nir"][:14] + "0", "",
                  f"{p['nir'][:13]}{rng.randint(0, 99):02d}", "n/a", p["nir"].lower()]
    body, keyed = nir_column(cells)
    for cell, b, k in zip(cells, body.tolist(), keyed.tolist()):
        parts = ids.nir_parts(cell)
        assert b == (nir_int(parts[0]) if parts else 0), cell
        assert k == bool(parts and parts[1]), cell


def test_vectorised_phone_column_agrees_with_phone_nsn(leak_people):
    cells = []
    for p in leak_people[:300]:
        t = p["telephone"]
        cells += [t, synth.intl_phone(t) if not t.startswith(("0262", "0590", "0596", "0594", "0269")) else t,
                  "0033" + t.replace(" ", "")[1:], "+33 (0)" + t.replace(" ", "")[1:], "", "12", "n/a"]
    nsn, _ = phone_column(cells)
    for cell, n in zip(cells, nsn.tolist()):
        expected = ids.phone_nsn(cell)
        assert n == (int(expected) if expected else 0), cell


def test_enroll_refuses_a_file_without_identifiers():
    data = synth.csv_text(["a", "b"], [["x", "y"]] * 10).encode()
    with pytest.raises(EnrollError):
        enroll_stream(io.BytesIO(data), "nothing.csv", leak="x", key=KEY)


# -- one large file on several cores -------------------------------------------------------------------

@pytest.fixture
def small_parallel_threshold(monkeypatch):
    from matchers import parallel

    monkeypatch.setattr(parallel, "MIN_BYTES", 1)
    return parallel


def test_parallel_scan_gives_the_same_finding(scanner, leak_people, tmp_path, small_parallel_threshold):
    header, rows = synth.transform(leak_people, shuffle_columns=True, english=True, spaced=True, seed=5)
    path = tmp_path / "big.csv"
    path.write_text(synth.csv_text(header, rows + [["x"] * 3] * 50, ";"), encoding="cp1252")
    one = scanner.scan_path(path)
    two = Scanner(scanner.indexes, KEY, workers=3)
    assert small_parallel_threshold.plan(path, two.limits, 3) is not None
    f = two.scan_path(path)
    assert one.errors == ()
    assert f == one
    assert f.matched_records == 600 and f.records_seen == 650


def test_parallel_scan_falls_back_when_it_cannot_split(scanner, leak_people, tmp_path, small_parallel_threshold):
    import gzip

    header, rows = synth.transform(leak_people[:100])
    rows[3][1] = "multi\nline"  # a quoted field holding a line break: ranges cannot be cut safely
    text = synth.csv_text(header, rows)
    plain, packed = tmp_path / "q.csv", tmp_path / "q.csv.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    two = Scanner(scanner.indexes, KEY, workers=2)
    for path in (plain, packed):
        assert small_parallel_threshold.plan(path, two.limits, 2) is None
        f = two.scan_path(path)
        assert f.errors == ()
        assert f.matched_records == 100


def test_several_leaks_each_recognised(scanner, leak_people):
    others = synth.generate(200, seed=555)
    data = synth.csv_text(*synth.transform(others)).encode()
    second, _ = enroll_stream(io.BytesIO(data), "b.csv", leak="autre", key=KEY, lab_column="laboratoire")
    both = Scanner(scanner.indexes + [second], KEY)
    f = both.scan_bytes(repost(others[:30], fmt="jsonl"), "b-repost")
    assert f.errors == ()
    assert (f.verdict, f.leak, f.matched_records) == ("repost", "autre", 30)
    mixed = repost(others[:10] + leak_people[:25], fmt="csv", shuffle_columns=True)
    f = both.scan_bytes(mixed, "mixed")
    assert f.errors == ()
    assert f.leak == "labos" and f.leaks == {"labos": 25, "autre": 10}


def test_flattened_json_keys_are_mapped_by_their_last_part():
    from matchers import schema as sch

    assert sch.header_kind("patient.identite.nom") == "last_name"
    assert sch.header_kind("contact.mail") == "email"
    assert sch.header_kind("data/patient/n_secu") == "nir"
    assert sch.header_kind("meta.version") is None


# -- the name as second proof (issue 8, case 1) ----------------------------------------------------------

@pytest.mark.parametrize("columns", [["nom", "prenom", "nir"], ["nom", "prenom", "telephone"],
                                     ["prenom", "nom", "nir", "ville"]])
def test_the_name_is_a_second_proof_next_to_one_strong_identifier(scanner, leak_people, columns):
    people = random.Random(8).sample(leak_people, 80)
    header, rows = synth.transform(people, columns=columns, seed=5)
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "name-proof.csv")
    assert f.errors == ()
    assert (f.verdict, f.matched_records) == ("repost", 80)


def test_a_stranger_with_a_leaked_phone_and_another_name_is_not_confirmed(scanner, leak_people, strangers):
    rows = [[s["nom"], s["prenom"], p["telephone"]] for p, s in zip(leak_people[:60], strangers[:60])]
    f = scanner.scan_bytes(synth.csv_text(["nom", "prenom", "telephone"], rows).encode(), "other.csv")
    assert f.errors == ()
    assert f.matched_records == 0 and f.verdict != "repost"


# -- a name given as one part (issue 8) ------------------------------------------------------------------

@pytest.mark.parametrize("columns", [["nom", "telephone"], ["prenom", "nir"], ["nom", "nir", "ville"]])
def test_a_surname_or_first_name_alone_is_a_name_proof(scanner, leak_people, columns):
    people = random.Random(8).sample(leak_people, 80)
    header, rows = synth.transform(people, columns=columns, seed=5)
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "name-proof.csv")
    assert f.errors == ()
    assert (f.verdict, f.matched_records) == ("repost", 80)


def test_surname_nir_combo_lines_are_confirmed(scanner, leak_people):
    f = scan_text(scanner, "\n".join(f"{p['nom']}:{p['nir']}" for p in leak_people[:50]), "combo.txt")
    assert f.errors == ()
    assert (f.verdict, f.matched_records) == ("repost", 50)

"""Evidence weighed by how often it happens by chance (issue 8, case 7): a large file of strangers
is never a repost, however many of its phones collide with the leak's; the proofs a small copy
gives are still enough."""

from __future__ import annotations

import io
import json
import math
import random
import shutil

import numpy as np
import pytest

from dumpwatch.devkit import synth
from matchers import evidence as ev
from matchers.enroll import enroll_stream
from matchers.errors import IndexFileError
from matchers.index import LeakIndex
from matchers.scan import Scanner

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def leak(people):
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return index


@pytest.fixture(scope="module")
def scanner(leak):
    return Scanner([leak], KEY)


@pytest.fixture(scope="module")
def customers(people, strangers):
    """150,000 customers of another breach with the commonest French names (and names of the
    population the leak was drawn from) and random mobiles; 5 % of the rows carry one of the
    leak's phones (7,500 collisions: 10^8 mobiles make them rarer, but a real 10-million-row
    breach gives ~25,000 against the 491,840-row leak)."""
    return list(synth.customers(150_000, seed=1, phones=[p["telephone"] for p in people], collide=0.05,
                                names=[(s["nom"], s["prenom"]) for s in strangers]))


# -- a large file of strangers ---------------------------------------------------------------------------

@pytest.mark.parametrize("columns", [synth.CUSTOMER_COLUMNS, ("nom", "telephone", "ville"),
                                     ("prenom", "telephone", "email")],
                         ids=["full-names", "surname-only", "first-name-only"])
def test_strangers_at_scale_are_never_a_repost(scanner, customers, columns):
    """Before the evidence model: 2, 9 and 4 "confirmed" records, two inputs called a repost."""
    keep = [synth.CUSTOMER_COLUMNS.index(c) for c in columns]
    data = synth.csv_text(list(columns), ([r[i] for i in keep] for r in customers), ",").encode()
    f = scanner.scan_bytes(data, "customers.csv")
    assert f.errors == ()
    assert f.records_seen == 150_000
    assert f.identifiers["phone"] == 150_000
    assert (f.matched_records, f.verdict) == (0, "none")


def test_strangers_that_share_leaked_phones_and_surnames_are_not_confirmed_in_bulk(scanner, people):
    """The worst case for a name proof: each collided row also carries a surname of the leak
    (one leaked person in ~20 has a common one); confirmed only where it cannot be chance."""
    rng = random.Random(3)
    rows = [[rng.choice(synth.COMMON_SURNAMES), f"0{rng.choice('67')}{rng.randrange(10**8):08d}"]
            for _ in range(20_000)]
    for p in people:  # every leaked phone, next to that person's own surname or another's
        rows.append([rng.choice([p["nom"], rng.choice(synth.COMMON_SURNAMES)]), p["telephone"]])
    rng.shuffle(rows)
    f = scanner.scan_bytes(synth.csv_text(["nom", "telephone"], rows, ",").encode(), "mixed.csv")
    assert f.errors == ()
    # 600 phone candidates: a surname (p ≤ 0.5 %) would give ~3 chance confirmations: none is made.
    assert (f.matched_records, f.verdict) == (0, "none")


# -- the proofs a copy gives are still enough --------------------------------------------------------------

@pytest.mark.parametrize("columns", [["nom", "nir"], ["prenom", "nir"], ["nir", "date_naissance"],
                                     ["nom", "prenom", "telephone"], ["email", "code_postal"],
                                     ["nom", "prenom", "date_naissance", "code_postal"],
                                     ["telephone", "date_naissance"]])
def test_two_independent_fields_confirm_a_small_copy(scanner, people, columns):
    sample = random.Random(11).sample(people, 60)
    header, rows = synth.transform(sample, columns=columns, seed=2)
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "copy.csv")
    assert f.errors == ()
    assert (f.verdict, f.matched_records) == ("repost", 60)


@pytest.mark.parametrize("columns", [["nom", "telephone"], ["prenom", "telephone"], ["nom", "prenom", "nir"]])
def test_a_wrong_name_next_to_a_strong_identifier_is_not_a_proof(scanner, people, columns):
    rng = random.Random(5)
    rows = []
    for p in people[:80]:
        q = dict(p, nom=rng.choice(synth.COMMON_SURNAMES) + "x", prenom=rng.choice(synth.COMMON_FIRST_NAMES) + "x")
        rows.append([q[c] for c in columns])
    f = scanner.scan_bytes(synth.csv_text(columns, rows, ",").encode(), "wrong-name.csv")
    assert f.errors == ()
    assert f.matched_records == 0 and f.verdict != "repost"


def test_nir_and_surname_stay_confirmed_in_a_large_input(scanner, people):
    """NIR + surname does not weaken with the input's size: a NIR with its key is never shared."""
    rng = random.Random(2)
    rows = [[rng.choice(synth.COMMON_SURNAMES), synth.make_nir(rng, "M", 1970, 5)] for _ in range(30_000)]
    rows += [[p["nom"], p["nir"]] for p in people[:100]]
    rng.shuffle(rows)
    f = scanner.scan_bytes(synth.csv_text(["nom", "nir"], rows, ",").encode(), "nirs.csv")
    assert (f.verdict, f.matched_records, f.errors) == ("repost", 100, ())


def test_a_copy_of_names_and_phones_is_confirmed_in_full(scanner, people):
    """A contact list cut from the leak (name and phone only, as phishing lists are): every row
    is a record of the leak, and nothing in the input looks like chance: all confirmed."""
    for columns in (["nom", "prenom", "telephone"], ["nom", "telephone"], ["prenom", "telephone"]):
        header, rows = synth.transform(people, columns=columns, seed=4)
        f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "contacts.csv")
        assert f.errors == ()
        assert (f.verdict, f.matched_records) == ("repost", len(people)), columns


def test_phone_and_surname_are_too_weak_among_many_chance_phone_hits(scanner, people):
    """The same 200 rows of phone + surname next to 400 leaked phones that no name supports
    (recycled numbers, strangers): those chance hits make a surname too weak (400 × 0.5 % = 2
    chance confirmations expected); the full name is still strong enough (400 × 10⁻⁴)."""
    rng = random.Random(6)
    noise = [[rng.choice(synth.COMMON_SURNAMES) + "x", rng.choice(synth.COMMON_FIRST_NAMES) + "x", p["telephone"]]
             for p in people[200:600]]
    for columns, want in ((["nom", "telephone"], 0), (["nom", "prenom", "telephone"], 200)):
        header, rows = synth.transform(people[:200], columns=columns)
        rows += [r[:len(columns) - 1] + r[-1:] for r in noise]
        rng.shuffle(rows)
        f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "mixed.csv")
        assert f.errors == ()
        assert f.matched_records == want, columns
        assert (f.verdict == "repost") == bool(want)


def test_parallel_ranges_merge_their_evidence(scanner, people, tmp_path, monkeypatch):
    from matchers import parallel

    monkeypatch.setattr(parallel, "MIN_BYTES", 1)
    header, rows = synth.transform(people[:80], columns=["nom", "telephone", "ville"], seed=4)
    path = tmp_path / "p.csv"
    path.write_text(synth.csv_text(header, rows, ","))
    two = Scanner(scanner.indexes, KEY, workers=2)
    assert parallel.plan(path, two.limits, 2) is not None
    f = two.scan_path(path)
    assert f == scanner.scan_path(path)
    assert (f.verdict, f.matched_records) == ("repost", 80)


# -- the model -----------------------------------------------------------------------------------------

def test_poisson_tail():
    assert ev.poisson_tail(0, 3.0) == 1.0
    assert ev.poisson_tail(1, 0.5) == pytest.approx(1 - math.exp(-0.5))
    assert ev.poisson_tail(3, 0.5) == pytest.approx(1 - math.exp(-0.5) * (1 + 0.5 + 0.125))
    assert ev.poisson_tail(2, 1e-9) == pytest.approx(0.5e-18, rel=1e-6)
    assert ev.poisson_tail(5, 20.0) > 0.99
    assert ev.poisson_tail(3, 0.0) == 0.0


def test_chance_of_proofs():
    assert ev.chance({"phone": 1, "surname": 1}, "phone") == ev.CHANCE["surname"]
    assert ev.chance({"phone": 1, "name~": 12}, "phone") == pytest.approx(12 * ev.CHANCE["name~"])
    assert ev.chance({"name": 1, "dob": 1, "postcode": 2}, "namedob") == pytest.approx(2 * ev.CHANCE["postcode"])
    assert ev.chance({"nir": 1, "first_name": 40}, "nir") == 1.0  # tried too often: no proof at all
    assert ev.anchors_of({"phone", "email"}) == ["email", "phone"]
    assert ev.anchors_of({"name", "dob"}) == ["namedob"]


def test_a_larger_input_needs_stronger_proofs():
    enrolled = {"nir": 600, "email": 600, "phone": 600, "records": 600}
    e = ev.Evidence(3)
    e.confirm(0, ["phone"], {"phone": 1, "surname": 1})
    e.confirm(1, ["phone"], {"phone": 1, "name": 1})
    e.confirm(2, ["nir"], {"nir": 1, "surname": 1})
    e.candidates["phone"] = 80
    accepted, lam = e.decide(enrolled, {"phone": 80, "nir": 10})
    assert accepted.tolist() == [0, 1, 2]
    assert lam == pytest.approx(80 * (ev.CHANCE["surname"] + ev.CHANCE["name"]), rel=1e-3)
    e.candidates["phone"] = 1_000
    accepted, lam = e.decide(enrolled, {"phone": 1_000, "nir": 10})
    assert accepted.tolist() == [1, 2]
    # millions of phones: the uniform model alone (phones × enrolled / 10^8) outweighs a full name
    accepted, _ = e.decide(enrolled, {"phone": 10**9, "nir": 10**7})
    assert accepted.tolist() == [2]


def test_merge_keeps_the_strongest_proof():
    a, b = ev.Evidence(2), ev.Evidence(2)
    a.confirm(0, ["phone"], {"phone": 1, "name~": 1})
    b.confirm(0, ["phone"], {"phone": 1, "name": 1})
    b.candidates["phone"] = 5
    a.merge(b)
    recs, q = a.pairs("phone")
    assert recs.tolist() == [0] and q[0] == pytest.approx(ev.CHANCE["name"])  # record 1: never touched
    assert a.candidates["phone"] == 5


def test_confirmed_records_within_chance_are_not_a_repost(scanner, people, monkeypatch):
    """Confirmed ≥ threshold is not enough: λ (chance confirmations expected) must make them unlikely."""
    monkeypatch.setattr(ev.Evidence, "decide", lambda self, enrolled, ids: (np.arange(4), 2.0))
    header, rows = synth.transform(people[:20], columns=["nom", "telephone"])
    f = scanner.scan_bytes(synth.csv_text(header, rows, ",").encode(), "x.csv")
    assert f.matched_records == 4 and f.verdict == "none"  # P(Poisson(2) ≥ 4) = 0.14


# -- an index enrolled before surname fingerprints ----------------------------------------------------------

def test_an_old_index_is_refused_with_enroll_again(leak, tmp_path):
    """Format 2 had no part fingerprints, format 3 other salted ones: both must be enrolled again."""
    leak.save(tmp_path / "labos")
    for n in ("surname", "first_name"):
        (tmp_path / "labos" / f"{n}.npy").unlink()
    meta = json.loads((tmp_path / "labos" / "meta.json").read_text())
    (tmp_path / "labos" / "meta.json").write_text(json.dumps({**meta, "version": 2}))
    with pytest.raises(IndexFileError, match="enroll the leak again"):
        LeakIndex.load(tmp_path / "labos")
    shutil.rmtree(tmp_path / "labos")


def test_the_part_fingerprints_are_salted_per_record(leak):
    """Equal surnames in two records give unrelated fingerprints: the index reveals no frequencies."""
    fps = np.asarray(leak.surname_fp)
    assert np.count_nonzero(fps) == len(leak)
    assert len(np.unique(fps)) == len(leak)
    assert len(np.unique(np.asarray(leak.first_name_fp))) == len(leak)


def test_a_headerless_name_column_is_a_name_proof(scanner, people):
    rows = [[p["nom"], p["nir"]] for p in people[:40]] + [[p["prenom"], p["nir"]] for p in people[40:80]]
    f = scanner.scan_bytes(synth.csv_text(None, rows, ";").encode(), "headerless.csv")
    assert (f.verdict, f.matched_records, f.errors) == ("repost", 80, ())
    rows = [[p["nom"] + "x", p["nir"]] for p in people[:40]]  # a name that is not theirs
    f = scanner.scan_bytes(synth.csv_text(None, rows, ";").encode(), "headerless-wrong.csv")
    assert f.matched_records == 0

"""Categories of data exposed come from the content, not only from the headers (issue 8, case 6):
health data (GDPR Art. 9) hidden behind columns named ``diag``/``med``/``x`` is still health."""

from __future__ import annotations

import io
import random

import pytest

from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.scan import Scanner

KEY = bytes(range(32))
TERMS = ["VIH", "cancer du sein", "Truvada", "diabète de type 2", "grossesse 12 SA", "Lévothyrox 50"]


@pytest.fixture(scope="module")
def people():
    return synth.generate(200, seed=31)


@pytest.fixture(scope="module")
def scanner(people):
    data = synth.csv_text(*synth.transform(people)).encode()
    index, _ = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY, lab_column="laboratoire")
    return Scanner([index], KEY)


def _rows(people, every: int):
    rng = random.Random(7)
    return [[p["nom"], p["prenom"], p["nir"], p["telephone"],
             rng.choice(TERMS) if i % every == 0 else "", "RAS"] for i, p in enumerate(people)]


@pytest.mark.parametrize("header", [["nom", "prenom", "nir", "tel", "diag", "med"],
                                    ["c1", "c2", "c3", "c4", "c5", "c6"], None])
@pytest.mark.parametrize("every", [1, 37])
def test_health_terms_in_any_column_make_the_finding_health(scanner, people, header, every):
    f = scanner.scan_bytes(synth.csv_text(header, _rows(people, every), ";").encode(), "diag.csv")
    assert f.errors == ()
    assert f.matched_records == 200
    assert "health" in f.categories, f.categories


@pytest.mark.parametrize("fmt", ["jsonl", "kv", "html"])
def test_health_terms_in_values_of_other_shapes(scanner, people, fmt):
    header = ["nom", "prenom", "nir", "tel", "diag", "x"]
    data = synth.render(header, _rows(people[:40], 5), fmt, seed=1, delimiter=",", with_header=True)
    f = scanner.scan_bytes(data.encode(), "doc")
    assert f.matched_records == 40 and "health" in f.categories, f


def test_no_health_terms_no_health_category(scanner, people):
    rows = [[p["nom"], p["prenom"], p["nir"], p["telephone"], "livré", "colis"] for p in people]
    f = scanner.scan_bytes(synth.csv_text(["nom", "prenom", "nir", "tel", "statut", "x"], rows).encode(), "shop.csv")
    assert f.matched_records == 200 and "health" not in f.categories

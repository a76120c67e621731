"""Records as normalised fields (matchers.records): what free text and mapped rows yield, exactly.

Every value here is synthetic. The expected :class:`Fields` are written out in full, so a field
that goes missing (an email dropped from a line, a last name dropped from the name key, a birth
date taken from the wrong column) fails a test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from dumpwatch.devkit import synth
from matchers import identifiers as ids
from matchers.records import Fields, add_nir, from_mapped, from_text
from matchers.schema import Mapping

BODY = "1850578006084"
KEY = synth.nir_key(BODY)  # 91
NIR = f"{BODY}{KEY:02d}"
SPACED = synth.spaced_nir(NIR)  # "1 85 05 78 006 084 91"
BODY_2A = "291122A123456"
NIR_2A = f"{BODY_2A}{ids.nir_check_key(BODY_2A):02d}"
BODY_2B = "185052B006084"
NIR_2B = f"{BODY_2B}{ids.nir_check_key(BODY_2B):02d}"


def test_the_synthetic_nirs_are_valid():
    assert SPACED == "1 85 05 78 006 084 91"
    for nir in (NIR, NIR_2A, NIR_2B):
        assert ids.is_valid_nir(nir), nir


# -- Fields ----------------------------------------------------------------------------------------

def test_defaults_are_empty_and_not_shared():
    a, b = Fields(), Fields()
    assert (a.nirs, a.emails, a.phones, a.names, a.name_tokens, a.dobs, a.postcodes) == ([],) * 7
    assert (a.nir_keyed, a.nir_shaped, a.blood, a.health) == (0, 0, 0, False)
    a.nirs.append(BODY)
    assert b.nirs == []
    assert not a.has_strong() or a.nirs  # sanity


@pytest.mark.parametrize("fields,strong", [
    (Fields(), False),
    (Fields(nirs=[BODY]), True),
    (Fields(emails=["a@b.fr"]), True),
    (Fields(phones=["612345678"]), True),
    (Fields(names=["jeanne martin"], dobs=["19850512"], postcodes=["29200"], blood=1, health=True), False),
])
def test_has_strong_means_a_nir_an_email_or_a_phone(fields, strong):
    assert fields.has_strong() is strong


def test_merge_adds_the_neighbours_fields_once_and_leaves_both_untouched():
    a = Fields(nirs=[BODY], nir_keyed=1, nir_shaped=1, emails=["a@b.fr"], names=["jeanne martin"],
               name_tokens=["jeanne", "martin"], dobs=["19850512"], blood=1, health=True)
    b = Fields(nirs=[BODY, BODY_2A], nir_keyed=2, nir_shaped=2, emails=["a@b.fr", "c@d.fr"],
               phones=["612345678"], names=["louise martin", "jeanne martin"], name_tokens=["louise"],
               dobs=["19850512", "19900101"], postcodes=["29200"], blood=3)
    m = a.merge(b)
    assert m == Fields(nirs=[BODY, BODY_2A], nir_keyed=1, nir_shaped=1, emails=["a@b.fr", "c@d.fr"],
                       phones=["612345678"], names=["jeanne martin", "louise martin"],
                       name_tokens=["jeanne", "martin"], dobs=["19850512", "19900101"], postcodes=["29200"],
                       blood=1, health=True)
    assert a == Fields(nirs=[BODY], nir_keyed=1, nir_shaped=1, emails=["a@b.fr"], names=["jeanne martin"],
                       name_tokens=["jeanne", "martin"], dobs=["19850512"], blood=1, health=True)
    assert b.nirs == [BODY, BODY_2A] and b.emails == ["a@b.fr", "c@d.fr"]
    m.name_tokens.append("x")
    assert a.name_tokens == ["jeanne", "martin"]


def test_merge_with_an_empty_record():
    a = Fields(phones=["612345678"], postcodes=["29200"])
    assert a.merge(Fields()) == a
    assert Fields().merge(a) == Fields(phones=["612345678"], postcodes=["29200"])


# -- add_nir ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,nirs,keyed,shaped", [
    (NIR, [BODY], 1, 1),
    (SPACED, [BODY], 1, 1),
    (BODY, [BODY], 0, 0),
    (NIR_2A, [BODY_2A], 1, 1),
    (NIR_2B.lower(), [BODY_2B], 1, 1),
    (f"{BODY}{(KEY + 1) % 100:02d}", [], 0, 1),  # wrong key: not this person's NIR, still NIR-shaped
    (NIR[:14], [], 0, 0),
    ("12345", [], 0, 0),
])
def test_add_nir(value, nirs, keyed, shaped):
    f = Fields()
    add_nir(f, value)
    assert (f.nirs, f.nir_keyed, f.nir_shaped) == (nirs, keyed, shaped)


def test_add_nir_accumulates():
    f = Fields()
    for v in (NIR, NIR_2A, BODY, "bad-value-0000000"):
        add_nir(f, v)
    assert (f.nirs, f.nir_keyed, f.nir_shaped) == ([BODY, BODY_2A, BODY], 2, 3)


# -- free text -------------------------------------------------------------------------------------

def test_a_line_with_every_field():
    line = (f"Jeanne MARTIN, née le 12/05/1985, {SPACED}, tel +33 6 12 34 56 78, "
            "jeanne.martin@example.org, 29200 Brest")
    f = from_text(line)
    assert f == Fields(
        nirs=[BODY], nir_keyed=1, nir_shaped=1, emails=["jeanne.martin@example.org"], phones=["612345678"],
        names=["jeanne martin", "martin nee", "le nee", "le tel", "brest tel",
               "jeanne martin nee", "le martin nee", "le nee tel", "brest le tel"],
        name_tokens=["jeanne", "martin"], dobs=["19850512"], postcodes=["29200"])


@pytest.mark.parametrize("text,body,keyed", [
    (f"nir {NIR}", BODY, 1),
    (f"nir {SPACED}", BODY, 1),
    ("nir 1.85.05.78.006.084.91", BODY, 1),
    ("nir 1-85-05-78-006-084-91", BODY, 1),
    ("nir 1 85 05 78 006 084", BODY, 0),
    (f"nir {NIR_2A}", BODY_2A, 1),
    ("nir 2 91 12 2A 123 456", BODY_2A, 0),
    (f"nir {NIR_2B[:5]} {NIR_2B[5:7].lower()} {NIR_2B[7:]}", BODY_2B, 1),
])
def test_nirs_in_text(text, body, keyed):
    f = from_text(text)
    assert f.nirs == [body] and f.nir_keyed == keyed
    assert f.names == [] and f.name_tokens == ["nir"]


def test_two_nirs_in_one_line_and_a_wrong_key():
    f = from_text(f"{NIR} puis {NIR_2A} puis {BODY}{(KEY + 1) % 100:02d}")
    assert f.nirs == [BODY, BODY_2A] and f.nir_keyed == 2 and f.nir_shaped == 3


@pytest.mark.parametrize("text,phones", [
    ("tel 06 12 34 56 78", ["612345678"]),
    ("tel 06.12.34.56.78", ["612345678"]),
    ("tel 06-12-34-56-78", ["612345678"]),
    ("tel 0612345678", ["612345678"]),
    ("tel +33 6 12 34 56 78", ["612345678"]),
    ("tel +33612345678", ["612345678"]),
    ("tel +33 (0)7 12 34 56 78", ["712345678"]),
    ("tel 0033 6 12 34 56 78", ["612345678"]),
    ("tel 0033612345678", ["612345678"]),
    ("tel +262 692 12 34 56", ["692123456"]),
    ("tel 0590 12 34 56", ["590123456"]),
    ("tel 06 12 34 56 78 ou 06.12.34.56.78 ou 01 23 45 67 89", ["612345678", "123456789"]),
])
def test_phones_in_text(text, phones):
    f = from_text(text)
    assert f.phones == phones
    assert f.emails == []


@pytest.mark.parametrize("text,emails", [
    ("mail jeanne.martin@example.org", ["jeanne.martin@example.org"]),
    ("mail Jeanne.Martin@Example.ORG", ["jeanne.martin@example.org"]),
    ("<j.dupont+pro@mail.example.fr>", ["j.dupont+pro@mail.example.fr"]),
    ("a@b.fr, c@d.fr; A@B.FR", ["a@b.fr", "c@d.fr"]),
])
def test_emails_in_text(text, emails):
    assert from_text(text).emails == emails


def test_an_email_alone_is_found_without_any_digit():
    f = from_text("jeanne.martin@example.org")
    assert f.emails == ["jeanne.martin@example.org"] and f.has_strong()


def test_dates_and_postcodes_in_text():
    f = from_text("tel 0612345678 le 1/2/1985, le 1985-02-01, 31.12.2001, 32/01/1999, 12/13/1999")
    assert f.dobs == ["19850201", "19850201", "20011231"]
    f = from_text("tel 0612345678 75001 97100 99000 00100 123456 1234")
    assert f.postcodes == ["75001", "97100"]


def test_secondary_fields_only_next_to_a_strong_identifier():
    """Without a NIR, email or phone, a line yields no name, date or postcode (nothing to check them on)."""
    f = from_text("Jeanne Martin 12/05/1985 29200 Brest")
    assert f == Fields()


def test_name_windows_keep_every_word_and_skip_emails():
    f = from_text("Martin Jeanne Louise, jean.paul@example.org")
    assert f.names == ["jeanne martin", "jeanne louise", "jeanne louise martin"]
    assert f.name_tokens == ["jeanne", "martin"]
    f = from_text("Lefèvre-Hervé Zoé 0612345678")
    assert f.names == ["herve lefevre", "herve zoe", "herve lefevre zoe"]
    assert f.name_tokens == ["herve", "lefevre"]
    # Single letters are not name words, nor words that fold to one letter ("ßo" folds to "o").
    assert from_text("A Martin B Jeanne 0612345678").names == ["jeanne martin"]
    assert from_text("Martin \u00dfo Jeanne 0612345678").names == ["jeanne martin"]


def test_no_identifier_no_digit_gives_only_blood_and_health():
    assert from_text("Groupe A+ ; enceinte ; O neg") == Fields(blood=2, health=True)
    assert from_text("Groupe A+ ; enceinte ; O neg", health=False) == Fields(blood=2)
    assert from_text("rien du tout") == Fields()


def test_health_vocabulary_is_read_below_20000_characters():
    pad = "x" * (20000 - len(" vih"))
    assert from_text(pad[:-1] + " vih").health is True  # 19,999 characters
    assert from_text(pad + " vih").health is False  # 20,000: the caller checks long texts by batch
    assert from_text("sous Truvada depuis 2019").health is True
    assert from_text("sous Truvada depuis 2019", health=False).health is False


def test_blood_groups_are_counted_next_to_identifiers():
    f = from_text("0612345678 groupe AB- et B+")
    assert f.blood == 2 and f.phones == ["612345678"]


# -- mapped rows -----------------------------------------------------------------------------------

ALL_KINDS = Mapping(columns={0: "nir", 1: "last_name", 2: "first_name", 3: "birth_date", 4: "email", 5: "phone",
                             6: "postcode", 7: "blood_group", 8: "comment", 9: "city"})


def test_a_mapped_row_with_every_kind():
    row = [SPACED, "MARTIN", "Jeanne", "12/05/1985", " <Jeanne.Martin@Example.org> ", "+33 6 12 34 56 78",
           "29 200", "A+", "rien a signaler", "Brest"]
    f = from_mapped(row, ALL_KINDS)
    assert f == Fields(nirs=[BODY], nir_keyed=1, nir_shaped=1, emails=["jeanne.martin@example.org"],
                       phones=["612345678"], names=["jeanne martin"], name_tokens=["jeanne", "martin"],
                       last_key="martin", first_key="jeanne",
                       dobs=["19850512"], postcodes=["29200"], blood=1, health=False)


def test_a_mapped_dict_row():
    mapping = Mapping(columns={"nss": "nir", "nom": "last_name", "prenom": "first_name", "tel": "phone",
                               "naissance": "birth_date"})
    row = {"prenom": "Jeanne", "nss": NIR_2A, "nom": "Martin", "tel": "0033612345678", "naissance": "1985-05-12",
           "autre": "0700000000"}
    f = from_mapped(row, mapping)
    assert f == Fields(nirs=[BODY_2A], nir_keyed=1, nir_shaped=1, phones=["612345678"], names=["jeanne martin"],
                       name_tokens=["jeanne", "martin"], last_key="martin", first_key="jeanne", dobs=["19850512"])


def test_invalid_values_are_dropped_and_empty_cells_skipped():
    row = ["", "", "", "99/99/2000", "n/a", "12", "ABCDE", "", "", ""]
    assert from_mapped(row, ALL_KINDS) == Fields()
    # An empty cell first does not stop the row: the cells after it are read.
    row = ["", "", "Jeanne", "", "", "0612345678", "", "", "", ""]
    assert from_mapped(row, ALL_KINDS) == Fields(phones=["612345678"], names=["jeanne"], name_tokens=["jeanne"],
                                                 first_key="jeanne")


def test_a_short_row_reads_missing_cells_as_empty():
    assert from_mapped([NIR, "Martin"], ALL_KINDS) == Fields(nirs=[BODY], nir_keyed=1, nir_shaped=1,
                                                             names=["martin"], name_tokens=["martin"],
                                                             last_key="martin")


def test_the_name_key_keeps_last_and_first_names():
    m = Mapping(columns={0: "last_name", 1: "first_name", 2: "phone"})
    f = from_mapped(["Lefèvre-Hervé", "Zoé Marie", "0612345678"], m)
    assert f.names == ["herve lefevre marie zoe"]
    assert f.name_tokens == ["herve", "lefevre", "marie", "zoe"]
    # Two last-name columns (birth and usage names) both count.
    m = Mapping(columns={0: "last_name", 1: "last_name", 2: "first_name", 3: "phone"})
    f = from_mapped(["Martin", "Durand", "Jeanne", "0612345678"], m)
    assert f.names == ["durand jeanne martin"]
    m = Mapping(columns={0: "first_name", 1: "first_name", 2: "phone"})
    assert from_mapped(["Jeanne", "Louise", "0612345678"], m).names == ["jeanne louise"]


def test_a_full_name_column():
    m = Mapping(columns={0: "full_name", 1: "email"})
    f = from_mapped(["MARTIN Jeanne", "j@example.org"], m)
    assert (f.names, f.name_tokens, f.emails) == (["jeanne martin"], ["jeanne", "martin"], ["j@example.org"])
    m = Mapping(columns={0: "full_name", 1: "full_name", 2: "email"})
    assert from_mapped(["Martin", "Jeanne", "j@example.org"], m).names == ["jeanne martin"]


def test_every_blood_group_column_counts():
    m = Mapping(columns={0: "phone", 1: "blood_group", 2: "blood_group", 3: "blood_group"})
    assert from_mapped(["0612345678", "A+", "O-", ""], m).blood == 2


def test_a_name_without_letters_gives_no_key():
    m = Mapping(columns={0: "last_name", 1: "phone"})
    f = from_mapped(["-", "0612345678"], m)
    assert f.names == [] and f.name_tokens == []


def test_headerless_name_parts_give_every_pair():
    m = Mapping(columns={0: "phone"}, name_parts=(1, 2, 3))
    f = from_mapped(["0612345678", "Martin", "Jeanne", "Brest"], m)
    assert f.names == ["jeanne martin", "brest martin", "brest jeanne"]
    assert f.name_tokens == ["jeanne", "martin"]
    f = from_mapped(["0612345678", "Martin", "", "Jeanne"], m)
    assert f.names == ["jeanne martin"] and f.name_tokens == ["jeanne", "martin"]
    f = from_mapped(["0612345678", "Martin"], m)
    assert f.names == [] and f.name_tokens == ["martin"]
    assert from_mapped(["0612345678"], m).name_tokens == []
    # Named columns win over headerless parts.
    m = Mapping(columns={0: "phone", 4: "last_name"}, name_parts=(1, 2))
    f = from_mapped(["0612345678", "Martin", "Jeanne", "", "Durand"], m)
    assert f.names == ["durand"]


@pytest.mark.parametrize("kind,value,health,blood", [
    ("treatment", "Levothyrox", True, 0),
    ("treatment", "aucun", True, 0),  # a treatment column is health data whatever it holds
    ("pathology", "x", True, 0),
    ("comment", "enceinte de 3 mois", True, 0),
    ("comment", "rappeler lundi", False, 0),
    ("blood_group", "O-", False, 1),
    ("city", "Brest", False, 0),
])
def test_health_flags_of_mapped_rows(kind, value, health, blood):
    f = from_mapped(["0612345678", value], Mapping(columns={0: "phone", 1: kind}))
    assert (f.health, f.blood) == (health, blood)
    assert f.phones == ["612345678"]


# -- properties ------------------------------------------------------------------------------------

_people = synth.generate(40, seed=77)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(_people), st.sampled_from([" ", ";", ", ", " | ", "\t"]), st.booleans(), st.booleans())
def test_a_person_written_on_one_line_gives_back_every_identifier(p, sep, spaced, intl):
    nir = synth.spaced_nir(p["nir"]) if spaced else p["nir"]
    phone = synth.intl_phone(p["telephone"]) if intl and p["telephone"].startswith(("06", "07")) else p["telephone"]
    line = sep.join([p["nom"], p["prenom"], nir, p["email"], phone, p["date_naissance"], p["code_postal"]])
    f = from_text(line)
    assert f.nirs == [p["nir"][:13]]
    assert f.emails == [ids.email_norm(p["email"])]
    assert f.phones == [ids.phone_nsn(p["telephone"])]
    assert ids.date_norm(p["date_naissance"]) in f.dobs
    assert p["code_postal"] in f.postcodes
    assert ids.name_key(p["nom"], p["prenom"]) in f.names


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(_people), st.permutations(["nir", "nom", "prenom", "email", "telephone",
                                                  "date_naissance", "code_postal"]))
def test_a_mapped_person_in_any_column_order(p, order):
    kinds = {"nir": "nir", "nom": "last_name", "prenom": "first_name", "email": "email", "telephone": "phone",
             "date_naissance": "birth_date", "code_postal": "postcode"}
    m = Mapping(columns={i: kinds[c] for i, c in enumerate(order)})
    f = from_mapped([p[c] for c in order], m)
    assert f.nirs == [p["nir"][:13]] and f.nir_keyed == 1
    assert f.emails == [ids.email_norm(p["email"])]
    assert f.phones == [ids.phone_nsn(p["telephone"])]
    assert f.dobs == [ids.date_norm(p["date_naissance"])]
    assert f.postcodes == [p["code_postal"]]
    assert f.names == [ids.name_key(p["nom"], p["prenom"])]


# -- bugs found by the mutation and property tests (issue 8) ---------------------------------------------

def test_identifiers_after_4096_characters_without_digits_are_found():
    prose = "Voici la suite de la base, bonne lecture a tous. " * 90
    f = from_text(prose + " MARTIN Jeanne 1 85 05 78 006 084 91 tel 06 12 34 56 78")
    assert f.nirs == ["1850578006084"] and f.phones == ["612345678"]


def test_a_phone_written_0033_is_not_a_nir():
    assert ids.nir_parts("0033612345678") is None
    f = from_text("tel 0033612345678")
    assert f.nirs == [] and f.phones == ["612345678"]


def test_a_nir_without_its_key_followed_by_a_phone_keeps_both():
    f = from_text("MARTIN Jeanne 1 85 05 78 006 084 06 12 34 56 78")
    assert f.nirs == ["1850578006084"] and f.phones == ["612345678"]
    # a 15-digit run whose key is wrong is still no NIR (no separator: nothing was borrowed)
    assert from_text("ref 185057800608406").nirs == []

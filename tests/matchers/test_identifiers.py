"""Identifiers: NIR, phones, emails, dates, postcodes, names, health terms."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from stdnum.fr import nir as stdnum_nir

from dumpwatch.devkit import synth
from matchers import identifiers as ids


@pytest.mark.parametrize("written", [
    "2 95 10 99 126 111 93", "295109912611193", "2.95.10.99.126.111.93", "2-95-10-99-126-111-93",
])
def test_nir_forms_give_one_body(written):
    assert ids.nir_parts(written) == ("2951099126111", True)


def test_nir_corsica_and_body_only():
    assert ids.nir_parts("253072B07300470") == ("253072B073004", True)
    assert ids.nir_parts("2 53 07 2A 073 004 43") == ("253072A073004", True)
    assert ids.nir_parts("2951099126111") == ("2951099126111", False)  # the 13-digit body counts


def test_nir_wrong_key_or_shape_rejected():
    assert ids.nir_parts("295109912611194") is None
    assert ids.nir_parts("29510991261119") is None
    assert ids.nir_parts("2 95 10 99 126 111 9X") is None
    assert ids.nir_parts("hello") is None


def test_nir_key_agrees_with_stdnum_on_random_input():
    rng = random.Random(5)
    for _ in range(3000):
        body = f"{rng.randint(1, 8)}{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}" \
               f"{rng.choice(['2A', '2B', f'{rng.randint(1, 99):02d}'])}{rng.randint(0, 999999):06d}"
        key = rng.choice([ids.nir_check_key(body), rng.randint(1, 97)])
        value = f"{body}{key:02d}"
        assert (ids.nir_parts(value) is not None) == stdnum_nir.is_valid(value), value


def test_generated_nirs_are_valid_with_stdnum():
    for p in synth.generate(200, seed=3):
        assert ids.is_valid_nir(p["nir"])
        assert ids.nir_parts(synth.spaced_nir(p["nir"]))[1]


def test_nir_in_text():
    text = "client: DUPONT N° SS: 1 85 05 78 006 084 36 tel 0612345678, ref 1Z999AA10123456784"
    found = [m.group(0) for m in ids.NIR_IN_TEXT.finditer(text)]
    assert found == ["1 85 05 78 006 084 36"]


@pytest.mark.parametrize("written", [
    "06 12 34 56 78", "0612345678", "06.12.34.56.78", "+33 6 12 34 56 78", "+33612345678",
    "0033 6 12 34 56 78", "+33 (0)6 12 34 56 78", "0033 (0)6 12 34 56 78", "6 12 34 56 78",
])
def test_phone_forms_give_one_number(written):
    assert ids.phone_nsn(written) == "612345678"


@pytest.mark.parametrize("national,e164", [
    ("0262 12 34 56", "+262262123456"), ("0692 12 34 56", "+262692123456"),
    ("0590 12 34 56", "+590590123456"), ("0596 12 34 56", "+596596123456"),
    ("0594 12 34 56", "+594594123456"),
])
def test_overseas_phones_agree_with_phonenumbers(national, e164):
    # phonenumbers' region data may file a number under +33 or its overseas code: the 9 national
    # digits, which the fingerprint uses, are the same either way.
    assert ids.phone_e164(national).endswith(e164[-9:])
    nsn = ids.phone_nsn(national)
    assert nsn == ids.phone_nsn(e164) == e164[-9:]


def test_phone_nsn_agrees_with_phonenumbers_on_synthetic_numbers():
    for p in synth.generate(300, seed=8):
        e164 = ids.phone_e164(p["telephone"])
        assert e164 is not None, p["telephone"]
        assert ids.phone_nsn(p["telephone"]) == e164[-9:]
        assert ids.phone_nsn(synth.intl_phone(p["telephone"])) == phonenumbers.format_number(
            phonenumbers.parse(synth.intl_phone(p["telephone"]), "FR"), phonenumbers.PhoneNumberFormat.E164)[-9:]


def test_not_phones():
    for v in ("12345", "0012345678901234", "+1 212 555 0100", "0012 34 56 78", "00 00 00 00 00"):
        assert ids.phone_nsn(v) is None, v


def test_email_dates_postcodes():
    assert ids.email_norm(" <Jean.Dupont@Orange.FR> ") == "jean.dupont@orange.fr"
    assert ids.email_norm("not an email") is None
    assert ids.date_norm("05/03/1985") == ids.date_norm("1985-03-05") == ids.date_norm("05.03.1985") \
        == ids.date_norm("05031985") == "19850305"
    assert ids.date_norm("32/13/1985") is None
    assert ids.postcode_norm("56000") == "56000" and ids.postcode_norm("99000") is None


def test_names_fold_order_and_case():
    assert ids.name_key("LEFÈVRE", "Hélène") == ids.name_key("helene lefevre") == "helene lefevre"
    assert ids.email_spells_name("helene.lefevre56@orange.fr", ["helene", "lefevre"])
    assert not ids.email_spells_name("hl56@orange.fr", ["helene", "lefevre"])


def test_redaction_keeps_no_identifier():
    assert ids.redact_nir("1850578006084") == "1 85 05 ** *** *** **"
    assert ids.redact_email("jean.dupont@orange.fr") == "j***@orange.fr"
    assert ids.redact_phone("612345678") == "06 ** ** ** 78"


def test_health_terms():
    assert ids.health_terms("Patiente enceinte, sous TRUVADA (VIH)") >= {"enceinte", "truvada", "vih"}
    assert not ids.health_terms("livraison prévue mardi, colis 12")

"""Shared [smtp] settings, per-lab contact points and the receivers' language (issue 13), down to a French
email received on a real SMTP server (aiosmtpd, 127.0.0.1)."""

from __future__ import annotations

import email
import email.policy

import pytest

from tests.helpers.alertkit import assert_no_identifier, make_finding
from alerts import record_finding
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from alerts import settings
from dumpwatch.errors import ConfigErrors
from dumpwatch.store import open_db
from dumpwatch.tables import Config

SMTP = {"host": "smtp.monitor.example", "port": 2525, "security": "tls", "user": "dumpwatch",
        "password_env": "DW_SMTP_PASSWORD", "from": "alerts@monitor.example", "ca_file": "/etc/ssl/ca.pem"}


def load(cfg: dict):
    return settings.load(Config(cfg, path="dumpwatch.toml"))


def _errors(cfg: dict) -> dict[str, str]:
    with pytest.raises(ConfigErrors) as exc:
        load(cfg)
    return {e.key: e.message for e in exc.value.errors}


def test_an_email_receiver_inherits_smtp_and_says_only_its_address():
    a = load({"smtp": SMTP, "receivers": [{"name": "ops", "type": "email", "to": ["ops@monitor.example"]},
                                          {"name": "own", "type": "email", "to": ["x@y.example"],
                                           "smtp_host": "relay.example", "security": "starttls"}]})
    ops = a.receivers["ops"]
    assert (ops.smtp_host, ops.smtp_port, ops.security, ops.username, ops.password_env, ops.sender, ops.ca_file) == (
        "smtp.monitor.example", 2525, "tls", "dumpwatch", "DW_SMTP_PASSWORD", "alerts@monitor.example", "/etc/ssl/ca.pem")
    own = a.receivers["own"]  # what a receiver says wins over [smtp]
    assert (own.smtp_host, own.security, own.username) == ("relay.example", "starttls", "dumpwatch")


def test_a_webhook_does_not_inherit_the_smtp_ca_file():
    a = load({"smtp": SMTP, "receivers": [{"name": "cnil", "type": "webhook", "url": "https://cnil.example/hook",
                                           "secret_env": "S"}]})
    assert a.receivers["cnil"].ca_file is None


def test_a_lab_contact_is_one_line_with_its_dpo():
    a = load({"alerts": {"contact_point": "DPO of the group, dpo@group.example"}, "smtp": SMTP,
              "receivers": [{"name": "dpo-armor", "type": "email", "to": ["dpo@armor.example"]}],
              "contacts": {"Biolab Vannes": {"name": "Dr Anne Martin", "email": "dpo@biolab.example",
                                             "phone": "+33 2 97 01 02 03"},
                           "LBM Armor": "dpo-armor",  # the short form still works
                           "Labo Lorient": {"receiver": "dpo-armor", "name": "M. Le Goff"}}})
    vannes = a.receivers["Biolab Vannes"]  # a receiver named after the lab, through [smtp]
    assert vannes.to == ("dpo@biolab.example",) and vannes.smtp_host == "smtp.monitor.example"
    assert a.contacts == {"Biolab Vannes": "Biolab Vannes", "LBM Armor": "dpo-armor", "Labo Lorient": "dpo-armor"}
    assert a.contact_for("Biolab Vannes").text() == "Dr Anne Martin, dpo@biolab.example, +33 2 97 01 02 03"
    assert a.contact_for("Labo Lorient").name == "M. Le Goff"
    assert a.contact_for("LBM Armor").name == a.contact_for("").name == "DPO of the group, dpo@group.example"


def test_contact_mistakes_are_errors_naming_the_lab():
    errors = _errors({"receivers": [{"name": "dpo-armor", "type": "email", "to": ["dpo@armor.example"]}],
                      "contacts": {"A": {"name": "no address"}, "B": {"receiver": "dpo-armr"}, "C": "nobody",
                                   "D": {"email": "x@y.example", "fax": "1"}, "E": 3}})
    assert "email" in errors["contacts.A.email"]
    assert "did you mean 'dpo-armor'" in errors["contacts.B.receiver"]
    assert "not defined" in errors["contacts.C"]
    assert "unknown key" in errors["contacts.D.fax"]
    assert "a table" in errors["contacts.E"]


def test_language_and_time_zone_are_checked():
    assert "'fr' or 'en'" in _errors({"alerts": {"language": "de"}})["alerts.language"]
    errors = _errors({"alerts": {"timezone": "Mars/Olympus"},
                      "receivers": [{"name": "x", "type": "email", "to": ["a@b.example"], "language": "es"}]})
    assert "IANA" in errors["alerts.timezone"] and "'fr' or 'en'" in errors["receivers.x.language"]


def test_french_by_default_english_on_request():
    a = load({"alerts": {"timezone": "UTC"},
              "receivers": [{"name": "fr", "type": "email", "to": ["a@b.example"]},
                            {"name": "en", "type": "email", "to": ["a@b.example"], "language": "en"}],
              "contacts": {"L": {"email": "dpo@l.example", "language": "en"}}})
    assert a.speech("fr") == ("fr", "UTC") and a.speech("en") == ("en", "UTC") and a.speech("L") == ("en", "UTC")
    assert load({"alerts": {"language": "en"}, "receivers": [{"name": "r", "type": "webhook",
                                                             "url": "https://h.example", "secret_env": "S"}]}
                ).receivers["r"].language == "en"


def test_a_lab_dpo_receives_a_french_email_naming_them(people, smtp_server, home):
    labs = sorted({p["laboratoire"] for p in people})[:2]
    copy = [p for p in people if p["laboratoire"] == labs[0]][:30] + [p for p in people
                                                                      if p["laboratoire"] == labs[1]][:20]
    cfg = Config({
        "alerts": {"group_wait": 0, "repeat_interval": 0, "contact_point": "DPO du groupe"},
        "smtp": {"host": "127.0.0.1", "port": smtp_server.port, "security": "none", "from": "dw@monitor.example"},
        "contacts": {labs[0]: {"name": "Dr Anne Martin", "email": "dpo@lab0.example", "phone": "+33 2 97 01 02 03"},
                     labs[1]: {"name": "M. Yann Le Goff", "email": "dpo@lab1.example"}},
    }, path="dumpwatch.toml")
    db = open_db(home.db_path)
    record_finding(db, make_finding(copy, url="https://paste.example/raw/fr"), source="pastes", config=cfg)
    report = deliver_due(db, alerting_of(cfg))
    assert report.delivered == 2 and report.failed == 0, report.summary()
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_server.mails}
    for addr, lab, own, dpo, other in (("dpo@lab0.example", labs[0], 30, "Dr Anne Martin", "Yann Le Goff"),
                                       ("dpo@lab1.example", labs[1], 20, "M. Yann Le Goff", "Anne Martin")):
        msg = email.message_from_bytes(by_rcpt[addr].content, policy=email.policy.default)
        assert msg["From"] == "dw@monitor.example"
        assert f"{own} enregistrements de patients de {lab} trouvés dans 1 copie de la fuite" in msg["Subject"]
        assert msg.get_body(("plain",)).get_content().count("enregistrements reconnus") == 1
        html = msg.get_body(("html",)).get_content()
        assert "<html lang='fr'>" in html and "Conséquences probables" in html
        [draft] = [p.get_content() for p in msg.walk() if p.get_filename() == "article33-draft.md"]
        draft = draft.decode() if isinstance(draft, bytes) else draft
        assert draft.startswith("# Projet : notification d’une violation de données personnelles")
        assert dpo in draft and other not in draft and "DPO du groupe" not in draft
        assert "**À compléter par le responsable de traitement**" in draft
        assert_no_identifier(by_rcpt[addr].content, people, f"the email to {addr}")

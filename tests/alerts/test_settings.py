"""Configuration: the documented example loads; mistakes are errors naming the receiver/route and key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from alerts.privacy import scrub
from alerts import settings
from dumpwatch.errors import ConfigError
from dumpwatch.tables import Config, parse_duration

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def _doc_config() -> dict:
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S).group(1)
    return tomllib.loads(block)


def load(cfg: dict | None):
    """The alerting settings of ``cfg`` as read from docs/alerts.md (errors name that file)."""
    return settings.load(None if cfg is None else Config(cfg, path="docs/alerts.md"))


def test_documented_example_loads():
    a = load(_doc_config())
    assert set(a.receivers) == {"cnil", "ops", "oncall", "dpo-atlantique", "dpo-armor", "Biolab Vannes"}
    assert a.contacts["LBM Armor Analyses"] == "dpo-armor" and a.fallback_receiver == "oncall"
    assert [r.name for r in a.routes] == ["authority", "lab-contacts", "critical-to-oncall", "operators"]
    assert a.routes[2].timing.group_wait == 0 and a.routes[0].timing.group_wait == 30
    assert a.timing.repeat_interval == 4 * 3600 and a.max_age == 86400
    assert a.receivers["oncall"].security == "starttls" and a.receivers["oncall"].smtp_port == 587
    assert a.receivers["oncall"].smtp_host == "smtp.example" and a.receivers["oncall"].username == "dumpwatch"  # [smtp]
    assert a.receivers["oncall"].sender == "dumpwatch-oncall@cert.example" and a.receivers["ops"].language == "en"
    assert a.contact_for("Biolab Vannes").phone == "+33 2 97 00 00 01" and a.contacts["Biolab Vannes"] == "Biolab Vannes"
    assert a.receivers["cnil"].verify_tls is True and a.receivers["ops"].format == "slack"


def test_defaults_without_configuration():
    a = load(None)
    assert not a.configured and a.timing.group_wait == 30 and a.timing.group_interval == 300
    assert [r.name for r in a.routes] == ["lab-contacts"]  # authority/operators receivers not configured


@pytest.mark.parametrize("mutate,key,words", [
    (lambda c: c["routes"][3].update(receiver="opz"), "routes.operators.receiver", "not defined"),
    (lambda c: c["receivers"][0].pop("secret_env"), "receivers.cnil.secret_env", "secret_env or secret_file"),
    (lambda c: c["receivers"][0].update(url="ftp://x"), "receivers.cnil.url", "https://"),
    (lambda c: c["receivers"][2].update(security="ssl"), "receivers.oncall.security", "starttls"),
    (lambda c: c["receivers"][2].update(password="hunter2"), "receivers.oncall.password", ""),
    (lambda c: c["receivers"][2].update(smtp_prot=25), "receivers.oncall.smtp_prot", "unknown key"),
    (lambda c: c["receivers"][3].update(name="cnil"), "receivers[3].name", "unique"),
    (lambda c: c["contacts"].update({"Bio Pontivy": "nobody"}), "contacts.Bio Pontivy", "not defined"),
    (lambda c: c["alerts"].update(group_wait="soon"), "alerts.group_wait", "duration"),
    (lambda c: c["alerts"].update(fallback_receiver="pager"), "alerts.fallback_receiver", "not defined"),
    (lambda c: c["routes"][0]["match"].update(colour="red"), "routes.authority.match.colour", "cannot match"),
    (lambda c: c["routes"][1].update(receiver="cnil"), "routes.lab-contacts.receiver", "per_lab"),
    (lambda c: c["routes"][2].update(min_severity="urgent"), "routes.critical-to-oncall.min_severity", "severity"),
])
def test_mistakes_name_the_key(mutate, key, words):
    cfg = _doc_config()
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        load(cfg)
    assert f"[{key}]" in str(err.value) and "docs/alerts.md" in str(err.value)
    assert words in str(err.value)


def test_credentials_from_env_or_file(tmp_path, monkeypatch):
    cfg = _doc_config()
    a = load(cfg)
    monkeypatch.delenv("DUMPWATCH_CNIL_SECRET", raising=False)
    with pytest.raises(ConfigError, match="DUMPWATCH_CNIL_SECRET"):
        a.receivers["cnil"].secret()
    monkeypatch.setenv("DUMPWATCH_CNIL_SECRET", "abc")
    assert a.receivers["cnil"].secret() == b"abc"
    with pytest.raises(ConfigError, match="ops.secret"):
        a.receivers["ops"].secret()


def test_durations():
    assert parse_duration("30s") == 30 and parse_duration("5m") == 300 and parse_duration("4h") == 14400
    assert parse_duration("1d") == 86400 and parse_duration(12) == 12 and parse_duration("250ms") == 0.25
    with pytest.raises(ValueError, match="duration like"):
        parse_duration("-5s")


@pytest.mark.parametrize("text,leaked", [
    ("patient 2 95 10 99 126 111 93 ok", "99 126 111"),
    ("nir=253072B07300470", "07300470"),
    ("contact jean.dupont42@orange.fr", "jean.dupont42"),
    ("tel +33 6 12 34 56 78 / 0612345678", "12 34 56"),
])
def test_scrub_masks_identifiers(text, leaked):
    out = scrub(text)
    assert leaked not in out and leaked.replace(" ", "") not in out.replace(" ", "")
    assert scrub(out) == out  # idempotent; redacted forms stay as they are
    assert scrub("1 85 05 ** *** *** **") == "1 85 05 ** *** *** **"
    assert scrub("sha256 3f2a0612345678abcdef") == "sha256 3f2a0612345678abcdef"


# -- preflight: what deliveries and routing will need, checked before anything runs -----------------

LABS = ["Laboratoire Atlantique Bio", "LBM Armor Analyses", "Biolab Vannes"]


def _with_secrets(cfg: dict, monkeypatch) -> dict:
    monkeypatch.setenv("DUMPWATCH_CNIL_SECRET", "s")
    monkeypatch.setenv("DUMPWATCH_SMTP_PASSWORD", "p")
    monkeypatch.setenv("DUMPWATCH_OPS_WEBHOOK", "https://chat.example/hooks/abc123")  # the example's url_env
    for r in cfg["receivers"]:
        for key in ("secret_file", "password_file"):
            if key in r:
                r.pop(key)
                r[key.replace("_file", "_env")] = "DUMPWATCH_CNIL_SECRET"
    return cfg


def test_preflight_finds_a_misspelt_lab_and_warns_of_labs_without_contact(monkeypatch):
    from alerts.preflight import preflight

    cfg = _with_secrets(_doc_config(), monkeypatch)
    cfg["contacts"] = {"Laboratoire Atlantique Bio": "dpo-atlantique", "LBM Armor Analysis": "dpo-armor"}
    errors, warnings = preflight(load(cfg), LABS)
    assert [e.key for e in errors] == ["contacts.LBM Armor Analysis"]
    assert "did you mean 'LBM Armor Analyses'?" in str(errors[0]) and "docs/alerts.md" in str(errors[0])
    assert len(warnings) == 2  # the misspelt lab, and Biolab Vannes: no contact for either
    assert all("(cnil, oncall still receive them)" in w for w in warnings)  # oncall: critical ones
    assert {"'LBM Armor Analyses'", "'Biolab Vannes'"} == {w.split("enrolled lab ")[1].split(" has")[0] for w in warnings}


def test_preflight_says_when_nobody_else_is_told_or_no_route_fans_out(monkeypatch):
    from alerts.preflight import preflight

    cfg = _with_secrets(_doc_config(), monkeypatch)
    cfg["contacts"] = {}
    cfg["routes"] = [r for r in cfg["routes"] if r.get("per_lab")]  # the lab route only
    _, warnings = preflight(load(cfg), LABS)
    assert len(warnings) == 3 and all("nobody is told" in w for w in warnings)
    cfg["routes"] = [{"name": "authority", "match": {"verdict": "repost"}, "receiver": "cnil"}]
    _, warnings = preflight(load(cfg), LABS)
    assert len(warnings) == 1 and "no route has per_lab = true" in warnings[0]


def test_preflight_reads_every_credential_now(monkeypatch):
    from alerts.preflight import preflight

    cfg = _doc_config()
    monkeypatch.delenv("DUMPWATCH_CNIL_SECRET", raising=False)
    errors, _ = preflight(load(cfg), None)
    keys = {e.key for e in errors}
    assert "receivers.cnil.secret_env" in keys and "receivers.ops.secret_file" in keys
    assert all("docs/alerts.md" in str(e) for e in errors)

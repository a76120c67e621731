"""Helpers of the alerts tests (fixtures in conftest.py): real receivers on 127.0.0.1: an SMTP server (aiosmtpd) and an HTTP webhook
receiver that verifies signatures; plus synthetic findings built from dumpwatch.devkit.synth people."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dumpwatch.devkit import localsites
from dumpwatch.devkit.localsites import Hook, Mail, SMTPServer, free_port, start_smtp  # noqa: F401 (re-exported)
from matchers.finding import Finding

SECRET = "test-signing-secret-0123456789abcdef"
LEAK = "labos-2021"


@dataclass
class WebhookReceiver(localsites.WebhookReceiver):
    """The demo's signature-checking receiver, with the tests' secret by default."""

    secret: bytes = SECRET.encode()


# -- configuration and findings --------------------------------------------------------------------

def base_config(*, cnil_url: str, secret_file: Path, smtp_port: int, labs: list[str],
                ops_url: str | None = None, alerts: dict | None = None, extra: dict | None = None) -> dict:
    """CNIL by webhook, operators by webhook, one email receiver per lab (contacts table)."""
    receivers = [
        {"name": "cnil", "type": "webhook", "url": cnil_url, "secret_file": str(secret_file)},
        {"name": "ops", "type": "webhook", "url": ops_url or cnil_url.replace("/hook", "/ops"),
         "secret_file": str(secret_file)},
    ]
    contacts = {}
    for i, lab in enumerate(labs):
        receivers.append({"name": f"lab{i}", "type": "email", "to": [f"dpo{i}@lab{i}.example"],
                          "from": "dumpwatch@monitor.example", "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                          "security": "none", "timeout": 5})
        contacts[lab] = f"lab{i}"
    cfg = {"alerts": {"authority_receiver": "cnil", "operators_receiver": "ops", "group_wait": 0,
                      "group_interval": "5m", "repeat_interval": 0, **(alerts or {})},
           "receivers": receivers, "contacts": contacts}
    cfg.update(extra or {})
    return cfg


def redacted(person: dict[str, str]) -> list[str]:
    nir, mail = person["nir"], person["email"]
    return [f"{nir[0]} {nir[1:3]} {nir[3:5]} ** *** *** **", f"{mail[0]}***@{mail.split('@')[1]}"]


def make_finding(people: list[dict[str, str]], *, url: str, leak: str = LEAK, verdict: str = "repost",
                 sha: str | None = None, categories: tuple[str, ...] = ("identity", "contact", "nir", "health"),
                 sample_people: int = 2) -> Finding:
    """A Finding as the engine reports it for a copy holding ``people`` (redacted sample only)."""
    labs = Counter(p["laboratoire"] for p in people)
    import hashlib

    sample: list[str] = []
    for p in people[:sample_people]:
        sample += redacted(p)
    return Finding(
        input=url, verdict=verdict, leak=leak if verdict == "repost" else None,
        matched_records=len(people) if verdict == "repost" else 0, records_seen=len(people) + 3,
        schema_score=0.9, identifiers={"nir": len(people), "email": len(people), "phone": len(people)},
        labs=dict(labs) if verdict == "repost" else {}, categories=categories,
        sha256=sha or hashlib.sha256(url.encode()).hexdigest(), size=1000 + len(people), sample=tuple(sample),
        leaks={leak: len(people)} if verdict == "repost" else {},
    )


def identifiers_of(people: list[dict[str, str]]) -> list[str]:
    """Every cleartext form of the people's identifiers that must never appear anywhere."""
    from dumpwatch.devkit import synth

    out = []
    for p in people:
        digits = "".join(c for c in p["telephone"] if c.isdigit())
        out += [p["nir"], synth.spaced_nir(p["nir"]), p["email"], digits,
                " ".join(digits[i:i + 2] for i in range(0, 10, 2)), f"{p['prenom']} {p['nom']}",
                f"{p['nom']} {p['prenom']}"]
        if digits.startswith(("06", "07")):
            out.append(synth.intl_phone(digits))
    return out


def assert_no_identifier(blob: bytes, people: list[dict[str, str]], where: str) -> None:
    text = blob.decode("utf-8", errors="replace")
    lowered = text.lower()
    for ident in identifiers_of(people):
        assert ident.lower() not in lowered, f"cleartext identifier found in {where}"


class Capture:
    """A sender that keeps what it is given (the channels themselves are tested with real servers)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object, str]] = []

    def __call__(self, receiver, message, key):
        self.sent.append((receiver.name, message, key))
        return "captured"

    def to(self, name: str) -> list:
        return [m for r, m, _ in self.sent if r == name]

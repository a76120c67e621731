"""The tables email receivers and lab contacts share: ``[smtp]`` and ``[contacts]`` (issue 13).

``[smtp]`` (:data:`SMTP`) holds what every email receiver inherits (host, port, security, user,
password_env/password_file, from, ca_file, verify_tls, timeout); :func:`smtp_defaults` gives it in
the keys of a ``[[receivers]]`` table, for :meth:`dumpwatch.tables.Section.read` to fill in what a
receiver does not say. A ``[contacts]`` entry (:data:`CONTACT`, :func:`contact`) names a lab's
contact point: the short form ``"LAB" = "RECEIVER"``, or a table with the DPO's ``name``, ``email``
and ``phone`` (and optionally ``receiver``, ``language``); without ``receiver``, the lab's alerts go to
``email`` through ``[smtp]``, by a receiver named after the lab, which :func:`alerts.settings.load`
adds. The lab's Article 33 draft names its DPO (:meth:`alerts.settings.Alerting.contact_for`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.i18n import LANGUAGES
from dumpwatch.errors import ConfigError
from dumpwatch.tables import Key, Section, did_you_mean, table_of


@dataclass(frozen=True)
class Contact:
    """A lab's contact point (``[contacts]``): the receiver told of its copies, the DPO its draft names."""

    receiver: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""

    def text(self) -> str:
        return ", ".join(x for x in (self.name, self.email, self.phone) if x)


# [smtp]: what every email receiver (and every lab contact given by its email) inherits
SMTP = Section("smtp", {
    "host": Key("text", "localhost"),
    "port": Key("int", minimum=1, maximum=65535, hint="a TCP port number"),
    "security": Key("text", "starttls", choices=("starttls", "tls", "none")),
    "user": Key("text"),
    "password_env": Key("text"),
    "password_file": Key("text"),
    "from": Key("text", "dumpwatch@localhost"),
    "ca_file": Key("text"),
    "verify_tls": Key("bool", True),
    "timeout": Key("duration", 10.0),
})
SMTP_TO_RECEIVER = {"host": "smtp_host", "port": "smtp_port", "security": "security", "user": "username",
                    "password_env": "password_env", "password_file": "password_file", "from": "from",
                    "ca_file": "ca_file", "verify_tls": "verify_tls", "timeout": "timeout"}

# [contacts]: "LAB" = "RECEIVER", or "LAB" = { name, email, phone } (alerts go to email through [smtp]),
# or "LAB" = { receiver = "RECEIVER", name, email, phone }
CONTACT = Section("contacts", {
    "receiver": Key("str", hint="the name of a [[receivers]] table"),
    "name": Key("text", ""),
    "email": Key("text", ""),
    "phone": Key("text", ""),
    "language": Key("text", choices=LANGUAGES, hint="of this lab's messages (default: [alerts] language)"),
})



def smtp_defaults(config: Mapping[str, Any] | None, path: Any) -> dict[str, Any]:
    """``[smtp]``, checked, in the keys of a ``[[receivers]]`` table (only the keys it sets)."""
    smtp = SMTP.read(table_of(config, "smtp"), path=path)
    return {SMTP_TO_RECEIVER[k]: v for k, v in smtp.items() if v is not None}


def contact(lab: str, entry: Any, path: Any, receivers: Mapping[str, Any], refused: Collection[Any]) -> Contact:
    """One ``[contacts]`` entry: a receiver's name (short form), or a table with the DPO's details."""
    if isinstance(entry, str):
        if entry not in receivers and entry not in refused:
            raise ConfigError(f"lab {lab!r} points to receiver {entry!r}, which is not defined in [[receivers]]; "
                              f"{did_you_mean(entry, receivers)}or write {{ name = \"...\", email = \"dpo@...\", "
                              "phone = \"...\" }", path=path, key=f"contacts.{lab}")
        return Contact(receiver=entry)
    if not isinstance(entry, Mapping):
        raise ConfigError(f"lab {lab!r}: a contact is a receiver's name or a table {{ name = \"...\", "
                          f"email = \"dpo@...\", phone = \"...\" }}, not {entry!r}", path=path, key=f"contacts.{lab}")
    v = CONTACT.read(entry, path=path, where=f"contacts.{lab}")
    receiver = v["receiver"]
    if receiver:
        if receiver not in receivers and receiver not in refused:
            raise ConfigError(f"lab {lab!r} points to receiver {receiver!r}, which is not defined in "
                              f"[[receivers]]; {did_you_mean(receiver, receivers)}"
                              f"defined: {', '.join(receivers) or 'none'}", path=path, key=f"contacts.{lab}.receiver")
    elif not v["email"] or "@" not in v["email"]:
        raise ConfigError(f"lab {lab!r}: give email = \"dpo@...\" (its alerts go there through [smtp]) or "
                          "receiver = \"NAME\" of a [[receivers]] table", path=path, key=f"contacts.{lab}.email")
    elif lab in receivers:
        raise ConfigError(f"lab {lab!r}: a [[receivers]] table already has this name; name the lab's receiver "
                          "with receiver = \"NAME\"", path=path, key=f"contacts.{lab}")
    return Contact(receiver=receiver or lab, name=v["name"], email=v["email"], phone=v["phone"])

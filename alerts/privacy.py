"""Defence in depth: mask anything that looks like a cleartext identifier before it is stored or sent.

The engine already redacts its samples (``1 85 05 ** *** *** **``, ``j***@orange.fr``); this module
masks what would slip through anyway (a sample or an error message carrying a full NIR, email address
or phone number), so a bug upstream does not turn an alert into a second leak.
"""

from __future__ import annotations

import re
from typing import Any

from matchers import identifiers as ids

# The engine's own patterns: anything NIR-, email- or phone-shaped, valid or not, is masked.
_NIR = ids.NIR_IN_TEXT
_EMAIL = ids.EMAIL_IN_TEXT
_PHONE = ids.PHONE_IN_TEXT


def _nir(m: re.Match[str]) -> str:
    return ids.redact_nir("".join(m.groups()[:6]).upper())


def _email(m: re.Match[str]) -> str:
    return ids.redact_email(m.group(0))


def _phone(m: re.Match[str]) -> str:
    return ids.redact_phone(ids.phone_nsn(m.group(0)) or re.sub(r"\D", "", m.group(0))[-9:])


def scrub(text: str) -> str:
    """``text`` with every full NIR, email address and phone number masked."""
    if not text:
        return text
    text = _EMAIL.sub(_email, text)
    text = _NIR.sub(_nir, text)
    return _PHONE.sub(_phone, text)


def scrub_value(value: Any) -> Any:
    """:func:`scrub` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_value(v) for v in value)
    return value

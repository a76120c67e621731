"""Defence in depth: mask anything that looks like a cleartext identifier before it is stored or sent.

The engine already redacts its samples (``1 85 05 ** *** *** **``, ``j***@orange.fr``); this module
masks what would slip through anyway (a sample or an error message carrying a full NIR, email address
or phone number), so a bug upstream does not turn an alert into a second leak.
"""

from __future__ import annotations

import re
from typing import Any

# A NIR: sex digit, year, month, department (digits or 2A/2B), commune, order, key; any separators.
_NIR = re.compile(r"(?<![\dA-Za-z])([1-478])[ .-]?(\d{2})[ .-]?(\d{2})[ .-]?((?:\d{2}|2[AaBb]))"
                  r"[ .-]?(\d{3})[ .-]?(\d{3})(?:[ .-]?(\d{2}))?(?![\dA-Za-z])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])([A-Za-z0-9._%+-]*)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# French phone numbers, national or international, with any usual separators.
_PHONE = re.compile(r"(?<![\w*])(?:(?:\+|00)33[ .-]?(?:\(0\)[ .-]?)?|0)[1-9](?:[ .-]?\d{2}){4}(?!\w)")


def _nir(m: re.Match[str]) -> str:
    return f"{m.group(1)} {m.group(2)} {m.group(3)} ** *** *** **"


def _email(m: re.Match[str]) -> str:
    return f"{m.group(1)}***@{m.group(3)}"


def _phone(m: re.Match[str]) -> str:
    national = "0" + re.sub(r"\D", "", m.group(0))[-9:]
    return f"{national[:2]} ** ** ** {national[-2:]}"


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

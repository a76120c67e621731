"""Identifiers of people and the categories of data they expose: recognise, validate, normalise.

Normalised forms are what fingerprints are computed over, so two spellings of one value give one
form: ``1 85 05 78 006 084 36`` and ``185057800608436`` give the NIR body ``1850578006084``;
``06 12 34 56 78``, ``+33 (0)6 12 34 56 78`` and ``0033612345678`` give the national significant
number ``612345678`` (E.164 ``+33612345678``).

Two functions here exist in a fast form next to the library that defines them, because they run
once per cell of a 491,840-row file: :func:`nir_parts` checks the NIR key with the arithmetic of
python-stdnum's ``stdnum.fr.nir`` (the tests check both agree on every kind of input), and
:func:`phone_nsn` reduces a phone to its 9 national digits (the tests check it against
phonenumbers' E.164). Free-text recognition and column profiling use the libraries directly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache


# -- NIR (numéro de sécurité sociale) --------------------------------------------------------------

_NIR_STRIP = str.maketrans("", "", " .-_\u00a0\t")
# The first digit is the sex (1-4, 7, 8): never 0, as the vectorised ``scan.nir_column`` assumes
# (``0033612345678``, a phone, is no NIR body).
_NIR_BODY = re.compile(r"[1-9][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{6}")
# In free text: 13 digits (2A/2B allowed as department), optionally followed by the 2-digit key,
# with the usual spaces/dots/hyphens between the groups.
NIR_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])([0-9])[ .\-]?([0-9]{2})[ .\-]?([0-9]{2})[ .\-]?([0-9]{2}|2[ABab])[ .\-]?"
    r"([0-9]{3})[ .\-]?([0-9]{3})(?:[ .\-]?([0-9]{2}))?(?![0-9A-Za-z])"
)


def nir_parts(value: str) -> tuple[str, bool] | None:
    """``(body, has_valid_key)`` of a NIR written any usual way, or ``None`` if it is not one.

    The body is the 13 characters (department 2A/2B kept). A 15-character value whose key is wrong
    is rejected (``None``): it is a mistyped or made-up number, not this person's NIR.
    """
    v = value.translate(_NIR_STRIP).upper()
    n = len(v)
    if n == 15:
        body, key = v[:13], v[13:]
        if not (_NIR_BODY.fullmatch(body) and key.isdigit()):
            return None
        return (body, True) if nir_check_key(body) == int(key) else None
    if n == 13 and _NIR_BODY.fullmatch(v):
        return v, False
    return None


def nir_without_stolen_key(m: re.Match) -> tuple[str, bool] | None:
    """The body of a :data:`NIR_IN_TEXT` match whose separated "key" was not one: a NIR written
    without its key and followed by another number (``1 85 05 78 006 084 06 12 34 56 78``) lends
    that number's first two digits as a key, which fails the check; the 13-character body is the
    NIR. ``None`` when the match had no separated key or the body is no NIR either."""
    if not m.group(7) or m.start(7) == m.end(6):
        return None
    return nir_parts(m.string[m.start():m.end(6)])


def nir_check_key(body: str) -> int:
    """The key of a 13-character body: 97 − (body mod 97), Corsica 2A/2B read as 19/18 (as stdnum)."""
    if body[5] == "2" and body[6] in "AB":
        body = body[:5] + ("19" if body[6] == "A" else "18") + body[7:]
    return 97 - int(body) % 97


def is_valid_nir(value: str) -> bool:
    """Full validation with python-stdnum (used for profiling and free text, not on the hot path)."""
    from stdnum.fr import nir as stdnum_nir  # imported when needed: a scan's start-up stays short

    v = value.translate(_NIR_STRIP)
    return stdnum_nir.is_valid(v)


def redact_nir(body: str) -> str:
    """``1 85 05 ** *** *** **``: sex, year and month only."""
    return f"{body[0]} {body[1:3]} {body[3:5]} ** *** *** **"


# -- phones ----------------------------------------------------------------------------------------

_NON_DIGIT = re.compile(r"[^0-9]")
# French overseas departments dial their own country codes; the national number keeps 9 digits.
_OVERSEAS_CC = ("262", "590", "594", "596", "269", "508", "681", "687", "689")
# Every phone starts with ``+`` or ``0``: each branch takes that character first and checks the
# look-behind (no word character, ``+`` or ``*`` before it) after it, so ``re`` skips to those
# characters in C instead of trying the look-behind at every position (about 4× faster on web-server
# logs than the plain form, 1.7× faster than a leading ``(?=[0+])``); the same matches
# (tests/matchers/test_pages.py). The same for the blood groups' letters.
_COUNTRY = r"\s?(?:33|262|590|594|596|269)[\s.\-]?(?:\(0\)[\s.\-]?)?"
PHONE_IN_TEXT = re.compile(
    r"(?:\+(?<![\w+*]\+)" + _COUNTRY + r"|00(?<![\w+*]00)" + _COUNTRY + r"|0(?<![\w+*]0))"
    r"[1-9](?:[\s.\-]?[0-9]{2}){4}(?!\w)"
)


# The pre-filters' view of a text (:func:`squeezed`): ASCII digits as ``0``, the letters of a
# Corsican department (``2A``/``2B``) as ``A``, and every separator a NIR or a phone may hold
# between its groups deleted (ASCII white space, ``.``, ``-``, and every non-ASCII byte, which
# covers the other spaces). A match of :data:`NIR_IN_TEXT` leaves 13 ``0`` in a row, or
# :data:`NIR_CORSICA_RUN`; a match of :data:`PHONE_IN_TEXT` 9 ``0`` in a row (its national number).
_DIGITS_AS_0 = bytes.maketrans(b"0123456789abB", b"0000000000AAA")
_SEPARATORS = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f.-" + bytes(range(0x80, 0x100))
PHONE_RUN = b"0" * 9
NIR_RUN = b"0" * 13
NIR_CORSICA_RUN = b"0A000000"


def squeezed(text: str) -> bytes:
    """``text`` as the pre-filters see it (above): bytes-level passes in C."""
    try:  # every non-ASCII byte is deleted: Latin-1 (a copy) gives what UTF-8 gives
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "ignore")
    return data.translate(_DIGITS_AS_0, _SEPARATORS)


def phone_nsn(value: str) -> str | None:
    """The 9-digit national significant number of a French (metropolitan or overseas) phone."""
    plus = value.lstrip()[:1] == "+"
    d = _NON_DIGIT.sub("", value)
    if "(0)" in value:
        i = d.find("0", 2 if d.startswith("33") else 3)
        d = d[:i] + d[i + 1:] if i > 0 else d
    if d.startswith("00"):
        d, plus = d[2:], True
    n = len(d)
    if n == 10 and d[0] == "0" and not plus:
        return d[1:] if d[1] != "0" else None
    if n == 11 and d.startswith("33"):
        return d[2:] if d[2] != "0" else None
    if n == 12 and d[:3] in _OVERSEAS_CC:
        return d[3:]
    if n == 9 and d[0] != "0" and not plus:
        return d
    return None


@lru_cache(maxsize=4096)
def phone_e164(value: str) -> str | None:
    """E.164 via phonenumbers, trying the overseas regions when France says invalid."""
    import phonenumbers  # imported when needed: a scan's start-up stays short

    for region in ("FR", "RE", "GP", "MQ", "GF", "YT"):
        try:
            num = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_possible_number(num) else None


def redact_phone(nsn: str) -> str:
    return f"0{nsn[0]} ** ** ** {nsn[-2:]}"


# -- emails ----------------------------------------------------------------------------------------

EMAIL_IN_TEXT = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_EMAIL = re.compile(r"[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")


def email_norm(value: str) -> str | None:
    v = value.strip().strip("<>\"'").lower()
    return v if "@" in v and _EMAIL.fullmatch(v) else None


def email_clean(lowered: str) -> str | None:
    """``lowered`` itself when it is already a normalised email (what :func:`email_norm` gives for
    a cell with nothing around the address), else None (the caller then tries :func:`email_norm`)."""
    return lowered if _EMAIL.fullmatch(lowered) else None


def redact_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


# -- dates, postcodes, blood groups ----------------------------------------------------------------

DATE_IN_TEXT = re.compile(
    r"(?<![0-9])(?:([0-3]?[0-9])[/.\-]([01]?[0-9])[/.\-]((?:19|20)[0-9]{2})"
    r"|((?:19|20)[0-9]{2})-([01][0-9])-([0-3][0-9]))(?![0-9])"
)
_DIGITS8 = re.compile(r"[0-3][0-9][01][0-9](?:19|20)[0-9]{2}")


def date_norm(value: str) -> str | None:
    """``YYYYMMDD`` of a date written dd/mm/yyyy, dd-mm-yyyy, dd.mm.yyyy, yyyy-mm-dd or ddmmyyyy."""
    v = value.strip()
    m = DATE_IN_TEXT.fullmatch(v[:10]) if len(v) >= 8 else None
    if m:
        if m.group(1):
            d, mo, y = int(m.group(1)), int(m.group(2)), m.group(3)
        else:
            y, mo, d = m.group(4), int(m.group(5)), int(m.group(6))
    elif _DIGITS8.fullmatch(v):
        d, mo, y = int(v[:2]), int(v[2:4]), v[4:]
    else:
        return None
    if not (1 <= d <= 31 and 1 <= mo <= 12):
        return None
    return f"{y}{mo:02d}{d:02d}"


POSTCODE = re.compile(r"(?:0[1-9]|[1-8][0-9]|9[0-8]|2[AB])[0-9]{3}")
POSTCODE_IN_TEXT = re.compile(r"(?<![0-9])(?:0[1-9]|[1-8][0-9]|9[0-8])[0-9]{3}(?![0-9])")


def postcode_norm(value: str) -> str | None:
    v = value.strip().replace(" ", "")
    return v if len(v) == 5 and POSTCODE.fullmatch(v) else None


BLOOD_GROUP = re.compile(r"^\s*(?:groupe\s*)?(A|B|AB|O|0)\s*(?:rh)?\s*(\+|-|pos(?:itif)?|n[ée]g(?:atif)?)\s*$",
                         re.IGNORECASE)
# The letter first, its look-behind after it: ``re`` then skips to the letters A, B, O in C (an
# expression that starts with a look-behind tries every position), twice as fast; the same matches.
BLOOD_IN_TEXT = re.compile(r"(?:A(?<![\w+]A)B?|B(?<![\w+]B)|O(?<![\w+]O))\s?(?:\+|-|pos\b|n[ée]g\b)(?![\w+])")


# -- names -----------------------------------------------------------------------------------------



@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower case, accents stripped, anything else a single space: ``Lefèvre-Hervé`` → ``lefevre herve``."""
    t = text if text.isascii() else unicodedata.normalize("NFKD", text)
    # Every byte but a-z a space, then runs of spaces as one (split/join): C passes only.
    return " ".join(t.encode("ascii", "ignore").lower().translate(_LETTERS_ONLY).decode("ascii").split())


_LETTERS_ONLY = bytes(c if 0x61 <= c <= 0x7A else 0x20 for c in range(256))


def name_tokens(*parts: str) -> list[str]:
    """Sorted name words of at least 2 letters: word order and case do not matter."""
    return sorted(w for p in parts if p for w in fold(p).split() if len(w) > 1)


def name_key(*parts: str) -> str | None:
    toks = name_tokens(*parts)
    return " ".join(toks) if toks else None


def bigrams(key: str) -> list[str]:
    """Character bigrams of a folded name key (with boundary marks), for typo-tolerant comparison."""
    s = f"_{key.replace(' ', '_')}_"
    return [s[i:i + 2] for i in range(len(s) - 1)]


def email_spells_name(email: str, tokens: list[str]) -> bool:
    """True when every name word appears in the email's local part (``jean.dupont@…``)."""
    local = fold(email.partition("@")[0]).replace(" ", "")
    return bool(tokens) and all(t in local for t in tokens)


# -- health vocabulary -----------------------------------------------------------------------------

HEALTH_TERMS = (
    "grossesse", "enceinte", "accouchement", "fausse couche", "ivg", "vih", "hiv", "sida", "seropositi",
    "hepatite", "diabet", "insuline", "cancer", "chimiotherapie", "tumeur", "leucemie", "lymphome",
    "anticoagul", "previscan", "kardegic", "levothyrox", "metformine", "truvada", "antiretrovir",
    "traitement", "ordonnance", "posologie", "pathologie", "maladie", "insuffisance", "hypertension",
    "hypothyroid", "allergie", "depression", "antidepresseur", "psychiatr", "dialyse", "greffe",
    "epilepsie", "sclerose", "alzheimer", "parkinson", "tuberculose", "syphilis", "chlamydia",
    "covid", "serologie", "inr", "hba1c", "groupe sanguin", "rhesus", "transfusion",
    "post operatoire", "post-operatoire", "hospitalis",
)


def _trie(terms: list[str]) -> str:
    """A regular expression matching exactly ``terms``, as a trie (``a(?:b|c)`` for ``ab``, ``ac``):
    the engine tries one branch per character instead of every term in turn."""
    groups: dict[str, list[str]] = {}
    end = False
    for term in terms:
        if term:
            groups.setdefault(term[0], []).append(term[1:])
        else:
            end = True
    alts = [re.escape(c) + _trie(rest) for c, rest in sorted(groups.items())]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if end else body


# The terms at the start of a word of a folded text (a-z words between spaces: there, "no letter
# before" is ``\b``). No term is a prefix of another, so a position starts at most one: the trie
# finds what the alternation of the terms found, at about half the cost (tests/matchers/test_pages.py).
_HEALTH_RE = re.compile(r"(?<![a-z])" + _trie(list(HEALTH_TERMS)))


def health_terms(text: str) -> set[str]:
    """French medical terms found in a text (folded), e.g. ``{"grossesse", "vih"}``. A long text
    (a block of 64 KiB of a log) is folded without :func:`fold`'s cache, which it would fill."""
    if not text:
        return set()
    return set(_HEALTH_RE.findall(fold(text) if len(text) <= 256 else fold.__wrapped__(text)))

"""One input record (a row, a JSON object, a key-value block, a line of text) as normalised fields.

The fields of a :class:`Fields` are normalised forms, never written anywhere: they live for the
time it takes to fingerprint them and to redact a sample.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from matchers import identifiers as ids
from matchers.schema import Mapping, header_kind

_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


@dataclass
class Fields:
    nirs: list[str] = field(default_factory=list)  # 13-character bodies
    nir_keyed: int = 0  # how many carried a valid key
    nir_shaped: int = 0  # 15-character candidates seen, valid key or not
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)  # 9-digit national numbers
    names: list[str] = field(default_factory=list)  # candidate name keys (sorted folded words)
    name_tokens: list[str] = field(default_factory=list)  # words of the primary name candidate
    # The name's parts when the columns tell them apart (folded, sorted words): the leak keeps a
    # salted fingerprint of each, and a copy that gives only one of them still offers a name proof.
    last_key: str | None = None
    first_key: str | None = None
    # Words that may be a surname or a first name, which one unknown: a short text line, a
    # ``SURNAME:NIR`` combo line, a headerless name column.
    singles: list[str] = field(default_factory=list)
    dobs: list[str] = field(default_factory=list)  # YYYYMMDD
    postcodes: list[str] = field(default_factory=list)
    blood: int = 0
    health: bool = False

    def has_strong(self) -> bool:
        return bool(self.nirs or self.emails or self.phones)

    def merge(self, other: "Fields") -> "Fields":
        """Both records' fields in one (a row's mapped fields and the identifiers found in its text)."""
        out = Fields(**{k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()})
        for k in ("nirs", "emails", "phones", "names", "dobs", "postcodes", "singles"):
            getattr(out, k).extend(x for x in getattr(other, k) if x not in getattr(out, k))
        return out


def add_nir(f: Fields, value: str) -> None:
    if len(value) >= 15:
        f.nir_shaped += 1
    p = ids.nir_parts(value)
    if p:
        f.nirs.append(p[0])
        f.nir_keyed += p[1]


def from_mapped(row: Sequence[str] | dict, mapping: Mapping) -> Fields:
    """Fields of a row whose columns the schema matcher mapped."""
    get = row.get if isinstance(row, dict) else (lambda c, _d="": row[c] if c < len(row) else _d)
    f = Fields()
    last = first = full = ""
    for col, kind in mapping.columns.items():
        v = get(col, "")
        if not v:
            continue
        if kind in _STRONG and isinstance(col, str) and _data_key(col):
            f.singles.append(_data_key(col))  # type: ignore[arg-type]
        if kind == "nir":
            add_nir(f, v)
        elif kind == "email":
            e = ids.email_norm(v)
            if e:
                f.emails.append(e)
        elif kind == "phone":
            p = ids.phone_nsn(v)
            if p:
                f.phones.append(p)
        elif kind == "birth_date":
            d = ids.date_norm(v)
            if d:
                f.dobs.append(d)
        elif kind == "postcode":
            pc = ids.postcode_norm(v)
            if pc:
                f.postcodes.append(pc)
        elif kind == "last_name":
            last = f"{last} {v}"
        elif kind == "first_name":
            first = f"{first} {v}"
        elif kind == "full_name":
            full = f"{full} {v}"
        elif kind == "blood_group":
            f.blood += 1
        elif kind in ("treatment", "pathology"):
            f.health = True
        elif kind == "comment" and ids.health_terms(v):
            f.health = True
    if last or first or full:
        toks = ids.name_tokens(last, first, full)
        if toks:
            f.names.append(" ".join(toks))
            f.name_tokens = toks
        f.last_key = ids.name_key(last) if last else None
        f.first_key = ids.name_key(first) if first else None
    elif mapping.name_parts:
        # Headerless: any two (or three) alphabetic columns may be last and first name.
        parts = [get(c, "") for c in mapping.name_parts]
        parts = [p for p in parts if p]
        for i in range(len(parts)):
            for j in range(i + 1, len(parts)):
                key = ids.name_key(parts[i], parts[j])
                if key:
                    f.names.append(key)
        if parts:
            f.name_tokens = ids.name_tokens(*parts[:2])
            # Which part is the surname is not known: each may be a surname or a first name alone.
            f.singles = [k for k in dict.fromkeys(ids.name_key(p) for p in parts[:SINGLES_MAX_WORDS]) if k]
    return f


_STRONG = frozenset(("nir", "email", "phone"))


@lru_cache(maxsize=4096)
def _data_key(key: str) -> str | None:
    """The folded word of a key-value line whose key is data, not a column name: ``DUPONT: 1 85 …``
    (a ``surname:NIR`` combo list read as key-value lines); None for a real column name."""
    word = ids.fold(key)
    if not word or len(word) < 2 or " " in word or header_kind(key) is not None:
        return None
    return word


def split_keyed(row: Sequence[str] | dict, mapping: Mapping) -> list:
    """A key-value record whose keys are data (``DUPONT: <NIR>`` lines read as one block) as one
    record per such line; any other row as itself."""
    if not isinstance(row, dict):
        return [row]
    keyed = [k for k, kind in mapping.columns.items()
             if kind in _STRONG and isinstance(k, str) and row.get(k) and _data_key(k)]
    if len(keyed) < 2:
        return [row]
    rest = {k: v for k, v in row.items() if k not in keyed}
    return [{k: row[k]} for k in keyed] + ([rest] if rest else [])


def may_hold_strong(text: str) -> bool:
    """Whether :func:`from_text` may find a strong identifier (NIR, email, phone) in ``text`` or in
    any line of it: False only when it cannot (a pre-filter run on a whole batch of records joined
    by line breaks; tests/matchers/test_prefilter.py states it with Hypothesis).

    Without its separators, a NIR is 13 digits (or 5 digits, ``2A``/``2B`` and 6 digits) in a row
    and a phone's national number 9 digits in a row, so a text without 9 digits in a row, nor a
    Corsican department followed by 6, and without an email, holds neither. Bytes-level passes in
    C: a document of noise costs little more than reading it."""
    if "@" in text and ids.EMAIL_IN_TEXT.search(text):
        return True
    squeezed = ids.squeezed(text)
    return ids.PHONE_RUN in squeezed or ids.NIR_CORSICA_RUN in squeezed


def from_text(text: str, *, health: bool = True) -> Fields:
    """Fields found by pattern in free text (a line, a block, an unmapped JSON value).

    ``health=False`` skips the medical vocabulary (the caller checks a whole batch of lines at once).
    """
    f = Fields()
    f.blood = len(ids.BLOOD_IN_TEXT.findall(text))
    if health and len(text) < 20000:
        f.health = bool(ids.health_terms(text))
    if "@" not in text and not _DIGIT.search(text):
        return f  # no NIR, phone, email or date can be here
    for m in ids.NIR_IN_TEXT.finditer(text):
        before = len(f.nirs)
        add_nir(f, m.group(0))
        if len(f.nirs) == before and (p := ids.nir_without_stolen_key(m)):
            f.nirs.append(p[0])
    for m in ids.EMAIL_IN_TEXT.finditer(text):
        e = ids.email_norm(m.group(0))
        if e and e not in f.emails:
            f.emails.append(e)
    if any(c in text for c in "0+"):
        for m in ids.PHONE_IN_TEXT.finditer(text):
            p = ids.phone_nsn(m.group(0))
            if p and p not in f.phones:
                f.phones.append(p)
    if f.nirs or f.emails or f.phones:
        for m in ids.DATE_IN_TEXT.finditer(text):
            d = ids.date_norm(m.group(0))
            if d:
                f.dobs.append(d)
        # 5-digit runs that are not part of a longer number: postcodes (NIR groups are 3 digits).
        f.postcodes.extend(m.group(0) for m in ids.POSTCODE_IN_TEXT.finditer(text))
        words = [w for w in (ids.fold(w) for w in _WORD.findall(_strip_emails(text))) if len(w) > 1]
        for size in (2, 3):
            for i in range(len(words) - size + 1):
                f.names.append(" ".join(sorted(words[i:i + size])))
        f.name_tokens = sorted(words[:2])
        if len(words) <= SINGLES_MAX_WORDS:
            # A line with a word or two beside its identifiers: each may be a surname alone or a
            # first name alone (``DUPONT:1850578006084``); the evidence model counts every try.
            f.singles = list(dict.fromkeys(words))
    return f


SINGLES_MAX_WORDS = 3


def _strip_emails(text: str) -> str:
    """Name words are not taken from inside email addresses (an email that spells a name is one proof)."""
    return ids.EMAIL_IN_TEXT.sub(" ", text)


def from_identifier(kind: str, value: str) -> Fields:
    """Fields holding one normalised strong identifier (``nir``, ``email`` or ``phone``)."""
    f = Fields()
    getattr(f, {"nir": "nirs", "email": "emails", "phone": "phones"}[kind]).append(value)
    return f


def from_window(text: str, lo: int, hi: int, anchor: tuple[int, int]) -> Fields:
    """Secondary fields of a proximity window (``text[lo:hi]`` around an identifier spanning
    ``anchor``; see matchers/proximity.py), nearest first: names (runs of 2 to 4 words, keys of
    ``key: value``, ``key=value``, ``"key":`` and ``<key>`` syntaxes blanked first), birth dates,
    postcodes, and the window's emails (the words an email spells are not name candidates: an
    email that spells the name is one proof, not two). Strong identifiers are the scanner's business (it looks them up
    once per block)."""
    from matchers.proximity import blank_keys

    window = text[lo:hi]
    a0, a1 = anchor[0] - lo, anchor[1] - lo

    def dist(s: int, e: int) -> int:
        return 0 if e > a0 and s < a1 else (a0 - e if e <= a0 else s - a1)

    f = Fields()
    f.blood = len(ids.BLOOD_IN_TEXT.findall(window))
    dobs = []
    for m in ids.DATE_IN_TEXT.finditer(window):
        d = ids.date_norm(m.group(0))
        if d:
            dobs.append((dist(m.start(), m.end()), d))
    f.dobs = _nearest(dobs)
    f.postcodes = _nearest([(dist(m.start(), m.end()), m.group(0))
                            for m in ids.POSTCODE_IN_TEXT.finditer(window)])
    emails = []
    for m in ids.EMAIL_IN_TEXT.finditer(window):
        e = ids.email_norm(m.group(0))
        if e and e not in emails:
            emails.append(e)
    f.emails = emails
    plain = blank_keys(_strip_emails_keep_offsets(window))
    # A word the window's email spells (`jean.dupont@…`) is not a name proof: that would be the
    # email counted twice.
    locals_ = [ids.fold(e.partition("@")[0]).replace(" ", "") for e in emails]
    words = [(m.start(), m.end(), w) for m in _WORD.finditer(plain)
             if len(w := ids.fold(m.group(0))) > 1 and " " not in w
             and not any(w in local for local in locals_)]
    names = []
    for i in range(len(words)):
        for size in (2, 3, 4):
            run = words[i:i + size]
            if len(run) < size:
                break
            if run[-1][0] - run[0][1] > 40 * size:   # words far apart are not one name
                break
            toks = sorted(w for _, _, w in run)
            names.append((min(dist(s, e) for s, e, _ in run) * 4 + size, " ".join(toks)))
    f.names = _nearest(names, 80)
    if f.names:
        f.name_tokens = f.names[0].split()
    return f


def _nearest(scored: list[tuple[int, str]], cap: int = 12) -> list[str]:
    out: list[str] = []
    for _, v in sorted(scored, key=lambda x: x[0]):
        if v not in out:
            out.append(v)
            if len(out) >= cap:
                break
    return out


def _strip_emails_keep_offsets(text: str) -> str:
    return ids.EMAIL_IN_TEXT.sub(lambda m: " " * len(m.group(0)), text)

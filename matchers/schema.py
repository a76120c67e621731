"""Schema matcher: which column holds what, and how much a table looks like a lab-patient file.

Columns are mapped by their header (fuzzy, French and English aliases, with rapidfuzz) and by a
content profile of a sample of their values (a headerless column of valid NIRs is the NIR column).
Nothing here keeps a value: only column names, kinds and scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from matchers import identifiers as ids

ALIASES: dict[str, tuple[str, ...]] = {
    "last_name": ("nom", "nom de famille", "nom naissance", "nom de naissance", "nom usage", "nom patient",
                  "last name", "lastname", "surname", "family name", "name last", "patient nom"),
    "first_name": ("prenom", "prenoms", "first name", "firstname", "given name", "forename", "name first",
                   "patient prenom"),
    "full_name": ("nom complet", "nom et prenom", "nom prenom", "identite", "patient", "name", "full name",
                  "fullname"),
    "birth_date": ("date de naissance", "date naissance", "naissance", "ddn", "ne le", "nee le", "dob",
                   "birth date", "birthdate", "date of birth", "birthday", "date naiss"),
    "nir": ("nir", "n secu", "no secu", "num secu", "numero secu", "numero de securite sociale",
            "numero securite sociale", "securite sociale", "secu", "n ss", "no ss", "num ss", "nss",
            "ssn", "social security number", "social security", "insee", "numero insee", "matricule"),
    "phone": ("telephone", "tel", "tel fixe", "tel portable", "telephone portable", "portable", "mobile",
              "gsm", "phone", "phone number", "telephone number", "cell", "mobile phone", "numero de telephone"),
    "email": ("email", "e mail", "mail", "courriel", "adresse mail", "adresse email", "email address",
              "adresse electronique"),
    "address": ("adresse", "adresse postale", "rue", "voie", "address", "street", "street address",
                "address line"),
    "postcode": ("code postal", "cp", "zip", "zip code", "zipcode", "postcode", "postal code"),
    "city": ("ville", "commune", "localite", "city", "town"),
    "sex": ("sexe", "genre", "civilite", "sex", "gender", "title"),
    "blood_group": ("groupe sanguin", "groupe", "gs", "groupe rhesus", "blood type", "blood group", "abo"),
    "doctor": ("medecin traitant", "medecin", "medecin prescripteur", "prescripteur", "doctor", "physician",
               "gp", "referring doctor"),
    "insurer": ("mutuelle", "complementaire", "organisme", "assurance", "caisse", "insurer", "insurance",
                "health insurance"),
    "comment": ("commentaire", "commentaires", "remarque", "remarques", "observation", "observations",
                "info", "informations", "notes", "note", "comment", "comments", "info medicale"),
    "treatment": ("traitement", "traitements", "traitement en cours", "medicaments", "treatment",
                  "treatments", "medication", "medications", "drugs"),
    "pathology": ("pathologie", "pathologies", "maladie", "maladies", "diagnostic", "antecedents",
                  "condition", "conditions", "diagnosis", "disease"),
    "lab": ("laboratoire", "labo", "lab", "laboratory", "site", "etablissement", "centre"),
    "sample_date": ("date prelevement", "date de prelevement", "prelevement", "date examen", "date analyse",
                    "sample date", "collection date"),
}
KINDS = tuple(ALIASES)
NAME_KINDS = ("last_name", "first_name", "full_name")
HEALTH_KINDS = ("blood_group", "treatment", "pathology", "comment")

# How much each kind says that a table is a lab-patient file (the generic schema).
WEIGHTS = {
    "nir": 3.0, "last_name": 1.5, "first_name": 1.5, "full_name": 1.5, "birth_date": 1.5, "phone": 1.0,
    "email": 1.0, "address": 0.5, "postcode": 0.5, "city": 0.5, "sex": 0.25, "blood_group": 1.0,
    "doctor": 1.0, "insurer": 1.0, "comment": 0.5, "treatment": 1.0, "pathology": 1.0, "lab": 0.5,
    "sample_date": 0.5,
}
GENERIC_SCHEMA = frozenset(WEIGHTS) - {"full_name"}

_ALIAS_KIND = {ids.fold(a): k for k, aliases in ALIASES.items() for a in aliases}
_ALIAS_CHOICES = [a for a in _ALIAS_KIND if len(a) >= 4]
# Kinds a column's values can prove by themselves.
PROFILED = ("nir", "email", "phone", "birth_date", "postcode", "blood_group")


@lru_cache(maxsize=8192)
def header_kind(name: str) -> str | None:
    """The kind a column header names, if any (``N° Sécu`` → ``nir``, ``zip`` → ``postcode``)."""
    key = ids.fold(name)
    if not key:
        return None
    if key in _ALIAS_KIND:
        return _ALIAS_KIND[key]
    if len(key) < 4:
        return None
    from rapidfuzz import fuzz, process  # with the first header that is no alias: start-up stays short

    best = process.extractOne(key, _ALIAS_CHOICES, scorer=fuzz.token_sort_ratio, score_cutoff=86)
    if best:
        return _ALIAS_KIND[best[0]]
    # A flattened JSON key ("patient.identite.nom", "contact/mail"): its last part names the field.
    for sep in (".", "/"):
        if sep in name.strip(sep):
            return header_kind(name.strip(sep).rsplit(sep, 1)[1])
    return None


def value_kind(value: str) -> str | None:
    """The kind a single value proves by its form, or ``None``.

    The values that prove no kind (product codes, prices, words: most of a document of noise) are
    remembered, a bounded set per process, so that the many short tables of a paste do not
    profile the same cells again. Never kept: a value that proves a kind, one longer than 80
    characters, or one with an ``@`` or 9 digits (an identifier that failed its check is still no
    one's to keep).
    """
    if value in _KINDLESS:
        return None
    kind = _value_kind(value)
    if kind is None and len(value) <= 80 and "@" not in value and sum(map(str.isdigit, value)) < 9:
        if len(_KINDLESS) >= _KINDLESS_MAX:
            _KINDLESS.clear()
        _KINDLESS.add(value)
    return kind


_KINDLESS: set[str] = set()
_KINDLESS_MAX = 65536


def _value_kind(value: str) -> str | None:
    """:func:`value_kind`, computed.

    Column profiles use the reference libraries: a NIR with its key must pass python-stdnum's
    check (:func:`_keyed_nir_valid`), a phone must be one phonenumbers accepts (the scan's
    vectorised paths agree with them).
    """
    v = value.strip()
    if not v or len(v) > 80:
        return None
    if "@" in v:
        return "email" if ids.email_norm(v) else None
    if any(c.isdigit() for c in v):
        p = ids.nir_parts(v)
        if p and (_keyed_nir_valid(v) if p[1] else len(v.translate(ids._NIR_STRIP)) == 13):
            return "nir"
        if ids.phone_nsn(v) and ids.PHONE_IN_TEXT.fullmatch(v) and ids.phone_e164(v):
            return "phone"
        if ids.date_norm(v):
            return "birth_date"
        if ids.postcode_norm(v):
            return "postcode"
    if ids.BLOOD_GROUP.match(v):
        return "blood_group"
    return None


def _keyed_nir_valid(v: str) -> bool:
    """python-stdnum's verdict on a NIR :func:`matchers.identifiers.nir_parts` found with its key.

    The two checks are the same (digits, Corsica's ``2A``/``2B``, 15 characters, the key mod 97):
    they can only differ on a key written in non-ASCII digits, which ``str.isdigit`` accepts and
    stdnum does not; only then is stdnum asked (a property test holds them equal), so a scan's
    start-up does not import stdnum for the NIRs of its profiles.
    """
    return v.translate(ids._NIR_STRIP).isascii() or ids.is_valid_nir(v)


@dataclass(frozen=True)
class Mapping:
    """Which columns (by index or key) hold which kind, and the evidence behind it."""

    columns: dict[int | str, str] = field(default_factory=dict)  # column -> kind
    header: tuple[str, ...] | None = None
    name_parts: tuple[int | str, ...] = ()  # headerless alphabetic columns that may hold names

    def cols(self, kind: str) -> list[int | str]:
        return [c for c, k in self.columns.items() if k == kind]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.columns.values())


def map_columns(header: Sequence[str] | None, sample_rows: Sequence[Sequence[str]] | Sequence[dict],
                overrides: dict[str, str] | None = None) -> Mapping:
    """Map the columns of a table from its header and a sample of its rows.

    ``sample_rows`` are sequences (delimited, html) or dicts (json, key-value: keys act as header).
    ``overrides`` maps a column name (or its index as a string) to a kind, or to ``""`` to ignore it.

    A column's kind depends on its header name and, per value, only on what :func:`_named_signature`
    keeps (blank or not, the kind the value proves, whether it looks like a name): the many tiny
    tables of a paste (``sku;designation;prix;stock`` snippets) share a header and those
    signatures, so a small table's mapping is remembered by them (:func:`_memo_key`, a bounded
    memo per process that keeps no value) and computed once.
    """
    dicts = bool(sample_rows) and isinstance(sample_rows[0], dict)
    if not dicts:
        width = max((len(r) for r in sample_rows), default=len(header or ()))
        names = list(header or ()) + [""] * (width - len(header or ()))
        if not overrides and (key := _memo_key(header, sample_rows, width, names)) is not None:
            if (mapping := _MAPPINGS.get(key)) is None:
                if len(_MAPPINGS) >= _MAPPINGS_MAX:
                    _MAPPINGS.clear()
                mapping = _MAPPINGS[key] = _mapping(header, list(range(width)), names, key[2], {})
            return mapping
    overrides = {ids.fold(k) if not k.isdigit() else k: v for k, v in (overrides or {}).items()}
    if dicts:
        keys: list[str] = []
        for r in sample_rows:
            keys.extend(k for k in r if k not in keys)
        columns: list[int | str] = list(keys)
        names = keys
        values = {k: [r.get(k, "") for r in sample_rows] for k in keys}
    else:
        columns = list(range(width))
        values = {i: [r[i] if i < len(r) else "" for r in sample_rows] for i in columns}
    sigs = tuple(tuple(map(_named_signature if name else _unnamed_signature, values[col]))
                 for col, name in zip(columns, names))
    return _mapping(header, columns, names, sigs, overrides)


# The memo of small tables' mappings: (header, width, signatures) -> Mapping (never mutated).
_MAPPINGS: dict[tuple, Mapping] = {}
_MAPPINGS_MAX = 4096
_MEMO_ROWS, _MEMO_WIDTH, _MEMO_CELL = 16, 32, 80  # tables larger than this are mapped afresh


def _memo_key(header: Sequence[str] | None, rows: Sequence[Sequence[str]], width: int,
              names: list[str]) -> tuple | None:
    """The memo's key of a small table of sequence rows, or ``None`` (not remembered).

    Only the header's names and the cells' signatures (:func:`_named_signature`): no value. A
    header that could be a row of data with an identifier (a cell with an ``@`` or 9 digits, or
    a long one) is not kept.
    """
    if len(rows) > _MEMO_ROWS or width > _MEMO_WIDTH:
        return None
    head = tuple(header) if header else None
    if head and not _keepable(head):
        return None
    if any(len(r) != width for r in rows):
        rows = [list(r) + [""] * (width - len(r)) for r in rows]
    sigs = tuple(tuple(map(_named_signature if name else _unnamed_signature, cells))
                 for cells, name in zip(zip(*rows) if rows else [()] * width, names))
    return head, width, sigs


@lru_cache(maxsize=1024)
def _keepable(head: tuple[str, ...]) -> bool:
    """Whether a header's names may be a key of the memo (none could be an identifier)."""
    return not any(len(h) > _MEMO_CELL or "@" in h or sum(map(str.isdigit, h)) >= 9 for h in head)


def _named_signature(value: str) -> object:
    """What a column's mapping needs of one value: ``0`` when blank, else the kind it proves
    (:func:`value_kind`, ``None`` if none)."""
    return 0 if not value or value.isspace() else value_kind(value)


def _unnamed_signature(value: str) -> object:
    """:func:`_named_signature`, and, for a column without a header name, whether the value
    looks like a name part (short, no digit, at most three words)."""
    if not value or value.isspace():
        return 0
    return value_kind(value), len(value) <= 40 and not any(c.isdigit() for c in value) and len(value.split()) <= 3


def _mapping(header: Sequence[str] | None, columns: list[int | str], names: list[str],
             sigs: tuple[tuple, ...], overrides: dict[str, str]) -> Mapping:
    """:func:`map_columns` from the header names and the cells' signatures.

    By content, a column takes the kind most of its values prove, if it is a :data:`PROFILED` kind
    proved by ≥ 60 % of them (values with medical words need not be counted: no share of them
    could beat a kind proved by ≥ 60 %, and a kind proved by fewer loses anyway). A column without
    a header name whose kind is unknown may hold name parts if ≥ 80 % of its values look like one.
    """
    mapped: dict[int | str, str] = {}
    alpha: list[int | str] = []
    for col, name, sig in zip(columns, names, sigs):
        fname = ids.fold(str(name))
        if fname in overrides or str(col) in overrides:
            kind = overrides.get(fname, overrides.get(str(col)))
            if kind:
                mapped[col] = kind
            continue
        unnamed = not name
        filled = [c for c in sig if c != 0]
        counts: dict[str, int] = {}
        for c in filled:
            k = c[0] if unnamed else c
            if k:
                counts[k] = counts.get(k, 0) + 1
        by_content = max(counts.items(), key=lambda kv: kv[1]) if counts else None
        kind = header_kind(str(name)) if name else None
        if by_content and by_content[1] / len(filled) >= 0.6 and by_content[0] in PROFILED:
            # Values that prove their kind win over a misleading header, except for dates
            # (a header tells a birth date from a sample date) and postcodes (vs. other 5-digit codes).
            if not (kind and by_content[0] in ("birth_date", "postcode")):
                kind = by_content[0]
        if kind:
            mapped[col] = kind
        elif unnamed and filled and sum(c[1] for c in filled) / len(filled) >= 0.8:
            alpha.append(col)
    return Mapping(columns=mapped, header=tuple(header) if header else None, name_parts=tuple(alpha))


def schema_score(kinds: Iterable[str], reference: Iterable[str] = GENERIC_SCHEMA) -> float:
    """Weighted share of the reference schema's kinds that the table has (0–1)."""
    ref = set(reference)
    have = set(kinds)
    if "full_name" in have:
        have |= {"last_name", "first_name"}
    total = sum(WEIGHTS.get(k, 0.5) for k in ref)
    return sum(WEIGHTS.get(k, 0.5) for k in ref & have) / total if total else 0.0


def header_similarity(header: Sequence[str] | None, reference: Sequence[str]) -> float:
    """Share of the reference header's names found (fuzzily) in a table's header (0–1)."""
    if not header or not reference:
        return 0.0
    from rapidfuzz import fuzz, process

    mine = [ids.fold(h) for h in header if h]
    hits = sum(1 for r in reference
               if process.extractOne(ids.fold(r), mine, scorer=fuzz.ratio, score_cutoff=90))
    return hits / len(reference)

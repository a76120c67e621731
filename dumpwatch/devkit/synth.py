"""Synthetic patients of French medical labs, and reposts of them in every shape a dump takes.

Never real data: names and places come from Faker's ``fr_FR`` locale, NIRs are made up with a valid
check key, phones are random numbers of the French mobile and overseas plans. Deterministic for a seed.

Used by the tests, the benchmark and ``dumpwatch demo``::

    people = generate(1000, seed=1)
    write_csv(people, "leak.csv")
    write_repost(people[:200], "repost.json", fmt="json", english=True, spaced_nir=True, seed=2)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from dumpwatch.errors import DumpwatchError

COLUMNS = (
    "laboratoire", "nom", "prenom", "sexe", "date_naissance", "adresse", "code_postal", "ville",
    "telephone", "email", "nir", "groupe_sanguin", "medecin_traitant", "mutuelle", "commentaire",
    "traitement", "pathologie", "date_prelevement",
)

# How a reposter translates the header.
ENGLISH = {
    "laboratoire": "lab", "nom": "last_name", "prenom": "first_name", "sexe": "gender",
    "date_naissance": "birth_date", "adresse": "street_address", "code_postal": "zip",
    "ville": "city", "telephone": "phone", "email": "mail", "nir": "ssn",
    "groupe_sanguin": "blood_type", "medecin_traitant": "doctor", "mutuelle": "insurer",
    "commentaire": "notes", "traitement": "treatment", "pathologie": "condition",
    "date_prelevement": "sample_date",
}

LABS = (
    "Laboratoire Atlantique Bio", "LBM Armor Analyses", "Biolab Vannes", "Cerballiance Lorient",
    "Laboratoire du Blavet", "Bio Pontivy", "LBM Côte d'Émeraude", "Laboratoire Saint-Brieuc Sud",
    "Biopôle Lannion", "Labo Quimper Odet", "LBM Rance", "Laboratoire de Ploërmel",
)
# Where patients of north-west labs were born (weights): mostly Brittany, some Paris, a few born
# in Corsica (2A/2B: letters in the NIR) or abroad (99).
DEPARTMENTS = {"56": 30, "22": 25, "29": 12, "35": 12, "44": 6, "75": 6, "99": 5, "2A": 2, "2B": 2}
BLOOD = ("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-")
INSURERS = ("MGEN", "Harmonie Mutuelle", "Malakoff Humanis", "MAAF Santé", "Groupama", "AG2R",
            "Mutuelle de Bretagne", "CCMO")
COMMENTS = ("", "", "", "", "grossesse 12 SA", "patiente enceinte", "à jeun", "diabétique",
            "sous anticoagulants", "contrôle INR", "allergie pénicilline", "suivi post-opératoire")
TREATMENTS = ("", "", "", "Lévothyrox 75", "Metformine 850", "Kardegic 75", "Préviscan",
              "Truvada", "Insuline", "Amoxicilline", "Doliprane 1000")
PATHOLOGIES = ("", "", "", "", "VIH", "hépatite C", "diabète de type 2", "hypothyroïdie",
               "insuffisance rénale", "cancer du sein", "hypertension")
MAIL_DOMAINS = ("orange.fr", "gmail.com", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr",
                "hotmail.fr", "yahoo.fr")
OVERSEAS = (("0262", "RE"), ("0590", "GP"), ("0596", "MQ"), ("0594", "GF"), ("0269", "YT"))


def nir_key(body: str) -> int:
    """The 2-digit check key of a 13-character NIR body (Corsica 2A/2B read as 19/18)."""
    numeric = body.replace("2A", "19").replace("2B", "18") if body[5:7] in ("2A", "2B") else body
    return 97 - int(numeric) % 97


def make_nir(rng: random.Random, sex: str, year: int, month: int) -> str:
    dept = rng.choices(tuple(DEPARTMENTS), weights=tuple(DEPARTMENTS.values()))[0]
    commune = f"{rng.randint(1, 990):03d}"
    order = f"{rng.randint(1, 999):03d}"
    body = f"{1 if sex == 'M' else 2}{year % 100:02d}{month:02d}{dept}{commune}{order}"
    return f"{body}{nir_key(body):02d}"


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c in "-.")


class _Pools:
    """Faker is slow per call: draw pools once, then combine them at random."""

    def __init__(self, seed: int):
        try:
            from faker import Faker
        except ImportError:  # a development tool: not installed with the monitor itself
            raise DumpwatchError("synthetic data needs Faker, in the 'demo' and 'test' extras: "
                                 "pip install 'dumpwatch[demo]' (or run make demo)") from None

        fake = Faker("fr_FR")
        fake.seed_instance(seed)
        self.last = sorted({fake.last_name() for _ in range(3000)})
        self.first_m = sorted({fake.first_name_male() for _ in range(800)})
        self.first_f = sorted({fake.first_name_female() for _ in range(800)})
        self.streets = sorted({fake.street_name() for _ in range(3000)})
        self.cities = sorted({fake.city() for _ in range(600)})
        self.doctors = [f"Dr {fake.last_name()}" for _ in range(400)]


def generate(n: int, *, seed: int = 0, labs: Sequence[str] = LABS) -> list[dict[str, str]]:
    """``n`` synthetic patients (dicts keyed by :data:`COLUMNS`), unique NIRs, emails and phones."""
    rng = random.Random(seed)
    pools = _Pools(seed)
    seen_nir: set[str] = set()
    seen_mail: set[str] = set()
    seen_phone: set[str] = set()
    people = []
    while len(people) < n:
        sex = rng.choice("MF")
        first = rng.choice(pools.first_m if sex == "M" else pools.first_f)
        last = rng.choice(pools.last)
        year, month, day = rng.randint(1930, 2015), rng.randint(1, 12), rng.randint(1, 28)
        nir = make_nir(rng, sex, year, month)
        if nir in seen_nir:
            continue
        if rng.random() < 0.03:
            prefix, _region = rng.choice(OVERSEAS)
            phone = prefix + f"{rng.randint(0, 999999):06d}"
        else:
            phone = rng.choice(("06", "07")) + f"{rng.randint(0, 99999999):08d}"
        mail = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 9999)}@{rng.choice(MAIL_DOMAINS)}"
        if phone in seen_phone or mail in seen_mail:
            continue
        seen_nir.add(nir)
        seen_phone.add(phone)
        seen_mail.add(mail)
        dept = nir[5:7] if nir[5:7].isdigit() and nir[5:7] not in ("99", "75") else "56"
        people.append({
            "laboratoire": rng.choice(labs),
            "nom": last.upper() if rng.random() < 0.5 else last,
            "prenom": first,
            "sexe": sex,
            "date_naissance": f"{day:02d}/{month:02d}/{year}",
            "adresse": f"{rng.randint(1, 120)} {rng.choice(pools.streets)}",
            "code_postal": f"{dept}{rng.randint(0, 999):03d}",
            "ville": rng.choice(pools.cities),
            "telephone": " ".join(phone[i:i + 2] for i in range(0, 10, 2)) if rng.random() < 0.5 else phone,
            "email": mail,
            "nir": nir,
            "groupe_sanguin": rng.choice(BLOOD) if rng.random() < 0.4 else "",
            "medecin_traitant": rng.choice(pools.doctors) if rng.random() < 0.6 else "",
            "mutuelle": rng.choice(INSURERS) if rng.random() < 0.5 else "",
            "commentaire": rng.choice(COMMENTS),
            "traitement": rng.choice(TREATMENTS),
            "pathologie": rng.choice(PATHOLOGIES),
            "date_prelevement": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2015, 2020)}",
        })
    return people


# -- transformations a reposter applies --------------------------------------------------------

def spaced_nir(nir: str) -> str:
    return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:15]}"


def intl_phone(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return f"+33 {digits[1]} {digits[2:4]} {digits[4:6]} {digits[6:8]} {digits[8:10]}"


def typo(text: str, rng: random.Random) -> str:
    """One substitution, deletion or swap inside a word of at least 4 letters."""
    if len(text) < 4:
        return text
    i = rng.randint(1, len(text) - 2)
    op = rng.choice("sdt")
    if op == "s":
        return text[:i] + rng.choice("aeiourstn") + text[i + 1:]
    if op == "d":
        return text[:i] + text[i + 1:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def transform(people: Iterable[dict[str, str]], *, seed: int = 0, columns: Sequence[str] | None = None,
              shuffle_columns: bool = False, english: bool = False, spaced: bool = False,
              intl: bool = False, typos: float = 0.0, upper_names: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a reposted copy: a column subset, reordered, renamed, reformatted, mistyped."""
    rng = random.Random(seed)
    cols = list(columns or COLUMNS)
    if shuffle_columns:
        rng.shuffle(cols)
    rows = []
    for p in people:
        p = dict(p)
        if spaced:
            p["nir"] = spaced_nir(p["nir"])
        if intl and not p["telephone"].replace(" ", "").startswith(tuple(o for o, _ in OVERSEAS)):
            p["telephone"] = intl_phone(p["telephone"])
        if typos and rng.random() < typos:
            p["nom"] = typo(p["nom"], rng)
        if upper_names:
            p["nom"], p["prenom"] = p["nom"].upper(), p["prenom"].upper()
        rows.append([p[c] for c in cols])
    header = [ENGLISH[c] if english else c for c in cols]
    return header, rows


# -- writers -----------------------------------------------------------------------------------

def csv_text(header: Sequence[str] | None, rows: Iterable[Sequence[str]], delimiter: str = ";",
             quoting: int = csv.QUOTE_MINIMAL) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, quoting=quoting, lineterminator="\n")
    if header:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_csv(people: Sequence[dict[str, str]], path: str | Path, *, delimiter: str = ";",
              encoding: str = "utf-8") -> Path:
    """The leaked file as it was sold: French header, ``;`` separated."""
    header, rows = transform(people)
    path = Path(path)
    path.write_text(csv_text(header, rows, delimiter), encoding=encoding)
    return path


def render(header: Sequence[str], rows: Sequence[Sequence[str]], fmt: str, *, seed: int = 0,
           delimiter: str = ",", with_header: bool = True) -> str:
    """Text of a repost in one of the shapes dumps take on paste sites and forums.

    ``fmt``: ``csv``, ``json`` (array), ``jsonl``, ``json-object`` (object of arrays),
    ``kv`` (``Nom: …`` blocks), ``html`` (a table in a page), ``chatter`` (a dozen rows in the middle
    of unrelated text).
    """
    rng = random.Random(seed)
    dicts = [dict(zip(header, r)) for r in rows]
    if fmt == "csv":
        return csv_text(header if with_header else None, rows, delimiter)
    if fmt == "json":
        return json.dumps(dicts, ensure_ascii=False, indent=1)
    if fmt == "jsonl":
        return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dicts)
    if fmt == "json-object":
        return json.dumps({"source": "db export", "patients": dicts}, ensure_ascii=False)
    if fmt == "kv":
        blocks = ["\n".join(f"{k}: {v}" for k, v in d.items() if v) for d in dicts]
        return "---- FULLZ FR ----\n\n" + "\n\n".join(blocks) + "\n"
    if fmt == "html":
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>\n" for r in rows)
        return (f"<html><head><title>dump</title></head><body><nav><a href='/'>Accueil</a></nav>"
                f"<p>Voici la base</p><table><tr>{head}</tr>\n{body}</table><footer>forum</footer></body></html>")
    if fmt == "chatter":
        noise = [f"[{rng.randint(10, 23)}:{rng.randint(10, 59)}] user{rng.randint(1, 99)}: "
                 + rng.choice(("quelqu'un a la suite ?", "merci pour le partage", "lien mort",
                               "def foo(x): return x * 2", "ERROR 1064 (42000) at line 1",
                               "tracking 1Z999AA10123456784 delivered 20210224123045"))
                 for _ in range(40)]
        lines = [";".join(r) for r in rows]
        return "\n".join(noise[:20] + lines + noise[20:]) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def write_repost(people: Sequence[dict[str, str]], path: str | Path, *, fmt: str = "csv",
                 encoding: str = "utf-8", compress: str | None = None, seed: int = 0,
                 delimiter: str = ",", with_header: bool = True, **changes) -> Path:
    """Write a transformed copy; ``compress`` is ``None``, ``gzip`` or ``zip`` (nested folder)."""
    header, rows = transform(people, seed=seed, **changes)
    data = render(header, rows, fmt, seed=seed, delimiter=delimiter,
                  with_header=with_header).encode(encoding)
    path = Path(path)
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("README.txt", "base complete, enjoy\n")
            zf.writestr(f"export/2021/{path.stem}.{fmt if fmt != 'chatter' else 'txt'}", data)
        data = buf.getvalue()
    path.write_bytes(data)
    return path


# -- strangers: another breach's customers (issue 8, chance matches at scale) ------------------------

# The 40 most common French surnames and first names (INSEE): the worst case for a name proof.
COMMON_SURNAMES = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
    "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Lefèvre", "Faure", "André",
    "Mercier", "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Garcia",
)
COMMON_FIRST_NAMES = (
    "Marie", "Jean", "Pierre", "Michel", "Philippe", "Nathalie", "Isabelle", "Alain", "Sylvie", "Catherine",
    "Jacques", "Patrick", "Martine", "Françoise", "Christine", "Nicolas", "Christophe", "Daniel", "Bernard",
    "Monique", "Sophie", "Valérie", "Stéphane", "Frédéric", "Éric", "Laurent", "Sandrine", "Julien", "David",
    "Thomas", "Céline", "Anne", "Jean-Pierre", "Sébastien", "Véronique", "Nicole", "Pascal", "Olivier",
    "Thierry", "Christian",
)
SHOP_DOMAINS = ("gmail.com", "orange.fr", "hotmail.fr", "free.fr", "sfr.fr", "outlook.fr", "icloud.com")
CUSTOMER_COLUMNS = ("client_id", "nom", "prenom", "telephone", "email", "ville", "montant")


def customers(n: int, *, seed: int = 0, phones: Sequence[str] = (), collide: float = 0.0,
              names: Sequence[tuple[str, str]] = ()) -> Iterator[list[str]]:
    """Rows (:data:`CUSTOMER_COLUMNS`) of a shop's customer export: strangers with the commonest
    names (half of them with a ``(last, first)`` of ``names`` when given: the population the leak
    was drawn from), random French mobiles and shop emails. A share ``collide`` of the rows takes a
    phone of ``phones`` instead (the chance collisions of a large input, made frequent)."""
    rng = random.Random(seed)
    for i in range(n):
        if names and rng.random() < 0.5:
            last, first = rng.choice(names)
        else:
            last, first = rng.choice(COMMON_SURNAMES), rng.choice(COMMON_FIRST_NAMES)
        if phones and rng.random() < collide:
            phone = rng.choice(phones)
        else:
            phone = f"0{rng.choice('67')}{rng.randrange(10**8):08d}"
        # Six digits: never the address of a leaked person (generate() uses 1 to 9999); two people
        # do not share a mailbox.
        mail = f"{_ascii(first)}.{_ascii(last)}{rng.randrange(10**5, 10**6)}@{rng.choice(SHOP_DOMAINS)}"
        yield [f"C{i:08d}", last.upper() if rng.random() < 0.3 else last, first, phone, mail,
               rng.choice(("Paris", "Lyon", "Marseille", "Rennes", "Nantes", "Lille", "Brest")),
               f"{rng.randrange(5, 900)}.{rng.randrange(100):02d}"]

"""The engine's invariants as properties (issue 8), checked by Hypothesis on generated reposts.

For any subset of an enrolled synthetic leak, reshaped in any way a reposter does — columns dropped
(keeping two independent fields), renamed, reordered; any delimiter, quoting, encoding, header or
none; JSON, JSON lines, key-value blocks, an HTML table, rows inline in chatter; the shapes no parser
knows (line-numbered paste, quoted mail, one-line SQL insert, minified JSON, ``key=value``,
XML-ish, YAML-ish, a JavaScript literal); base64 and hex blobs; gzip and zip — with strangers mixed
in:

* every record of the subset is confirmed, and nothing else (strangers never are);
* counts never exceed the input (``records_seen`` and ``matched_records`` ≤ records written);
* ``errors`` is empty.

Then the matrix of proofs: each pair of independent fields confirms a record on its own, each
single field never does, in a table and in a shape only proximity reads.
"""

from __future__ import annotations

import base64
import csv
import functools
import gzip
import io
import json
import random
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpwatch.devkit import synth
from matchers.enroll import enroll_stream
from matchers.scan import Scanner

KEY = bytes(range(32, 64))
LEAK_SIZE = 150

# Column sets that keep two independent fields (the name is the full name: last and first).
PROOFS = (
    ("nir", "telephone"),
    ("nir", "nom", "prenom"),
    ("telephone", "email"),
    ("telephone", "nom", "prenom"),
    ("email", "date_naissance", "nom", "prenom"),
    ("nom", "prenom", "date_naissance"),
    ("nir", "date_naissance"),
    ("nir", "email"),
)
# Columns that prove nothing by themselves, added at random.
EXTRAS = ("ville", "sexe", "laboratoire", "groupe_sanguin", "mutuelle", "commentaire", "adresse")
TABLE_SHAPES = ("csv", "json", "jsonl", "kv", "html", "chatter")
UNKNOWN_SHAPES = ("linenum", "quote", "sql", "minjson", "minjson-in-text", "keyeq", "xml",
                  "xml-oneline", "yaml", "jsish", "blob")
HEADERS = ("french", "english", "upper")


@functools.cache
def _leak() -> list[dict]:
    return synth.generate(LEAK_SIZE, seed=2021)


@functools.cache
def _others() -> list[dict]:
    return synth.generate(40, seed=7)


@pytest.fixture(scope="module")
def leak():
    return _leak()


@pytest.fixture(scope="module")
def scanner():
    data = synth.csv_text(*synth.transform(_leak())).encode()
    index, report = enroll_stream(io.BytesIO(data), "leak.csv", leak="labos", key=KEY,
                                  lab_column="laboratoire")
    assert report.records == LEAK_SIZE
    return Scanner([index], KEY)


# -- renderers ------------------------------------------------------------------------------------

def _sql(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"


def _csv_line(row, delimiter=",") -> str:
    return synth.csv_text(None, [row], delimiter).rstrip("\n")


def render(shape: str, header: list[str], rows: list[list[str]], rng: random.Random, *,
           delimiter: str = ";", quoting: int = csv.QUOTE_MINIMAL, with_header: bool = True,
           inner_encoding: str = "utf-8") -> str:
    dicts = [dict(zip(header, r)) for r in rows]
    if shape == "csv":
        return synth.csv_text(header if with_header else None, rows, delimiter, quoting)
    if shape in ("json", "jsonl", "kv", "html", "chatter"):
        return synth.render(header, rows, shape, seed=rng.randrange(100))
    if shape == "linenum":     # copied from a paste viewer: every line numbered
        lines = ([_csv_line(header, delimiter)] if with_header else []) + \
            [_csv_line(r, delimiter) for r in rows]
        sep = rng.choice((" | ", "\t", ": ", "  "))
        return "".join(f"{i:>4}{sep}{line}\n" for i, line in enumerate(lines, 1))
    if shape == "quote":       # quoted in a mail reply
        lines = ([_csv_line(header, delimiter)] if with_header else []) + \
            [_csv_line(r, delimiter) for r in rows]
        return "Le 24/02/2021, X a écrit :\n" + "".join(f"> {line}\n" for line in lines)
    if shape == "sql":         # one extended INSERT on one line
        cols = f" ({', '.join(header)})" if with_header else ""
        values = ",".join("(" + ",".join(_sql(v) for v in r) + ")" for r in rows)
        return f"INSERT INTO `patients`{cols} VALUES {values};\n"
    if shape == "minjson":
        return json.dumps(dicts, ensure_ascii=False, separators=(",", ":"))
    if shape == "minjson-in-text":
        return "voici la base : " + json.dumps(dicts, ensure_ascii=False, separators=(",", ":")) + " bonne lecture\n"
    if shape == "keyeq":       # key=value pairs, one record per line
        return "".join(" ".join(f"{k}={v}" for k, v in d.items() if v) + "\n" for d in dicts)
    if shape in ("xml", "xml-oneline"):
        end = "\n" if shape == "xml" else ""
        body = end.join("<patient>" + "".join(f"<{k}>{v}</{k}>" for k, v in d.items()) + "</patient>"
                        for d in dicts)
        return f"<export>{end}{body}{end}</export>\n"
    if shape == "yaml":        # list markers, indentation, nesting
        return "patients:\n" + "".join(
            "  - patient:\n" + "".join(f"      {k}: {v}\n" for k, v in d.items()) for d in dicts)
    if shape == "jsish":       # a JavaScript literal: single quotes, bare keys, trailing commas
        return "var data = [\n" + "".join(
            "  {" + ", ".join(f"{k}: '{v}'" for k, v in d.items()) + "},\n" for d in dicts) + "];\n"
    if shape == "blob":        # a base64 or hex blob of a CSV (maybe gzipped), alone or in chatter
        data = synth.csv_text(header, rows, delimiter).encode(inner_encoding)
        if rng.random() < 0.5:
            data = gzip.compress(data)
        if rng.random() < 0.5:
            text = base64.encodebytes(data).decode() if rng.random() < 0.5 else base64.b64encode(data).decode() + "\n"
        else:
            text = data.hex() + "\n"
        return text if rng.random() < 0.5 else f"salut, voila le fichier\n\n{text}\nenjoy\n"
    raise ValueError(shape)


def header_of(columns: list[str], style: str) -> list[str]:
    if style == "english":
        return [synth.ENGLISH[c] for c in columns]
    if style == "upper":
        return [c.upper() for c in columns]
    return list(columns)


def pack(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data)
    if how == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("lisez-moi.txt", "rien\n")
            zf.writestr("dump/patients.txt", data)
        return buf.getvalue()
    return data


def encode(text: str, encoding: str) -> bytes | None:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return None


# -- the properties -------------------------------------------------------------------------------

repost = st.fixed_dictionaries({
    "subset": st.lists(st.integers(0, LEAK_SIZE - 1), min_size=1, max_size=10, unique=True),
    "strangers": st.lists(st.integers(0, 39), max_size=4, unique=True),
    "proof": st.sampled_from(PROOFS),
    "extras": st.lists(st.sampled_from(EXTRAS), max_size=3, unique=True),
    "shape": st.sampled_from(TABLE_SHAPES + UNKNOWN_SHAPES),
    "header": st.sampled_from(HEADERS),
    "with_header": st.booleans(),
    "delimiter": st.sampled_from((";", ",", "\t", "|")),
    "quoting": st.sampled_from((csv.QUOTE_MINIMAL, csv.QUOTE_ALL)),
    "encoding": st.sampled_from(("utf-8", "cp1252", "utf-16")),
    "pack": st.sampled_from(("none", "none", "gzip", "zip")),
    "seed": st.integers(0, 10**6),
})

BOUNDED = settings(max_examples=40, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def build(case: dict, leak: list[dict], others: list[dict]) -> tuple[bytes, int]:
    rng = random.Random(case["seed"])
    columns = list(case["proof"]) + [c for c in case["extras"] if c not in case["proof"]]
    rng.shuffle(columns)
    people = [leak[i] for i in case["subset"]] + [others[i] for i in case["strangers"]]
    rng.shuffle(people)
    rows = [[p[c] for c in columns] for p in people]
    header = header_of(columns, case["header"])
    shape, with_header = case["shape"], case["with_header"]
    if not {"nir", "telephone", "email"} & set(columns):
        # Name and birth date alone: only a table whose columns are named says which is which
        # (proximity needs a strong identifier to anchor a window).
        shape = shape if shape in ("csv", "json", "jsonl", "kv", "html") else "csv"
        with_header = True
    inner = case["encoding"] if shape == "blob" else "utf-8"
    text = render(shape, header, rows, rng, delimiter=case["delimiter"],
                  quoting=case["quoting"], with_header=with_header, inner_encoding=inner)
    data = encode(text, "utf-8" if shape == "blob" else case["encoding"])
    return (pack(data, case["pack"]) if data is not None else None), len(people)


@BOUNDED
@given(case=repost)
def test_every_record_keeping_two_fields_is_confirmed_and_nothing_else(scanner, case):
    data, written = build(case, _leak(), _others())
    if data is None:
        return   # a name cp1252 cannot write
    f = scanner.scan_bytes(data, "repost")
    assert f.errors == ()
    assert f.matched_records == len(case["subset"]), (f.matched_records, f.records_seen)
    assert f.records_seen <= written
    assert f.verdict == ("repost" if len(case["subset"]) >= 3 else f.verdict)


@BOUNDED
@given(case=repost)
def test_strangers_are_never_confirmed(scanner, case):
    case = dict(case, subset=[], strangers=list(range(min(40, 5 + case["seed"] % 30))))
    data, written = build(case, [], _others())
    if data is None:
        return
    f = scanner.scan_bytes(data, "strangers")
    assert f.errors == ()
    assert f.matched_records == 0
    assert f.records_seen <= written
    assert f.verdict != "repost"


# -- the matrix of proofs -------------------------------------------------------------------------

FIELDS = {"nir": ("nir",), "phone": ("telephone",), "email": ("email",), "name": ("nom", "prenom"),
          "dob": ("date_naissance",)}
PAIRS = [("nir", "phone"), ("nir", "email"), ("phone", "email"), ("nir", "name"), ("phone", "name"),
         ("nir", "dob"), ("phone", "dob"), ("email", "dob"), ("name", "dob")]
SINGLES = list(FIELDS) + [("email", "name")]   # an email that spells the name is one proof


def _matrix_doc(people, kinds, shape, rng):
    columns = [c for k in kinds for c in FIELDS[k]] + ["ville"]
    rows = [[p[c] for c in columns] for p in people]
    return render(shape, columns, rows, rng).encode()


MATRIX_SHAPES = ("csv", "json", "xml-oneline", "keyeq", "minjson-in-text")


@pytest.mark.parametrize("pair,shape", [
    pytest.param(pair, shape, id=f"{'+'.join(pair)}-{shape}") for pair in PAIRS for shape in MATRIX_SHAPES
    # name + birth date alone: no strong identifier to anchor a proximity window (a table only)
    if "nir" in pair or "phone" in pair or "email" in pair or shape in ("csv", "json")])
def test_each_pair_of_independent_fields_confirms_a_record(scanner, leak, pair, shape):
    people = random.Random(5).sample(leak, 12)
    f = scanner.scan_bytes(_matrix_doc(people, pair, shape, random.Random(1)), "pair")
    assert f.errors == ()
    assert f.matched_records == 12


@pytest.mark.parametrize("shape", MATRIX_SHAPES)
@pytest.mark.parametrize("single", SINGLES, ids=lambda s: "+".join(s) if isinstance(s, tuple) else s)
def test_a_single_field_never_confirms_a_record(scanner, leak, single, shape):
    people = random.Random(6).sample(leak, 12)
    kinds = single if isinstance(single, tuple) else (single,)
    f = scanner.scan_bytes(_matrix_doc(people, kinds, shape, random.Random(2)), "single")
    assert f.errors == ()
    assert f.matched_records == 0

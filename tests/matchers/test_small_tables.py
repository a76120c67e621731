"""The tiny tables of a mixed paste (issue 9, branch ``tables``): the mapping of a small table is
remembered by its header and its cells' signatures (``matchers.schema._MAPPINGS``), and what it
finds is what the mapping computed from the values found.

- Hypothesis: over generated small tables (headers from the aliases, other words, none; cells of
  every provable kind, blanks, words, medical words, numbers), ``map_columns`` (memo cold or warm,
  across examples) equals the code before the memo (:func:`reference_map_columns`, copied from
  ``merge``, with its share of medical words);
- two snippets with other values of the same kinds share one entry;
- ``profiles.hidden_identifiers`` answers a sample without ``@`` nor a run of digits by one pass
  over all its rows: what the per-row reading answered (Hypothesis, against the code before);
- the memo is bounded (:data:`matchers.schema._MAPPINGS_MAX`) and keeps no value: a header that
  could be a row of data with an identifier is not remembered.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from dumpwatch.devkit import synth
from matchers import identifiers as ids
from matchers import profiles
from matchers import proximity as prox
from matchers import schema as sch
from matchers.records import from_mapped

# -- the reference: map_columns before the memo (merge 048d21d) ------------------------------------


def _profile(values):
    counts: dict[str, int] = {}
    n = 0
    health = 0
    for v in values:
        if not v or not v.strip():
            continue
        n += 1
        k = sch._value_kind(v)
        if k:
            counts[k] = counts.get(k, 0) + 1
        elif ids.health_terms(v):
            health += 1
    out = {k: c / n for k, c in counts.items()} if n else {}
    if n and health:
        out["health"] = health / n
    return out


def _looks_alphabetic(values: Sequence[str]) -> bool:
    vals = [v for v in values if v and v.strip()]
    if not vals:
        return False
    ok = sum(1 for v in vals if len(v) <= 40 and not any(c.isdigit() for c in v) and len(v.split()) <= 3)
    return ok / len(vals) >= 0.8


def reference_map_columns(header, sample_rows, overrides=None) -> sch.Mapping:
    overrides = {ids.fold(k) if not k.isdigit() else k: v for k, v in (overrides or {}).items()}
    if sample_rows and isinstance(sample_rows[0], dict):
        keys: list[str] = []
        for r in sample_rows:
            keys.extend(k for k in r if k not in keys)
        columns: list = list(keys)
        names = keys
        values = {k: [r.get(k, "") for r in sample_rows] for k in keys}
    else:
        width = max((len(r) for r in sample_rows), default=len(header or ()))
        columns = list(range(width))
        names = list(header or ()) + [""] * (width - len(header or ()))
        values = {i: [r[i] if i < len(r) else "" for r in sample_rows] for i in columns}
    mapped: dict = {}
    alpha: list = []
    for col, name in zip(columns, names):
        fname = ids.fold(str(name))
        if fname in overrides or str(col) in overrides:
            kind = overrides.get(fname, overrides.get(str(col)))
            if kind:
                mapped[col] = kind
            continue
        by_header = sch.header_kind(str(name)) if name else None
        prof = _profile(values[col])
        by_content = max(prof.items(), key=lambda kv: kv[1]) if prof else None
        kind = by_header
        if by_content and by_content[1] >= 0.6 and by_content[0] in sch.PROFILED:
            if not (by_header and by_content[0] in ("birth_date", "postcode")):
                kind = by_content[0]
        if kind:
            mapped[col] = kind
        elif not name and _looks_alphabetic(values[col]):
            alpha.append(col)
    return sch.Mapping(columns=mapped, header=tuple(header) if header else None, name_parts=tuple(alpha))


# -- generated small tables ----------------------------------------------------------------------

_PEOPLE = synth.generate(40, seed=11)
_BY_KIND = {
    "nir": [p["nir"] for p in _PEOPLE] + [synth.spaced_nir(p["nir"]) for p in _PEOPLE[:5]],
    "phone": [p["telephone"] for p in _PEOPLE] + [synth.intl_phone(p["telephone"]) for p in _PEOPLE[:5]],
    "email": [p["email"] for p in _PEOPLE] + ["pas@un mail", "a@b"],
    "date": [p["date_naissance"] for p in _PEOPLE] + ["1987-03-12", "31/02/1990"],
    "postcode": [p["code_postal"] for p in _PEOPLE] + ["00000", "2A004"],
    "blood": list(synth.BLOOD) + ["AB pos", "O nég"],
    "name": [p["nom"] for p in _PEOPLE] + [p["prenom"] for p in _PEOPLE] + ["Jean Pierre Marie Dupont"],
    "health": ["diabète de type 2", "Metformine 850", "patiente enceinte", "VIH", "insuline le matin"],
    "noise": ["A-1001", "Vis inox 4x40", "0.12", "5000", "89.90", "14", "Perceuse 18V", "x" * 50,
              "123456789012", "2021-02-24 10:12:01", "ok", "-", "N/A", "12345678"],
    "blank": ["", " ", "\t", "  \u00a0"],
}
_HEADERS = (["sku", "designation", "prix", "stock", "nom", "prenom", "telephone", "email", "nir", "ddn",
             "date de naissance", "code postal", "groupe sanguin", "commentaire", "traitement", "N° Sécu",
             "Téléphone portable", "remarques", "col", "", " "]
            + [a for aliases in list(sch.ALIASES.values())[:6] for a in aliases[:2]])

cells = st.sampled_from(sorted(_BY_KIND)).flatmap(lambda k: st.sampled_from(_BY_KIND[k]))


@st.composite
def tables(draw):
    width = draw(st.integers(1, 6))
    n_rows = draw(st.integers(0, 6))
    # Rows of uneven width sometimes (a ragged paste), a column often of one kind.
    column_kinds = [draw(st.sampled_from(sorted(_BY_KIND))) for _ in range(width)]
    rows = []
    for _ in range(n_rows):
        w = width if draw(st.booleans()) or width == 1 else draw(st.integers(1, width))
        rows.append([draw(st.sampled_from(_BY_KIND[column_kinds[i]])) if draw(st.integers(0, 4)) else draw(cells)
                     for i in range(w)])
    header = None
    if draw(st.integers(0, 3)):
        header = [draw(st.sampled_from(_HEADERS)) for _ in range(draw(st.integers(1, width + 1)))]
    return header, rows


@settings(max_examples=400, deadline=None)
@given(tables())
def test_memo_maps_as_the_values_do(table):
    header, rows = table
    want = reference_map_columns(header, rows)
    assert sch.map_columns(header, rows) == want  # cold, or warm from an earlier example
    assert sch.map_columns(header, rows) == want  # warm


def test_snippets_of_the_same_kinds_share_one_entry():
    sch._MAPPINGS.clear()
    rng = random.Random(3)
    people = synth.generate(30, seed=5)
    header = ["sku", "designation", "client", "tel", ""]
    for p, q in zip(people[:10], people[10:20]):
        rows = [[f"A-{rng.randrange(1000, 9999)}", "Vis inox 4x40", p["nom"], p["telephone"], p["prenom"]],
                [f"B-{rng.randrange(1000, 9999)}", "Perceuse 18V", q["nom"], q["telephone"], q["prenom"]]]
        assert sch.map_columns(header, rows) == reference_map_columns(header, rows)
    assert len(sch._MAPPINGS) == 1
    (mapping,) = sch._MAPPINGS.values()
    assert mapping.cols("phone") == [3] and mapping.name_parts == (4,)


def test_memo_is_bounded_and_keeps_no_value():
    sch._MAPPINGS.clear()
    person = synth.generate(1, seed=9)[0]
    values = [person["nir"], person["telephone"], person["email"], person["nom"], person["date_naissance"]]
    for i in range(sch._MAPPINGS_MAX + 50):
        sch.map_columns([f"colonne {i}", "nir", "telephone", "email", "nom", "ddn"], [[str(i), *values]])
        assert len(sch._MAPPINGS) <= sch._MAPPINGS_MAX
    assert sch._MAPPINGS  # still remembering
    keys = repr(list(sch._MAPPINGS))
    assert not any(v in keys for v in values)
    # A "header" that may be a row of data with an identifier (a headerless table misread) is not kept.
    sch._MAPPINGS.clear()
    for head in ([person["nir"], "x"], [person["email"], "x"], ["a" * 81, "x"]):
        got = sch.map_columns(head, [["A-1", "B"]])
        assert got == reference_map_columns(head, [["A-1", "B"]])
    assert not sch._MAPPINGS
    # Nor a table larger than a snippet (mapped once per table anyway), nor with overrides.
    sch.map_columns(["sku"], [["A-1"]] * (sch._MEMO_ROWS + 1))
    sch.map_columns(["sku"], [["A-1"]], {"sku": "nir"})
    assert not sch._MAPPINGS


# -- hidden identifiers: one pass over a sample without candidates ---------------------------------


def reference_hidden_identifiers(sample: list, mapping: sch.Mapping) -> bool:
    with_ids = hidden = 0
    for row in sample:
        anchors, _ = prox.find_anchors(prox.row_text(row))
        if not anchors:
            continue
        with_ids += 1
        f = from_mapped(row, mapping)
        mapped = {k for k, v in (("nir", f.nirs), ("email", f.emails), ("phone", f.phones)) if v}
        if {a.kind for a in anchors} - mapped or profiles._keyed_cell(row, mapping):
            hidden += 1
    return with_ids > 0 and hidden * 2 > with_ids


_GLUED = st.sampled_from(_BY_KIND["nir"] + _BY_KIND["phone"] + _BY_KIND["email"]).flatmap(
    lambda v: st.sampled_from([v, f"1 {v}", f'"{v}', f"{v} nom=DUPONT prenom=Jean", v.replace(" ", "")[:8],
                               v.replace(" ", "")[:-1], f"Ajaccio 2A{v[3:9]}" if v[:1].isdigit() else v]))


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 5).flatmap(lambda w: st.lists(st.lists(st.one_of(cells, _GLUED), min_size=w, max_size=w),
                                                   min_size=1, max_size=6)),
       st.booleans())
def test_hidden_identifiers_as_per_row(rows, as_dicts):
    sample = [{f"k{i}": v for i, v in enumerate(r)} for r in rows] if as_dicts else rows
    mapping = sch.map_columns(None, sample)
    assert profiles.hidden_identifiers(sample, mapping) == reference_hidden_identifiers(sample, mapping)


def test_hidden_identifiers_of_a_snippet_without_candidates_skip_the_rows(monkeypatch):
    rows = [["A-1001", "Vis inox 4x40", "0.12", "5000"], ["B-2001", "Perceuse 18V", "89.90", "14"]]
    mapping = sch.map_columns(["sku", "designation", "prix", "stock"], rows)
    monkeypatch.setattr(prox, "find_anchors", lambda *a, **k: (_ for _ in ()).throw(AssertionError("read")))
    assert not profiles.hidden_identifiers(rows, mapping)

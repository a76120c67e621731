"""Column profiles: what the first rows of a table tell about it, before its records are matched.

A table's first :data:`PROFILE_ROWS` rows are its profile: :func:`matchers.schema.map_columns`
maps its columns from them (the scanner and the enrollment alike), :func:`score_schema` weighs
that mapping against the enrolled leaks' columns (a ``schema-match`` needs no matched record),
:func:`hidden_identifiers` says whether the parse misses identifiers the rows' text holds (then
:mod:`matchers.match` reads the table as text, by proximity), and :func:`health_in_rows` looks
for medical words in a batch's values, whatever the headers say.

Used by :mod:`matchers.match` (per table), :mod:`matchers.scan` (the parallel path profiles the
head of the file once) and :mod:`matchers.enroll`.
"""

from __future__ import annotations

from collections.abc import Sequence

from matchers import identifiers as ids
from matchers import proximity as prox
from matchers import schema as sch
from matchers.index import LeakIndex
from matchers.records import from_mapped
from matchers.tally import Tally

PROFILE_ROWS = 200


def score_schema(mapping: sch.Mapping, n_rows: int, indexes: Sequence[LeakIndex], t: Tally) -> None:
    """Note the kinds a table's columns hold and how much its schema looks like a leak's (the best
    score over the enrolled leaks, or the generic score of the kinds alone) in ``t``."""
    kinds = mapping.kinds
    t.kinds |= kinds
    if n_rows < 3 or not kinds & {"nir", "email", "phone", "birth_date"}:
        return
    score, leak = sch.schema_score(kinds), None
    for idx in indexes:
        ref = set(idx.meta.get("columns", {}).values())
        s = max(sch.schema_score(kinds, ref) if ref else 0.0,
                sch.header_similarity(mapping.header, idx.meta.get("header", [])))
        if s > score or (s == score and s > 0 and leak is None):  # a tie with the generic schema: the leak's
            score, leak = s, idx.name
    if score > t.schema_score:
        t.schema_score, t.schema_leak = score, leak


def hidden_identifiers(sample: list, mapping: sch.Mapping) -> bool:
    """Whether most sample rows holding a strong identifier in their text hold one of a kind the
    parsed columns do not give (the table parse misses them: proximity reads such a table).

    A sample whose text has no ``@`` nor the run of digits of a NIR or a phone (the pre-filter of
    :func:`matchers.proximity.find_anchors`, on all its rows at once) holds no row with an
    identifier: most small tables of a paste are answered by that one pass. Exact: the squeezed
    text of a row is a piece of that of the rows joined (one byte per character or none)."""
    texts = list(map(prox.row_text, sample))
    if not _may_anchor("\n".join(texts)):
        return False
    with_ids = hidden = 0
    for row, text in zip(sample, texts):
        anchors, _ = prox.find_anchors(text)
        if not anchors:
            continue
        with_ids += 1
        f = from_mapped(row, mapping)
        mapped = {k for k, v in (("nir", f.nirs), ("email", f.emails), ("phone", f.phones)) if v}
        if {a.kind for a in anchors} - mapped or _keyed_cell(row, mapping):
            hidden += 1
    return with_ids > 0 and hidden * 2 > with_ids


def _may_anchor(text: str) -> bool:
    """False when :func:`matchers.proximity.find_anchors` finds nothing in ``text`` nor in any piece
    of it, by its own first test (no ``@``, no run of 9 digits, no Corsican NIR's run)."""
    if "@" in text:
        return True
    squeezed = ids.squeezed(text)
    return ids.PHONE_RUN in squeezed or ids.NIR_CORSICA_RUN in squeezed


def _keyed_cell(row, mapping: sch.Mapping) -> bool:
    """Whether a cell of a strong column holds other keyed values (``06… nom=X prenom=Y``)."""
    get = row.get if isinstance(row, dict) else (lambda c, _d="": row[c] if c < len(row) else _d)
    for col, kind in mapping.columns.items():
        if kind in prox.STRONG:
            cell = get(col, "")
            if cell and prox.blank_keys(cell) != cell:
                return True
    return False


def health_in_rows(batch: list, rows: int = PROFILE_ROWS) -> bool:
    """Whether the medical vocabulary (pathologies, treatments, pregnancy …) or a blood group
    appears in any value of a batch's first rows (header or not: ``diag``/``med`` columns too)."""
    text = "\n".join(" ; ".join(r.values() if isinstance(r, dict) else r) for r in batch[:rows])
    return bool(ids.health_terms(text) or ids.BLOOD_IN_TEXT.search(text))

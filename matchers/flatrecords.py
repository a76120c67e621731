"""Flat dict records (JSON lines, JSON arrays) matched as columns, on the batch path of delimited tables.

The extraction gives JSON records as ``dict[str, str]`` (:mod:`matchers.extract.jsondoc`). Matched
one by one (:func:`matchers.generic.match_generic`), every record is parsed field by field and
verified against its candidates even when two strong identifiers agree, so a JSON copy of a leak
cost five to fifteen times its CSV form. Most JSON dumps are rows of one table written as objects:
every record has the same keys. A batch of :data:`matchers.match.BATCH` such records becomes tuples
of values in the first record's key order (one C-level ``itemgetter`` pass) and goes through the
batch path (:meth:`matchers.match.Matcher._seq_batch`) with the table's mapping by position; a batch
in which any record has other keys takes the generic path, as before.

The two paths must give the same finding (``tests/matchers/test_json_columns.py`` states it with
Hypothesis). What the generic path counts and the batch path does not is counted here, per column:
blood groups, emails that do not validate (the batch path counts filled cells, the generic path
valid emails), medical words in a treatment, pathology or comment column. The redacted three-record
sample comes in the batch path's order (rows two strong identifiers confirm first), as for a CSV.
Records whose keys are data (``DUPONT: <NIR>`` lines read as one block, split one record per key by
the generic path) never take this path.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from matchers import identifiers as ids
from matchers import schema as sch
from matchers.columns import batched, column, email_column
from matchers.generic import guarded, match_generic
from matchers.records import _data_key
from matchers.tally import Tally

_STRONG = frozenset(("nir", "email", "phone"))


def columnar(sample: list, mapping: sch.Mapping) -> sch.Mapping | None:
    """The mapping of flat dict records by position (header: the keys of the first record), when
    they may take the batch path: strong keys mapped, every mapped key in the first record, and no
    strong key that is data; else None."""
    if not isinstance(sample[0], dict) or not mapping.kinds & _STRONG:
        return None
    keys = tuple(sample[0])
    where = {k: i for i, k in enumerate(keys)}
    if not keys or any(c not in where for c in (*mapping.columns, *mapping.name_parts)) or any(
            kind in _STRONG and _data_key(c) for c, kind in mapping.columns.items()):
        return None
    return sch.Mapping(columns={where[c]: kind for c, kind in mapping.columns.items()}, header=keys,
                       name_parts=tuple(where[c] for c in mapping.name_parts))


def match_records(matcher: Any, rows: Iterable, mapping: sch.Mapping, by_position: sch.Mapping,
                  t: Tally, batch_size: int) -> None:
    """Every record of ``rows`` into ``t`` (``matcher``: the :class:`matchers.match.Matcher`, not
    imported here: it imports this module): a batch whose records all have the first record's keys
    as columns (``by_position``), any other batch by the generic path (``mapping``)."""
    keys = by_position.header
    assert keys
    pick = operator.itemgetter(*keys) if len(keys) > 1 else (lambda r: (r[keys[0]],))
    blood = by_position.cols("blood_group")
    named_health = by_position.cols("treatment") + by_position.cols("pathology")
    comments, emails = by_position.cols("comment"), by_position.cols("email")

    def run(batch: list) -> None:
        try:  # as many keys as the first record, and all of them: the same keys (C-level passes)
            values = list(map(pick, batch)) if set(map(len, batch)) == {len(keys)} else None
        except KeyError:
            values = None
        if values is None:
            match_generic(batch, mapping, t, matcher._resolve)
            return
        matcher._seq_batch(values, by_position, t)
        for c in blood:
            cells = column(values, c)
            t.count("blood_group", len(cells) - cells.count(""))
        for c in emails:
            cells = column(values, c)
            valid = email_column(cells)
            t.count("email", (len(valid) - valid.count(None)) - (len(cells) - cells.count("")))
        if t.identifiers.get("email", 1) == 0:
            del t.identifiers["email"]
        if not t.health:
            t.health = any(any(column(values, c)) for c in named_health) or any(
                any(map(ids.health_terms, column(values, c))) for c in comments)

    guarded(batched(rows, batch_size), run, lambda row: match_generic([row], mapping, t, matcher._resolve), t)

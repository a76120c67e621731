"""The generic path: records one at a time, for the tables the batch path cannot take.

:class:`matchers.match.Matcher` sends here the tables whose rows are dicts (JSON, key-value blocks,
combos) and the tables without a strong column (nothing mapped as a NIR, an email or a phone).
Each record becomes one :class:`matchers.records.Fields` from its mapped columns; when no column
is mapped as an identifier, its values are also read as text (:func:`matchers.records.from_text`),
but only in a batch the pre-filter (:func:`matchers.records.may_hold_strong`, bytes-level C
passes) says may hold one, so a table of noise costs little more than parsing it. Every record is
counted either way. The fields go to the matcher's per-record verification (``resolve``).

Also :func:`guarded`, the fault isolation both paths share: a batch that raises is undone and
taken again one record at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from matchers import schema as sch
from matchers.columns import batched
from matchers.profiles import health_in_rows
from matchers.records import Fields, from_mapped, from_text, may_hold_strong, split_keyed
from matchers.tally import Tally

BATCH = 8192
_SEQUENCES = frozenset((list, tuple))


def guarded(batches: Iterable[list], run: Callable[[list], None], one: Callable[[object], None],
            t: Tally) -> None:
    """Each batch through ``run``. A batch that raises is undone (the tally's counts) and its
    records are taken one at a time through ``one``; a record that still raises is counted as
    failed, so the finding says it is incomplete, and the scan goes on with the next."""
    for batch in batches:
        snap = t.snapshot()
        try:
            run(batch)
        except Exception as exc:
            t.restore(snap)
            t.fail(exc, 0, "a batch")
            for record in batch:
                try:
                    one(record)
                except Exception as exc_one:
                    t.fail(exc_one, 1, "a record")


def match_generic(rows: Iterable, mapping: sch.Mapping, t: Tally,
                  resolve: Callable[[list[Fields], Tally], None]) -> None:
    """Every record of ``rows`` into ``t``, a batch of :data:`BATCH` at a time, through ``resolve``
    (the matcher's per-record verification)."""
    unmapped_text = not mapping.kinds & {"nir", "email", "phone"}

    # Nothing mapped at all: every record's mapped fields are empty.
    nothing_mapped = not mapping.columns and not mapping.name_parts

    def run(batch: list) -> None:
        fields = []
        sequences = set(map(type, batch)) <= _SEQUENCES
        if not sequences:  # only key-value records are split
            batch = [part for row in batch for part in split_keyed(row, mapping)]
        texts = None
        if unmapped_text:
            texts = (list(map(" ; ".join, batch)) if sequences else
                     [" ; ".join(row.values() if isinstance(row, dict) else row) for row in batch])
            if not may_hold_strong("\n".join(texts)):
                # No value of the batch can hold a NIR, an email or a phone: from_text would
                # find none, and what it finds is kept only with one (records still counted).
                texts = None
        if texts is not None or not nothing_mapped:
            for i, row in enumerate(batch):
                f = from_mapped(row, mapping)
                if texts is not None and not f.has_strong():
                    # Nothing mapped as an identifier: look for identifiers in the values themselves.
                    g = from_text(texts[i], health=False)  # only its identifiers are kept (merge)
                    if g.has_strong():
                        f = f.merge(g)
                        f.nir_keyed += g.nir_keyed
                        f.nir_shaped += g.nir_shaped
                fields.append(f)
        t.records_seen += len(batch)
        resolve(fields, t)
        if not t.health:  # medical words in any value, whatever the column's header
            t.health = health_in_rows(batch)

    guarded(batched(rows, BATCH), run, lambda row: run([row]), t)

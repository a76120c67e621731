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

import itertools
from collections.abc import Callable, Iterable, Iterator

from matchers import schema as sch
from matchers.columns import batched
from matchers.extract.delimited import DelimitedRows
from matchers.profiles import PROFILE_ROWS, health_in_rows
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
                  resolve: Callable[[list[Fields], Tally], None], *, raw: DelimitedRows | None = None,
                  taken: int = 0) -> None:
    """Every record of ``rows`` into ``t``, a batch of :data:`BATCH` at a time, through ``resolve``
    (the matcher's per-record verification).

    ``raw``: the rows of a delimited file, of which ``rows`` is the ``taken`` rows already read
    (the profile's sample) followed by the reader. When no column is mapped at all, the batches
    after the sample's are then taken as raw lines, and a block of lines without a ``"`` (each
    line one record) in which the pre-filter finds nothing is counted without being parsed
    (:func:`_unread_blocks`)."""
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

    batches = batched(rows, BATCH)
    if raw is not None and unmapped_text and nothing_mapped:
        # The sample's rows came from the reader: its batches first, then raw blocks of lines.
        batches = itertools.chain(itertools.islice(batches, -(-taken // BATCH)),
                                  _unread_blocks(raw, t))
    guarded(batches, run, lambda row: run([row]), t)


def _unread_blocks(raw: DelimitedRows, t: Tally) -> Iterator[list]:
    """Batches of ``raw``'s rows for a table with nothing mapped, a block of :data:`BATCH` lines at a
    time; a block the pre-filter finds nothing in is counted into ``t`` (records, medical words
    in its first rows, as ``run`` would have) and not parsed.

    Exact: a block without a ``"`` (or any block when quotes are not special) is one record per
    line, so its batch boundaries are the reader's; :func:`may_hold_strong` on the raw lines finds
    whatever it finds on the cells joined by ``" ; "`` (a cell's text is the same, the delimiters
    ``,;|`` are not identifier characters and a tab is a separator it deletes:
    tests/matchers/test_unread_blocks.py). At the first block with a ``"`` in a quoted table the
    rest is parsed by one reader, as before."""
    for block in batched(raw.lines, BATCH):
        text = "".join(block)
        if raw.quoted and '"' in text:
            yield from batched(raw.rest(block), BATCH)
            return
        if may_hold_strong(text):
            yield raw.parse(block)
            continue
        t.records_seen += len(block)
        if not t.health:
            t.health = health_in_rows(raw.parse(block[:PROFILE_ROWS]))

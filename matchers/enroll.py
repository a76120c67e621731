"""Enrollment: read a leaked file once, keep only keyed fingerprints of its records.

The cleartext file is streamed through extraction and the schema matcher (whose column mapping a
user can override); each row becomes strong fingerprints (NIR body, emails, phones, name + birth
date) and salted secondary fingerprints (name, surname, first name, birth date, postcode, name
bigrams). Nothing else of a row is kept; lab names (the controllers) are kept in clear to attribute matches.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from matchers.errors import EnrollError, MapError
from matchers.fingerprint import key_id
from matchers import identifiers as ids
from matchers import schema as sch
from matchers.extract import Limits, extract
from matchers.fingerprint import Fingerprinter
from matchers.index import FORMAT, IndexBuilder, LeakIndex, check_leak_name
from matchers.profiles import PROFILE_ROWS
from matchers.records import from_mapped

log = logging.getLogger(__name__)


def check_map(overrides: dict[str, str], columns: list[str] | None = None, width: int = 0) -> None:
    """Refuse a mapping override that would be silently ignored: an unknown kind, or (given the
    ``columns`` the file's tables have) a column the file lacks. An empty kind ignores a column;
    a column may also be given by its position (``0`` to ``width - 1``).

    Kinds are the schema's (:data:`matchers.schema.KINDS`). The message names the valid ones and
    the closest, so ``nir=nirr`` says "did you mean 'nir'?" instead of enrolling without NIRs.
    """
    from rapidfuzz import fuzz, process, utils

    def closest(word: str, choices: list[str]) -> str:
        best = process.extractOne(word, choices, scorer=fuzz.ratio, processor=utils.default_process,
                                  score_cutoff=70)
        return f"did you mean {best[0]!r}? " if best else ""

    for col, kind in overrides.items():
        if kind and kind not in sch.KINDS:
            raise MapError(f"unknown kind {kind!r} for column {col!r}: {closest(kind, list(sch.KINDS))}"
                           f"valid kinds: {', '.join(sch.KINDS)} (or nothing after '=' to ignore the column)")
    if columns is None:
        return
    # Matched as matchers.schema.map_columns matches: a position, a JSON key, or a folded name.
    folded = {ids.fold(c) for c in columns} - {""}
    for col in overrides:
        if not (col in columns or (int(col) < width if col.isdigit() else ids.fold(col) in folded)):
            shown = ", ".join(columns) if columns else "none (no table found)"
            raise MapError(f"no column {col!r} in the file: {closest(col, columns)}its columns: {shown}")


@dataclass(frozen=True)
class EnrollReport:
    leak: str
    records: int
    skipped: int  # rows without any usable identifier
    columns: dict[str, str]  # column name -> kind
    labs: dict[str, int]
    errors: tuple[str, ...]


def enroll_stream(stream: BinaryIO, name: str, *, leak: str, key: bytes, lab_column: str | None = None,
                  overrides: dict[str, str] | None = None, limits: Limits | None = None,
                  progress: Callable[[int], None] | None = None) -> tuple[LeakIndex, EnrollReport]:
    """Fingerprint every record of a leaked file; returns the index (not yet saved) and a report."""
    check_leak_name(leak)
    user_map = dict(overrides or {})
    check_map(user_map)
    overrides = dict(user_map)
    seen_columns: list[str] = []  # for the --map check: every table's column names, and widest row
    seen_width = 0
    if lab_column:
        overrides[lab_column] = "lab"
    errors: list[str] = []
    builder = IndexBuilder(Fingerprinter(key))
    columns: dict[str, str] = {}
    header: list[str] = []
    skipped = 0
    reader = _Progress(stream, progress) if progress else stream
    for table in extract(reader, name, limits or Limits(), errors):
        rows = iter(table.rows)
        sample = list(itertools.islice(rows, PROFILE_ROWS))
        if not sample:
            continue
        mapping = sch.map_columns(table.header, sample, overrides)
        seen_columns.extend(c for c in _column_names(table.header, sample) if c not in seen_columns)
        seen_width = max(seen_width, *(len(r) for r in sample if not isinstance(r, dict)), 0)
        if not mapping.kinds & {"nir", "email", "phone"}:
            errors.append(f"{table.source}: no NIR, email or phone column recognised; skipped "
                          "(name the columns with --map COLUMN=KIND)")
            continue
        if lab_column and "lab" not in mapping.kinds:
            raise EnrollError(f"{table.source}: no column named {lab_column!r} "
                              f"(columns: {', '.join(map(str, table.header or [])) or 'no header'})")
        names = table.header or [str(c) for c in range(max(len(r) for r in sample))] \
            if not isinstance(sample[0], dict) else list(sample[0])
        for col, kind in mapping.columns.items():
            label = names[col] if isinstance(col, int) and col < len(names) else str(col)
            columns[label] = kind
        header = header or list(table.header or [])
        lab_cols = mapping.cols("lab")
        for row in itertools.chain(sample, rows):
            f = from_mapped(row, mapping)
            if not f.has_strong():
                skipped += 1
                continue
            lab = None
            if lab_cols:
                c = lab_cols[0]
                lab = row.get(c) if isinstance(row, dict) else (row[c] if c < len(row) else None)
            name_key = f.names[0] if f.names else None
            builder.add(nir=f.nirs[0] if f.nirs else None, emails=f.emails, phones=f.phones,
                        name=name_key, dob=f.dobs[0] if f.dobs else None,
                        postcode=f.postcodes[0] if f.postcodes else None, lab=lab,
                        grams=ids.bigrams(name_key) if name_key else [],
                        surname=f.last_key, first_name=f.first_key)
    check_map(user_map, seen_columns, seen_width)
    if not builder.salt:
        raise EnrollError(f"{name}: no record with a NIR, email or phone was found"
                          + (f" ({'; '.join(errors[:3])})" if errors else ""))
    kinds = set(columns.values())
    categories = [c for c, ks in (("identity", {"last_name", "first_name", "full_name", "birth_date"}),
                                  ("contact", {"email", "phone", "address"}), ("nir", {"nir"}),
                                  ("health", set(sch.HEALTH_KINDS))) if kinds & ks]
    index = builder.build({"name": leak, "key_id": key_id(key), "columns": columns, "header": header,
                           "categories": categories, "source_file": Path(name).name, "version": FORMAT})
    report = EnrollReport(leak=leak, records=len(index), skipped=skipped, columns=columns,
                          labs=dict(index.meta["lab_counts"]), errors=tuple(errors))
    return index, report


def _column_names(header, sample) -> list[str]:
    """A table's column names as a ``--map`` gives them: its header, its JSON keys, or (no header)
    the positions ``0``, ``1``, …"""
    if isinstance(sample[0], dict):
        keys: list[str] = []
        for row in sample:
            keys.extend(str(k) for k in row if str(k) not in keys)
        return keys
    if header:
        return [str(h) for h in header if h]
    return [str(i) for i in range(max(len(r) for r in sample))]


class _Progress:
    def __init__(self, raw: BinaryIO, cb: Callable[[int], None]):
        self.raw, self.cb = raw, cb

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.cb(len(data))
        return data

    def __getattr__(self, item):
        return getattr(self.raw, item)

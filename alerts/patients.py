"""Which patients (GDPR Art. 34), without a second leak: the confirmed records of a finding, per lab,
as positions in the enrolled index, and the log of every look-up.

A lab must inform the people whose data is in a copy; it can only do so if it knows which of its
records were found. dumpwatch never knows who they are: it stores, per finding and per lab, the
*positions* in the leak's fingerprint index of the records it confirmed (``finding_records``: a
packed array of uint32), and the index keeps next to the fingerprints the row number of each
record in the enrolled file. `dumpwatch findings patients FINDING --lab LAB` turns one lab's
positions into row numbers of the enrolled file (with that file's SHA-256), which the lab's DPO
reads in the lab's own export. A position or row number says nothing without the file; no value,
no fingerprint is stored here. Each look-up is logged (``patient_lookups``: who, when, which finding,
which lab, how many rows): the list of a copy's patients is given out knowingly.

Positions are only valid against the index they were computed with: removing a leak, or enrolling
it again (``--replace``), deletes the positions of its findings (:func:`forget_leak`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import sqlite_utils

from dumpwatch import clock, store


def save_positions(db: sqlite_utils.Database, finding_id: int, records: dict[str, Any]) -> int:
    """Store the confirmed positions of a finding, per lab (call inside the finding's transaction);
    returns how many positions were stored."""
    n = 0
    for lab, positions in sorted(records.items()):
        packed = np.asarray(sorted(positions), dtype="<u4").tobytes()
        db["finding_records"].insert({"finding_id": finding_id, "lab": lab, "count": len(positions),
                                      "positions": packed})
        n += len(positions)
    return n


def positions(db: sqlite_utils.Database, finding_id: int, lab: str) -> np.ndarray | None:
    """The positions stored for one lab of one finding (None when the finding holds none of that lab
    or its positions were forgotten)."""
    row = db.execute("SELECT positions FROM finding_records WHERE finding_id = ? AND lab = ?",
                     [finding_id, lab]).fetchone()
    return None if row is None else np.frombuffer(row[0], dtype="<u4")


def labs_of(db: sqlite_utils.Database, finding_id: int) -> dict[str, int]:
    """The labs a finding holds positions of, with their counts."""
    return {lab: n for lab, n in db.execute(
        "SELECT lab, count FROM finding_records WHERE finding_id = ? ORDER BY lab", [finding_id]).fetchall()}


def log_lookup(db: sqlite_utils.Database, *, finding_id: int, lab: str, rows: int, by: str | None = None) -> int:
    """Log one look-up (who, when, which finding, which lab, how many rows); returns its id."""
    with store.write(db):
        return int(db["patient_lookups"].insert({
            "at": clock.utcnow(), "by": by or os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown",
            "finding_id": finding_id, "lab": lab, "rows": rows}).last_pk)


def lookups(db: sqlite_utils.Database, *, finding_id: int | None = None) -> list[dict[str, Any]]:
    """The look-up log, oldest first (of one finding, when given)."""
    where, params = ("finding_id = ?", [finding_id]) if finding_id is not None else (None, None)
    return [dict(r) for r in db["patient_lookups"].rows_where(where, params, order_by="id")]


def forget_leak(db: sqlite_utils.Database, leak: str) -> int:
    """Delete the positions of every finding of ``leak`` (its index is removed or replaced: the
    positions would point at other records); returns how many rows went."""
    ids = [f["id"] for f in store.findings(db, where="leak = ?", params=[leak])]
    with store.write(db):
        return sum(db.execute("DELETE FROM finding_records WHERE finding_id = ?", [i]).rowcount for i in ids)


def delete_positions_of(db: sqlite_utils.Database, finding_ids_sql: str) -> int:
    """Delete the positions of the findings ``finding_ids_sql`` (a ``SELECT id ...``) gives (evidence
    retention); the look-up log stays."""
    return db.execute(f"DELETE FROM finding_records WHERE finding_id IN ({finding_ids_sql})").rowcount

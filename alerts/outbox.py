"""The transactional outbox: a finding and the alerts it causes are written in one transaction."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from dumpwatch import store


def record_finding(db: sqlite_utils.Database, finding: Any, *, source: str = "", url: str | None = None,
                   first_seen: str | None = None, detail: dict | None = None,
                   config: dict | None = None) -> int | None:
    """Record a finding (a :class:`matchers.finding.Finding`) and enqueue its alerts, atomically.

    Returns the new finding id, or ``None`` when the same copy was already recorded (no new alert).
    """
    row = store.finding_row(finding, source=source, url=url, first_seen=first_seen, detail=detail)
    with db.conn:
        return store.insert_finding(db, row)


def record_health(db: sqlite_utils.Database, *, source: str, problem: str, detail: dict | None = None,
                  config: dict | None = None) -> int | None:
    """Record a source-health finding (a source failing run after run, or suddenly yielding nothing).

    Deduplicated per source, problem and day, so a broken source alerts the operators once a day.
    """
    now = store.utcnow()
    row = {
        "dedup_key": f"source-health:{source}:{problem}:{now[:10]}",
        "verdict": "source-health",
        "leak": None,
        "source": source,
        "url": "",
        "first_seen": now,
        "detected_at": now,
        "detail": json.dumps({"problem": problem, **(detail or {})}, sort_keys=True),
    }
    with db.conn:
        return store.insert_finding(db, row)

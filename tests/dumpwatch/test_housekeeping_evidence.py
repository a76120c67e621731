"""Evidence retention, case by case: which old findings go, with their alerts, messages and incidents.

Each table's owner deletes its own rows (dumpwatch.daemon.housekeeping composes them); this pins what the
whole pass removes and keeps, so splitting or moving its queries cannot change it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dumpwatch.daemon.housekeeping import Retention, housekeep
from dumpwatch.store import open_db

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
OLD = (NOW - timedelta(days=800)).isoformat()
NEW = (NOW - timedelta(days=1)).isoformat()


def _finding(db, key: str, detected_at: str) -> int:
    return db["findings"].insert({"dedup_key": key, "verdict": "repost", "leak": "l", "source": "s", "url": "u",
                                  "first_seen": detected_at, "detected_at": detected_at, "labs": "{}",
                                  "categories": "[]", "detail": "{}"}).last_pk


def _incident(db, key: str, status: str) -> int:
    return db["alert_incidents"].insert({"group_key": key, "status": status, "last_alert_at": OLD,
                                         "closed_at": OLD if status == "closed" else None}).last_pk


def _alert(db, key: str, finding_id: int, incident_id: int | None) -> None:
    db["alerts"].insert({"alert_key": key, "finding_id": finding_id, "incident_id": incident_id,
                         "status": "notified"})


def _message(db, key: str, incident_id: int, status: str) -> None:
    db["alert_notifications"].insert({"idempotency_key": key, "incident_id": incident_id, "status": status})


def test_evidence_retention_case_by_case():
    db = open_db(None)
    done = _incident(db, "done", "closed")  # closed, old, everything delivered: goes
    waiting = _incident(db, "waiting", "closed")  # closed, old, a message still pending: stays
    live = _incident(db, "live", "open")  # open: stays
    shared = _incident(db, "shared", "closed")  # closed, old, but holds an alert of a young finding: stays
    f_done = _finding(db, "done", OLD)
    f_waiting = _finding(db, "waiting", OLD)
    f_live = _finding(db, "live", OLD)
    _finding(db, "bare", OLD)  # no alert at all: goes
    f_shared_old = _finding(db, "shared-old", OLD)
    f_young = _finding(db, "young", NEW)
    f_loose = _finding(db, "loose", OLD)  # its alert has no incident: goes
    _alert(db, "a-done", f_done, done)
    _alert(db, "a-waiting", f_waiting, waiting)
    _alert(db, "a-live", f_live, live)
    _alert(db, "a-shared-old", f_shared_old, shared)
    _alert(db, "a-young", f_young, shared)
    _alert(db, "a-loose", f_loose, None)
    _message(db, "m-done", done, "delivered")
    _message(db, "m-waiting", waiting, "pending")
    _message(db, "m-shared", shared, "dead")
    db["crawl_seen_content"].insert({"sha256": "x" * 64, "size": 1, "source": "s", "url": "u", "first_seen": OLD,
                                     "last_seen": NEW, "verdict": "repost", "finding_id": f_done})

    report = housekeep(db, retention=Retention(seen_retention=0, content_retention=0, run_retention=0,
                                                evidence_retention=365 * 86400.0), now=NOW)

    assert {r["dedup_key"] for r in db["findings"].rows} == {"waiting", "live", "young"}
    assert {r["alert_key"] for r in db["alerts"].rows} == {"a-waiting", "a-live", "a-young"}
    assert {r["group_key"] for r in db["alert_incidents"].rows} == {"waiting", "live", "shared"}
    assert {r["idempotency_key"] for r in db["alert_notifications"].rows} == {"m-waiting", "m-shared"}
    assert db["crawl_seen_content"].get("x" * 64)["finding_id"] is None  # the content stays known
    assert (report.findings, report.alerts, report.notifications, report.incidents) == (4, 3, 1, 1)
    assert "_dw_old_findings" not in {r[0] for r in db.execute("SELECT name FROM temp.sqlite_master")}

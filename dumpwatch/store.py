"""The one door to the SQLite database (via sqlite-utils), with explicit, numbered migrations.

Nothing here holds a cleartext identifier of an enrolled leak: leaks are described by counts, lab
names and column names; findings by URL, hashes, counts, categories and redacted samples.

Migrations are plain functions applied in order, once each, recorded in ``_migrations``. Add new
ones at the end of :data:`MIGRATIONS`; never edit one that has shipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

log = logging.getLogger(__name__)


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 UTC strings, second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def open_db(path: str | Path | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate a database; ``None`` gives an in-memory one."""
    if path is None:
        db = sqlite_utils.Database(memory=True)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    db.execute("PRAGMA foreign_keys=ON")
    migrate(db)
    return db


# -- migrations ------------------------------------------------------------------------------------

def _m001_core(db: sqlite_utils.Database) -> None:
    db["leaks"].create(
        {
            "name": str,
            "enrolled_at": str,
            "source_file": str,  # base name only
            "records": int,
            "columns": str,  # JSON: column name -> field kind
            "labs": str,  # JSON: lab name -> record count
            "categories": str,  # JSON list
            "key_id": str,  # which key built the index (public identifier, not the key)
        },
        pk="name",
    )
    db["findings"].create(
        {
            "id": int,
            "dedup_key": str,  # leak/verdict + content hash: the same copy never makes two findings
            "verdict": str,
            "leak": str,
            "source": str,
            "url": str,
            "sha256": str,
            "size": int,
            "first_seen": str,
            "detected_at": str,
            "matched_records": int,
            "records_seen": int,
            "schema_score": float,
            "identifiers": str,  # JSON
            "labs": str,  # JSON
            "categories": str,  # JSON
            "sample": str,  # JSON (redacted)
            "errors": str,  # JSON
            "detail": str,  # JSON, free-form (health findings)
        },
        pk="id",
    )
    db["findings"].create_index(["dedup_key"], unique=True)
    db["findings"].create_index(["detected_at"])


# --- crawler tables (issue 3) go below this line ---

def _m101_crawler(db: sqlite_utils.Database) -> None:
    """Crawler state: the seen-set (URLs and content hashes) and one row per source run."""
    db["crawl_seen_urls"].create(
        {
            "key": str,  # the URL, or URL + "@" + a version marker (a topic's last-post date)
            "url": str,
            "source": str,
            "first_seen": str,
            "last_seen": str,
            "status": str,  # ok | gone | bad | error
            "http_status": int,
            "reason": str,  # why a page was bad or skipped
            "sha256": str,
        },
        pk="key",
    )
    db["crawl_seen_urls"].create_index(["source", "last_seen"])
    db["crawl_seen_content"].create(
        {
            "sha256": str,
            "size": int,
            "source": str,
            "url": str,  # where it was first seen
            "first_seen": str,
            "last_seen": str,
            "verdict": str,
            "finding_id": int,
        },
        pk="sha256",
    )
    db["crawl_runs"].create(
        {
            "id": int,
            "run_key": str,  # given by the launcher, to read the run back
            "source": str,
            "kind": str,
            "started": str,
            "finished": str,
            "ok": int,
            "close_reason": str,
            "pages": int,
            "listed": int,  # items seen on listing pages, new or not: 0 means a silent source
            "documents": int,
            "findings": int,
            "errors": int,
            "bad": int,
            "skipped": int,
            "detail": str,  # JSON: error reasons, counters
        },
        pk="id",
    )
    db["crawl_runs"].create_index(["source", "id"])
    db["crawl_runs"].create_index(["run_key"])


# --- alerts tables (issue 4) go below this line ---

def _m102_alerts(db: sqlite_utils.Database) -> None:
    """The alerts outbox: alerts (one per finding and receiver), incidents (groups), notifications
    (the messages, with their delivery state), per-receiver state, silences. See alerts/outbox.py."""
    db["alert_incidents"].create(
        {
            "id": int,
            "group_key": str,  # receiver|route|leak|verdict|lab (or receiver|route|digest)
            "receiver": str,
            "route": str,
            "labels": str,  # JSON
            "status": str,  # open | closed
            "opened_at": str,
            "last_alert_at": str,
            "last_notified_at": str,
            "next_flush_at": str,  # set while alerts wait to go out
            "next_repeat_at": str,
            "notifications": int,
            "group_wait": float,
            "group_interval": float,
            "repeat_interval": float,
            "closed_at": str,
            "closed_by": str,
        },
        pk="id",
    )
    db["alert_incidents"].create_index(["group_key", "status"])
    db["alert_incidents"].create_index(["status", "next_flush_at"])
    db["alerts"].create(
        {
            "id": int,
            "alert_key": str,  # stable: receiver + finding dedup key + lab scope
            "finding_id": int,
            "incident_id": int,
            "receiver": str,
            "route": str,
            "lab": str,  # "" = whole copy; else the only lab this alert shows
            "severity": str,
            "labels": str,  # JSON
            "status": str,  # pending | notified | silenced
            "silence_id": int,
            "notification_id": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("finding_id", "findings", "id"), ("incident_id", "alert_incidents", "id")],
    )
    db["alerts"].create_index(["alert_key"], unique=True)
    db["alerts"].create_index(["incident_id", "status"])
    db["alert_notifications"].create(
        {
            "id": int,
            "idempotency_key": str,  # sent as Idempotency-Key header / Message-ID
            "receiver": str,
            "incident_id": int,
            "kind": str,  # alert | update | reminder | digest | fallback | test
            "severity": str,
            "subject": str,
            "payload": str,  # JSON: the rendered message, frozen at enqueue time
            "status": str,  # pending | sending | delivered | dead
            "attempts": int,
            "created_at": str,
            "next_attempt_at": str,
            "dead_after": str,
            "claimed_by": str,  # host:pid of the sender while sending
            "lease_until": str,
            "last_attempt_at": str,
            "last_error": str,
            "delivered_at": str,
            "fallback_of": int,
        },
        pk="id",
    )
    db["alert_notifications"].create_index(["idempotency_key"], unique=True)
    db["alert_notifications"].create_index(["status", "next_attempt_at"])
    db["alert_receivers"].create(
        {
            "receiver": str,
            "consecutive_failures": int,
            "next_attempt_at": str,
            "last_error": str,
            "last_failure_at": str,
            "last_success_at": str,
        },
        pk="receiver",
    )
    db["alert_silences"].create(
        {
            "id": int,
            "matchers": str,  # JSON: label -> glob
            "author": str,
            "comment": str,
            "created_at": str,
            "starts_at": str,
            "ends_at": str,
        },
        pk="id",
    )


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_core", _m001_core),
    ("101_crawler", _m101_crawler),
    ("102_alerts", _m102_alerts),
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet applied; return their names."""
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    done = {row["name"] for row in db["_migrations"].rows}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db.atomic():
            fn(db)
            db["_migrations"].insert({"name": name, "applied_at": utcnow()})
        log.debug("applied migration %s", name)
        applied.append(name)
    return applied


# -- leaks -----------------------------------------------------------------------------------------

def save_leak(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    row = dict(row)
    for k in ("columns", "labs", "categories"):
        if not isinstance(row.get(k), str):
            row[k] = json.dumps(row.get(k), ensure_ascii=False, sort_keys=True)
    db["leaks"].upsert(row, pk="name")


def leaks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [_decoded(r, ("columns", "labs", "categories")) for r in db["leaks"].rows_where(order_by="name")]


# -- findings --------------------------------------------------------------------------------------

FINDING_JSON = ("identifiers", "labs", "categories", "sample", "errors", "detail")


def finding_row(finding: Any, *, source: str = "", url: str | None = None,
                first_seen: str | None = None, detail: dict | None = None) -> dict[str, Any]:
    """A ``findings`` row for a :class:`matchers.finding.Finding` (no id, not yet inserted)."""
    now = utcnow()
    key = f"{finding.verdict}:{finding.leak or '-'}:{finding.sha256 or finding.input}"
    return {
        "dedup_key": key,
        "verdict": finding.verdict,
        "leak": finding.leak,
        "source": source,
        "url": url or finding.input,
        "sha256": finding.sha256,
        "size": finding.size,
        "first_seen": first_seen or now,
        "detected_at": now,
        "matched_records": finding.matched_records,
        "records_seen": finding.records_seen,
        "schema_score": round(finding.schema_score, 3),
        "identifiers": json.dumps(finding.identifiers, sort_keys=True),
        "labs": json.dumps(finding.labs, sort_keys=True, ensure_ascii=False),
        "categories": json.dumps(list(finding.categories)),
        "sample": json.dumps(list(finding.sample), ensure_ascii=False),
        "errors": json.dumps(list(finding.errors), ensure_ascii=False),
        "detail": json.dumps(detail or {}, sort_keys=True, ensure_ascii=False),
    }


def insert_finding(db: sqlite_utils.Database, row: dict[str, Any]) -> int | None:
    """Insert a finding row; return its id, or ``None`` if the same copy was already recorded.

    Call inside ``with db.atomic():`` to make it part of a larger transaction (the alerts outbox).
    """
    existing = db.execute("SELECT id FROM findings WHERE dedup_key = ?", [row["dedup_key"]]).fetchone()
    if existing:
        return None
    return db["findings"].insert(row).last_pk


def get_finding(db: sqlite_utils.Database, finding_id: int) -> dict[str, Any]:
    return _decoded(db["findings"].get(finding_id), FINDING_JSON)


def findings(db: sqlite_utils.Database, *, where: str | None = None, params: Any = None,
             limit: int | None = None) -> list[dict[str, Any]]:
    rows = db["findings"].rows_where(where, params, order_by="id desc", limit=limit)
    return [_decoded(r, FINDING_JSON) for r in rows]


def _decoded(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    row = dict(row)
    for k in keys:
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row

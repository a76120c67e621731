"""The database's tables, created by numbered migrations, and the module that owns each of them.

Migrations are plain functions of a :class:`sqlite_utils.Database`, applied in order, once each, by
:func:`dumpwatch.store.migrate` (which records them in ``_migrations``, under the write lock). Add
new ones at the end of :data:`MIGRATIONS`; never edit one that has shipped.

:data:`TABLE_OWNERS` says which module owns each table: its SQL (statements naming it,
``db["table"]``) is written there only, apart from the migrations here; the others call that
module's functions (``tests/test_sql_owners.py`` checks it).

This module imports nothing of the project but :mod:`dumpwatch.redact` (which imports nothing).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import sqlite_utils

from dumpwatch.redact import redact_urls


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


def _m103_finding_complete(db: sqlite_utils.Database) -> None:
    """``findings.complete``: 0 when the engine could not read the whole document (some records or
    batches failed), so ``matched_records`` is a lower bound. Earlier findings count as complete."""
    db["findings"].add_column("complete", int, not_null_default=1)


def _m104_installation_id(db: sqlite_utils.Database) -> None:
    """``meta``: facts about this installation, first its id (:func:`dumpwatch.store.installation_id`),
    random, made once with the database and part of every idempotency key."""
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["meta"].insert({"key": "installation_id", "value": secrets.token_hex(16)})


def _m105_receiver_urls_redacted(db: sqlite_utils.Database) -> None:
    """Delivery errors stored by earlier versions could quote a receiver's URL (a credential for
    Slack and Mattermost): every URL in them redacted, the old text overwritten (``secure_delete``)."""
    for table, pk in (("alert_notifications", "id"), ("alert_receivers", "receiver")):
        for key, error in db.execute(f"SELECT {pk}, last_error FROM {table} WHERE last_error LIKE '%://%'").fetchall():
            db.execute(f"UPDATE {table} SET last_error = ? WHERE {pk} = ?", [redact_urls(error), key])


def _m106_patients(db: sqlite_utils.Database) -> None:
    """Which patients (Art. 34): a finding's confirmed records per lab as positions in the enrolled
    index (packed uint32, never a value), and the log of each look-up (alerts.patients)."""
    db["finding_records"].create({"finding_id": int, "lab": str, "count": int, "positions": bytes},
                                 pk=("finding_id", "lab"))
    db["patient_lookups"].create({"id": int, "at": str, "by": str, "finding_id": int, "lab": str, "rows": int},
                                 pk="id")


# Who owns each table: its SQL (statements naming it, ``db["table"]``) is written in that module only,
# apart from the migrations above; the others call that module's functions
# (tests/test_sql_owners.py checks it). Two modules share the outbox of messages: grouping puts
# them in (:func:`alerts.grouping.insert_message`), delivery sends them.
TABLE_OWNERS: dict[str, tuple[str, ...]] = {
    "_migrations": ("dumpwatch.store",),
    "meta": ("dumpwatch.store",),
    "leaks": ("dumpwatch.store",),
    "findings": ("dumpwatch.store",),
    "crawl_seen_urls": ("crawler.seen",),
    "crawl_seen_content": ("crawler.seen",),
    "crawl_runs": ("crawler.health",),
    "alerts": ("alerts.grouping",),
    "alert_incidents": ("alerts.grouping",),
    "alert_notifications": ("alerts.delivery", "alerts.grouping"),
    "alert_receivers": ("alerts.delivery",),
    "alert_silences": ("alerts.silences",),
    "finding_records": ("alerts.patients",),
    "patient_lookups": ("alerts.patients",),
}

MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_core", _m001_core),
    ("101_crawler", _m101_crawler),
    ("102_alerts", _m102_alerts),
    ("103_finding_complete", _m103_finding_complete),
    ("104_installation_id", _m104_installation_id),
    ("105_receiver_urls_redacted", _m105_receiver_urls_redacted),
    ("106_patients", _m106_patients),
]

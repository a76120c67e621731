"""The transactional outbox: a finding and the alerts it causes are written in one transaction.

``record_finding`` (called by the crawler, the scanner and the demo) inserts the finding, routes it,
and inserts one ``alerts`` row per receiver (and lab scope) into the open incident of its group, all
inside one SQLite transaction: either the finding and all its alerts are stored, or none. The
delivery job (:mod:`alerts.jobs`) later turns due groups into messages (``alert_notifications``) and
sends them at least once. Each transaction is a :func:`dumpwatch.store.write` (``BEGIN IMMEDIATE``,
retried while another process writes), so a concurrent crawl or delivery pass never makes a finding
fail with "database is locked". Nothing here holds a cleartext identifier: samples, errors and URLs are
passed through :func:`alerts.privacy.scrub` before they are stored.

Keys:

- ``findings.dedup_key`` (verdict, leak, content SHA-256): the same copy never makes a second finding;
- ``alerts.alert_key`` (receiver, finding dedup key, lab scope): the same copy never alerts a receiver
  twice;
- ``alert_notifications.idempotency_key``: one per message, sent as a webhook header and as the
  email Message-ID, so a receiver recognises a message delivered twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from alerts import routes, settings
from dumpwatch import clock
from alerts.privacy import scrub, scrub_value
from dumpwatch import store

log = logging.getLogger(__name__)


def alerting_of(config: Mapping[str, Any] | settings.Alerting | None) -> settings.Alerting:
    """The parsed alerting configuration: an :class:`~alerts.settings.Alerting` as it is, ``None`` the
    defaults, and the whole configuration (a mapping) parsed by :func:`alerts.settings.load`.

    Parse once where the configuration enters (the crawl pipeline does when it opens, the delivery
    job once per pass) and pass the ``Alerting`` on: ``record_finding(..., config=alerting)``
    then parses nothing."""
    alerting = config if isinstance(config, settings.Alerting) else settings.load(config)
    if not alerting.configured:
        routes.warn_once("no-receivers", "no [[receivers]] configured in dumpwatch.toml: findings are recorded "
                         "but no alert is queued (see docs/alerts.md)")
    return alerting


def record_finding(db: sqlite_utils.Database, finding: Any, *, source: str = "", url: str | None = None,
                   first_seen: str | None = None, detail: dict | None = None,
                   config: Mapping[str, Any] | settings.Alerting | None = None,
                   now: datetime | None = None) -> int | None:
    """Record a finding (a :class:`matchers.finding.Finding`) and enqueue its alerts, atomically.

    Returns the new finding id, or ``None`` when the same copy was already recorded (no new alert).
    """
    alerting = alerting_of(config)
    now = now or clock.now()
    finding = dataclasses.replace(
        finding, sample=tuple(scrub(str(s)) for s in finding.sample),
        errors=tuple(scrub(str(e)) for e in finding.errors), input=scrub(str(finding.input)))
    row = store.finding_row(finding, source=source, url=scrub(url) if url else None, first_seen=first_seen,
                            detail=scrub_value(detail) if detail else None)
    row["detected_at"] = clock.iso(now)
    if not first_seen:
        row["first_seen"] = row["detected_at"]
    # The check for the same copy and the insert run under the write lock (store.write takes it
    # first), so no other process can record the copy in between: any other error is a real one.
    with store.write(db):
        finding_id = store.insert_finding(db, row)
        if finding_id is None:
            log.debug("copy already recorded (%s): no new alert", row["dedup_key"])
            return None
        enqueue(db, alerting, finding_id, row, now=now)
    return finding_id


def record_health(db: sqlite_utils.Database, *, source: str, problem: str, detail: dict | None = None,
                  config: Mapping[str, Any] | settings.Alerting | None = None,
                  now: datetime | None = None) -> int | None:
    """Record a source-health finding (a source failing run after run, or suddenly yielding nothing).

    Deduplicated per source, problem and day, so a broken source alerts the operators once a day.
    """
    alerting = alerting_of(config)
    now = now or clock.now()
    stamp = clock.iso(now)
    row = {
        "dedup_key": f"source-health:{source}:{problem}:{stamp[:10]}",
        "verdict": "source-health",
        "leak": None,
        "source": source,
        "url": "",
        "first_seen": stamp,
        "detected_at": stamp,
        "matched_records": 0,
        "records_seen": 0,
        "identifiers": "{}",
        "labs": "{}",
        "categories": "[]",
        "sample": "[]",
        "errors": "[]",
        "detail": json.dumps(scrub_value({"problem": problem, **(detail or {})}), sort_keys=True,
                             ensure_ascii=False),
        "complete": 1,
    }
    with store.write(db):
        finding_id = store.insert_finding(db, row)
        if finding_id is None:
            return None
        enqueue(db, alerting, finding_id, row, now=now)
    return finding_id


def alert_key(receiver: str, dedup_key: str, lab: str) -> str:
    return hashlib.sha256(f"{receiver}|{dedup_key}|{lab}".encode()).hexdigest()[:32]


def enqueue(db: sqlite_utils.Database, alerting: settings.Alerting, finding_id: int, row: dict[str, Any],
            *, now: datetime) -> list[int]:
    """Route a stored finding and insert its alerts into their incidents (call inside a transaction)."""
    labs = row["labs"] if isinstance(row.get("labs"), dict) else json.loads(row.get("labs") or "{}")
    categories = row["categories"] if isinstance(row.get("categories"), list) else json.loads(row.get("categories") or "[]")
    sev = routes.severity(row["verdict"], categories, int(row.get("matched_records") or 0), alerting)
    labels = {"leak": row.get("leak") or "", "verdict": row["verdict"], "severity": sev,
              "source": row.get("source") or ""}
    targets = routes.route(alerting, labels, labs)
    if not targets and alerting.configured:
        log.info("finding %s (%s, %s) matched no route: no alert", finding_id, row["verdict"], sev)
    ids = []
    stamp = clock.iso(now)
    for t in targets:
        key = alert_key(t.receiver, row["dedup_key"], t.lab)
        if db.execute("SELECT 1 FROM alerts WHERE alert_key = ?", [key]).fetchone():
            continue
        incident_id = _incident_for(db, t, now)
        ids.append(db["alerts"].insert({
            "alert_key": key, "finding_id": finding_id, "incident_id": incident_id, "receiver": t.receiver,
            "route": t.route, "lab": t.lab, "severity": sev,
            "labels": json.dumps(t.labels, sort_keys=True, ensure_ascii=False), "status": "pending",
            "silence_id": None, "notification_id": None, "created_at": stamp,
        }).last_pk)
        log.info("alert %s queued for %s (finding %s, %s %s%s)", key, t.receiver, finding_id, labels["verdict"],
                 sev, f", lab {t.lab}" if t.lab else "")
    return ids


def _incident_for(db: sqlite_utils.Database, t: routes.Target, now: datetime) -> int:
    """The open incident of the target's group (created if none), scheduled to flush."""
    stamp = clock.iso(now)
    row = db.execute("SELECT * FROM alert_incidents WHERE group_key = ? AND status = 'open' ORDER BY id DESC",
                     [t.group_key]).fetchone()
    if row is None:
        interval = t.digest_interval if t.digest_interval is not None else t.timing.group_interval
        labels = {k: v for k, v in t.labels.items() if k in ("receiver", "leak", "verdict", "lab")}
        if t.digest_interval is not None:
            labels = {"receiver": t.receiver, "digest": "true"}
        return int(db["alert_incidents"].insert({
            "group_key": t.group_key, "receiver": t.receiver, "route": t.route,
            "labels": json.dumps(labels, sort_keys=True, ensure_ascii=False), "status": "open",
            "opened_at": stamp, "last_alert_at": stamp, "last_notified_at": None,
            "next_flush_at": clock.later(now, t.timing.group_wait), "next_repeat_at": None, "notifications": 0,
            "group_wait": t.timing.group_wait, "group_interval": interval,
            "repeat_interval": 0.0 if t.digest_interval is not None else t.timing.repeat_interval,
            "closed_at": None, "closed_by": None,
        }).last_pk)
    cols = [d[0] for d in db.execute("SELECT * FROM alert_incidents LIMIT 0").description]
    inc = dict(zip(cols, row))
    next_flush = inc["next_flush_at"]
    if next_flush is None:
        if inc["last_notified_at"]:
            earliest = clock.later(clock.parse(inc["last_notified_at"]), inc["group_interval"])
            next_flush = max(earliest, stamp)
        else:
            next_flush = clock.later(now, inc["group_wait"])
    db.execute("UPDATE alert_incidents SET last_alert_at = ?, next_flush_at = ? WHERE id = ?",
               [stamp, next_flush, inc["id"]])
    return int(inc["id"])

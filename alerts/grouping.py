"""Grouping: incidents turn their waiting alerts into messages, on Alertmanager's timings.

An incident is the open group of one receiver for one leak and verdict (and lab, for a lab contact;
everything of the receiver, for a digest route). Its first message goes ``group_wait`` after its
first alert; alerts arriving later (new copies of the same leak) wait at least ``group_interval``
after the previous message and go out together; with nothing new, a reminder is sent every
``repeat_interval`` while the incident is open. An incident closes after ``incident_ttl`` without a
new copy, or by hand (``dumpwatch alerts ack``). Silences are applied when a group goes out.

Each message is rendered once and frozen in ``alert_notifications`` in the same transaction that marks
its alerts as notified, so a crash either leaves the alerts waiting or the message queued.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from alerts import render, silences
from dumpwatch import clock
from alerts.settings import SEVERITIES, Alerting
from dumpwatch import store

log = logging.getLogger(__name__)


def _rows(db: sqlite_utils.Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = db.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _current(db: sqlite_utils.Database, incident_id: int) -> dict[str, Any] | None:
    rows = _rows(db, "SELECT * FROM alert_incidents WHERE id = ?", [incident_id])
    return rows[0] if rows else None


def flush_due(db: sqlite_utils.Database, alerting: Alerting, now: datetime | None = None) -> list[int]:
    """Close stale incidents, send due groups and reminders to the outbox; return new message ids."""
    now = now or clock.now()
    stamp = clock.iso(now)
    created: list[int] = []
    cutoff = clock.iso(now - timedelta(seconds=alerting.incident_ttl))
    with store.write(db):
        db.execute("UPDATE alert_incidents SET status = 'closed', closed_at = ?, closed_by = 'ttl' "
                   "WHERE status = 'open' AND next_flush_at IS NULL AND last_alert_at <= ?", [stamp, cutoff])
        db.execute("UPDATE alert_incidents SET status = 'closed', closed_at = ? WHERE status = 'open' "
                   "AND next_flush_at IS NULL AND closed_by LIKE 'ack:%'", [stamp])
    active = silences.active(db, now)
    for inc in _rows(db, "SELECT * FROM alert_incidents WHERE status = 'open' AND next_flush_at <= ? "
                         "ORDER BY next_flush_at, id", [stamp]):
        with store.write(db):
            inc = _current(db, inc["id"])  # read again under the write lock: another pass may have sent it
            if inc is None or inc["status"] != "open" or not inc["next_flush_at"] or inc["next_flush_at"] > stamp:
                continue
            nid = _flush(db, alerting, inc, active, now)
        if nid:
            created.append(nid)
    for inc in _rows(db, "SELECT * FROM alert_incidents WHERE status = 'open' AND next_flush_at IS NULL "
                         "AND next_repeat_at IS NOT NULL AND next_repeat_at <= ? ORDER BY id", [stamp]):
        with store.write(db):
            inc = _current(db, inc["id"])
            if (inc is None or inc["status"] != "open" or inc["next_flush_at"] is not None
                    or not inc["next_repeat_at"] or inc["next_repeat_at"] > stamp):
                continue
            nid = _remind(db, alerting, inc, active, now)
        if nid:
            created.append(nid)
    return created


def _flush(db: sqlite_utils.Database, alerting: Alerting, inc: dict[str, Any],
           active: list[silences.Silence], now: datetime) -> int | None:
    stamp = clock.iso(now)
    pending = _rows(db, "SELECT * FROM alerts WHERE incident_id = ? AND status = 'pending' ORDER BY id", [inc["id"]])
    live = []
    for a in pending:
        hit = next((s for s in active if s.matches(json.loads(a["labels"]))), None)
        if hit:
            db.execute("UPDATE alerts SET status = 'silenced', silence_id = ? WHERE id = ?", [hit.id, a["id"]])
            log.info("alert %s silenced by silence %s (%s)", a["alert_key"], hit.id, hit.comment)
        else:
            live.append(a)
    if not live:
        db.execute("UPDATE alert_incidents SET next_flush_at = NULL WHERE id = ?", [inc["id"]])
        return None
    digest = inc["group_key"].endswith("|digest")
    kind = "digest" if digest else ("alert" if not inc["notifications"] else "update")
    earlier = _rows(db, "SELECT * FROM alerts WHERE incident_id = ? AND status = 'notified' ORDER BY id",
                    [inc["id"]])
    shown = live if digest else earlier + live
    new_keys = sorted(a["alert_key"] for a in live)
    key = _key(inc["id"], kind, new_keys)
    nid = _enqueue_message(db, alerting, inc, shown, set(new_keys), kind, key, now)
    db.execute(f"UPDATE alerts SET status = 'notified', notification_id = ? WHERE id IN "
               f"({','.join('?' * len(live))})", [nid, *[a["id"] for a in live]])
    repeat = inc["repeat_interval"] or 0
    db.execute("UPDATE alert_incidents SET last_notified_at = ?, notifications = notifications + 1, "
               "next_flush_at = NULL, next_repeat_at = ? WHERE id = ?",
               [stamp, clock.later(now, repeat) if repeat > 0 else None, inc["id"]])
    return nid


def _remind(db: sqlite_utils.Database, alerting: Alerting, inc: dict[str, Any],
            active: list[silences.Silence], now: datetime) -> int | None:
    notified = _rows(db, "SELECT * FROM alerts WHERE incident_id = ? AND status = 'notified' ORDER BY id",
                     [inc["id"]])
    shown = [a for a in notified if not any(s.matches(json.loads(a["labels"])) for s in active)]
    repeat = inc["repeat_interval"] or 0
    db.execute("UPDATE alert_incidents SET next_repeat_at = ? WHERE id = ?",
               [clock.later(now, repeat) if repeat > 0 else None, inc["id"]])
    if not shown:
        return None
    key = _key(inc["id"], "reminder", [clock.iso(now)])
    nid = _enqueue_message(db, alerting, inc, shown, set(), "reminder", key, now)
    db.execute("UPDATE alert_incidents SET last_notified_at = ?, notifications = notifications + 1 WHERE id = ?",
               [clock.iso(now), inc["id"]])
    return nid


def _key(incident_id: int, kind: str, parts: list[str]) -> str:
    digest = hashlib.sha256(f"{incident_id}|{kind}|{','.join(parts)}".encode()).hexdigest()[:32]
    return f"dw-{digest}"


def _enqueue_message(db: sqlite_utils.Database, alerting: Alerting, inc: dict[str, Any],
                     alerts: list[dict[str, Any]], new_keys: set[str], kind: str, key: str, now: datetime) -> int:
    views = [render.alert_view(a, store.get_finding(db, a["finding_id"])) for a in alerts]
    labs = sorted({a["lab"] for a in alerts if a["lab"]})
    lab = labs[0] if len(labs) == 1 else ""
    leaks = {row["name"]: row for row in store.leaks(db)}
    total = db.execute("SELECT count(*) FROM alerts WHERE incident_id = ? AND status != 'silenced'",
                       [inc["id"]]).fetchone()[0]
    incident = {"id": inc["id"], "group_key": inc["group_key"], "opened_at": inc["opened_at"],
                "labels": json.loads(inc["labels"]), "alerts": total}
    message = render.render(receiver=inc["receiver"], kind=kind, idempotency_key=key, views=views,
                            incident=incident, leaks=leaks, lab=lab, contact_point=alerting.contact_point,
                            new_keys=new_keys)
    return insert_message(db, alerting, receiver=inc["receiver"], kind=kind, key=key, message=message,
                          incident_id=inc["id"], now=now)


def insert_message(db: sqlite_utils.Database, alerting: Alerting, *, receiver: str, kind: str, key: str,
                   message: render.Message, incident_id: int | None, now: datetime,
                   fallback_of: int | None = None) -> int:
    """Put one rendered message in the outbox (idempotent on ``key``); return its id."""
    existing = db.execute("SELECT id FROM alert_notifications WHERE idempotency_key = ?", [key]).fetchone()
    if existing:
        return int(existing[0])
    severity = message.data.get("severity", "info")
    assert severity in SEVERITIES
    nid = db["alert_notifications"].insert({
        "idempotency_key": key, "receiver": receiver, "incident_id": incident_id, "kind": kind,
        "severity": severity, "subject": message.subject,
        "payload": json.dumps(message.to_json(), ensure_ascii=False, sort_keys=True),
        "status": "pending", "attempts": 0, "created_at": clock.iso(now), "next_attempt_at": clock.iso(now),
        "dead_after": clock.later(now, alerting.max_age), "claimed_by": None, "lease_until": None,
        "last_attempt_at": None, "last_error": None, "delivered_at": None, "fallback_of": fallback_of,
    }).last_pk
    log.info("message %s (%s, %s) queued for %s: %s", key, kind, severity, receiver, message.subject)
    return int(nid)


def acknowledge(db: sqlite_utils.Database, incident_id: int, *, author: str, now: datetime | None = None) -> bool:
    """Acknowledge an incident: no more reminders, and it closes (a later copy opens a new incident).

    Alerts still waiting for their group to go out are sent first: the incident then closes by itself.
    """
    now = now or clock.now()
    stamp = clock.iso(now)
    with store.write(db):
        cur = db.execute(
            "UPDATE alert_incidents SET next_repeat_at = NULL, repeat_interval = 0, closed_by = ?, "
            "closed_at = CASE WHEN next_flush_at IS NULL THEN ? ELSE closed_at END, "
            "status = CASE WHEN next_flush_at IS NULL THEN 'closed' ELSE status END "
            "WHERE id = ? AND status = 'open'", [f"ack:{author}", stamp, incident_id])
    return cur.rowcount == 1

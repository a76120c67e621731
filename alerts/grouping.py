"""Grouping: incidents turn their waiting alerts into messages, on Alertmanager's timings.

An incident is the open group of one receiver for one leak and verdict (and lab, for a lab contact;
everything of the receiver, for a digest route). Its first message goes ``group_wait`` after its
first alert; alerts arriving later (new copies of the same leak) wait at least ``group_interval``
after the previous message and go out together; with nothing new, a reminder is sent every
``repeat_interval`` while the incident is open. An incident closes after ``incident_ttl`` without a
new copy, or by hand (``dumpwatch alerts ack``). Silences are applied when a group goes out.

Each message is rendered once and frozen in ``alert_notifications`` in the same transaction that marks
its alerts as notified, so a crash either leaves the alerts waiting or the message queued.

This module owns the SQL of ``alerts`` and ``alert_incidents`` (``dumpwatch.migrations.TABLE_OWNERS``):
the outbox adds alerts through :func:`add_alert`; the CLI, the status and housekeeping read and
expire them through the functions at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from alerts import render, routes, silences
from alerts.settings import SEVERITIES, Alerting
from dumpwatch import clock, store

log = logging.getLogger(__name__)


def _rows(db: sqlite_utils.Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return list(db.query(sql, params))


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
    key = _key(db, inc["id"], kind, new_keys)
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
    key = _key(db, inc["id"], "reminder", [clock.iso(now)])
    nid = _enqueue_message(db, alerting, inc, shown, set(), "reminder", key, now)
    db.execute("UPDATE alert_incidents SET last_notified_at = ?, notifications = notifications + 1 WHERE id = ?",
               [clock.iso(now), inc["id"]])
    return nid


def _key(db: sqlite_utils.Database, incident_id: int, kind: str, parts: list[str]) -> str:
    """A message's idempotency key: this installation's id, the incident, the kind, what is new."""
    installation = store.installation_id(db)
    digest = hashlib.sha256(f"{installation}|{incident_id}|{kind}|{','.join(parts)}".encode()).hexdigest()[:32]
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
    language, timezone = alerting.speech(inc["receiver"])
    message = render.render(receiver=inc["receiver"], kind=kind, idempotency_key=key, views=views,
                            incident=incident, leaks=leaks, lab=lab, contact=alerting.contact_for(lab),
                            new_keys=new_keys, language=language, timezone=timezone)
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


# -- alerts and incidents, as the outbox, the CLI and housekeeping need them ------------------------

def add_alert(db: sqlite_utils.Database, t: routes.Target, *, key: str, finding_id: int, severity: str,
              now: datetime) -> int | None:
    """Insert the alert ``key`` of a finding for one target into the open incident of its group
    (call inside a transaction); ``None`` when that alert is already stored."""
    if db.execute("SELECT 1 FROM alerts WHERE alert_key = ?", [key]).fetchone():
        return None
    incident_id = incident_for(db, t, now)
    return int(db["alerts"].insert({
        "alert_key": key, "finding_id": finding_id, "incident_id": incident_id, "receiver": t.receiver,
        "route": t.route, "lab": t.lab, "severity": severity,
        "labels": json.dumps(t.labels, sort_keys=True, ensure_ascii=False), "status": "pending",
        "silence_id": None, "notification_id": None, "created_at": clock.iso(now),
    }).last_pk)


def incident_for(db: sqlite_utils.Database, t: routes.Target, now: datetime) -> int:
    """The open incident of the target's group (created if none), scheduled to flush."""
    stamp = clock.iso(now)
    rows = _rows(db, "SELECT * FROM alert_incidents WHERE group_key = ? AND status = 'open' ORDER BY id DESC",
                 [t.group_key])
    if not rows:
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
    inc = rows[0]
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


def alert_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many alerts in each state (pending, notified, silenced)."""
    return {r["status"]: r["n"] for r in db.query("SELECT status, count(*) AS n FROM alerts GROUP BY status")}


def open_incidents(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM alert_incidents WHERE status = 'open'").fetchone()[0]


def pending_alerts(db: sqlite_utils.Database) -> int:
    """Alerts still waiting for their group to go out."""
    return db.execute("SELECT count(*) FROM alerts WHERE status = 'pending'").fetchone()[0]


def incidents(db: sqlite_utils.Database, *, include_closed: bool = False) -> list[dict[str, Any]]:
    """The incidents (open ones only, unless ``include_closed``), newest first, with their alert count."""
    return _rows(db, "SELECT i.id, i.receiver, i.route, i.status, i.opened_at, i.last_alert_at, i.notifications, "
                     "i.next_flush_at, (SELECT count(*) FROM alerts a WHERE a.incident_id = i.id) AS alerts, "
                     f"i.group_key FROM alert_incidents i {'' if include_closed else 'WHERE i.status = ' + repr('open')}"
                     " ORDER BY i.id DESC", [])


def alerts_of_message(db: sqlite_utils.Database, notification_id: int) -> list[dict[str, Any]]:
    """The alerts a message carried (id, alert_key, finding_id, lab)."""
    return _rows(db, "SELECT id, alert_key, finding_id, lab FROM alerts WHERE notification_id = ?", [notification_id])


def alerts_of_finding(db: sqlite_utils.Database, finding_id: int) -> list[dict[str, Any]]:
    """The alerts a finding caused, in order."""
    return [dict(r) for r in db["alerts"].rows_where(
        "finding_id = ?", [finding_id], order_by="id",
        select="id, receiver, lab, severity, status, incident_id, notification_id")]


# -- evidence retention (dumpwatch.daemon.housekeeping): ids travel in temporary tables ---------------------

def collect_closed_incidents(db: sqlite_utils.Database, into: str, before: str) -> None:
    """Put in ``into`` the ids of the incidents closed (or last alerted) before ``before``."""
    db.execute(f"INSERT INTO {into} (id) SELECT id FROM alert_incidents WHERE status = 'closed'"
               " AND coalesce(closed_at, last_alert_at) < ?", [before])


def keep_findings_with_live_alerts(db: sqlite_utils.Database, findings: str, incidents: str) -> None:
    """Remove from the table ``findings`` the ids of findings with an alert outside the incidents of
    the table ``incidents``."""
    db.execute(f"DELETE FROM {findings} WHERE id IN (SELECT finding_id FROM alerts"
               f" WHERE incident_id NOT IN (SELECT id FROM {incidents}))")


def delete_alerts_of(db: sqlite_utils.Database, finding_ids_sql: str) -> int:
    return db.execute(f"DELETE FROM alerts WHERE finding_id IN ({finding_ids_sql})").rowcount


def keep_incidents_with_alerts(db: sqlite_utils.Database, incidents: str) -> None:
    """Remove from the table ``incidents`` the ids of incidents that still hold an alert."""
    db.execute(f"DELETE FROM {incidents} WHERE id IN (SELECT incident_id FROM alerts)")


def delete_incidents(db: sqlite_utils.Database, ids_sql: str) -> int:
    return db.execute(f"DELETE FROM alert_incidents WHERE id IN ({ids_sql})").rowcount

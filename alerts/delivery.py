"""At-least-once delivery of the outbox, with per-receiver state, backoff, dead letters and a fallback.

One pass (:func:`deliver_due`):

1. messages claimed by a sender that died (its process is gone, or its lease expired) go back to
   ``pending``: a crash at any moment loses nothing;
2. each due ``pending`` message is claimed (``sending``, attempts + 1, this process and a lease) in its
   own committed statement, sent, then marked ``delivered``. A crash between sending and marking sends
   it again later, with the same idempotency key: duplicates are recognisable;
3. a failure (its text with every URL redacted: :func:`redacted`) schedules a retry after a capped exponential backoff with jitter, for the message and
   for its receiver (the other messages of a receiver that is down wait too); past ``max_age``, or at
   once for a permanent error, the message is ``dead`` and a copy goes to the fallback receiver.

Every state change is a :func:`dumpwatch.store.write` transaction (``BEGIN IMMEDIATE``, retried while
a crawl or another command writes), so a pass never fails with "database is locked".

This module owns the SQL of ``alert_notifications`` (with :mod:`alerts.grouping`, which puts the
messages in) and ``alert_receivers`` (``dumpwatch.migrations.TABLE_OWNERS``): the CLI, the status, the
demo and housekeeping read and expire messages through its functions.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from alerts import grouping
from dumpwatch import clock
from alerts.channels import ChannelError
from alerts.render import Message, fallback_message
from alerts.settings import Alerting, Receiver
from dumpwatch import store
from dumpwatch.errors import DumpwatchError
from dumpwatch.redact import redact_urls, secret_parts

log = logging.getLogger(__name__)

Sender = Callable[[Receiver, Message, str], str]


@dataclass
class _Tally:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0
    reclaimed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """What one delivery pass did."""

    queued: int = 0  # messages created from due groups and reminders
    delivered: int = 0
    failed: int = 0  # will be retried
    dead: int = 0
    deferred: int = 0  # due, but their receiver is backing off
    reclaimed: int = 0
    errors: tuple[str, ...] = ()

    def summary(self) -> str:
        return (f"queued {self.queued}, delivered {self.delivered}, failed {self.failed}, dead {self.dead}, "
                f"deferred {self.deferred}, reclaimed {self.reclaimed}")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(worker: str) -> bool:
    """True when ``worker`` (host:pid) ran on this host and its process no longer runs."""
    host, _, pid_text = worker.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie (killed, not yet reaped) is gone too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def backoff(attempts: int, alerting: Alerting, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempts``: capped exponential, "equal jitter" (half fixed, half random)."""
    rng = rng or random.Random()
    delay = min(alerting.retry_cap, alerting.retry_base * 2 ** max(0, attempts - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


def reclaim(db: sqlite_utils.Database, now: datetime) -> int:
    """Messages left in ``sending`` by a sender that died go back to ``pending``."""
    stamp = clock.iso(now)
    count = 0
    for nid, worker, lease in db.execute(
            "SELECT id, claimed_by, lease_until FROM alert_notifications WHERE status = 'sending'").fetchall():
        if (lease and lease <= stamp) or (worker and _process_gone(worker)):
            with store.write(db):
                cur = db.execute("UPDATE alert_notifications SET status = 'pending', claimed_by = NULL, "
                                 "lease_until = NULL, next_attempt_at = ?, last_error = ? "
                                 "WHERE id = ? AND status = 'sending' AND claimed_by IS ?",
                                 [stamp, f"sender {worker} stopped while sending; resent with the same key",
                                  nid, worker])
            if cur.rowcount:
                log.warning("message %s was being sent by %s, which stopped: queued again", nid, worker)
                count += 1
    return count


def deliver_due(db: sqlite_utils.Database, alerting: Alerting, *, now: datetime | None = None,
                limit: int = 200, sender: Sender | None = None, rng: random.Random | None = None,
                ids: list[int] | None = None) -> Report:
    """One delivery pass: flush due groups to the outbox, then send what is due. Never raises for a
    receiver's failure (it is recorded on the message and the receiver).

    With ``ids``, send only those messages, now, whatever their receiver's backoff (``alerts test``,
    ``alerts retry --now``)."""
    from alerts.channels import send as channel_send

    now = now or clock.now()
    send = sender or channel_send
    report = _Tally()
    stamp = clock.iso(now)
    me = worker_id()
    if ids is None:
        report.queued = len(grouping.flush_due(db, alerting, now))
    report.reclaimed = reclaim(db, now)
    if ids is None:
        backing_off: set[str] = {r for (r,) in db.execute(
            "SELECT receiver FROM alert_receivers WHERE next_attempt_at > ?", [stamp]).fetchall()}
        rows = db.execute("SELECT id FROM alert_notifications WHERE status = 'pending' AND next_attempt_at <= ? "
                          "ORDER BY id LIMIT ?", [stamp, limit]).fetchall()
    else:
        backing_off = set()
        rows = [(i,) for i in ids]
    for (nid,) in rows:
        row = _get(db, nid)
        if row["receiver"] in backing_off:
            report.deferred += 1
            continue
        lease = clock.later(now, alerting.lease)
        with store.write(db):
            claimed = db.execute(
                "UPDATE alert_notifications SET status = 'sending', attempts = attempts + 1, claimed_by = ?, "
                "lease_until = ?, last_attempt_at = ? WHERE id = ? AND status = 'pending'",
                [me, lease, stamp, nid]).rowcount
        if not claimed:
            continue  # another sender took it
        receiver = alerting.receivers.get(row["receiver"])
        message = Message.from_json(json.loads(row["payload"]))
        try:
            if receiver is None:
                raise ChannelError(f"receiver {row['receiver']!r} is not in the configuration any more; add it "
                                   "back, or let the message go to the fallback receiver", permanent=True)
            receipt = send(receiver, message, row["idempotency_key"])
        except DumpwatchError as exc:
            permanent = isinstance(exc, ChannelError) and exc.permanent
            _failed(db, alerting, row, redacted(alerting, str(exc)), permanent, now, report, rng)
            backing_off.add(row["receiver"])
            continue
        except Exception as exc:  # a bug in a channel must not stop the others; keep the message
            error = redacted(alerting, f"{type(exc).__name__}: {exc}")
            # the frames, not the exception's text (it may quote a receiver's URL): that is in ``error``
            log.error("unexpected error sending message %s: %s\n%s", nid, error,
                      "".join(traceback.format_tb(exc.__traceback__)).rstrip())
            _failed(db, alerting, row, error, False, now, report, rng)
            backing_off.add(row["receiver"])
            continue
        with store.write(db):
            db.execute("UPDATE alert_notifications SET status = 'delivered', delivered_at = ?, claimed_by = NULL, "
                       "lease_until = NULL, last_error = NULL WHERE id = ?", [clock.iso(clock.now()), nid])
            db["alert_receivers"].upsert({"receiver": row["receiver"], "consecutive_failures": 0,
                                          "next_attempt_at": None, "last_success_at": stamp}, pk="receiver")
        report.delivered += 1
        log.info("message %s delivered to %s (%s)", row["idempotency_key"], row["receiver"], receipt)
    return Report(queued=report.queued, delivered=report.delivered, failed=report.failed, dead=report.dead,
                  deferred=report.deferred, reclaimed=report.reclaimed, errors=tuple(report.errors))


def redacted(alerting: Alerting, error: str) -> str:
    """A delivery error as it is stored and logged: every URL in it redacted, the configured receiver
    URLs first (:func:`dumpwatch.redact.redact_urls`). The channels already redact the URL they
    post to; this is the last line, for a channel or a library that quotes one anyway."""
    return redact_urls(error, {part for r in alerting.receivers.values() if r.url for part in secret_parts(r.url)})


def _get(db: sqlite_utils.Database, nid: int) -> dict[str, Any]:
    return dict(db["alert_notifications"].get(nid))


def _failed(db: sqlite_utils.Database, alerting: Alerting, row: dict[str, Any], error: str, permanent: bool,
            now: datetime, report: _Tally, rng: random.Random | None) -> None:
    stamp = clock.iso(now)
    attempts = int(row["attempts"]) + 1
    dead = permanent or stamp >= row["dead_after"] or row["kind"] == "test"  # a test is never retried
    with store.write(db):
        state = db.execute("SELECT consecutive_failures FROM alert_receivers WHERE receiver = ?",
                           [row["receiver"]]).fetchone()
        failures = (state[0] if state and state[0] else 0) + 1
        if dead:
            db.execute("UPDATE alert_notifications SET status = 'dead', claimed_by = NULL, lease_until = NULL, "
                       "last_error = ? WHERE id = ?", [error, row["id"]])
            if row["kind"] != "test":  # a probe of one receiver is not forwarded to another
                _fallback(db, alerting, row, now)
        else:
            retry_at = clock.later(now, backoff(attempts, alerting, rng))
            db.execute("UPDATE alert_notifications SET status = 'pending', claimed_by = NULL, lease_until = NULL, "
                       "last_error = ?, next_attempt_at = ? WHERE id = ?", [error, retry_at, row["id"]])
        db["alert_receivers"].upsert({
            "receiver": row["receiver"], "consecutive_failures": failures,
            "next_attempt_at": clock.later(now, backoff(failures, alerting, rng)),
            "last_error": error, "last_failure_at": stamp}, pk="receiver")
    if dead:
        report.dead += 1
        log.error("message %s to %s is dead after %d attempt(s): %s", row["idempotency_key"], row["receiver"],
                  attempts, error)
    else:
        report.failed += 1
        log.warning("message %s to %s failed (attempt %d), will retry: %s", row["idempotency_key"],
                    row["receiver"], attempts, error)
    report.errors.append(error)


def _fallback(db: sqlite_utils.Database, alerting: Alerting, row: dict[str, Any], now: datetime) -> None:
    fallback = alerting.fallback_receiver
    if not fallback or fallback == row["receiver"] or row["fallback_of"]:
        return
    payload = json.loads(row["payload"])
    message = Message.from_json(payload)
    copy = fallback_message(message, row["receiver"], *alerting.speech(fallback))
    grouping.insert_message(db, alerting, receiver=fallback, kind="fallback", key=f"{row['idempotency_key']}-fb",
                            message=copy, incident_id=row["incident_id"], now=now, fallback_of=row["id"])
    log.warning("message %s goes to fallback receiver %s", row["idempotency_key"], fallback)


def retry(db: sqlite_utils.Database, alerting: Alerting, nid: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Send a message again at the next pass: dead or waiting, it becomes due now (with a new max age)."""
    now = now or clock.now()
    with store.write(db):
        row = db.execute("SELECT status FROM alert_notifications WHERE id = ?", [nid]).fetchone()
        if row is None:
            raise DumpwatchError(f"no message {nid}; see: dumpwatch alerts list")
        if row[0] == "sending":
            raise DumpwatchError(f"message {nid} is being sent right now; try again in a moment")
        db.execute("UPDATE alert_notifications SET status = 'pending', next_attempt_at = ?, dead_after = ? "
                   "WHERE id = ?", [clock.iso(now), clock.later(now, alerting.max_age), nid])
        receiver = db.execute("SELECT receiver FROM alert_notifications WHERE id = ?", [nid]).fetchone()[0]
        db.execute("UPDATE alert_receivers SET next_attempt_at = NULL WHERE receiver = ?", [receiver])
    return _get(db, nid)


# -- the outbox of messages, as the CLI, the status and the demo read it ------------------------------

MESSAGE_COLUMNS = ("id", "receiver", "kind", "severity", "status", "attempts", "created_at", "next_attempt_at",
                   "delivered_at", "idempotency_key", "subject", "last_error")


def messages(db: sqlite_utils.Database, *, status: str | None = None, receiver: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
    """Messages (their :data:`MESSAGE_COLUMNS`, no payload), newest first, optionally of one state or receiver."""
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if receiver:
        where.append("receiver = ?")
        params.append(receiver)
    return [dict(r) for r in db["alert_notifications"].rows_where(
        " AND ".join(where) or None, params or None, order_by="id desc", limit=limit,
        select=", ".join(MESSAGE_COLUMNS))]


def get_message(db: sqlite_utils.Database, nid: int) -> dict[str, Any] | None:
    """One stored message, every column (its payload as stored: JSON text), or ``None``."""
    rows = list(db.query("SELECT * FROM alert_notifications WHERE id = ?", [nid]))
    return rows[0] if rows else None


def message_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many messages in each state (pending, sending, delivered, dead)."""
    return {r["status"]: r["n"] for r in db.query(
        "SELECT status, count(*) AS n FROM alert_notifications GROUP BY status")}


def message_counts_by_receiver(db: sqlite_utils.Database) -> dict[tuple[str, str], int]:
    """How many messages of each receiver in each state: ``{(receiver, status): n}``."""
    return {(r["receiver"], r["status"]): r["n"] for r in db.query(
        "SELECT receiver, status, count(*) AS n FROM alert_notifications GROUP BY receiver, status")}


def messages_waiting(db: sqlite_utils.Database) -> int:
    """Messages not yet delivered nor dead (pending or being sent)."""
    return db.execute("SELECT count(*) FROM alert_notifications WHERE status IN ('pending', 'sending')").fetchone()[0]


def receiver_states(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    """The delivery state of each receiver that was ever sent to (failures in a row, backoff, last error)."""
    return {r["receiver"]: r for r in db["alert_receivers"].rows}


def give_up(db: sqlite_utils.Database, nid: int) -> None:
    """Mark a message still pending as dead: it is not retried (a test message that did not arrive)."""
    with store.write(db):
        db.execute("UPDATE alert_notifications SET status = 'dead' WHERE id = ? AND status = 'pending'", [nid])


# -- evidence retention (dumpwatch.daemon.housekeeping) -----------------------------------------------------

def keep_incidents_with_messages_waiting(db: sqlite_utils.Database, incidents: str) -> None:
    """Remove from the table ``incidents`` the ids of incidents with a message pending or being sent."""
    db.execute(f"DELETE FROM {incidents} WHERE id IN (SELECT incident_id FROM alert_notifications"
               " WHERE status IN ('pending', 'sending'))")


def delete_messages_of(db: sqlite_utils.Database, incident_ids_sql: str) -> int:
    """Delete the messages of the incidents ``incident_ids_sql`` gives; return how many."""
    return db.execute(f"DELETE FROM alert_notifications WHERE incident_id IN ({incident_ids_sql})").rowcount

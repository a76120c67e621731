"""The transactional outbox: a finding and the alerts it causes are written in one transaction.

``record_finding`` (called by the crawler, the scanner and the demo) inserts the finding, routes it,
and inserts one ``alerts`` row per receiver (and lab scope) into the open incident of its group
(:func:`alerts.grouping.add_alert`), all inside one SQLite transaction: either the finding and all its alerts are stored, or none. The
delivery job (:mod:`alerts.jobs`) later turns due groups into messages (``alert_notifications``) and
sends them at least once. Each transaction is a :func:`dumpwatch.store.write` (``BEGIN IMMEDIATE``,
retried while another process writes), so a concurrent crawl or delivery pass never makes a finding
fail with "database is locked". Nothing here holds a cleartext identifier: samples, errors and URLs are
passed through :func:`alerts.privacy.scrub` before they are stored. The finding travels as Python
values (the row of :func:`dumpwatch.store.finding_row`); only the store turns it into JSON text.

Keys:

- ``findings.dedup_key`` (verdict, leak, content SHA-256): the same copy never makes a second finding;
- ``alerts.alert_key`` (installation, receiver, finding dedup key, lab scope): the same copy never
  alerts a receiver twice;
- ``alert_notifications.idempotency_key``: one per message, sent as a webhook header and as the
  email Message-ID, so a receiver recognises a message delivered twice. Both keys include the
  installation id (:func:`dumpwatch.store.installation_id`): a receiver told by two installations
  never takes one's message for the other's; one installation makes the same key on every retry
  and after a restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from alerts import grouping, patients, routes, settings
from alerts.privacy import scrub, scrub_value
from dumpwatch import clock, store

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
        patients.save_positions(db, finding_id, finding.records)  # positions only (Art. 34 look-ups)
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
    row = store.health_row(source=source, problem=problem, at=clock.iso(now), detail=detail)
    row["detail"] = scrub_value(row["detail"])
    with store.write(db):
        finding_id = store.insert_finding(db, row)
        if finding_id is None:
            return None
        enqueue(db, alerting, finding_id, row, now=now)
    return finding_id


def alert_key(receiver: str, dedup_key: str, lab: str, *, installation: str) -> str:
    """The key of one copy's alert to one receiver (and lab scope), in one installation
    (:func:`dumpwatch.store.installation_id`): another installation that finds the same copy makes
    another key."""
    return hashlib.sha256(f"{installation}|{receiver}|{dedup_key}|{lab}".encode()).hexdigest()[:32]


def enqueue(db: sqlite_utils.Database, alerting: settings.Alerting, finding_id: int, row: dict[str, Any],
            *, now: datetime) -> list[int]:
    """Route a stored finding and insert its alerts into their incidents (call inside a transaction).

    ``row`` is the finding as :func:`dumpwatch.store.finding_row` builds it or
    :func:`dumpwatch.store.get_finding` reads it back: its labs and categories are Python values.
    """
    labs = row.get("labs") or {}
    categories = row.get("categories") or []
    sev = routes.severity(row["verdict"], categories, int(row.get("matched_records") or 0), alerting)
    labels = {"leak": row.get("leak") or "", "verdict": row["verdict"], "severity": sev,
              "source": row.get("source") or ""}
    targets = routes.route(alerting, labels, labs)
    if not targets and alerting.configured:
        log.info("finding %s (%s, %s) matched no route: no alert", finding_id, row["verdict"], sev)
    ids = []
    installation = store.installation_id(db) if targets else ""
    for t in targets:
        key = alert_key(t.receiver, row["dedup_key"], t.lab, installation=installation)
        alert_id = grouping.add_alert(db, t, key=key, finding_id=finding_id, severity=sev, now=now)
        if alert_id is None:
            continue
        ids.append(alert_id)
        log.info("alert %s queued for %s (finding %s, %s %s%s)", key, t.receiver, finding_id, labels["verdict"],
                 sev, f", lab {t.lab}" if t.lab else "")
    return ids

"""Housekeeping of a dumpwatch home: retention of crawl state and evidence, database maintenance.

The daemon runs :func:`housekeep` on a schedule (``[daemon] housekeeping_interval``). What it does:

- **seen pages** (``crawl_seen_urls``) not seen again for ``seen_retention``: forgotten (a page
  forgotten is fetched again if it is still listed; its content hash still prevents a second match);
- **seen contents** (``crawl_seen_content``) not seen again for ``content_retention``;
- **crawl runs** (``crawl_runs``) older than ``run_retention``, always keeping the latest
  :data:`KEEP_RUNS` of each source (source health reads them);
- **evidence**: findings older than ``evidence_retention`` whose alerts belong to closed incidents
  with nothing left to deliver, with those alerts, messages and incidents (0 keeps evidence forever);
- **crawl logs** (``HOME/logs``) larger than ``max_log_bytes``: rotated to ``.1`` (one old copy);
- the database: ``PRAGMA optimize`` and a WAL checkpoint (``TRUNCATE``).

Nothing here deletes a finding whose alerts may still have to go out, so retention never loses an
alert. The crawler's own tables are expired by its helpers (``crawler.seen.expire``,
``crawler.health.expire_runs``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from alerts import delivery, grouping, patients
from crawler import health, seen
from dumpwatch import clock, store

log = logging.getLogger(__name__)

KEEP_RUNS = 20


@dataclass(frozen=True)
class Retention:
    """How long things are kept, in seconds (0 = forever)."""

    seen_retention: float = 90 * 86400.0
    content_retention: float = 365 * 86400.0
    run_retention: float = 90 * 86400.0
    evidence_retention: float = 730 * 86400.0
    max_log_bytes: int = 10 * 1000**2


@dataclass(frozen=True)
class HousekeepingReport:
    seen_urls: int = 0
    seen_contents: int = 0
    runs: int = 0
    findings: int = 0
    alerts: int = 0
    notifications: int = 0
    incidents: int = 0
    logs_rotated: int = 0
    wal_checkpoint: tuple[int, ...] = ()

    def summary(self) -> str:
        return (f"forgot {self.seen_urls} seen pages, {self.seen_contents} seen contents, {self.runs} runs; "
                f"removed {self.findings} findings, {self.alerts} alerts, {self.notifications} messages, "
                f"{self.incidents} incidents; rotated {self.logs_rotated} logs")


def housekeep(db: sqlite_utils.Database, *, retention: Retention, logs_dir: Path | None = None,
              now: datetime | None = None) -> HousekeepingReport:
    """One housekeeping pass over an open database (and the crawl logs directory)."""
    now = now or datetime.now(timezone.utc)
    counts: dict[str, int] = {}
    tables = set(db.table_names())
    with store.write(db):
        counts["seen_urls"], counts["seen_contents"] = seen.expire(
            db, urls_before=clock.cutoff(retention.seen_retention, now) if retention.seen_retention else None,
            contents_before=clock.cutoff(retention.content_retention, now) if retention.content_retention else None)
        if retention.run_retention:
            counts["runs"] = health.expire_runs(db, before=clock.cutoff(retention.run_retention, now), keep=KEEP_RUNS)
        if retention.evidence_retention and "alert_incidents" in tables:
            counts.update(_expire_evidence(db, clock.cutoff(retention.evidence_retention, now)))
    rotated = _rotate_logs(logs_dir, retention.max_log_bytes) if logs_dir else 0
    db.execute("PRAGMA optimize")
    checkpoint: tuple[int, ...] = ()
    if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        checkpoint = tuple(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    report = HousekeepingReport(logs_rotated=rotated, wal_checkpoint=checkpoint, **counts)
    log.info("housekeeping: %s", report.summary())
    return report


def _expire_evidence(db: sqlite_utils.Database, cutoff: str) -> dict[str, int]:
    """Old findings whose incidents are all closed and fully delivered, and what hangs on them.

    Each table's owner does its part (:data:`dumpwatch.migrations.TABLE_OWNERS`); the ids travel between
    them in two temporary tables."""
    incidents, findings = "temp._dw_old_incidents", "temp._dw_old_findings"
    for table in (incidents, findings):
        db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute(f"CREATE TEMP TABLE {table.removeprefix('temp.')} (id INTEGER PRIMARY KEY)")
    # incidents that are closed, old, and have nothing pending or being sent
    grouping.collect_closed_incidents(db, incidents, before=cutoff)
    delivery.keep_incidents_with_messages_waiting(db, incidents)
    # findings old enough whose every alert is in such an incident (or that have no alert at all)
    store.collect_findings_before(db, findings, before=cutoff)
    grouping.keep_findings_with_live_alerts(db, findings, incidents)
    alerts = grouping.delete_alerts_of(db, f"SELECT id FROM {findings}")
    # an incident goes only when no alert of a younger finding is left in it
    grouping.keep_incidents_with_alerts(db, incidents)
    notifications = delivery.delete_messages_of(db, f"SELECT id FROM {incidents}")
    incident_count = grouping.delete_incidents(db, f"SELECT id FROM {incidents}")
    seen.unlink_findings(db, f"SELECT id FROM {findings}")
    patients.delete_positions_of(db, f"SELECT id FROM {findings}")
    finding_count = store.delete_findings(db, f"SELECT id FROM {findings}")
    for table in (incidents, findings):
        db.execute(f"DROP TABLE {table}")
    return {"findings": finding_count, "alerts": alerts, "notifications": notifications, "incidents": incident_count}


def _rotate_logs(logs_dir: Path, max_bytes: int) -> int:
    rotated = 0
    if not max_bytes or not logs_dir.is_dir():
        return 0
    for path in logs_dir.iterdir():
        if path.suffix in (".log", ".stderr") and path.is_file() and path.stat().st_size > max_bytes:
            path.replace(path.with_name(path.name + ".1"))
            rotated += 1
    return rotated

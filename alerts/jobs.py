"""The delivery job: one pass of the outbox, as a function and as an APScheduler 3.x job.

``dumpwatch alerts send`` calls :func:`deliver_once`; the daemon calls :func:`add_jobs` on its
scheduler. The job opens its own database connection on each run (jobs run in a worker thread) and
never overlaps itself (``max_instances=1``, ``coalesce=True``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts import delivery
from alerts.outbox import alerting_of
from dumpwatch import store

log = logging.getLogger(__name__)

JOB_ID = "alerts-delivery"


def deliver_once(db_path: str | Path, config: dict[str, Any] | None, *, now: datetime | None = None,
                 limit: int = 200) -> delivery.Report:
    """Open the database, flush due groups and send due messages once; return what happened."""
    alerting = alerting_of(config)
    db = store.open_db(db_path)
    try:
        report = delivery.deliver_due(db, alerting, now=now, limit=limit)
    finally:
        db.close()
    if report.queued or report.delivered or report.failed or report.dead or report.reclaimed:
        log.info("alerts delivery: %s", report.summary())
    return report


def add_jobs(scheduler: Any, *, db_path: str | Path, config: dict[str, Any] | None, interval: float = 15.0,
             misfire_grace_time: int = 60) -> list[Any]:
    """Register the delivery job on an APScheduler 3.x scheduler (explicit id, no overlap, coalesced).

    The configuration is validated now, so a mistake in it stops the daemon at start, not at 3 a.m.
    """
    alerting_of(config)
    job = scheduler.add_job(deliver_once, "interval", seconds=interval, id=JOB_ID, name="alerts delivery",
                            kwargs={"db_path": str(db_path), "config": config}, max_instances=1, coalesce=True,
                            misfire_grace_time=misfire_grace_time, replace_existing=True)
    return [job]

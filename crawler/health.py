"""Per-source health: one row per run, and health findings when a source fails or falls silent.

A monitor that silently stops seeing anything is the worst failure of this kind of tool, so two
problems are raised to the operators through the alerts outbox (``alerts.outbox.record_health``):

- ``failing``: the last ``failing_runs`` runs (``[crawler] failing_runs``, default 3) all failed
  (no listing page could be read, the crawl crashed or was stopped);
- ``silent``: a run that worked found no item at all on its listing pages (``listed == 0``) while an
  earlier run of the same source did: the site changed its structure, or blocks us;
- ``losing``: the last ``failing_runs`` runs all read their listings but lost pages (documents that
  could not be scanned or recorded: a scan crash, disk full, a database locked past the write
  timeout; ``detail.lost`` of each run). Those pages are fetched again each run, and fail again;
- ``hostile``: the last run received a decompression bomb (a ``Content-Encoding`` body that decodes
  past ``max_download_size``; ``detail.bombs``, also counted in ``errors``): the site sends what is
  meant to exhaust the monitor's memory.

Each run is one :class:`CrawlRun` (this module owns ``crawl_runs``); :func:`crawler.run.crawl_source`
returns the same record, with how its process ended.

``listed`` counts the items (pastes, topics, entries, messages) a run saw on its listing pages,
new or already seen, so a quiet source with nothing new is not mistaken for a silent one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sqlite_utils

from dumpwatch import store
from dumpwatch.clock import utcnow

log = logging.getLogger(__name__)

RUN_COUNTERS = ("pages", "listed", "documents", "findings", "errors", "bad", "skipped")


@dataclass(frozen=True)
class CrawlRun:
    """One crawl of one source, as recorded in ``crawl_runs``; when :func:`crawler.run.crawl_source`
    ran it, also how its process ended (``returncode``, ``log_path``) and the source's health
    problems after it (``health``). ``ok`` is then true only if the process exited with status 0 too.
    """

    source: str
    kind: str
    ok: bool
    close_reason: str
    id: int | None = None
    run_key: str = ""
    started: str | None = None
    finished: str | None = None
    pages: int = 0
    listed: int = 0
    documents: int = 0
    findings: int = 0
    errors: int = 0
    bad: int = 0
    skipped: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)
    returncode: int | None = None
    health: tuple[str, ...] = ()
    log_path: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "CrawlRun":
        return cls(
            id=row["id"], run_key=row["run_key"] or "", source=row["source"], kind=row["kind"] or "",
            started=row["started"], finished=row["finished"], ok=bool(row["ok"]),
            close_reason=row["close_reason"] or "",
            **{k: int(row[k] or 0) for k in RUN_COUNTERS},
            detail=json.loads(row["detail"]) if row["detail"] else {},
        )

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["health"] = list(self.health)
        data["detail"] = dict(self.detail)
        return data


def start_run(db: sqlite_utils.Database, *, source: str, kind: str, run_key: str) -> int:
    with store.write(db):
        return db["crawl_runs"].insert({
            "run_key": run_key, "source": source, "kind": kind, "started": utcnow(), "finished": None,
            "ok": 0, "close_reason": "running", **{k: 0 for k in RUN_COUNTERS}, "detail": "{}",
        }).last_pk


def finish_run(db: sqlite_utils.Database, run_id: int, *, ok: bool, close_reason: str,
               counters: dict[str, int], detail: dict[str, Any] | None = None) -> None:
    row = {"finished": utcnow(), "ok": int(ok), "close_reason": close_reason,
           **{k: int(counters.get(k, 0)) for k in RUN_COUNTERS},
           "detail": json.dumps(detail or {}, sort_keys=True)}
    with store.write(db):
        db["crawl_runs"].update(run_id, row)


def record_failed_run(db: sqlite_utils.Database, *, source: str, kind: str, run_key: str, reason: str,
                      detail: dict[str, Any] | None = None) -> int:
    """A run that never got to record itself (its process crashed, timed out or could not start)."""
    with store.write(db):
        existing = db.execute("SELECT id FROM crawl_runs WHERE run_key = ?", [run_key]).fetchone()
        run_id = existing[0] if existing else start_run(db, source=source, kind=kind, run_key=run_key)
        finish_run(db, run_id, ok=False, close_reason=reason, counters={}, detail=detail)
    return run_id


def get_run(db: sqlite_utils.Database, run_key: str) -> CrawlRun | None:
    rows = list(db["crawl_runs"].rows_where("run_key = ?", [run_key], limit=1))
    return CrawlRun.from_row(rows[0]) if rows else None


def recent_runs(db: sqlite_utils.Database, source: str, limit: int = 10) -> list[CrawlRun]:
    rows = db["crawl_runs"].rows_where("source = ? AND finished IS NOT NULL", [source],
                                       order_by="id desc", limit=limit)
    return [CrawlRun.from_row(r) for r in rows]


def last_success(db: sqlite_utils.Database, source: str) -> str | None:
    row = db.execute("SELECT max(finished) FROM crawl_runs WHERE source = ? AND ok = 1", [source]).fetchone()
    return row[0] if row else None


def problems(db: sqlite_utils.Database, source: str, *, failing_runs: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """The health problems of a source given its recorded runs: ``[(problem, detail), ...]``."""
    runs = recent_runs(db, source, limit=max(failing_runs, 10))
    if not runs:
        return []
    found: list[tuple[str, dict[str, Any]]] = []
    latest = runs[0]
    streak = 0
    for run in runs:
        if run.ok:
            break
        streak += 1
    losing = [r for r in runs[:streak] if (r.detail or {}).get("lost", 0) > 0
              and (r.detail or {}).get("listing_ok", 0) > 0]
    if streak >= failing_runs and len(losing) == streak:
        found.append(("losing", {
            "runs_losing_pages": streak,
            "lost_pages": [int((r.detail or {}).get("lost", 0)) for r in losing],
            "last_success": last_success(db, source),
            "last_errors": (latest.detail or {}).get("error_reasons", {}),
        }))
    elif streak >= failing_runs:
        found.append(("failing", {
            "failed_runs": streak,
            "last_success": last_success(db, source),
            "last_reason": latest.close_reason,
            "last_errors": (latest.detail or {}).get("error_reasons", {}),
        }))
    elif latest.ok and latest.listed == 0:
        earlier = [r for r in runs[1:] if r.ok and r.listed > 0]
        if earlier:
            found.append(("silent", {
                "listed_before": earlier[0].listed,
                "since_run": latest.id,
                "pages": latest.pages,
                "last_success": latest.finished,
            }))
    bombs = int((latest.detail or {}).get("bombs", 0))
    if bombs:
        found.append(("hostile", {"bombs": bombs, "since_run": latest.id,
                               "last_errors": (latest.detail or {}).get("error_reasons", {})}))
    return found


def check_health(db: sqlite_utils.Database, source: str, *, failing_runs: int = 3,
                 config: dict | None = None) -> list[str]:
    """Record a health finding for each current problem of ``source``; return the problems."""
    from alerts.outbox import record_health

    names = []
    urls = next((list(s.get("start_urls") or [])[:3] for s in (config or {}).get("sources") or []
                 if isinstance(s, Mapping) and s.get("name") == source), [])  # named in the alert
    for problem, detail in problems(db, source, failing_runs=failing_runs):
        log.warning("source %s is %s: %s", source, problem, detail)
        record_health(db, source=source, problem=problem, detail={**detail, "urls": urls} if urls else detail,
                      config=config)
        names.append(problem)
    return names


def summary(db: sqlite_utils.Database, sources: list[str]) -> list[dict[str, Any]]:
    """Per source: the last run's counters, the last success and the current problems."""
    out = []
    for name in sources:
        runs = recent_runs(db, name, limit=1)
        found = [p for p, _ in problems(db, name)]
        out.append({
            "source": name,
            "last_run": replace(runs[0], health=tuple(found)).to_json() if runs else None,
            "last_success": last_success(db, name),
            "problems": found,
        })
    return out


def last_started(db: sqlite_utils.Database) -> dict[str, str]:
    """When each source's latest run started (ISO 8601), for the sources that ran."""
    return {r["source"]: r["started"] for r in db.query("SELECT source, max(started) AS started FROM crawl_runs "
                                                         "GROUP BY source") if r["started"]}


def finished_runs(db: sqlite_utils.Database) -> list[CrawlRun]:
    """Every finished run, oldest first."""
    return [CrawlRun.from_row(r) for r in db["crawl_runs"].rows_where("finished IS NOT NULL", order_by="id")]


def expire_runs(db: sqlite_utils.Database, *, before: str, keep: int = 20) -> int:
    """Delete finished runs started before ``before``, always keeping the latest ``keep`` of each
    source (health checks read them). Returns how many were deleted."""
    if "crawl_runs" not in db.table_names():
        return 0
    with store.write(db):
        return db.execute(
            "DELETE FROM crawl_runs WHERE started < ? AND finished IS NOT NULL AND id NOT IN ("
            " SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY source ORDER BY id DESC) AS n"
            " FROM crawl_runs) WHERE n <= ?)", [before, keep]).rowcount

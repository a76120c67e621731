"""Crawl runs of the distributed mode: opened by the control node's push, counted by the workers,
closed by the control node, recorded in the same ``crawl_runs`` table as a local crawl.

On one machine a crawl is one process, and :class:`crawler.extensions.RunRecorder` records its run
when it closes. A worker's crawl lives for days and serves every run of its source, and a run is
served by several workers, so here:

1. the control node's push of a source opens a run (:func:`open_run`): a ``crawl_runs`` row
   (``close_reason = "running"``), its run key in ``dumpwatch:run:current:SOURCE`` and what the
   control node needs to close it in the hash ``dumpwatch:runs`` (field SOURCE);
2. each worker crawl adds what it did since its last heartbeat (pages, documents, findings sent,
   errors and bad pages by kind, bytes, …: the same Scrapy stats a local run records) to the
   hash ``dumpwatch:run:counters:RUN`` of its source's current run (``HINCRBY``), in one Lua
   script with its heartbeat (:data:`BEAT`), which also says how many requests it has in progress
   (downloading, or being parsed and scanned); a worker that becomes busy writes its heartbeat at
   once (:class:`crawler.cluster.workers.BusyMiddleware`). What a worker did while no run was open is
   kept and added to the next run;
3. the control node's ``runs`` job (:func:`check_runs`, every few seconds) closes a run when the
   source's queue is empty, every live worker of the source reports nothing in progress and no
   request of the source is in flight (:mod:`crawler.cluster.inflight`: popped and not yet
   acknowledged, whatever the heartbeats say), at two checks in a row: ``ok`` when listing pages were read and nothing was lost; ``partial``
   (a page lost, a listing failed, a worker that went silent during the run, a timeout after
   some work) or ``error`` (no listing read, no live worker for the source) with the failures said
   in ``close_reason`` and ``detail.failures``. Then the source's health is checked, as after a
   local crawl, so ``dumpwatch status``, source health and the crawl-run table tell the truth.

Only counts are in Redis: stats names of our own, numbers, run keys, times.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crawler import health

log = logging.getLogger(__name__)

CURRENT = "dumpwatch:run:current:"  # + source: the run key the workers count into
OPEN = "dumpwatch:runs"  # source -> JSON of the open run (the control node's)
COUNTERS = "dumpwatch:run:counters:"  # + run key: the workers' counters (HINCRBY)
NO_WORKER_GRACE = 60.0  # seconds a run may wait with requests queued and no live worker of its source

# Scrapy stats a worker adds to its source's run, under another name where the run's name differs.
RENAMED = {"downloader/response_count": "pages", "downloader/response_bytes": "bytes",
           "robotstxt/forbidden": "robots_forbidden", "scheduler/dequeued/redis": "requests",
           "dumpwatch/cluster/findings_sent": "findings_sent"}
FIELD_MAX = 100  # longest counter name (reasons are short labels of our own)

# KEYS: the source's current-run key, the heartbeat hash. ARGV: field, heartbeat JSON, then name, delta pairs.
# Returns 1 when the counters went to an open run (or there were none), 0 when no run is open.
BEAT = """
local run = redis.call('GET', KEYS[1])
if run and #ARGV > 2 then
  local k = 'dumpwatch:run:counters:' .. run
  for i = 3, #ARGV, 2 do redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1]) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if run or #ARGV <= 2 then return 1 end
return 0
"""


# -- the worker's side ------------------------------------------------------------------------------

def snapshot(stats: Mapping[str, Any]) -> dict[str, int]:
    """The counters of a worker crawl's Scrapy stats that go to its runs (numbers only)."""
    from alerts.privacy import scrub

    out = {}
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if key in RENAMED:
            out[RENAMED[key]] = value
        elif key.startswith("dumpwatch/") and not key.startswith("dumpwatch/cluster/"):
            out[scrub(key[len("dumpwatch/"):])[:FIELD_MAX]] = value
    return out


class RunCounters:
    """What a worker crawl has already added to runs; :meth:`deltas` is what it has not."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}

    def deltas(self, now: Mapping[str, int]) -> dict[str, int]:
        return {k: v - self.sent.get(k, 0) for k, v in now.items() if v != self.sent.get(k, 0)}

    def commit(self, now: Mapping[str, int]) -> None:
        self.sent = dict(now)


def beat(r: Any, source: str, name: str, heartbeat: Mapping[str, Any], deltas: Mapping[str, int],
         *, workers_key: str) -> bool:
    """Write a worker's heartbeat and add its counters to the source's open run; False if none is open."""
    args: list[Any] = [name, json.dumps(heartbeat, sort_keys=True)]
    for key, value in sorted(deltas.items()):
        args += [key, int(value)]
    return bool(r.eval(BEAT, 2, CURRENT + source, workers_key, *args))


# -- the control node's side ------------------------------------------------------------------------

@dataclass
class Watch:
    """What the control node remembers between two checks of a run (in memory: a restart checks again)."""

    quiet: int = 0  # checks in a row that saw the source's queue empty and its workers idle
    no_worker_since: float | None = None


@dataclass
class RunsPass:
    """What one :func:`check_runs` did."""

    open: int = 0
    closed: dict[str, str] = field(default_factory=dict)  # source -> ok / partial / error


def open_run(r: Any, db: Any, source: Any, *, timeout: float) -> dict[str, Any]:
    """A run of ``source`` starts (before its start requests are pushed); the open run's record."""
    run_key = uuid.uuid4().hex
    run_id = health.start_run(db, source=source.name, kind=source.kind, run_key=run_key)
    info = {"run": run_key, "id": run_id, "source": source.name, "kind": source.kind,
            "opened": time.time(), "timeout": float(timeout)}
    try:
        r.hset(OPEN, source.name, json.dumps(info, sort_keys=True))
        r.set(CURRENT + source.name, run_key)
    except Exception as exc:  # Redis away: the run is recorded as failed, never left "running"
        health.finish_run(db, run_id, ok=False, close_reason=f"error: Redis unreachable ({type(exc).__name__}): "
                          "start requests not pushed", counters={}, detail={"cluster": True, "outcome": "error"})
        raise
    return info


def open_runs(r: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for name, raw in r.hgetall(OPEN).items():
        try:
            out[name] = json.loads(raw)
        except ValueError:
            log.error("dumpwatch:runs field %s is not a run: dropped", name)
            r.hdel(OPEN, name)
    return out


def counters_of(r: Any, run_key: str) -> dict[str, int]:
    out = {}
    for key, value in r.hgetall(COUNTERS + run_key).items():
        try:
            out[key] = int(value)
        except ValueError:  # HINCRBY writes integers only: something else wrote here
            log.error("run %s: counter %s is not a number (%r): not counted", run_key, key, str(value)[:40])
    return out


def close_run(r: Any, db: Any, info: Mapping[str, Any], *, failures: list[str], config: Any = None,
              failing_runs: int = 3, timed_out: bool = False) -> str:
    """Record the run in ``crawl_runs`` (ok / partial / error), then forget it in Redis; the outcome."""
    known = health.get_run(db, info["run"])
    if known is not None and known.finished is not None:  # closed already (by another control node?)
        _forget(r, info)
        return "ok" if known.ok else "closed"
    counts = counters_of(r, info["run"])
    get = counts.get
    failures = list(failures)
    lost, listing_ok, listing_failed = get("lost", 0), get("listing_ok", 0), get("listing_failed", 0)
    if lost:
        failures.append(f"{lost} page(s) lost (fetched again next run)")
    if listing_failed:
        failures.append(f"{listing_failed} listing page(s) failed")
    if not listing_ok:
        failures.insert(0, "no listing page was read")
    outcome = "ok" if not failures else ("error" if not listing_ok else "partial")
    reason = "finished" if outcome == "ok" else f"{outcome}: {'; '.join(failures)}"[:500]
    counters = {"pages": get("pages", 0), "listed": get("listed", 0), "documents": get("documents", 0),
                "findings": get("findings_sent", 0), "errors": get("errors", 0), "bad": get("bad", 0),
                "skipped": get("skipped_seen", 0) + get("duplicate_content", 0)}

    def suffixed(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in counts.items() if k.startswith(prefix)}

    detail = {"cluster": True, "outcome": outcome, "failures": failures, "timed_out": timed_out,
              "lost": lost, "listing_ok": listing_ok, "listing_failed": listing_failed,
              "incomplete": get("incomplete", 0), "bytes": get("bytes", 0), "requests": get("requests", 0),
              "findings_sent": get("findings_sent", 0), "error_reasons": suffixed("error_reasons/"),
              "bad_reasons": suffixed("bad_reasons/"), "verdicts": suffixed("verdicts/"),
              "retry_after": get("retry_after", 0), "robots_forbidden": get("robots_forbidden", 0),
              "duplicate_content": get("duplicate_content", 0), "skipped_seen": get("skipped_seen", 0),
              "refused": get("refused", 0), "refused_reasons": suffixed("refused_reasons/"),
              "offsite_skipped": get("offsite_skipped", 0), "bombs": get("bombs", 0)}
    health.finish_run(db, int(info["id"]), ok=outcome == "ok", close_reason=reason, counters=counters,
                      detail=detail)
    _forget(r, info)  # stored: now Redis may forget it (a control node that dies before closes it again)
    source = info["source"]
    problems = health.check_health(db, source, failing_runs=failing_runs, config=config)
    level = logging.INFO if outcome == "ok" else logging.WARNING
    log.log(level, "run of %s closed: %s; %s%s", source, reason, counters,
            f"; health: {', '.join(problems)}" if problems else "")
    return outcome


def _forget(r: Any, info: Mapping[str, Any]) -> None:
    source = info["source"]
    if r.get(CURRENT + source) == info["run"]:
        r.delete(CURRENT + source)
    raw = r.hget(OPEN, source)
    if raw and json.loads(raw).get("run") == info["run"]:
        r.hdel(OPEN, source)
    r.delete(COUNTERS + info["run"])


def check_runs(r: Any, db: Any, watches: dict[str, Watch], heartbeats: list[dict[str, Any]], *,
               queue_length: Any, in_flight: Any = None, config: Any = None, failing_runs: int = 3,
               now: float | None = None) -> RunsPass:
    """The ``runs`` job: close each open run that is done, timed out or without workers.

    ``heartbeats``: :func:`crawler.cluster.workers.read`; ``queue_length(source)``: requests
    waiting in the source's queue; ``in_flight(source)``: (requests popped by live crawls and not
    finished, requests held by dead ones): the first are in progress even when a heartbeat still
    says idle, the second waiting (:func:`crawler.cluster.inflight.held`); ``watches``: kept by
    the caller from one check to the next.
    """
    now = time.time() if now is None else now
    done = RunsPass()
    for source, info in open_runs(r).items():
        run = health.get_run(db, info["run"])
        if run is not None and run.finished is not None:  # closed, then the control node died: forget it
            _forget(r, info)
            continue
        done.open += 1
        watch = watches.setdefault(info["run"], Watch())
        mine = [h for h in heartbeats if h.get("source") == source]
        live = [h for h in mine if not h["silent"]]
        died = sorted(h["name"] for h in mine if h["silent"] and _stamp(h.get("heartbeat")) >= info["opened"] - 1)
        held_live, held_dead = in_flight(source) if in_flight is not None else (0, 0)
        waiting = int(queue_length(source)) + held_dead
        busy = max(sum(int(h.get("in_progress") or 0) for h in live), held_live)
        failures = [f"worker {name} went silent during the run (its requests in flight were re-queued for the others)"
                    for name in died]
        age = now - float(info["opened"])
        if not live:
            watch.no_worker_since = watch.no_worker_since or now
        else:
            watch.no_worker_since = None
        if waiting == 0 and busy == 0 and live:
            watch.quiet += 1
        else:
            watch.quiet = 0
        outcome = None
        if watch.quiet >= 2:
            outcome = close_run(r, db, info, failures=failures, config=config, failing_runs=failing_runs)
        elif age > float(info["timeout"]):
            outcome = close_run(r, db, info, config=config, failing_runs=failing_runs, timed_out=True, failures=[
                f"timed out after {age:.0f} s with {waiting} request(s) queued and {busy} in progress",
                *failures])
        elif watch.no_worker_since is not None and now - watch.no_worker_since >= NO_WORKER_GRACE:
            outcome = close_run(r, db, info, config=config, failing_runs=failing_runs, failures=[
                f"no live worker crawls {source} ({waiting} request(s) queued for {now - watch.no_worker_since:.0f} s)",
                *failures])
        if outcome is not None:
            done.closed[source] = outcome
            watches.pop(info["run"], None)
    return done


def supersede(r: Any, db: Any, source: str, *, config: Any = None, failing_runs: int = 3) -> str | None:
    """Close the source's run still open when its next run is pushed; its outcome, or None."""
    raw = r.hget(OPEN, source)
    if not raw:
        return None
    info = json.loads(raw)
    run = health.get_run(db, info["run"])
    if run is not None and run.finished is not None:
        _forget(r, info)
        return None
    return close_run(r, db, info, config=config, failing_runs=failing_runs,
                     failures=["not finished when the next run was pushed"])


def _stamp(iso: Any) -> float:
    """A heartbeat's time; one that does not read counts as recent (a silent worker with an
    unreadable heartbeat is said to have died during the run, not forgotten)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return float("inf")

"""The daemon as the control node of the distributed mode (``[cluster] redis_url`` or ``--redis URL``).

It keeps the schedule, the SQLite store, the outbox and the delivery; a crawl job no longer starts a
local crawl but pushes the source's start requests to Redis (:func:`crawler.cluster.control.push_start_requests`),
and the ``findings`` job reads the findings stream that the workers write
(:class:`crawler.cluster.findings.Consumer`), recording each finding and its alerts, once.
Each push opens a crawl run of the source (:func:`crawler.cluster.runs.open_run`) and the ``runs``
job (:meth:`Control.watch`) closes it when the workers are done with it (ok, partial or error, in
``crawl_runs`` as a local crawl's run), and says once, as a warning, each worker that fell silent
(counted in ``daemon.json``: ``stats.workers``).
Redis that does not answer fails the job (counted and logged by the daemon as any job error) and
the next run tries again: findings wait in the stream, requests in the queue. Each findings pass
also publishes the enrolled indexes' identities again (workers pause on a stale copy:
crawler/cluster/reload.py); with ``[cluster] metrics`` the counts and gauges go to a Prometheus
page (:class:`crawler.cluster.metrics.ControlMetrics`, served from :meth:`Control.start`).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from crawler.cluster.connect import ClusterSettings, client
from dumpwatch.home import Home

log = logging.getLogger(__name__)

FINDINGS_JOB = "findings"
FINDINGS_INTERVAL = 2.0  # seconds between two reads of the findings stream (each reads all there is)
RUNS_JOB = "runs"
RUNS_INTERVAL = 2.0  # seconds between two checks of the open runs and the workers' heartbeats


class Control:
    def __init__(self, home: Home, config: Any, crawl_config: Any, cluster: ClusterSettings):
        self.home = home
        self.config = config
        self.crawl_config = crawl_config
        self.cluster = cluster
        self._lock = threading.Lock()
        self._redis: Any = None
        self._consumer: Any = None
        self._alerting: Any = None
        self._watches: dict[str, Any] = {}  # run key -> crawler.cluster.runs.Watch
        self._state_lock = threading.Lock()
        self._runs_lock = threading.Lock()  # a push and the runs job never close the same run together
        self.silent: dict[str, str] = {}  # silent worker crawls said so far (name -> last heartbeat)
        self.silent_seen = 0  # how many times a worker crawl fell silent
        self.runs_closed: dict[str, int] = {}  # outcome -> runs closed
        self.metrics: Any = None  # crawler/cluster/metrics.py, when [cluster] metrics is set
        if cluster.metrics is not None:
            from crawler.cluster.metrics import ControlMetrics

            self.metrics = ControlMetrics(cluster, home, [s.name for s in crawl_config.enabled()])

    def start(self) -> None:
        """The daemon started: serve the metrics page, if asked for."""
        if self.metrics is not None:
            self.metrics.start()

    def stop(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()

    def _count(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.error(kind)

    def redis(self) -> Any:
        with self._lock:
            if self._redis is None:
                from crawler.cluster import indexes

                r = client(self.cluster)
                indexes.publish(r, self.home)  # what the workers check theirs against
                self._redis = r
            return self._redis

    def push(self, name: str) -> dict[str, Any]:
        """The crawl job of a source: a run opened (the one still open closed), its start requests into Redis."""
        from crawler.cluster import indexes, runs
        from crawler.cluster.control import push_start_requests
        from dumpwatch.store import open_db

        src = self.crawl_config.get(name)
        failing = self.crawl_config.defaults.failing_runs
        try:
            r = self.redis()
            indexes.publish(r, self.home)  # again: a leak may have been enrolled again
            db = open_db(self.home.db_path)
            try:
                with self._runs_lock:
                    runs.supersede(r, db, name, config=self.config, failing_runs=failing)
                    info = runs.open_run(r, db, src, timeout=self.crawl_config.defaults.run_timeout)
                try:
                    n = push_start_requests(r, src, self.crawl_config)
                except Exception as exc:
                    runs.close_run(r, db, info, config=self.config, failing_runs=failing,
                                   failures=[f"start requests not pushed ({type(exc).__name__})"])
                    raise
            finally:
                db.close()
        except Exception:
            self._count("push")
            raise
        if self.metrics is not None:
            self.metrics.push_done(name, n)
        return {"source": name, "pushed": n, "ok": True}

    def watch(self) -> dict[str, Any]:
        """The ``runs`` job: close the runs the workers are done with; say each silent worker once."""
        from crawler.cluster import inflight, runs, workers
        from crawler.cluster.worker import queue_key
        from dumpwatch.store import open_db

        r = self.redis()
        beats = workers.read(r)
        self._note_silent(beats)
        db = open_db(self.home.db_path)
        try:
            with self._runs_lock:
                done = runs.check_runs(r, db, self._watches, beats, queue_length=lambda s: r.zcard(queue_key(s)),
                                       in_flight=lambda s: inflight.held(r, s, beats),
                                       config=self.config, failing_runs=self.crawl_config.defaults.failing_runs)
        finally:
            db.close()
        with self._state_lock:
            for outcome in done.closed.values():
                self.runs_closed[outcome] = self.runs_closed.get(outcome, 0) + 1
        return {"open": done.open, "closed": done.closed, "silent": len(self.silent)}

    def _note_silent(self, beats: list[dict[str, Any]]) -> None:
        with self._state_lock:
            now_silent = {b["name"]: str(b.get("heartbeat")) for b in beats if b["silent"]}
            for name, heartbeat in sorted(now_silent.items()):
                if name not in self.silent:
                    self.silent_seen += 1
                    log.warning("worker %s is SILENT: no heartbeat since %s (killed, hung or cut off from "
                                "Redis); `dumpwatch workers` lists them", name, heartbeat)
            self.silent = now_silent

    def snapshot(self) -> dict[str, Any]:
        """For ``daemon.json`` (``stats.workers``): silent worker crawls now, and how many fell silent."""
        with self._state_lock:
            return {"silent_now": sorted(self.silent), "silent_seen": self.silent_seen,
                    "runs_closed": dict(self.runs_closed)}

    def consume(self) -> dict[str, int]:
        """The ``findings`` job: one pass over the findings stream (its own connection to the store:
        the job runs in any thread of the scheduler's pool), then the in-flight requests of dead
        workers back into their queues (:func:`crawler.cluster.inflight.requeue_dead`)."""
        from alerts import record_finding
        from alerts.outbox import alerting_of
        from crawler.cluster import indexes
        from crawler.cluster.findings import Consumer
        from crawler.cluster.inflight import requeue_dead
        from dumpwatch.store import open_db

        if self._consumer is None:
            self._alerting = alerting_of(self.config)
            self._consumer = Consumer(self.redis(), None, name=self.cluster.consumer,
                                      claim_idle=self.cluster.claim_idle)
        try:
            # the workers check theirs against it: a leak enrolled again is seen within one pass
            indexes.publish(self.redis(), self.home)
            db = open_db(self.home.db_path)
            try:
                self._consumer.record = functools.partial(record_finding, db, config=self._alerting)
                done = self._consumer.run_once()
            finally:
                db.close()
            requeued = sum(requeue_dead(self.redis()).values())  # the requests of dead workers (said in the log)
        except Exception:
            self._count("findings pass")
            raise
        if self.metrics is not None:
            self.metrics.pass_done(vars(done))
        if done.read or done.lost:
            level = logging.WARNING if done.bad or done.errors or done.lost else logging.INFO
            log.log(level, "findings stream: %d read, %d recorded, %d already known, %d claimed, %d bad, "
                    "%d errors, %d lost", done.read, done.recorded, done.duplicates, done.claimed, done.bad,
                    done.errors, done.lost)
        return {**{k: v for k, v in vars(done).items() if k != "ids"}, "requeued": requeued}

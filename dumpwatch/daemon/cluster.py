"""The daemon as the control node of the distributed mode (``[cluster] redis_url`` or ``--redis URL``).

It keeps the schedule, the SQLite store, the outbox and the delivery; a crawl job no longer starts a
local crawl but pushes the source's start requests to Redis (:func:`crawler.cluster.control.push_start_requests`),
and the ``findings`` job reads the findings stream that the workers write
(:class:`crawler.cluster.findings.Consumer`), recording each finding and its alerts, once.
Redis that does not answer fails the job (counted and logged by the daemon as any job error) and
the next run tries again: findings wait in the stream, requests in the queue.
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

    def redis(self) -> Any:
        with self._lock:
            if self._redis is None:
                from crawler.cluster import indexes

                r = client(self.cluster)
                indexes.publish(r, self.home)  # what the workers check theirs against
                self._redis = r
            return self._redis

    def push(self, name: str) -> dict[str, Any]:
        """The crawl job of a source: its start requests into Redis."""
        from crawler.cluster import indexes
        from crawler.cluster.control import push_start_requests

        indexes.publish(self.redis(), self.home)  # again: a leak may have been enrolled again
        n = push_start_requests(self.redis(), self.crawl_config.get(name), self.crawl_config)
        return {"source": name, "pushed": n, "ok": True}

    def consume(self) -> dict[str, int]:
        """The ``findings`` job: one pass over the findings stream (its own connection to the store:
        the job runs in any thread of the scheduler's pool), then the in-flight requests of dead
        workers back into their queues (:func:`crawler.cluster.inflight.requeue_dead`)."""
        from alerts import record_finding
        from alerts.outbox import alerting_of
        from crawler.cluster.findings import Consumer
        from crawler.cluster.inflight import requeue_dead
        from dumpwatch.store import open_db

        if self._consumer is None:
            self._alerting = alerting_of(self.config)
            self._consumer = Consumer(self.redis(), None, name=self.cluster.consumer,
                                      claim_idle=self.cluster.claim_idle)
        db = open_db(self.home.db_path)
        try:
            self._consumer.record = functools.partial(record_finding, db, config=self._alerting)
            done = self._consumer.run_once()
        finally:
            db.close()
        requeued = sum(requeue_dead(self.redis()).values())  # the requests of dead workers (said in the log)
        if done.read or done.lost:
            level = logging.WARNING if done.bad or done.errors or done.lost else logging.INFO
            log.log(level, "findings stream: %d read, %d recorded, %d already known, %d claimed, %d bad, "
                    "%d errors, %d lost", done.read, done.recorded, done.duplicates, done.claimed, done.bad,
                    done.errors, done.lost)
        return {**{k: v for k, v in vars(done).items() if k != "ids"}, "requeued": requeued}

"""Worker heartbeats in Redis, and who is silent.

Each crawl of a worker writes, every :data:`HEARTBEAT_SECONDS`, one field of the hash
``dumpwatch:workers`` (``HOST:PID:SOURCE``): the host, pid, dumpwatch version, source, when it
started, the heartbeat time and its period, the documents it fetched and the findings it sent, and
when it last fetched a document. :func:`read` gives them back with ``silent`` set for a heartbeat
older than three periods (a worker killed, hung or cut off). ``dumpwatch workers`` shows them; the
same name keys the crawl's in-flight requests (:mod:`crawler.cluster.inflight`), re-queued once it
is silent.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime, timezone
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler

from dumpwatch import clock

log = logging.getLogger(__name__)

KEY = "dumpwatch:workers"
HEARTBEAT_SECONDS = 10.0


def worker_name(source: str) -> str:
    """The name of this process's crawl of ``source``: HOST:PID:SOURCE (its heartbeat, its in-flight hash)."""
    return f"{socket.gethostname()}:{os.getpid()}:{source}"


def read(r: Any, *, now: datetime | None = None, period: float = HEARTBEAT_SECONDS) -> list[dict[str, Any]]:
    """Every worker crawl's last heartbeat, ``silent`` when older than three of its periods (its
    ``period``, else ``period``), sorted by name."""
    now = now or datetime.now(timezone.utc)
    out = []
    for name, raw in sorted(r.hgetall(KEY).items()):
        try:
            info = json.loads(raw)
            age = (now - datetime.fromisoformat(info["heartbeat"])).total_seconds()
        except (TypeError, ValueError, KeyError):
            info, age = {}, float("inf")
        own = info.get("period") if isinstance(info.get("period"), (int, float)) else period
        out.append({**info, "name": name, "age": age, "silent": age > 3 * own})
    return out


class Heartbeat:
    """The extension of a worker's crawl that writes its heartbeat (crawler/cluster/worker.py)."""

    def __init__(self, crawler: Crawler, period: float = HEARTBEAT_SECONDS):
        self.crawler = crawler
        self.period = period
        self.task: Any = None
        self.redis: Any = None
        self.info: dict[str, Any] = {}
        self._documents = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "Heartbeat":
        ext = cls(crawler, crawler.settings.getfloat("DUMPWATCH_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        from importlib.metadata import version

        from twisted.internet import task

        from crawler.cluster.connect import client, cluster_settings
        from crawler.state import state_of

        state = state_of(self.crawler)
        self.redis = client(cluster_settings(state.config, self.crawler.settings.get("REDIS_URL")))
        self.name = worker_name(state.source.name)
        self.info = {"host": socket.gethostname(), "pid": os.getpid(), "version": version("dumpwatch"),
                     "source": state.source.name, "started": clock.utcnow(), "last_document": None,
                     "period": self.period}
        self.task = task.LoopingCall(self.beat)
        self.task.start(self.period, now=True)

    def beat(self) -> None:
        stats = self.crawler.stats
        assert stats is not None
        documents = stats.get_value("dumpwatch/documents_fetched", 0)
        if documents != self._documents:
            self._documents = documents
            self.info["last_document"] = clock.utcnow()
        self.info.update(heartbeat=clock.utcnow(), documents=documents,
                         findings_sent=stats.get_value("dumpwatch/cluster/findings_sent", 0))
        try:
            self.redis.hset(KEY, self.name, json.dumps(self.info, sort_keys=True))
        except Exception as exc:  # Redis away: the next beat tries again; the control node sees it silent
            stats.inc_value("dumpwatch/cluster/heartbeat_failed")
            log.warning("heartbeat not written (%s)", type(exc).__name__)

    def spider_closed(self, spider: Any) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        try:
            self.redis.hdel(KEY, self.name)  # stopped on purpose: not a silent worker
        except Exception as exc:
            log.warning("heartbeat not removed (%s): this crawl will show as silent", type(exc).__name__)

"""Worker heartbeats in Redis, and who is silent.

Each crawl of a worker writes, every :data:`HEARTBEAT_SECONDS`, one field of the hash
``dumpwatch:workers`` (``HOST:PID:SOURCE``): the host, pid, dumpwatch version, source, when it
started, the heartbeat time and its period, the documents it fetched and the findings it sent, when
it last fetched a document, how many requests it has in progress (downloading, or being parsed and
scanned), and ``stale_index``: why it does not scan (its index does not match the control node's:
:mod:`crawler.cluster.reload`), or null. :func:`read` gives them back with ``silent`` set for a
heartbeat older than three periods (a worker killed, hung or cut off). ``dumpwatch workers`` and
``dumpwatch status`` show them; the same name keys the crawl's in-flight requests
(:mod:`crawler.cluster.inflight`), re-queued once it is silent.

The same Lua call adds the crawl's counters to its source's open run (:func:`crawler.cluster.runs.beat`),
so a heartbeat that says "nothing in progress" comes with every count of the work before it. A
crawl that becomes busy writes its heartbeat at once (:class:`BusyMiddleware`, the first
downloader middleware), so the control node never takes a stale "idle" for the truth for longer
than a request takes to go from the queue to the downloader.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timezone
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler

from crawler.cluster import reload, runs
from dumpwatch import clock

log = logging.getLogger(__name__)

KEY = "dumpwatch:workers"
HEARTBEAT_SECONDS = 10.0
IDLE_CHECK_SECONDS = 0.5  # how often a busy crawl looks whether it became idle (in memory)


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
        self.counters = runs.RunCounters()
        self.in_progress = 0  # as last written

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "Heartbeat":
        ext = cls(crawler, crawler.settings.getfloat("DUMPWATCH_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))
        crawler.dumpwatch_heartbeat = ext  # type: ignore[attr-defined]  # for BusyMiddleware
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
        self.source = state.source.name
        self.info = {"host": socket.gethostname(), "pid": os.getpid(), "version": version("dumpwatch"),
                     "source": state.source.name, "started": clock.utcnow(), "last_document": None,
                     "in_progress": 0, "period": self.period}
        self.task = task.LoopingCall(self.beat)
        self.task.start(self.period, now=True)
        self.idle_task = task.LoopingCall(self.idle)
        self.idle_task.start(IDLE_CHECK_SECONDS, now=False)

    def in_progress_now(self) -> int:
        """Requests taken from the queue and not done: downloading, or their response being parsed and scanned."""
        engine = self.crawler.engine
        if engine is None:
            return 0
        scraper = engine.scraper.slot
        return len(engine.downloader.active) + (
            len(scraper.queue) + len(scraper.active) + scraper.itemproc_size if scraper is not None else 0)

    def busy(self) -> None:
        """A request leaves the queue: if the last heartbeat said idle, say busy now."""
        if self.in_progress == 0 and self.redis is not None:
            self.beat()

    def idle(self) -> None:
        """Checked often, in memory: when the last heartbeat said busy and nothing is in progress, say so now."""
        if self.in_progress > 0 and self.in_progress_now() == 0:
            self.beat()

    def beat(self) -> None:
        if self.redis is None:
            return
        stats = self.crawler.stats
        assert stats is not None
        documents = stats.get_value("dumpwatch/documents_fetched", 0)
        if documents != self._documents:
            self._documents = documents
            self.info["last_document"] = clock.utcnow()
        in_progress = self.in_progress_now()
        watch = reload.watch_of(self.crawler)
        self.info.update(heartbeat=clock.utcnow(), documents=documents, in_progress=in_progress,
                         findings_sent=stats.get_value("dumpwatch/cluster/findings_sent", 0),
                         stale_index=watch.stale if watch is not None else None)
        counts = runs.snapshot(stats.get_stats())
        try:
            if runs.beat(self.redis, self.source, self.name, self.info, self.counters.deltas(counts),
                         workers_key=KEY):
                self.counters.commit(counts)
            self.in_progress = in_progress
            stats.set_value("dumpwatch/cluster/heartbeat_at", time.time())  # for the metrics
        except Exception as exc:  # Redis away: the next beat tries again; the control node sees it silent
            stats.inc_value("dumpwatch/cluster/heartbeat_failed")
            log.warning("heartbeat not written (%s)", type(exc).__name__)

    def spider_closed(self, spider: Any) -> None:
        for looping in (self.task, getattr(self, "idle_task", None)):
            if looping is not None and looping.running:
                looping.stop()
        self.beat()  # its last counters to the open run, if any
        try:
            self.redis.hdel(KEY, self.name)  # stopped on purpose: not a silent worker
        except Exception as exc:
            log.warning("heartbeat not removed (%s): this crawl will show as silent", type(exc).__name__)


class BusyMiddleware:
    """The first downloader middleware of a worker crawl: a request that leaves the queue makes the
    crawl's heartbeat say "busy" at once if it said "idle" (:meth:`Heartbeat.busy`)."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BusyMiddleware":
        return cls(crawler)

    def process_request(self, request: Any) -> None:
        heartbeat = getattr(self.crawler, "dumpwatch_heartbeat", None)
        if heartbeat is not None:
            heartbeat.busy()  # the request is in the downloader's active set already: counted
        return None

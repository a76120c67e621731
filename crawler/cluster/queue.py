"""scrapy-redis's scheduler and priority queue (a sorted set per source), as Scrapy 2.13+ takes them.

Two changes were needed for Scrapy 2.19 (docs/scale.md, "Compatibility"): the engine refuses a
scheduler that is not a subclass of :class:`scrapy.core.scheduler.BaseScheduler`, which
scrapy-redis 0.9.1's ``Scheduler`` is not (:class:`RedisScheduler` adds the base class, nothing
else); and its scheduler builds a dupefilter with ``from_spider`` or ``from_settings``, which Scrapy's
own filters no longer have (:class:`NoDupeFilter`: the seen-set of each source decides what is
fetched again, and listing pages are fetched at every run).

Whatever ``SCHEDULER_SERIALIZER`` says, requests are written and read with
:mod:`crawler.cluster.redis_json`. An entry that does not read back as a request (written by
something else, or damaged) is dropped with an error line and counted in the crawl stats
(``dumpwatch/cluster/bad_requests``), never run and never a crash of the worker.

Workers run the subclasses of :mod:`crawler.cluster.inflight` (a pop moves the request in flight
instead of deleting it); the control node pushes with :class:`JsonPriorityQueue`.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.core.scheduler import BaseScheduler
from scrapy.dupefilters import BaseDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

from crawler.cluster import redis_json

log = logging.getLogger(__name__)

KEY = "dumpwatch:requests:%(spider)s"  # per source: see crawler.cluster.worker.queue_key


class JsonPriorityQueue(PriorityQueue):
    def __init__(self, server: Any, spider: Any, key: str, serializer: Any = None):
        super().__init__(server, spider, key, serializer=redis_json)

    def _decode_request(self, encoded_request: Any) -> Any:
        try:
            return super()._decode_request(encoded_request)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("dropped a request from Redis (%s) that is not a dumpwatch request: %s", self.key,
                      str(exc)[:200])
            stats = getattr(getattr(self.spider, "crawler", None), "stats", None)
            if stats is not None:
                stats.inc_value("dumpwatch/cluster/bad_requests")
            return None


class RedisScheduler(Scheduler, BaseScheduler):
    """scrapy-redis's scheduler, declared a :class:`BaseScheduler` (its methods are the interface).

    Without the calls 0.9.1 makes that Scrapy 2.19 deprecates (and will remove): ``spider=`` given
    to ``StatsCollector.inc_value`` (fixed upstream after 0.9.1) and ``Spider.log`` in ``open``.
    """

    def open(self, spider: Any) -> None:
        self.spider = spider
        self.queue = JsonPriorityQueue(self.server, spider, self.queue_key % {"spider": spider.name})
        if not self.df:
            self.df = NoDupeFilter.from_spider(spider)
        if self.flush_on_start:
            self.flush()
        pending = len(self.queue)
        if pending:
            log.info("resuming: %d request(s) waiting in %s", pending, self.queue.key)

    def enqueue_request(self, request: Any) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Any:
        request = self.queue.pop(self.idle_before_close)
        if request and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request


class NoDupeFilter(BaseDupeFilter):
    """No request filter of its own (the seen-set of the source filters item pages)."""

    @classmethod
    def from_spider(cls, spider: Any) -> "NoDupeFilter":
        return cls()

    def clear(self) -> None:
        pass

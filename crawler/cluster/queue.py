"""scrapy-redis's priority queue (a sorted set per source), held to the JSON serializer.

Whatever ``SCHEDULER_SERIALIZER`` says, requests are written and read with
:mod:`crawler.cluster.redis_json`. An entry that does not read back as a request (written by
something else, or damaged) is dropped with an error line and counted in the crawl stats
(``dumpwatch/cluster/bad_requests``), never run and never a crash of the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy_redis.queue import PriorityQueue

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

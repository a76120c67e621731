"""The control node's side of a crawl in the distributed mode: a due source's start requests into Redis.

Instead of starting a local crawl, the daemon calls :func:`push_start_requests`: the requests the
source's spider starts with (its listing pages, built by the spider's own ``start_requests_for``)
are written to the source's Redis queue (:func:`crawler.cluster.worker.queue_key`) by
scrapy-redis's queue, in JSON; any worker that crawls the source takes them from there.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace
from typing import Any

from crawler.cluster.queue import JsonPriorityQueue
from crawler.cluster.worker import queue_key

log = logging.getLogger(__name__)


def spider_for(source: Any, crawl_config: Any) -> Any:
    """The source's spider, without a crawl: enough to build its start requests."""
    from scrapy.spiderloader import SpiderLoader
    from scrapy.utils.project import get_project_settings

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    spidercls = SpiderLoader.from_settings(get_project_settings()).load(source.kind)
    spider = spidercls(source=source.name)
    spider.state = SimpleNamespace(source=source, crawl_config=crawl_config)
    return spider


def push_start_requests(r: Any, source: Any, crawl_config: Any) -> int:
    """Put the source's start requests in its Redis queue; how many. ``r``: a redis client (bytes or text)."""
    spider = spider_for(source, crawl_config)
    queue = JsonPriorityQueue(r, spider, queue_key(source.name))
    n = 0
    for url in source.start_urls:
        for request in spider.start_requests_for(url):
            queue.push(request)
            n += 1
    if n:
        from crawler.cluster.wakeup import announce

        announce(r, source.name)  # the idle workers of the source take them now (crawler/cluster/wakeup.py)
    log.info("pushed %d start request(s) of %s to %s", n, source.name, queue.key)
    return n

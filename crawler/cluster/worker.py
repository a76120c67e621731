"""A worker of the distributed mode: long-lived Scrapy crawls fed by Redis, sending findings only.

``dumpwatch worker --redis URL`` runs one crawl per enabled source of the worker's configuration,
in one Scrapy process, until SIGTERM or Ctrl-C. Each crawl is the source's own spider with
scrapy-redis's scheduler: its requests come from the Redis queue of that source
(``dumpwatch:requests:SOURCE``, a sorted set written by the control node and by the workers
themselves as they follow links), written in JSON (:mod:`crawler.cluster.redis_json`, never
pickle). Each document is scanned here, with this worker's own copy of the enrolled indexes and
key (its home), exactly as a local crawl scans it (:class:`crawler.pipelines.ScanPipeline`); a
finding goes to the findings stream (:func:`crawler.cluster.findings.publish`) instead of SQLite.

What scrapy-redis 0.9.1 needed with Scrapy 2.13+ (docs/scale.md, "Compatibility"): its spider mixin
(``RedisSpider``) is not used: it reads start URLs from Redis in ``start_requests`` and keeps the
spider alive from its ``spider_idle`` handler. Here the spider's ``start()`` yields nothing (the
control node pushes the start requests into the scheduler's queue) and :class:`KeepAlive` keeps an
idle spider open. Its scheduler and queue are used through :mod:`crawler.cluster.queue` (declared a
``BaseScheduler``; no Redis dupefilter) and :mod:`crawler.cluster.inflight` (a popped request stays
in this crawl's in-flight hash until its result is stored); ``SCHEDULER_PERSIST`` is on (a worker
that stops never empties the shared queue). A finding's ``XADD`` runs off the reactor and is
retried while Redis is away (:data:`SEND_RETRY`); if it still fails, its request goes back to the
queue instead of being acknowledged.

Crawl state shared through Redis (docs/scale.md, "Crawl state in Redis"): the seen-set of the
source (:mod:`crawler.cluster.seen`, put in place of the local one by :func:`worker_spider`), each
domain's politeness slot (:mod:`crawler.cluster.politeness`), and the counters of the source's
current run, written with the heartbeat (:mod:`crawler.cluster.runs`, :mod:`crawler.cluster.workers`).
The worker's own home keeps its crawl log and a ``crawl_runs`` row of its long-lived crawl.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider

from crawler.cluster import findings, inflight, reliable, reload
from crawler.cluster.connect import ClusterSettings, client, scrapy_params
from crawler.pipelines import ScanPipeline

log = logging.getLogger(__name__)


# A finding's XADD while Redis is away: 20 tries after the first, 0.5 s to 10 s apart (3 min of waits,
# plus each try's own: redis-py's client retries a command too).
SEND_RETRY = Retry(ExponentialBackoff(cap=10.0, base=0.5), retries=20, supported_errors=inflight.DOWN)


def queue_key(source: str) -> str:
    """The Redis key of a source's request queue."""
    return f"dumpwatch:requests:{source}"


def worker_settings(cluster: ClusterSettings) -> dict[str, Any]:
    """The Scrapy settings a worker adds to crawler/settings.py."""
    from crawler import settings as project

    return {
        **scrapy_params(cluster),
        "SCHEDULER": "crawler.cluster.reliable.ReliableScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.cluster.reliable.ReliableQueue",
        "SCHEDULER_SERIALIZER": "crawler.cluster.redis_json",
        "SCHEDULER_PERSIST": True,
        "DUPEFILTER_CLASS": "crawler.cluster.queue.NoDupeFilter",
        "CLOSESPIDER_PAGECOUNT": 0,  # a long-lived crawl: [crawler] max_requests is per run
        "ITEM_PIPELINES": {"crawler.cluster.worker.StreamPipeline": 300},
        "EXTENSIONS": {"crawler.extensions.EscapedLog": 0, "crawler.extensions.RunRecorder": 500,
                       "crawler.cluster.worker.KeepAlive": 510, "crawler.cluster.workers.Heartbeat": 520,
                       "crawler.cluster.reload.IndexWatch": 530, "crawler.cluster.metrics.Metrics": 540,
                       "crawler.cluster.wakeup.Wakeup": 550},
        "DOWNLOADER_MIDDLEWARES": {**project.DOWNLOADER_MIDDLEWARES,
                                   "crawler.cluster.workers.BusyMiddleware": 1,  # first: says "busy" at once
                                   "crawler.cluster.politeness.SharedSlotMiddleware": 950,  # the slot
                                   # its process_exception runs first: Redis away means re-queued
                                   "crawler.cluster.reliable.RedisDownMiddleware": 960},
        "DUMPWATCH_INDEX_CHECK_SECONDS": cluster.index_check,
        "DUMPWATCH_METRICS": "%s:%d" % cluster.metrics if cluster.metrics else "",
    }


class KeepAlive:
    """Keeps an idle worker spider open: its next requests come from Redis, at any time."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "KeepAlive":
        ext = cls()
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        return ext

    def spider_idle(self, spider: Any) -> None:
        raise DontCloseSpider


def warm_up(scan_worker: Any) -> None:
    """Start the scan processes now (their interpreter, the engine's imports, the index mapped):
    a long-lived crawl pays that at start instead of at its first document, which is then scanned
    at once. ``concurrent.futures`` starts a pool's processes at the first task: one that does nothing."""
    from concurrent.futures import ProcessPoolExecutor

    if isinstance(scan_worker.executor, ProcessPoolExecutor):
        scan_worker.executor.submit(int)


class StreamPipeline(ScanPipeline):
    """The local scan pipeline whose findings go to the findings stream instead of SQLite."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.redis: Any = None
        self.watch: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "StreamPipeline":
        pipeline = super().from_crawler(crawler)
        assert isinstance(pipeline, StreamPipeline)
        from crawler.cluster.connect import cluster_settings

        settings = cluster_settings(pipeline.state.config, crawler.settings.get("REDIS_URL"))
        assert settings is not None
        pipeline.redis = client(settings)
        from crawler.cluster import indexes

        pipeline.watch = reload.watch_of(crawler)
        if pipeline.watch is not None:  # what the scanner was built from, kept in step (crawler/cluster/reload.py)
            pipeline.watch.attach(pipeline, indexes.identity(pipeline.state.home))
        warm_up(pipeline.worker)
        return pipeline

    def _store_failed(self, item: Any, exc: Exception) -> bool:
        if isinstance(exc, inflight.DOWN):  # Redis away (the shared seen-set): not done, back to the queue
            self.crawler.signals.send_catch_log(signal=reliable.finding_unsent, item=item)
        return super()._store_failed(item, exc)

    async def _process(self, item: Any, sha: str) -> bool:
        if self.watch is not None:  # never a scan with a stale index
            published: Any = ...
            prefetch = getattr(self.state.seen, "prefetch_content", None)
            if prefetch is not None:
                from crawler.cluster import indexes

                try:  # the index identity and the content's seen mark in one round trip
                    published = prefetch(sha, indexes.KEY)
                except Exception:  # Redis away: each question asked again alone says it as before
                    published = ...
            if not self.watch.ready(published):
                self._lost(item, reload.STALE_REASON)
                return False
        return await super()._process(item, sha)

    async def record(self, finding: Any, item: Any, sha: str) -> int | None:
        """``XADD`` the finding, off the reactor, retried while Redis is away (:data:`SEND_RETRY`);
        if it still fails, its request goes back to the queue (:mod:`crawler.cluster.inflight`)."""
        import asyncio

        from crawler.pipelines import finding_detail

        failed: list[str] = []

        def fail(error: Exception) -> None:  # in the sending thread
            if not failed:
                log.warning("Redis does not answer (%s): the finding of %s waits, retried with backoff",
                            type(error).__name__, item.url)
            failed.append(type(error).__name__)

        def send() -> str:
            return findings.publish(self.redis, finding, source=self.state.source.name, url=item.url,
                                    first_seen=item.fetched_at,
                                    detail=finding_detail(item, sha, self.state.source.kind))

        try:
            entry_id = await asyncio.get_running_loop().run_in_executor(
                None, SEND_RETRY.call_with_retry, send, fail)
        except inflight.DOWN:
            self._inc("dumpwatch/cluster/send_retries", len(failed))
            self._inc("dumpwatch/cluster/findings_unsent")
            log.error("finding of %s not sent after %d tries: its request goes back to the queue", item.url,
                      len(failed))
            self.crawler.signals.send_catch_log(signal=reliable.finding_unsent, item=item)
            raise
        if failed:
            self._inc("dumpwatch/cluster/send_retries", len(failed))
            log.warning("finding of %s sent after %d failed tries (Redis was away)", item.url, len(failed))
        self._inc("dumpwatch/cluster/findings_sent")
        log.warning("finding sent (%s): %s of %s (%d records) at %s", entry_id, finding.verdict, finding.leak,
                    finding.matched_records, item.url)
        return None  # recorded by the control node


def worker_spider(spidercls: type) -> type:
    """The source spider ``spidercls`` as a worker runs it: no start requests of its own, its queue per source."""

    async def start(self: Any) -> AsyncIterator[Any]:
        return
        yield  # an async generator that yields nothing

    @classmethod  # type: ignore[misc]
    def from_crawler(cls: type, crawler: Crawler, *args: Any, **kwargs: Any) -> Any:
        from crawler.cluster import politeness
        from crawler.cluster.connect import cluster_settings
        from crawler.cluster.seen import use_redis_seen_set

        spider = super(new, cls).from_crawler(crawler, *args, **kwargs)  # type: ignore[misc]
        crawler.settings.set("SCHEDULER_QUEUE_KEY", queue_key(spider.state.source.name), priority="cmdline")
        for key, value in politeness.local_settings(spider.state.source).items():  # the shared slot is the only wait
            crawler.settings.set(key, value, priority="cmdline")
        use_redis_seen_set(spider.state, client(cluster_settings(spider.state.config,  # type: ignore[arg-type]
                                                                 crawler.settings.get("REDIS_URL"))))
        return spider

    new = type(spidercls.__name__, (spidercls,), {"start": start, "from_crawler": from_crawler,
                                                  "__module__": __name__})
    return new


def run_worker(home: Any, config: Any, cluster: ClusterSettings, sources: Sequence[str] | None = None) -> None:
    """Run the worker's crawls (every enabled source, or ``sources``) until SIGTERM or Ctrl-C."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.spiderloader import SpiderLoader
    from scrapy.utils.project import get_project_settings

    from crawler.sources import load_crawl_config
    from dumpwatch.tables import path_of

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    cc = load_crawl_config(config)
    chosen = [cc.get(n) for n in sources] if sources else list(cc.enabled())
    from crawler.cluster import indexes

    indexes.check(client(cluster), home)  # a wrong URL, password, key or index says so now
    settings = get_project_settings()
    settings.set("DUMPWATCH_HOME", str(home.root), priority="cmdline")
    settings.set("DUMPWATCH_CONFIG", path_of(config) or "", priority="cmdline")
    for key, value in worker_settings(cluster).items():
        settings.set(key, value, priority="cmdline")
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")  # the CLI's handler (escaped) stays
    if cluster.metrics:  # one page for every crawl of this process; an address in use stops us here
        from crawler.cluster.metrics import serve_worker

        serve_worker(*cluster.metrics)
    process = CrawlerProcess(settings)
    loader = SpiderLoader.from_settings(settings)
    for src in chosen:
        log.info("worker: crawling %s (%s) from Redis queue %s", src.name, src.kind, queue_key(src.name))
        process.crawl(worker_spider(loader.load(src.kind)), source=src.name)
    process.start()

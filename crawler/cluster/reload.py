"""A running worker keeps its enrolled indexes in step with the control node's: it reloads, or it pauses.

The control node publishes its key id and the identity of each enrolled index
(:mod:`crawler.cluster.indexes`) when it connects, before each push and at each findings pass. Each
crawl of a worker checks its own against it every ``[cluster] index_check`` (30 s) with
:class:`IndexWatch`, a Scrapy extension, and before each document it scans (one ``GET``, sent with
the seen-set's question on the document's content, :meth:`crawler.cluster.seen.RedisSeenSet.prefetch_content`):

- the copy in the worker's home changed on disk (the operator synced the control node's new
  ``index/``) and now matches the published one: the scanner is built again from it
  (:func:`reload_scanner`: a new :class:`crawler.scanworker.ScanWorker`, the old one let go once its
  scan in flight is done), counted (``dumpwatch/cluster/index_reloads``), said in the log;
- the copy the crawl scans with does not match (a leak enrolled again on the control node, a key
  or a leak the other side does not have): the crawl **pauses** (Scrapy's ``engine.pause()``: it
  pops no request from Redis, which other workers with a fresh copy then take), says why once in
  the log (warning), in its heartbeat (``stale_index``, shown by ``dumpwatch workers``) and in its
  metrics (``dumpwatch_worker_index_stale``), and resumes by itself once fixed. A document
  fetched just before the pause is not scanned with the stale copy: it is counted lost
  (``dumpwatch/error_reasons/stale index``) and its page is fetched again at the source's next run.

Redis that does not answer keeps the last verdict (the control node cannot publish either); the
failed check is counted (``dumpwatch/cluster/index_check_failed``) and said once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler

from crawler.cluster import indexes

log = logging.getLogger(__name__)

CHECK_SECONDS = 30.0
STALE_REASON = "stale index"


def watch_of(crawler: Crawler) -> "IndexWatch | None":
    """The crawl's :class:`IndexWatch` extension, if it has one."""
    extensions = getattr(crawler, "extensions", None)
    return next((m for m in getattr(extensions, "middlewares", ()) if isinstance(m, IndexWatch)), None)


def reload_scanner(pipeline: Any) -> None:
    """Build the pipeline's scanner again from the home's index and key (as ``from_crawler`` did)."""
    from crawler.pipelines import scanner_spec
    from crawler.scanworker import ScanWorker

    threshold = pipeline.crawler.settings.get("DUMPWATCH_REPOST_THRESHOLD")
    spec = scanner_spec(pipeline.state, int(threshold) if threshold else None)
    new = ScanWorker(spec, pipeline.worker.processes)  # raises (ScannerUnavailable) before anything changes
    old, pipeline.worker = pipeline.worker, new
    old.executor.shutdown(wait=False)  # a scan in flight finishes; nothing new goes to it


class IndexWatch:
    """The extension of a worker's crawl that keeps its scanner in step with the control node's index."""

    def __init__(self, crawler: Crawler, period: float = CHECK_SECONDS):
        self.crawler = crawler
        self.period = period
        self.redis: Any = None
        self.home: Any = None
        self.pipeline: Any = None
        self.loaded: dict[str, Any] | None = None  # the identity the pipeline's scanner was built from
        self.accepted: str | None = None  # the published identity (raw) the loaded one matches
        self.stale: str | None = None  # why the crawl is paused, None when it scans
        self.task: Any = None
        self._redis_failed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "IndexWatch":
        ext = cls(crawler, crawler.settings.getfloat("DUMPWATCH_INDEX_CHECK_SECONDS", CHECK_SECONDS))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def attach(self, pipeline: Any, loaded: dict[str, Any]) -> None:
        """Called by the scan pipeline with the identity its scanner was built from."""
        self.pipeline = pipeline
        self.loaded = loaded

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        from crawler.cluster.connect import client, cluster_settings
        from crawler.state import state_of

        state = state_of(self.crawler)
        self.home = state.home
        self.source = state.source.name
        self.redis = client(cluster_settings(state.config, self.crawler.settings.get("REDIS_URL")))
        self._stat("dumpwatch/cluster/index_stale", 0)
        self.task = task.LoopingCall(self.check)
        self.task.start(self.period, now=True)

    def spider_closed(self, spider: Any) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()

    def _stat(self, key: str, value: int | None = None) -> None:
        stats = self.crawler.stats
        if stats is None:
            return
        if value is None:
            stats.inc_value(key)
        else:
            stats.set_value(key, value)

    def _published(self) -> str | None:
        """The control node's identity as published (raw JSON); raises what Redis raises."""
        return self._read_again(self.redis.get(indexes.KEY))

    def _read_again(self, raw: Any) -> Any:
        """``raw`` was read from Redis: say once that it answers again after a failed check."""
        if self._redis_failed:
            self._redis_failed = False
            log.info("%s: the control node's index identity can be read again", self.source)
        return raw

    def ready(self, published: Any = ...) -> bool:
        """Before a scan: True when the scanner matches the control node's index as published now
        (``published``: that value, read by the caller together with its own question)."""
        if self.pipeline is None or self.loaded is None:
            return True  # not attached (a pipeline without the watch): nothing to hold to
        try:
            raw = self._published() if published is ... else self._read_again(published)
        except Exception as exc:  # Redis away: keep the last verdict
            self._redis_down(exc)
            return self.stale is None
        if raw != self.accepted:
            self.check(raw)
        return self.stale is None

    def check(self, raw: Any = ...) -> None:
        """One check: reload from a new copy on disk, pause on a mismatch, resume once it matches."""
        self._stat("dumpwatch/cluster/index_checks")
        if self.pipeline is None or self.loaded is None:
            return
        try:
            if raw is ...:
                raw = self._published()
        except Exception as exc:
            self._redis_down(exc)
            return
        try:
            theirs = json.loads(raw) if raw else None
        except ValueError:
            theirs = None
        try:
            mine = indexes.identity(self.home)
        except Exception as exc:  # the key or an index unreadable here
            self._pause(f"cannot read the key or the indexes here ({type(exc).__name__}: {str(exc)[:300]})")
            return
        if theirs is None:  # the control node has not published (a Redis that lost its data): keep going
            return
        if mine != self.loaded and not indexes.compare(mine, theirs):
            try:
                reload_scanner(self.pipeline)
            except Exception as exc:
                self._pause(f"the index copied here does not load ({type(exc).__name__}: {str(exc)[:300]})")
                return
            self.loaded = mine
            self._stat("dumpwatch/cluster/index_reloads")
            log.warning("%s: the enrolled index changed in %s: scanner reloaded (%s)", self.source,
                        self.home.root, ", ".join(sorted(mine["leaks"])) or "no leak")
        problems = indexes.compare(self.loaded, theirs)
        if problems:
            if mine != self.loaded:
                problems.append("the copy on disk here changed but does not match either")
            self._pause("; ".join(problems))
            return
        self.accepted = raw
        if self.stale is not None:
            log.warning("%s: the index matches the control node's again: taking requests", self.source)
            self.stale = None
            self._stat("dumpwatch/cluster/index_stale", 0)
            self._engine("unpause")

    def _pause(self, why: str) -> None:
        self.accepted = None
        if self.stale != why:
            log.error("%s: NOT SCANNING, no request taken from Redis: this worker's home %s: %s: copy the "
                      "control node's key and index/ here (docs/scale.md, \"Operations\"); the worker "
                      "takes requests again by itself once they match", self.source, self.home.root, why)
        self.stale = why
        self._stat("dumpwatch/cluster/index_stale", 1)
        self._engine("pause")

    def _engine(self, what: str) -> None:
        engine = getattr(self.crawler, "engine", None)
        if engine is not None:
            getattr(engine, what)()

    def _redis_down(self, exc: Exception) -> None:
        self._stat("dumpwatch/cluster/index_check_failed")
        if not self._redis_failed:
            self._redis_failed = True
            log.warning("%s: cannot read the control node's index identity (%s): keeping the last verdict "
                        "(%s)", self.source, type(exc).__name__, "paused" if self.stale else "scanning")

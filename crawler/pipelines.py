"""The pipeline every document goes through: content seen-set → extraction + matchers → store + outbox.

A page is marked seen only once its documents are scanned and their findings committed (see
crawler/seen.py); a document that could not be scanned or recorded is an error of the run
(``dumpwatch/errors``, ``dumpwatch/lost``) and its page is fetched again next run.

The matchers run in a worker process (``DUMPWATCH_SCAN_PROCESSES``, default 1; 0 = a thread;
crawler/scanworker.py) so that downloads go on while a document is scanned, on another core; the
worker is started with the crawl, so its start-up overlaps the first downloads. The database is
only touched from the reactor thread. When the crawl closes, its stats say where its CPU went
(``dumpwatch/cpu/crawl_process_s``, ``scan_workers_s``, ``engine_s``: :func:`cpu_stats`).
``dumpwatch scan`` and the crawler share the engine entry point
(:meth:`matchers.scan.Scanner.scan_bytes`), so a crawled document gets exactly the verdict the same
bytes get from the command line. A document is hashed once, here (the seen-set needs its SHA-256
before the scan); the engine is given that hash and puts it in the finding.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import resource
from typing import Any

from scrapy.crawler import Crawler

from crawler.items import Document
from crawler.scanworker import ScannerSpec, ScanWorker
from crawler.state import CrawlState, state_of
from dumpwatch.store import storage_failure

log = logging.getLogger(__name__)


def scanner_spec(state: CrawlState, repost_threshold: int | None = None) -> ScannerSpec:
    """The engine for a crawl, as ``dumpwatch scan`` builds it: every enrolled leak of the home, with
    its key, the ``[scan] repost_threshold`` and the ``[limits]`` of the configuration."""
    from dumpwatch.engine_settings import scan_settings_from

    settings = scan_settings_from(state.config, threshold=repost_threshold)
    return ScannerSpec(state.home.index_dir, state.home.load_key(), settings.repost_threshold, settings.limits)


class ScanPipeline:
    """Scan each new document and record what it is; count everything in the crawl stats.

    A document's page is reported done to the seen-set (:meth:`crawler.seen.SeenSet.processed`) only
    after its finding, if any, was committed; a scan or store failure reports it failed instead
    (:meth:`~crawler.seen.SeenSet.failed`): counted in ``dumpwatch/errors`` and ``dumpwatch/lost``,
    and the page is fetched again next run. A storage failure (disk full, database locked past the
    write timeout) is one error line in the crawl log, never a traceback, and never stops the crawl.
    """

    worker_class = ScanWorker  # what runs the engine (a benchmark's stub engine replaces it)

    def __init__(self, crawler: Crawler, state: CrawlState, worker: ScanWorker):
        from alerts.outbox import alerting_of

        self.crawler = crawler
        self.state = state
        self.worker = worker
        self.alerting = alerting_of(state.config)  # parsed once, for every finding of the crawl
        self.stats = crawler.stats
        # contents being scanned right now: a second page with the same bytes waits for the first
        self._inflight: dict[str, asyncio.Future[bool]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ScanPipeline":
        state = state_of(crawler)
        threshold = crawler.settings.get("DUMPWATCH_REPOST_THRESHOLD")
        spec = scanner_spec(state, int(threshold) if threshold else None)
        worker = cls.worker_class(spec, crawler.settings.getint("DUMPWATCH_SCAN_PROCESSES", 1))
        worker.start()
        return cls(crawler, state, worker)

    def close_spider(self) -> None:
        self.worker.close()
        cpu_stats(self.stats, self.worker.engine_cpu)

    def _inc(self, key: str, n: int = 1) -> None:
        assert self.stats is not None
        self.stats.inc_value(key, n)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, Document):
            return item
        sha = hashlib.sha256(item.body).hexdigest()
        self._inc("dumpwatch/documents_fetched")
        waiting = self._inflight.get(sha)
        if waiting is not None:  # the same bytes are being scanned for another page: share its fate
            if await asyncio.shield(waiting):
                self._duplicate(item, sha)
            else:
                self._lost(item, "the same content failed on another page")
            return item
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[sha] = done
        ok = False
        try:
            ok = await self._process(item, sha)
        except Exception as exc:  # a bug in here must not lose the page silently
            log.error("processing %s failed: %s", item.url, type(exc).__name__,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            self._lost(item, f"pipeline {type(exc).__name__}")
        finally:
            del self._inflight[sha]
            done.set_result(ok)
        return item

    async def _process(self, item: Document, sha: str) -> bool:
        """Scan and record one document; True when it is done (stored, or nothing to store)."""
        seen = self.state.seen
        body = item.body
        try:
            known = seen.content_seen(sha)
            if known:
                seen.touch_content(sha)
        except Exception as exc:
            return self._store_failed(item, exc)
        if known:
            self._duplicate(item, sha)
            return True
        if body.isspace() or not body:  # what body.strip() would leave empty, without copying the body
            self._bad(item, sha, "empty body")
            return True
        try:
            finding = await self.worker.scan(body, item.name, sha)
        except Exception as exc:  # one bad document never stops a crawl
            log.error("scan of %s failed: %s", item.url, type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            self._lost(item, f"scan {type(exc).__name__}")
            return False
        self._inc("dumpwatch/documents")
        self._inc(f"dumpwatch/verdicts/{finding.verdict}")
        if not finding.complete:  # said per document; the run counts them (detail.incomplete)
            self._inc("dumpwatch/incomplete")
            log.warning("%s was read only in part (%d problem(s) in its scan result): its counts are a "
                        "lower bound", item.url, len(finding.errors))
        finding_id = None
        try:
            if finding.verdict != "none":
                finding_id = self.record(finding, item, sha)
                if inspect.isawaitable(finding_id):  # a worker sends it over the network (crawler/cluster/worker.py)
                    finding_id = await finding_id
            # after the finding: a content is known only once what it held is committed
            seen.mark_content(sha, size=len(body), url=item.url, verdict=finding.verdict, finding_id=finding_id)
        except Exception as exc:
            return self._store_failed(item, exc)
        if finding_id is not None:
            self._inc("dumpwatch/findings")
            log.warning("finding %s: %s of %s (%d records) at %s", finding_id, finding.verdict,
                        finding.leak, finding.matched_records, item.url)
        bad_reason = ""
        if finding.errors and finding.records_seen == 0 and finding.verdict == "none":
            bad_reason = str(finding.errors[0])[:200]
            self._inc("dumpwatch/bad")
            self._inc(f"dumpwatch/bad_reasons/{_reason_class(bad_reason)}")
        self._done(item, "bad" if bad_reason else "ok", bad_reason, sha)
        return True

    def record(self, finding: Any, item: Document, sha: str) -> int | None:
        """Record a finding (and its alerts): its id, or None when this copy was already recorded.
        A worker of the distributed mode sends it to the control node instead (crawler/cluster/worker.py)."""
        from alerts import record_finding

        return record_finding(self.state.db, finding, source=self.state.source.name, url=item.url,
                              first_seen=item.fetched_at, detail=finding_detail(item, sha, self.state.source.kind),
                              config=self.alerting)

    def _done(self, item: Document, status: str, reason: str, sha: str) -> None:
        if item.page_key:
            self.state.seen.processed(item.page_key, status=status, reason=reason,
                                      sha256=sha if item.seen_key == item.page_key else None)
        elif item.seen_key:  # a document built outside the spider middleware
            self.state.seen.mark(item.seen_key, url=item.url, status=status, reason=reason, sha256=sha)

    def _duplicate(self, item: Document, sha: str) -> None:
        self._inc("dumpwatch/duplicate_content")
        self._done(item, "ok", "", sha)

    def _store_failed(self, item: Document, exc: Exception) -> bool:
        failure = storage_failure(exc, self.state.home.db_path)
        # A storage failure's own message names the database; any other error by its type only (its
        # message may quote what was being written).
        what = str(failure) if failure is not None else type(exc).__name__
        log.error("could not record %s: %s; the page will be fetched again next run", item.url, what[:500])
        self._lost(item, f"store {type(failure or exc).__name__}")
        return False

    def _lost(self, item: Document, reason: str) -> None:
        """A document that could not be scanned or recorded: an error of the run, its page fetched again."""
        self._inc("dumpwatch/errors")
        self._inc(f"dumpwatch/error_reasons/{reason}")
        key = item.page_key or item.seen_key
        if key:
            if self.state.seen.failed(key, url=item.url if key == item.seen_key else None,
                                      reason=f"not recorded: {reason}"):
                self._inc("dumpwatch/lost")
        else:
            self._inc("dumpwatch/lost")

    def _bad(self, item: Document, sha: str, reason: str) -> None:
        self._inc("dumpwatch/bad")
        self._inc(f"dumpwatch/bad_reasons/{reason}")
        self._done(item, "bad", reason, sha)


def cpu_stats(stats: Any, engine_cpu: float) -> None:
    """Where a crawl's CPU went, in its stats (seconds): the crawl process (``crawl_process_s``: the
    reactor, Scrapy, the pipeline, the store; with ``DUMPWATCH_SCAN_PROCESSES = 0`` the engine too),
    its children (``scan_workers_s``: the scan worker processes, once closed, start-up included) and
    the engine's own calls (``engine_s``, in whichever of the two ran them)."""
    for key, who in (("crawl_process", resource.RUSAGE_SELF), ("scan_workers", resource.RUSAGE_CHILDREN)):
        usage = resource.getrusage(who)
        stats.set_value(f"dumpwatch/cpu/{key}_s", round(usage.ru_utime + usage.ru_stime, 2))
    stats.set_value("dumpwatch/cpu/engine_s", round(engine_cpu, 2))


def finding_detail(item: Document, sha: str, kind: str) -> dict[str, Any]:
    """What the store keeps of a finding's document besides the finding: never its content."""
    return {"document": item.kind, "sha256": sha, "size": len(item.body), "crawler": kind}


def _reason_class(reason: str) -> str:
    """A short, stable label for a stats key ("binary content", "zip bomb"…) from an error line."""
    text = reason.rsplit(": ", 1)[-1].strip().lower()
    return text[:60] or "unreadable"

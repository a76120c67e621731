"""The pipeline every document goes through: content seen-set → extraction + matchers → store + outbox.

The matchers run in a worker process (``DUMPWATCH_SCAN_PROCESSES``, default 1; 0 = a thread) so
that downloads go on while a document is scanned, on another core; the database is only touched
from the reactor thread. ``dumpwatch scan`` and the crawler share the
engine entry point (:meth:`matchers.scan.Scanner.scan_bytes`), so a crawled document gets exactly
the verdict the same bytes get from the command line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler

from crawler.items import Document
from crawler.state import CrawlState, state_of
from dumpwatch.config import DumpwatchError

log = logging.getLogger(__name__)


class ScannerUnavailable(DumpwatchError):
    """The engine could not be loaded (no leak enrolled, wrong key, missing index)."""


@dataclass(frozen=True)
class ScannerSpec:
    """How to build the engine (picklable: a scan worker process builds its own from it)."""

    index_dir: Path
    key: bytes = field(repr=False)
    repost_threshold: int
    limits: Any

    def build(self) -> Any:
        from matchers.scan import Scanner

        return Scanner.from_index_dir(self.index_dir, self.key, repost_threshold=self.repost_threshold,
                                      limits=self.limits)


def scanner_spec(state: CrawlState, repost_threshold: int | None = None) -> ScannerSpec:
    """The engine for a crawl, as ``dumpwatch scan`` builds it: every enrolled leak of the home, with
    its key, the ``[scan] repost_threshold`` and the ``[limits]`` of the configuration."""
    from matchers.scan import ScanSettings

    settings = ScanSettings.from_config(state.config, threshold=repost_threshold)
    return ScannerSpec(state.home.index_dir, state.home.load_key(), settings.repost_threshold, settings.limits)


def load_scanner(spec: ScannerSpec) -> Any:
    try:
        return spec.build()
    except DumpwatchError:
        raise
    except Exception as exc:  # the engine's own errors are not all DumpwatchErrors
        raise ScannerUnavailable(f"cannot load the fingerprint index in {spec.index_dir}: {exc}; "
                                 "enroll a leak first: dumpwatch enroll FILE --leak NAME") from exc


# -- the scan worker process -------------------------------------------------------------------------

_worker_scanner: Any = None


def _worker_init(spec: ScannerSpec) -> None:
    global _worker_scanner
    _worker_scanner = spec.build()


def _worker_scan(body: bytes, name: str) -> Any:
    return _worker_scanner.scan_bytes(body, name)


class ScanWorker:
    """Runs the engine off the reactor: in ``processes`` worker processes (default 1), so matching
    runs on another core while Scrapy downloads, or in one thread when ``processes = 0``.

    A worker that dies (a crash on one document) is replaced; that document is reported as an error.
    """

    def __init__(self, spec: ScannerSpec, processes: int):
        self.spec = spec
        self.processes = processes
        self.scanner = load_scanner(spec)  # errors surface here, with a clear message, before crawling
        self.executor: Executor = self._executor()

    def _executor(self) -> Executor:
        if self.processes <= 0:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="dumpwatch-scan")
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(self.spec,))

    async def scan(self, body: bytes, name: str) -> Any:
        loop = asyncio.get_running_loop()
        if self.processes <= 0:
            return await loop.run_in_executor(self.executor, self.scanner.scan_bytes, body, name)
        try:
            return await loop.run_in_executor(self.executor, _worker_scan, body, name)
        except BrokenProcessPool:
            log.error("the scan worker died while scanning %s: starting a new one", name)
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._executor()
            raise

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class ScanPipeline:
    """Scan each new document and record what it is; count everything in the crawl stats."""

    def __init__(self, crawler: Crawler, state: CrawlState, worker: ScanWorker):
        self.crawler = crawler
        self.state = state
        self.worker = worker
        self.stats = crawler.stats
        self._inflight: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ScanPipeline":
        state = state_of(crawler)
        threshold = crawler.settings.get("DUMPWATCH_REPOST_THRESHOLD")
        spec = scanner_spec(state, int(threshold) if threshold else None)
        return cls(crawler, state, ScanWorker(spec, crawler.settings.getint("DUMPWATCH_SCAN_PROCESSES", 1)))

    def close_spider(self) -> None:
        self.worker.close()

    def _inc(self, key: str, n: int = 1) -> None:
        assert self.stats is not None
        self.stats.inc_value(key, n)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, Document):
            return item
        seen = self.state.seen
        body = item.body
        sha = hashlib.sha256(body).hexdigest()
        self._inc("dumpwatch/documents_fetched")
        if sha in self._inflight or seen.content_seen(sha):
            self._inc("dumpwatch/duplicate_content")
            seen.touch_content(sha)
            if item.seen_key:
                seen.mark(item.seen_key, url=item.url, status="ok", sha256=sha)
            return item
        if not body.strip():
            self._bad(item, sha, "empty body")
            return item
        self._inflight.add(sha)
        try:
            finding = await self.worker.scan(body, item.name)
        except Exception as exc:  # one bad document never stops a crawl
            log.error("scan of %s failed: %s", item.url, type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
            self._inc("dumpwatch/errors")
            self._inc(f"dumpwatch/error_reasons/scan {type(exc).__name__}")
            if item.seen_key:
                seen.mark(item.seen_key, url=item.url, status="error", reason=f"scan failed: {type(exc).__name__}")
            return item
        finally:
            self._inflight.discard(sha)
        if finding.sha256 is None or not finding.size:
            finding = dataclasses.replace(finding, sha256=finding.sha256 or sha, size=finding.size or len(body))
        self._inc("dumpwatch/documents")
        self._inc(f"dumpwatch/verdicts/{finding.verdict}")
        finding_id = None
        if finding.verdict != "none":
            from alerts import record_finding

            finding_id = record_finding(
                self.state.db, finding, source=self.state.source.name, url=item.url,
                first_seen=item.fetched_at,
                detail={"document": item.kind, "sha256": sha, "size": len(body), "crawler": self.state.source.kind},
                config=self.state.config)
            if finding_id is not None:
                self._inc("dumpwatch/findings")
                log.warning("finding %s: %s of %s (%d records) at %s", finding_id, finding.verdict,
                            finding.leak, finding.matched_records, item.url)
        bad_reason = ""
        if finding.errors and finding.records_seen == 0 and finding.verdict == "none":
            bad_reason = str(finding.errors[0])[:200]
            self._inc("dumpwatch/bad")
            self._inc(f"dumpwatch/bad_reasons/{_reason_class(bad_reason)}")
        seen.mark_content(sha, size=len(body), url=item.url, verdict=finding.verdict, finding_id=finding_id)
        if item.seen_key:
            seen.mark(item.seen_key, url=item.url, status="bad" if bad_reason else "ok", reason=bad_reason,
                      sha256=sha)
        return item

    def _bad(self, item: Document, sha: str, reason: str) -> None:
        self._inc("dumpwatch/bad")
        self._inc(f"dumpwatch/bad_reasons/{reason}")
        if item.seen_key:
            self.state.seen.mark(item.seen_key, url=item.url, status="bad", reason=reason, sha256=sha)


def _reason_class(reason: str) -> str:
    """A short, stable label for a stats key ("binary content", "zip bomb"…) from an error line."""
    text = reason.rsplit(": ", 1)[-1].strip().lower()
    return text[:60] or "unreadable"

"""The run recorder: one ``crawl_runs`` row per crawl, the seen-set flushed, source health checked;
and the escaped crawl log (a page's control characters never reach the log file raw).

A run that lost a page (a document that could not be scanned or recorded, a callback or a pipeline
that raised) counts it in ``errors`` and in ``detail.lost``, and is not ``ok``: a run never says
"ok, 0 errors" when something it fetched was not recorded. Those pages are fetched again next run;
a source whose runs keep losing pages raises a ``losing`` health finding (crawler/health.py).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler

from crawler import health
from crawler.state import CrawlState, state_of
from dumpwatch.escape import escape_logs
from dumpwatch.store import StorageError

log = logging.getLogger(__name__)

# Close reasons of a crawl that went as planned (a page-count stop is a planned stop).
OK_CLOSE_REASONS = ("finished", "closespider_pagecount", "closespider_itemcount")


class RunRecorder:
    """Records the run of a source; ``DUMPWATCH_RUN_KEY`` lets the launcher read it back."""

    def __init__(self, crawler: Crawler, state: CrawlState):
        self.crawler = crawler
        self.state = state
        self.run_key = crawler.settings.get("DUMPWATCH_RUN_KEY") or uuid.uuid4().hex
        self.failing_runs = state.crawl_config.defaults.failing_runs
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RunRecorder":
        ext = cls(crawler, state_of(crawler))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.spider_error, signal=signals.spider_error)
        crawler.signals.connect(ext.item_error, signal=signals.item_error)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        src = self.state.source
        try:
            self.run_id = health.start_run(self.state.db, source=src.name, kind=src.kind, run_key=self.run_key)
        except StorageError as exc:  # tried again when the crawl closes; the launcher records it otherwise
            log.error("could not record the start of the run: %s", exc)
        log.info("crawl of %s (%s) started, run %s", src.name, src.kind, self.run_key)

    def spider_error(self, failure: Any, response: Any, spider: Spider) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("dumpwatch/errors")
        stats.inc_value(f"dumpwatch/error_reasons/{failure.type.__name__} in a callback")
        if response is not None and response.meta.get("dw_seen_key"):
            self.state.seen.mark(response.meta["dw_seen_key"], url=response.url, status="error",
                                 reason=f"{failure.type.__name__} while parsing")

    def item_error(self, item: Any, response: Any, spider: Spider, failure: Any) -> None:
        """A pipeline raised on an item: the document was not recorded; its page is fetched again."""
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("dumpwatch/errors")
        stats.inc_value(f"dumpwatch/error_reasons/{failure.type.__name__} in a pipeline")
        key = getattr(item, "page_key", "") or getattr(item, "seen_key", "")
        if not key or self.state.seen.failed(key, reason=f"not recorded: {failure.type.__name__} in a pipeline"):
            stats.inc_value("dumpwatch/lost")

    def counters(self) -> dict[str, int]:
        stats = self.crawler.stats
        assert stats is not None
        get = stats.get_value
        return {
            "pages": int(get("downloader/response_count", 0)),
            "listed": int(get("dumpwatch/listed", 0)),
            "documents": int(get("dumpwatch/documents", 0)),
            "findings": int(get("dumpwatch/findings", 0)),
            "errors": int(get("dumpwatch/errors", 0)),
            "bad": int(get("dumpwatch/bad", 0)),
            "skipped": int(get("dumpwatch/skipped_seen", 0)) + int(get("dumpwatch/duplicate_content", 0)),
        }

    def spider_closed(self, spider: Spider, reason: str) -> None:
        state = self.state
        stats = self.crawler.stats
        assert stats is not None
        unfinished = state.seen.unfinished()
        if unfinished:
            log.info("%d page(s) fetched but not fully processed when the crawl stopped: fetched again next run",
                     len(unfinished))
        try:
            state.seen.flush()
        except StorageError as exc:  # no page is marked: all are fetched again (findings are deduplicated)
            log.error("could not write the seen-set: %s", exc)
            stats.inc_value("dumpwatch/errors")
            stats.inc_value("dumpwatch/error_reasons/seen-set not written")
        all_stats = stats.get_stats()
        counters = self.counters()
        listing_ok = int(all_stats.get("dumpwatch/listing_ok", 0))
        lost = int(all_stats.get("dumpwatch/lost", 0))
        ok = reason in OK_CLOSE_REASONS and listing_ok > 0 and lost == 0
        detail = {
            "lost": lost,
            "unfinished": len(unfinished),
            "incomplete": int(all_stats.get("dumpwatch/incomplete", 0)),
            "listing_ok": listing_ok,
            "listing_failed": int(all_stats.get("dumpwatch/listing_failed", 0)),
            "error_reasons": _suffixed(all_stats, "dumpwatch/error_reasons/"),
            "bad_reasons": _suffixed(all_stats, "dumpwatch/bad_reasons/"),
            "verdicts": _suffixed(all_stats, "dumpwatch/verdicts/"),
            "retry_after": int(all_stats.get("dumpwatch/retry_after", 0)),
            "robots_forbidden": int(all_stats.get("robotstxt/forbidden", 0)),
            "duplicate_content": int(all_stats.get("dumpwatch/duplicate_content", 0)),
            "skipped_seen": int(all_stats.get("dumpwatch/skipped_seen", 0)),
            # the network policy (crawler/netguard.py): requests refused, by kind; links off limits
            "refused": int(all_stats.get("dumpwatch/refused", 0)),
            "refused_reasons": _suffixed(all_stats, "dumpwatch/refused_reasons/"),
            "offsite_skipped": int(all_stats.get("dumpwatch/offsite_skipped", 0)),
            "bombs": int(all_stats.get("dumpwatch/bombs", 0)),  # also in errors
        }
        if self.run_id is None:  # its start could not be recorded (storage failure): try once more
            self.run_id = health.start_run(state.db, source=state.source.name, kind=state.source.kind,
                                           run_key=self.run_key)
        health.finish_run(state.db, self.run_id, ok=ok, close_reason=reason, counters=counters, detail=detail)
        problems = health.check_health(state.db, state.source.name, failing_runs=self.failing_runs,
                                       config=state.config)
        log.info("crawl of %s finished (%s, ok=%s): %s%s", state.source.name, reason, ok, counters,
                 f"; health: {', '.join(problems)}" if problems else "")


def _suffixed(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: int(v) for k, v in stats.items() if k.startswith(prefix)}


class EscapedLog:
    """Shows control characters escaped in the crawl log (:func:`dumpwatch.escape.terminal`): a post
    id or URL holding ``ESC]0;…`` or ``ESC[31m`` is written as ``\\x1b]0;…``. Scrapy formats its log
    handler itself (no setting for it) and installs it anew once the settings are applied: the filter
    is put on it now and again when the spider opens, before any page is fetched."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "EscapedLog":
        ext = cls()
        ext.install()
        crawler.signals.connect(ext.install, signal=signals.spider_opened)
        return ext

    def install(self, spider: Spider | None = None) -> None:
        from scrapy.utils.log import get_scrapy_root_handler

        handler = get_scrapy_root_handler()
        if handler is not None:
            escape_logs(handler)

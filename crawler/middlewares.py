"""Downloader middlewares: politeness (Retry-After, backoff), the source's proxy, the seen-set marks of
pages that could not be fetched; and the spider middleware that tells the seen-set when a page is done.

Built like Scrapy's own (``from_crawler``, settings read there, ``NotConfigured`` when off).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware
from scrapy.utils.response import response_status_message

from crawler.items import Document
from crawler.state import state_of

log = logging.getLogger(__name__)


def parse_retry_after(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, plus waiting before each retry: ``Retry-After`` when the server gives one
    (429, 503), else an exponential backoff (``DUMPWATCH_RETRY_BACKOFF`` × 2^attempt).

    A ``Retry-After`` longer than ``DUMPWATCH_RETRY_AFTER_MAX`` is not waited for: the page is given
    up for this run (and retried next run). Size-limit cancellations are never retried.
    """

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.backoff = settings.getfloat("DUMPWATCH_RETRY_BACKOFF", 2.0)
        self.retry_after_max = settings.getfloat("DUMPWATCH_RETRY_AFTER_MAX", 600.0)

    def _delay(self, request: Request, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        attempt = request.meta.get("retry_times", 0)
        return self.backoff * (2 ** attempt)

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry_after = parse_retry_after(response.headers.get(b"Retry-After"))
        stats = self.crawler.stats
        assert stats is not None
        if retry_after is not None:
            stats.inc_value("dumpwatch/retry_after")
            if retry_after > self.retry_after_max:
                log.warning("%s asks to wait %.0f s (Retry-After), more than %.0f s: giving up for this run",
                            request.url, retry_after, self.retry_after_max)
                stats.inc_value("dumpwatch/retry_after_too_long")
                return response
        new = self._retry(request, response_status_message(response.status))
        if new is None:
            return response
        delay = self._delay(request, retry_after)
        if delay > 0:
            log.info("waiting %.1f s before retrying %s (%s)", delay, request.url, response.status)
            await asyncio.sleep(delay)
        return new

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:  # type: ignore[override]
        if isinstance(exception, DownloadCancelledError):
            return None
        new = self._retry(request, exception) if (
            isinstance(exception, self.exceptions_to_retry) and not request.meta.get("dont_retry", False)
        ) else None
        if new is None:
            return None
        delay = self._delay(request, None)
        if delay > 0:
            await asyncio.sleep(delay)
        return new


class SourceProxyMiddleware:
    """Send every request of a source through its ``proxy`` (e.g. a local Tor HTTP tunnel)."""

    def __init__(self, proxy: str | None):
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "SourceProxyMiddleware":
        return cls(state_of(crawler).source.proxy)

    def process_request(self, request: Request) -> None:
        if self.proxy:
            request.meta.setdefault("proxy", self.proxy)
        return None


class SeenMarkMiddleware:
    """Record in the seen-set the item pages (``meta["dw_seen_key"]``) that could not be fetched.

    404/410 → ``gone`` (an error for a listing page); other final HTTP errors and network errors →
    ``error`` (tried again next run); a body over ``max_download_size`` → ``bad``. Also counts the
    errors of the run. A 2xx page is *not* marked here: it becomes ``ok`` only once its documents
    are stored (:class:`PageLedgerMiddleware` and the pipeline), so a page lost on the way is
    fetched again.
    """

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.seen = state_of(crawler).seen

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "SeenMarkMiddleware":
        return cls(crawler)

    def _inc(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key)

    def process_response(self, request: Request, response: Response) -> Response:
        key = request.meta.get("dw_seen_key")
        status = response.status
        if 200 <= status < 300:
            pass  # ok once its documents are stored: see PageLedgerMiddleware
        elif status in (404, 410) and not request.meta.get("dw_listing"):
            self._inc("dumpwatch/gone")
            if key:
                self.seen.mark(key, url=request.url, status="gone", http_status=status, reason=f"HTTP {status}")
        elif status >= 400:
            self._inc("dumpwatch/errors")
            self._inc(f"dumpwatch/error_reasons/HTTP {status}")
            if key:
                self.seen.mark(key, url=request.url, status="error", http_status=status, reason=f"HTTP {status}")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, IgnoreRequest):
            return None
        key = request.meta.get("dw_seen_key")
        if isinstance(exception, DownloadCancelledError) and "max size" in str(exception):
            self._inc("dumpwatch/bad")
            self._inc("dumpwatch/bad_reasons/too large")
            if key:
                self.seen.mark(key, url=request.url, status="bad", reason="larger than max_download_size")
            return None
        reason = type(exception).__name__
        self._inc("dumpwatch/errors")
        self._inc(f"dumpwatch/error_reasons/{reason}")
        if key:
            self.seen.mark(key, url=request.url, status="error", reason=reason)
        return None


class PageLedgerMiddleware(BaseSpiderMiddleware):
    """Tell the seen-set which documents each page handed on, and when its callback finished.

    Every :class:`~crawler.items.Document` a callback yields is tagged with the page it belongs to
    (``page_key``: its own ``seen_key``, else the response's ``dw_seen_key``) and counted on that
    page (:meth:`crawler.seen.SeenSet.expect`); when the callback's output ends, each of those pages
    is ``parsed``. The pipeline reports each document done or failed; a page is marked ``ok`` when
    it is parsed and all its documents are done. A callback that raises marks its pages ``error``
    (fetched again next run) and counts them as lost.
    """

    def __init__(self, crawler: Crawler):
        super().__init__(crawler)
        self.seen = state_of(crawler).seen

    def _tag(self, out: Any, response: Response | None, keys: dict[str, None]) -> Any:
        if isinstance(out, Document):
            key = out.page_key or out.seen_key or (response.meta.get("dw_seen_key", "") if response else "")
            if key:
                if out.page_key != key:
                    out = dataclasses.replace(out, page_key=key)
                self.seen.expect(key)
                keys[key] = None
        return out

    def _pages(self, response: Response | None) -> dict[str, None]:
        key = response.meta.get("dw_seen_key") if response is not None else None
        return {key: None} if key else {}

    def _done(self, response: Response | None, keys: dict[str, None]) -> None:
        for key in keys:
            self.seen.parsed(key, response.url if response is not None and key == response.meta.get("dw_seen_key")
                             else key)

    def _failed(self, response: Response | None, keys: dict[str, None], exc: BaseException) -> None:
        stats = self.crawler.stats
        assert stats is not None
        for key in keys:
            if self.seen.failed(key, url=response.url if response is not None else None,
                                reason=f"{type(exc).__name__} while parsing"):
                stats.inc_value("dumpwatch/lost")

    def process_spider_output(self, response: Response | None, result: Iterable[Any],  # type: ignore[override]
                              spider: Any = None) -> Iterable[Any]:
        keys = self._pages(response)
        try:
            for out in result:
                yield self._tag(out, response, keys)
        except Exception as exc:
            self._failed(response, keys, exc)
            raise
        self._done(response, keys)

    async def process_spider_output_async(self, response: Response | None,  # type: ignore[override]
                                          result: AsyncIterator[Any], spider: Any = None) -> AsyncIterator[Any]:
        keys = self._pages(response)
        try:
            async for out in result:
                yield self._tag(out, response, keys)
        except Exception as exc:
            self._failed(response, keys, exc)
            raise
        self._done(response, keys)

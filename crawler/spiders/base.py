"""What every source spider shares: its source from the configuration, politeness settings applied
before the crawl starts, seen-set checks, documents, and link following within the source's limits.

Two kinds of requests:

- *listing* requests (paste listings, board pages, feeds, channel previews, API listings) are
  fetched every run; a listing page that answers counts as ``dumpwatch/listing_ok`` (health), and
  every item it shows counts as ``dumpwatch/listed``, new or not;
- *item* requests (pastes, topics, attachments, linked pages) carry a seen-set key and are not
  fetched again while fresh (``recrawl_age``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import HtmlResponse, Response, TextResponse

from crawler.items import Document
from crawler.netguard import PolicyRefused
from crawler.state import CrawlState, attach
from dumpwatch.errors import ConfigError
from dumpwatch.clock import utcnow
from dumpwatch.netpolicy import DEFAULT_PORTS, split_host_port

log = logging.getLogger(__name__)

_FILENAME_RE = re.compile(r"""filename\*?=(?:UTF-8'')?["']?([^"';]+)""", re.I)


def apply_source_settings(settings: Any, state: CrawlState) -> None:
    """Per-source politeness into the crawl settings (``-s`` on the command line still wins)."""
    src, d = state.source, state.crawl_config.defaults
    test_mode = settings.getbool("DUMPWATCH_TEST_MODE")
    values = {
        "CONCURRENT_REQUESTS_PER_DOMAIN": src.concurrency,
        "DOWNLOAD_DELAY": src.delay,
        "AUTOTHROTTLE_ENABLED": src.autothrottle and not test_mode,
        "AUTOTHROTTLE_START_DELAY": max(src.delay, 0.1),
        "ROBOTSTXT_OBEY": src.obey_robots,
        "DOWNLOAD_TIMEOUT": src.timeout,
        "DOWNLOAD_MAXSIZE": src.max_download_size,
        "DOWNLOAD_WARNSIZE": min(settings.getint("DOWNLOAD_WARNSIZE"), src.max_download_size),
        "USER_AGENT": src.user_agent,
        "RETRY_TIMES": d.retry_times,
        "DUMPWATCH_RETRY_BACKOFF": d.retry_backoff,
        "DUMPWATCH_RETRY_AFTER_MAX": d.retry_after_max,
        "CLOSESPIDER_PAGECOUNT": d.max_requests,
    }
    if src.headers:
        headers = dict(settings.getdict("DEFAULT_REQUEST_HEADERS"))
        headers.update(src.headers)
        values["DEFAULT_REQUEST_HEADERS"] = headers
    for key, value in values.items():
        settings.set(key, value, priority="spider")


class SourceSpider(scrapy.Spider):
    """Base of the config-driven spiders; ``name`` is the source kind."""

    state: CrawlState
    allowed_hosts: list[tuple[str, int | None]] = []  # (host, port or None: the scheme's default)

    def __init__(self, source: str | None = None, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.source_name = source

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "SourceSpider":
        name = kwargs.get("source")
        if not name:
            raise ConfigError(f"which source? run: scrapy crawl {cls.name} -a source=NAME")
        state = CrawlState.build(crawler.settings, name)
        if state.source.kind != cls.name:
            raise ConfigError(f"source {name!r} is a {state.source.kind} source: run scrapy crawl "
                              f"{state.source.kind} -a source={name}", path=state.crawl_config.path,
                              key=f"sources.{name}.kind")
        if not state.source.enabled:
            log.warning("source %s is disabled (enabled = false); crawling it because it was asked by name", name)
        apply_source_settings(crawler.settings, state)
        attach(crawler, state)
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, SourceSpider)
        spider.state = state
        # host:port entries: the ports are checked by allowed(); Scrapy's offsite filter takes hosts only
        spider.allowed_hosts = [hp for hp in map(split_host_port, state.source.allowed_domains) if hp]
        spider.allowed_domains = list(dict.fromkeys(h for h, _ in spider.allowed_hosts))
        return spider

    # -- shortcuts -------------------------------------------------------------------------------
    @property
    def src(self) -> Any:
        return self.state.source

    def inc(self, key: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key, n)

    def allowed(self, url: str) -> bool:
        """An http(s) URL whose host is one of the allowed domains or a subdomain of one, on the port
        the entry gives (``host:port``), else on the scheme's default port only."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        scheme = parts.scheme.lower()
        try:
            port = parts.port or DEFAULT_PORTS.get(scheme)
        except ValueError:
            return False
        return scheme in DEFAULT_PORTS and any(
            (host == d or host.endswith("." + d)) and port == (p or DEFAULT_PORTS[scheme])
            for d, p in self.allowed_hosts)

    async def start(self) -> AsyncIterator[Any]:
        for url in self.src.start_urls:
            for req in self.start_requests_for(url):
                yield req

    def start_requests_for(self, url: str) -> Iterable[scrapy.Request]:
        yield self.listing_request(url, self.parse)

    # -- requests --------------------------------------------------------------------------------
    def listing_request(self, url: str, callback: Any, *, page: int = 1, meta: dict | None = None,
                        **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(url, callback=callback, errback=self.on_listing_error,
                              cookies=dict(self.src.cookies), meta={"dw_listing": True, "dw_page": page,
                                                                    **(meta or {})}, **kwargs)

    def item_request(self, url: str, callback: Any, *, seen_key: str | None = None, hops: int = 0,
                     meta: dict | None = None, **kwargs: Any) -> scrapy.Request | None:
        """A request for an item page, or ``None`` when it is fresh in the seen-set or off limits."""
        if not self.allowed(url):
            self.inc("dumpwatch/offsite_skipped")
            return None
        key = seen_key or url
        if self.state.seen.is_fresh(key):
            self.inc("dumpwatch/skipped_seen")
            return None
        return scrapy.Request(url, callback=callback, errback=self.on_item_error, cookies=dict(self.src.cookies),
                              meta={"dw_seen_key": key, "dw_hops": hops, **(meta or {})}, **kwargs)

    def on_listing_error(self, failure: Any) -> None:
        self.inc("dumpwatch/listing_failed")
        log.warning("listing %s failed: %s", failure.request.url, failure.getErrorMessage()[:200])

    def on_item_error(self, failure: Any) -> None:
        if failure.check(PolicyRefused):
            return  # counted, and logged once per host, by the guard
        log.info("item %s failed: %s", failure.request.url, failure.getErrorMessage()[:200])

    def listing_ok(self, response: Response) -> None:
        self.inc("dumpwatch/listing_ok")

    def listing_broken(self, response: Response, reason: str) -> None:
        """A listing page answered but cannot be read (not JSON, not a feed…): an error of the run."""
        self.inc("dumpwatch/listing_failed")
        self.inc("dumpwatch/errors")
        self.inc(f"dumpwatch/error_reasons/{reason}")
        log.warning("listing %s: %s", response.url, reason)

    # -- documents -------------------------------------------------------------------------------
    def document(self, response: Response, kind: str, *, body: bytes | None = None, url: str | None = None,
                 name: str | None = None, seen_key: str | None = None) -> Document:
        return Document(
            source=self.src.name,
            url=url or response.url,
            name=name or filename_of(response),
            kind=kind,
            fetched_at=utcnow(),
            body=response.body if body is None else body,
            seen_key=response.meta.get("dw_seen_key", "") if seen_key is None else seen_key,
            content_type=(response.headers.get(b"Content-Type") or b"").decode("latin-1"),
        )

    def follow(self, base_url: str, hrefs: Iterable[str], *, hops: int, kind: str = "page") -> Iterator[scrapy.Request]:
        """Follow links a post/entry/page gives, within the allowed domains and the source's depth.

        Attachments (``kind="attachment"``) belong to the post and are fetched whatever the depth.
        """
        if kind != "attachment" and hops > self.src.depth:
            return
        for href in dict.fromkeys(h.strip() for h in hrefs if h and h.strip()):
            url = urljoin(base_url, href).split("#", 1)[0]
            req = self.item_request(url, self.parse_linked, hops=hops, meta={"dw_doc_kind": kind})
            if req is not None:
                yield req

    def parse_linked(self, response: Response) -> Iterator[Any]:
        """A page or file a post, entry or message linked to: a document, and its links in turn."""
        yield self.document(response, response.meta.get("dw_doc_kind", "page"))
        hops = int(response.meta.get("dw_hops", 1))
        if isinstance(response, HtmlResponse) and hops < self.src.depth:
            yield from self.follow(response.url, response.css("a::attr(href)").getall(), hops=hops + 1)


def filename_of(response: Response, fallback: str = "document") -> str:
    """A file name for extraction: Content-Disposition, else the URL's last path segment."""
    cd = (response.headers.get(b"Content-Disposition") or b"").decode("latin-1")
    m = _FILENAME_RE.search(cd)
    if m:
        return unquote(m.group(1)).strip() or fallback
    last = unquote(urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1])
    if last:
        return last
    return fallback + (".html" if isinstance(response, HtmlResponse) else "")


def text_of(response: Response) -> str | None:
    """The decoded text of a response, or ``None`` when it is not text."""
    if isinstance(response, TextResponse):
        try:
            return response.text
        except (UnicodeDecodeError, LookupError):
            return None
    return None

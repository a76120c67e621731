"""The network policy in the crawl: every request, the first and each redirect, checked on the address
its host resolves to (:mod:`dumpwatch.netpolicy`), and the decompression bombs counted.

:class:`NetworkGuardMiddleware` runs early in the downloader chain (right after Scrapy's offsite
filter), so a redirect, which Scrapy schedules as a new request, passes through it again. It:

- refuses a URL that is not http(s), and one off the source's limits (another host, or another port
  of an allowed host: ``SourceSpider.allowed``), a redirect as any other (the start URLs excepted);
- resolves the host without blocking the reactor (``loop.getaddrinfo``) and refuses it when any of
  its addresses is refused by the policy (an IP literal is checked as written);
- pins the checked address in Scrapy's DNS cache, so the connection goes to the address that was
  checked, not to a second answer of a rebinding DNS server (with Scrapy's default resolver,
  ``CachingThreadedResolver``, which answers from that cache; not with another resolver), and
  :class:`PolicyResolver` (that resolver, checking every answer it gives) refuses any other;
- raises ``IgnoreRequest`` with the reason, counts ``dumpwatch/refused`` and
  ``dumpwatch/refused_reasons/<kind>`` (the run recorder writes them in the run's detail), and logs
  the first refusal of each host.

A request sent through the source's ``proxy`` is resolved by the proxy: only an IP literal can be
checked here. A name that does not resolve is left to Scrapy, which fails it as a DNS error.

:class:`BombCountingCompressionMiddleware` is Scrapy's ``HttpCompressionMiddleware`` that also
counts a response whose decoded body passes ``DOWNLOAD_MAXSIZE`` (a decompression bomb) as an
error of the run (``dumpwatch/bombs``; a ``hostile`` health problem), and marks its page ``bad``
in the seen-set.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.exceptions import IgnoreRequest
from twisted.internet.error import DNSLookupError
from scrapy.http import Response
from scrapy.resolver import CachingThreadedResolver, dnscache
from scrapy.utils.misc import load_object

from crawler.state import state_of
from dumpwatch.netpolicy import NetworkPolicy, kind_of, parse_ip

log = logging.getLogger(__name__)

REFUSED = "dumpwatch/refused"
REFUSED_REASONS = "dumpwatch/refused_reasons/"
BOMBS = "dumpwatch/bombs"


class PolicyRefused(IgnoreRequest):
    """A request the network policy refused (already counted and logged by the guard)."""


class NetworkGuardMiddleware:
    """Refuse requests the network policy forbids; see the module docstring."""

    def __init__(self, crawler: Crawler, policy: NetworkPolicy, *, pin_dns: bool):
        self.crawler = crawler
        self.policy = policy
        self.pin_dns = pin_dns
        self.logged: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "NetworkGuardMiddleware":
        state = state_of(crawler)
        policy = state.crawl_config.network.for_source(state.source.allow_private_networks)
        settings = crawler.settings
        resolver = load_object(settings.get("TWISTED_DNS_RESOLVER"))
        pin = (settings.getbool("DNSCACHE_ENABLED") and not settings.getpriority("DNS_RESOLVER")  # deprecated, unset
               and isinstance(resolver, type) and issubclass(resolver, CachingThreadedResolver))
        # one crawl per process: the resolver checks with this source's policy, the source's proxy excepted
        PolicyResolver.policy = policy
        PolicyResolver.exempt = frozenset({(urlsplit(state.source.proxy).hostname or "").lower()} - {""}
                                          if state.source.proxy else ())
        return cls(crawler, policy, pin_dns=pin)

    async def process_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        if parts.scheme.lower() not in ("http", "https") or not host:
            self.refuse(request, host or request.url, "scheme", f"not an http(s) URL: {request.url[:200]}")
        spider = self.crawler.spider
        if (hasattr(spider, "allowed") and not spider.allowed(request.url)
                and request.url not in spider.src.start_urls):
            what = "a redirect" if request.meta.get("redirect_urls") else "a request"
            self.refuse(request, host, "off limits", f"{what} off the source's allowed_domains (host, and "
                                                     "port: another port must be listed as host:port)")
        literal = parse_ip(host)
        if literal is not None:
            reason = self.policy.check_address(literal)
            if reason:
                self.refuse(request, host, kind_of(literal) or "refused", reason)
            return None
        if request.meta.get("proxy"):
            return None  # the proxy resolves the name; it is the operator's own
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError):
            return None  # Scrapy's own lookup (or URL check) fails the same way, and counts it as an error
        addresses = [info[4][0] for info in infos]
        reason = self.policy.check_addresses(host, addresses)
        if reason:
            bad = next(a for a in dict.fromkeys(addresses) if self.policy.check_address(a))
            self.refuse(request, host, kind_of(parse_ip(bad)) or "refused", reason)  # type: ignore[arg-type]
        if self.pin_dns:
            self._pin(host, addresses)
        return None

    def _pin(self, host: str, addresses: list[str]) -> None:
        """Scrapy's resolver answers from its cache: give it the address just checked (IPv4, as the
        default resolver resolves), so a second DNS answer cannot send the connection elsewhere."""
        v4 = next((a for a in addresses if ":" not in a), None)
        if v4 is not None and dnscache.limit:
            dnscache[host] = v4

    def refuse(self, request: Request, host: str, kind: str, reason: str) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(REFUSED)
        stats.inc_value(REFUSED_REASONS + kind)
        if host not in self.logged:
            self.logged.add(host)
            log.warning("refused %s: %s (further refusals for %s are counted, not logged)",
                        request.url[:200], reason, host)
        raise PolicyRefused(reason)


class PolicyResolver(CachingThreadedResolver):
    """Scrapy's default resolver (``TWISTED_DNS_RESOLVER``), checking the very address Scrapy is
    about to connect to against the crawl's policy: the last line, behind the guard, for the answers
    the guard did not see (a rebinding DNS server, a cache entry the guard's pin lost). A refused
    answer fails the request as a DNS error whose message gives the reason."""

    policy: NetworkPolicy | None = None  # set by NetworkGuardMiddleware.from_crawler; None: no check
    exempt: frozenset[str] = frozenset()  # the source's proxy: the operator's own, often on the LAN

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:  # noqa: N802 (Twisted's name)
        d = super().getHostByName(name, timeout)
        policy = PolicyResolver.policy
        if policy is not None and name.lower() not in PolicyResolver.exempt:
            d.addCallback(_checked, name, policy)
        return d


def _checked(address: str, name: str, policy: NetworkPolicy) -> str:
    reason = policy.check_address(address)
    if reason:
        raise DNSLookupError(f"{name} resolves to {address}: {reason}")
    return address


class BombCountingCompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's decompression, with a body that decodes past ``DOWNLOAD_MAXSIZE`` (a decompression
    bomb) counted as an error of the run and its page marked ``bad`` (not fetched again while fresh)."""

    REASON = "decompression bomb (body larger than max_download_size once decoded)"

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "BombCountingCompressionMiddleware":
        mw = super().from_crawler(crawler)
        mw.crawler = crawler
        return mw

    def process_response(self, request: Request, response: Response) -> Any:  # type: ignore[override]
        try:
            return super().process_response(request, response)
        except IgnoreRequest as exc:
            if "during decompression" not in str(exc):
                raise
            stats = self.crawler.stats
            assert stats is not None
            stats.inc_value(BOMBS)
            stats.inc_value("dumpwatch/errors")
            stats.inc_value(f"dumpwatch/error_reasons/{self.REASON}")
            log.warning("%s: %s; %d bytes received", request.url[:200], self.REASON, len(response.body))
            key = request.meta.get("dw_seen_key")
            if key:
                state_of(self.crawler).seen.mark(key, url=request.url, status="bad", http_status=response.status,
                                                 reason="decompression bomb")
            raise

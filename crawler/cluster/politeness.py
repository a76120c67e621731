"""Politeness across workers: a source's delay and concurrency per domain hold for all its workers together.

On one machine Scrapy's downloader keeps one slot per domain: at most ``concurrency`` requests in
flight (``CONCURRENT_REQUESTS_PER_DOMAIN``), ``delay`` seconds between two of them
(``DOWNLOAD_DELAY``), the delay raised by AutoThrottle when the site slows down. N workers with
their own slots would make N times that load. :class:`SharedSlotMiddleware`, the downloader
middleware closest to the download, takes the domain's slot in Redis before each request and waits
(``asyncio.sleep``: the reactor goes on) while another worker holds it:

- ``dumpwatch:polite:SOURCE:HOST:next``: when the next request may start (milliseconds on Redis's
  own clock, so the workers' clocks do not matter), set ``delay`` after each start (``PX``);
- ``dumpwatch:polite:SOURCE:HOST:leases``: a sorted set of the requests in flight, scored by when
  their lease ends (the download timeout and a margin: a killed worker's leases lapse by
  themselves); at most ``concurrency`` of them; a lease is given back when the response, or the
  error, comes back;
- ``dumpwatch:polite:SOURCE:HOST:throttle``: the shared AutoThrottle delay when the source has
  ``autothrottle`` on: Scrapy's rule (the mean of the current delay and latency ÷ target
  concurrency, never below ``delay``, never above ``AUTOTHROTTLE_MAX_DELAY``, never lowered by an
  error response) fed by the latencies all workers see.

Both checks are one Lua script (:data:`ACQUIRE`), atomic in Redis. It answers either "taken", or
how long until the next start (the request sleeps exactly that, bounded, then asks again), or "all
leases taken". Within one worker crawl, the requests of a domain queue in memory first: one at a
time asks Redis, and only while the crawl holds fewer than ``concurrency`` leases; the next asks as
soon as the one before has its lease (or a lease of this crawl is given back). So a domain costs
one ``ACQUIRE`` per request when nothing waits, about two with a delay, instead of every waiting
request asking at every turn. Only when the other workers hold every lease does the asker look
again every :data:`POLL_MS` (their releases are not heard here), woken at once by a release of its
own crawl. The worker's own slots are then set to no delay and AutoThrottle off, and a worker
crawl takes at most twice the source's concurrency from the queue at a time
(:func:`local_settings`): the shared slot is the only wait, so the spacing between two requests of any workers is at least ``delay`` (a local wait after
the shared one could otherwise bunch them). Requests that Redis cannot serve fail (counted in the
run's errors by the seen-set middleware, fetched again next run); never sent unthrottled (a
robots.txt request is ignored then, with one warning line: Scrapy's robots.txt middleware would
log its failure with a traceback, and goes on the same either way).
Counters: ``dumpwatch/cluster/polite_waits`` and ``dumpwatch/cluster/polite_wait_ms`` (requests that
waited, and how long, in memory or for Redis), ``dumpwatch/cluster/polite_asks`` (``ACQUIRE`` calls).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawler.cluster.inflight import DOWN
from crawler.state import state_of

log = logging.getLogger(__name__)

PREFIX = "dumpwatch:polite:"
POLL_MS = 50  # while other workers hold every lease of the slot, look again this often (one may end any time)
LEASE_MARGIN_MS = 10_000
PREFETCH = 2  # a worker crawl takes at most this many times the source's concurrency from the queue

# KEYS: next, leases, throttle. ARGV: delay_ms, concurrency, lease id, lease ttl ms.
# Returns 0 when the slot is taken (lease added), else how many ms to wait before asking again.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delay = tonumber(ARGV[1])
local throttled = tonumber(redis.call('GET', KEYS[3]) or '0')
if throttled > delay then delay = throttled end
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt > now then return nxt - now end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -1 end
local ttl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl)
if delay > 0 then redis.call('SET', KEYS[1], now + delay, 'PX', delay) end
return 0
"""

# KEYS: throttle. ARGV: latency ms, minimum delay ms, maximum delay ms, target concurrency, ok (1/0).
THROTTLE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or ARGV[2])
local new = (cur + tonumber(ARGV[1]) / tonumber(ARGV[4])) / 2
if new < tonumber(ARGV[2]) then new = tonumber(ARGV[2]) end
if new > tonumber(ARGV[3]) then new = tonumber(ARGV[3]) end
if ARGV[5] == '0' and new < cur then new = cur end
redis.call('SET', KEYS[1], math.floor(new), 'EX', 3600)
return math.floor(new)
"""


def local_settings(source: Any) -> dict[str, Any]:
    """The worker crawl's own settings: no delay of its own (the shared slot is the wait), and no
    more requests taken from the queue than twice the source's concurrency (a worker that took 16
    would keep them waiting for the slot while the other workers of the source have none)."""
    return {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS": PREFETCH * max(1, int(source.concurrency))}


def slot_keys(source: str, host: str) -> tuple[str, str, str]:
    base = f"{PREFIX}{source}:{host}"
    return f"{base}:next", f"{base}:leases", f"{base}:throttle"


class _Host:
    """One domain's slot as this worker crawl sees it: its leases, the one asking Redis, who waits."""

    __slots__ = ("leases", "asking", "waiters", "released")

    def __init__(self) -> None:
        self.leases: dict[str, float] = {}  # leases this crawl holds (requests downloading): when each lapses
        self.asking = False  # one request of this crawl is asking Redis for the slot
        self.waiters: deque[asyncio.Future[None]] = deque()  # the others, in order
        self.released: asyncio.Event | None = None  # set when a lease of ours is given back


class SharedSlotMiddleware:
    """Takes the domain's slot in Redis before each request of a worker; gives it back after."""

    def __init__(self, crawler: Crawler, r: Any):
        state = state_of(crawler)
        src = state.source
        self.crawler = crawler
        self.r = r
        self.source = src.name
        self.delay_ms = int(round(src.delay * 1000))
        self.concurrency = max(1, int(src.concurrency))
        self.lease_ms = int(src.timeout * 1000) + LEASE_MARGIN_MS
        self.autothrottle = bool(src.autothrottle) and not crawler.settings.getbool("DUMPWATCH_TEST_MODE")
        self.max_delay_ms = int(crawler.settings.getfloat("AUTOTHROTTLE_MAX_DELAY", 60.0) * 1000)
        self.target = max(0.1, crawler.settings.getfloat("AUTOTHROTTLE_TARGET_CONCURRENCY", 1.0))
        self._acquire = r.register_script(ACQUIRE)
        self.hosts: dict[str, _Host] = {}
        self._throttle = r.register_script(THROTTLE)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "SharedSlotMiddleware":
        from crawler.cluster.connect import client, cluster_settings

        settings = cluster_settings(state_of(crawler).config, crawler.settings.get("REDIS_URL"))
        assert settings is not None
        return cls(crawler, client(settings))

    def _inc(self, key: str, n: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, n)

    def _host(self, host: str) -> "_Host":
        h = self.hosts.get(host)
        if h is None:
            h = self.hosts[host] = _Host()
        return h

    def _may_ask(self, h: "_Host") -> bool:
        if h.asking:
            return False
        if len(h.leases) >= self.concurrency:  # one never given back (a download cancelled) lapses as in Redis
            now = asyncio.get_running_loop().time()
            for lease in [k for k, until in h.leases.items() if until <= now]:
                del h.leases[lease]
        return len(h.leases) < self.concurrency

    def _wake(self, h: "_Host") -> None:
        """Let the first local waiter of the host ask Redis, if it may now; wake a waiting asker."""
        if h.released is not None:
            h.released.set()
        while h.waiters and self._may_ask(h):
            waiter = h.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def process_request(self, request: Request) -> None:
        host = (urlsplit(request.url).hostname or "").lower()
        keys = slot_keys(self.source, host)
        lease = uuid.uuid4().hex
        h = self._host(host)
        loop = asyncio.get_running_loop()
        started = loop.time()
        asks = 0
        while not self._may_ask(h):  # this crawl's own queue for the domain: no Redis call
            waiter = loop.create_future()
            h.waiters.append(waiter)
            try:  # bounded: a lease of ours never given back lapses (_may_ask)
                await asyncio.wait_for(waiter, self.lease_ms / 1000)
            except asyncio.TimeoutError:
                pass
        h.asking = True
        try:
            while True:
                asks += 1
                try:
                    wait = int(self._acquire(keys=keys, args=[self.delay_ms, self.concurrency, lease, self.lease_ms]))
                except DOWN as exc:
                    if request.meta.get("dont_obey_robotstxt") and request.url.endswith("/robots.txt"):
                        # Scrapy's robots.txt middleware logs any other failure with a traceback; it
                        # goes on as for a robots.txt that cannot be fetched either way
                        log.warning("%s not fetched: Redis does not answer (%s)", request.url, type(exc).__name__)
                        raise IgnoreRequest(f"Redis does not answer ({type(exc).__name__})") from exc
                    raise
                if wait == 0:
                    break
                if wait > 0:  # the next start's time, on Redis's clock: sleep until then, no polling
                    await asyncio.sleep(min(wait, max(self.delay_ms, self.max_delay_ms, POLL_MS)) / 1000)
                    continue
                # every lease taken by other workers (ours are fewer than concurrency): a release of ours
                # wakes us at once; theirs we cannot hear of, so look again after POLL_MS
                h.released = asyncio.Event()
                try:
                    await asyncio.wait_for(h.released.wait(), POLL_MS / 1000)
                except asyncio.TimeoutError:
                    pass
                finally:
                    h.released = None
            h.leases[lease] = loop.time() + self.lease_ms / 1000
        finally:
            h.asking = False
            self._wake(h)
        waited = int((loop.time() - started) * 1000)
        if asks > 1 or waited >= 1:
            self._inc("dumpwatch/cluster/polite_waits")
            self._inc("dumpwatch/cluster/polite_wait_ms", waited)
        self._inc("dumpwatch/cluster/polite_asks", asks)
        request.meta["dw_polite_lease"] = (host, lease)
        return None

    def _release(self, request: Request) -> None:
        held = request.meta.pop("dw_polite_lease", None)
        if held is None:
            return
        host, lease = held
        try:
            self.r.zrem(slot_keys(self.source, host)[1], lease)
        except Exception as exc:  # the lease lapses by itself after the download timeout
            log.warning("could not give back the politeness slot of %s (%s): it lapses in %.0f s", host,
                        type(exc).__name__, self.lease_ms / 1000)
        h = self._host(host)
        h.leases.pop(lease, None)
        self._wake(h)

    def process_response(self, request: Request, response: Response) -> Response:
        held = request.meta.get("dw_polite_lease")
        self._release(request)
        latency = request.meta.get("download_latency")
        if self.autothrottle and held is not None and latency is not None:
            try:
                self._throttle(keys=[slot_keys(self.source, held[0])[2]],
                               args=[int(latency * 1000), self.delay_ms, self.max_delay_ms, self.target,
                                     1 if response.status < 400 else 0])
            except Exception as exc:
                log.warning("shared AutoThrottle not updated (%s)", type(exc).__name__)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._release(request)
        return None

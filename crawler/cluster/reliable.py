"""The Scrapy side of the reliable request queue: the queue, the scheduler that acknowledges a request
once its result is stored, and the downloader middleware that sends back a request Redis failed.

The Redis side (the in-flight hashes, the Lua scripts that pop, release and re-queue, the rescue of a
dead worker's requests) is :mod:`crawler.cluster.inflight`, whose docstring tells the whole
mechanism. Here:

- :class:`ReliableQueue` is scrapy-redis's priority queue (JSON, :mod:`crawler.cluster.queue`)
  whose pop moves the request into the worker's in-flight hash instead of deleting it, and carries
  the pending acks in the same round trip;
- :class:`ReliableScheduler` acks a request when the engine's slot removes it (its scrape is
  complete), releases it when a finding of it could not be sent, spoils it (back to its queue)
  when Redis failed it, and keeps the pushes and acks that meet Redis away in memory, in order,
  retried with :data:`BACKOFF`;
- :class:`RedisDownMiddleware` sits nearest the download, so a request failed by Redis (the shared
  politeness slot, the seen-set) goes back to its queue instead of counting as the site's failure.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from scrapy import signals

from crawler.cluster import wakeup, workers
from crawler.cluster.inflight import (DOWN, NAMES, POP, QUEUE_PREFIX, ack, as_text, inflight_key, pop, release,
                                      requeue, requeue_dead, script)
from crawler.cluster.queue import JsonPriorityQueue, RedisScheduler
from dumpwatch import clock

log = logging.getLogger(__name__)

BACKOFF = ExponentialBackoff(cap=10.0, base=0.5)  # seconds between two tries of the deferred writes
ACK_DELAY = 0.05  # seconds an ack waits for the next pop to carry it (one round trip for both)
# A custom Scrapy signal: a document's finding could not be sent (item=); its request is released.
finding_unsent = object()


class ReliableQueue(JsonPriorityQueue):
    """scrapy-redis's priority queue whose pop moves the request in flight instead of deleting it."""

    def pop_to(self, name: str, entry_id: str) -> tuple[bool, Any]:
        """(popped, request): (False, None) when empty; (True, None) for an entry that is not a request."""
        data = pop(self.server, self.key, name, entry_id)
        if data is None:
            return False, None
        return True, self._decode_request(data)

    def pop_acking(self, name: str, entry_id: str, acks: list[str]) -> tuple[bool, Any, int]:
        """:meth:`pop_to`, with the acks of ``acks`` (``HDEL``) sent before it in the same round trip
        (a pipeline, not a transaction); also how many of them were still in flight."""
        if not acks:
            return (*self.pop_to(name, entry_id), 0)
        pipe = self.server.pipeline(transaction=False)
        pipe.hdel(inflight_key(name), *acks)
        script(self.server, POP)(keys=[self.key, inflight_key(name), NAMES], args=[entry_id, clock.utcnow(), name],
                                  client=pipe)
        acked, data = pipe.execute()
        if data is None:
            return False, None, int(acked)
        return True, self._decode_request(data), int(acked)

    def pop(self, timeout: int = 0) -> Any:
        raise TypeError("ReliableQueue pops into a worker's in-flight hash: use pop_to")


class ReliableScheduler(RedisScheduler):
    """scrapy-redis's scheduler over :class:`ReliableQueue`: acks a request once it is finished."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.crawler: Any = None
        self.name = ""
        self.inflight: dict[Any, str] = {}  # request popped -> its in-flight entry id
        self.spoiled: set[Any] = set()  # requests whose finding could not be sent: released, not acked
        self.unsent: set[int] = set()  # id() of the documents whose finding could not be sent
        self.writes: list[tuple[str, ...]] = []  # deferred while Redis is away, in order
        self.failures = 0
        self.retry_at = 0.0
        self.suspect = False  # a pop failed: Redis may hold in flight a request this crawl does not know
        self.acks: list[str] = []  # acks waiting (at most ACK_DELAY) for the next pop to carry them
        self._ack_call: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> "ReliableScheduler":
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        crawler.signals.connect(scheduler.finding_unsent, signal=finding_unsent)
        crawler.signals.connect(scheduler.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(scheduler.spider_error, signal=signals.spider_error)
        crawler.signals.connect(scheduler.item_error, signal=signals.item_error)
        return scheduler

    def open(self, spider: Any) -> None:
        super().open(spider)
        self.queue = ReliableQueue(self.server, spider, self.queue.key)
        self.name = workers.worker_name(spider.state.source.name)
        self._hook_engine()
        # a dead process of the same name (a restart in a container: same host, same pid) left these
        n, _ = requeue(self.server, self.name)
        dead = requeue_dead(self.server, exclude=(self.name,))
        if n:
            log.warning("re-queued %d request(s) left in flight by a previous worker named %s", n, self.name)
        self._inc("dumpwatch/cluster/requeued_at_start", n + sum(dead.values()))

    def _hook_engine(self) -> None:
        slot = getattr(getattr(self.crawler, "engine", None), "_slot", None)
        if getattr(slot, "scheduler", None) is not self or not callable(getattr(slot, "remove_request", None)):
            raise RuntimeError("this Scrapy's engine has no _Slot.remove_request for its scheduler: the reliable "
                               "queue cannot know when a request is finished (docs/scale.md, The reliable request queue)")
        remove = slot.remove_request

        def remove_request(request: Any) -> None:  # called once the request's scrape is complete
            try:
                self.finished(request)
            finally:
                remove(request)

        slot.remove_request = remove_request

    def _inc(self, key: str, n: int = 1) -> None:
        if self.stats is not None and n:
            self.stats.inc_value(key, n)

    # -- the engine's side --------------------------------------------------------------------------

    def enqueue_request(self, request: Any) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        key = self.queue.key  # dumpwatch:requests:SOURCE: its source's idle crawls are woken if it was empty
        self._write(("push", key, str(-request.priority), self.queue._encode_request(request),
                     key.removeprefix(QUEUE_PREFIX)))
        return True

    def next_request(self) -> Any:
        if self.failures and time.monotonic() < self.retry_at:
            return None  # Redis away: wait for the next try
        if self.writes and not self._flush():
            return None  # Redis still away: take nothing new
        if self.suspect and not self._reconcile():
            return None
        entry_id = uuid.uuid4().hex
        acks, self.acks = self.acks, []
        try:
            popped, request, acked = self.queue.pop_acking(self.name, entry_id, acks)
        except DOWN as exc:
            self.suspect = True  # Redis may have done this pop and its answer been lost
            if acks:  # and these acks, or not: written again (quietly: done twice is no news)
                self.writes.append(("acks", "again", *acks))
                self._inc("dumpwatch/cluster/deferred_writes")
            self._away(exc)
            return None
        except Exception:  # not Redis away (a bug, a refused script): the acks wait for the next write
            self.acks[:0] = acks
            raise
        if acked < len(acks):
            self._late_acks(len(acks) - acked)
        if self.failures:
            log.warning("Redis answers again: popping requests")
            self.failures = 0
        if not popped:
            return None
        if request is None:  # not a request (counted by the queue): out of flight, never run
            self._write(("ack", entry_id))
            return None
        self.inflight[request] = entry_id
        self._inc("scheduler/dequeued/redis")
        return request

    def _reconcile(self) -> bool:
        """After a failed pop, once nothing waits to be written: put back what this crawl holds in
        Redis and does not know of (a pop Redis did whose answer was lost with the connection)."""
        try:
            known = set(self.inflight.values())
            lost = [as_text(f) for f in self.server.hkeys(inflight_key(self.name)) if as_text(f) not in known]
            for entry_id in lost:
                release(self.server, self.name, entry_id)
        except DOWN as exc:
            self._away(exc)
            return False
        self.suspect = False
        if lost:
            self._inc("dumpwatch/cluster/released", len(lost))
            log.warning("put back %d request(s) popped while the connection to Redis was lost", len(lost))
        return True

    def has_pending_requests(self) -> bool:
        if self.writes:
            return True
        try:
            return len(self.queue) > 0
        except DOWN:
            return True

    def finished(self, request: Any) -> None:
        entry_id = self.inflight.pop(request, None)
        if entry_id is None:
            return  # not popped from Redis (robots.txt, engine.download)
        if request in self.spoiled:
            self.spoiled.discard(request)
            self._inc("dumpwatch/cluster/released")
            log.warning("%s goes back to its queue (a finding it gave was not sent, or Redis was away)", request.url)
            self._write(("release", entry_id))
        else:
            self._ack_later(entry_id)

    def _ack_later(self, entry_id: str) -> None:
        """Acknowledge with the next pop (one round trip for both), or alone after :data:`ACK_DELAY`."""
        if self.writes:  # Redis away: in order with the writes that wait
            self._write(("ack", entry_id))
            return
        self.acks.append(entry_id)
        if self._ack_call is None or not self._ack_call.active():
            from twisted.internet import reactor

            self._ack_call = reactor.callLater(ACK_DELAY, self._send_acks)

    def _send_acks(self) -> None:
        """Write the acks that wait, alone (no pop came for them)."""
        if self._ack_call is not None and self._ack_call.active():
            self._ack_call.cancel()
        self._ack_call = None
        acks, self.acks = self.acks, []
        if acks:
            self._write(("acks", "", *acks))

    def _late_acks(self, n: int) -> None:
        self._inc("dumpwatch/cluster/late_acks", n)
        log.warning("%d finished request(s) no longer in flight: this worker was taken for dead and its "
                    "requests re-queued (run again; the store keeps one finding)", n)

    def finding_unsent(self, item: Any) -> None:
        self.unsent.add(id(item))

    def spoil(self, request: Any, why: str) -> None:
        """``request`` failed for a reason of ours (Redis away), not of the site's: when it finishes,
        it goes back to its queue instead of being acknowledged (its work is done again)."""
        if request in self.inflight and request not in self.spoiled:
            self.spoiled.add(request)
            log.warning("%s will go back to its queue: %s", request.url, why)

    def spider_error(self, failure: Any, response: Any, spider: Any) -> None:
        """A callback that failed because Redis was away (the seen-set, a politeness slot)."""
        if failure.check(*DOWN):
            self.spoil(getattr(response, "request", None), f"Redis was away while its page was read "
                                                           f"({failure.type.__name__})")

    def item_error(self, item: Any, response: Any, spider: Any, failure: Any) -> None:
        """A document whose processing failed because Redis was away (the seen-set of contents)."""
        if failure.check(*DOWN):
            self.spoil(getattr(response, "request", None), f"Redis was away while its document was "
                                                           f"processed ({failure.type.__name__})")

    def item_scraped(self, item: Any, response: Any) -> None:
        if id(item) not in self.unsent:
            return
        self.unsent.discard(id(item))
        request = getattr(response, "request", None)
        if request in self.inflight:
            self.spoiled.add(request)
        else:
            log.error("the request of %s is not in flight: its unsent finding waits for the next run", response.url)

    def close(self, reason: str) -> None:
        """Write what waits, then put back what this crawl still holds in flight (a clean stop)."""
        try:
            self._send_acks()  # before what is still in flight is put back
            if self.writes and not self._flush(force=True):
                raise redis.ConnectionError("still away")
            n, _ = requeue(self.server, self.name) if self.name else (0, 0)
        except DOWN:
            log.error("Redis does not answer: %d write(s) of %s not done; its in-flight requests stay in Redis "
                      "and are re-queued once its heartbeat is silent", len(self.writes), self.name)
        else:
            if n:
                log.warning("stopping: put back %d in-flight request(s) of %s", n, self.name)
            self._inc("dumpwatch/cluster/released", n)
        super().close(reason)

    # -- writes, deferred while Redis is away --------------------------------------------------------

    def _write(self, op: tuple[str, ...]) -> None:
        if self.acks and op[0] != "acks":  # the acks made before this write go first
            self._send_acks()
        if not self.writes:
            try:
                self._do(op)
                return
            except DOWN as exc:
                self._away(exc)
        self.writes.append(op)
        self._inc("dumpwatch/cluster/deferred_writes")
        if len(self.writes) == 1:
            log.warning("writes wait for Redis (the first: %s), in order", op[0])

    def _do(self, op: tuple[str, ...]) -> None:
        kind, *args = op
        if kind == "push":  # ZADD, and a wake-up of the source's idle crawls if its queue was empty
            wakeup.push(self.server, *args)
        elif kind == "ack":
            if not ack(self.server, self.name, args[0]):
                self._late_acks(1)
        elif kind == "acks":  # ("acks", "again" when they may have been done already, id, …)
            done = int(self.server.hdel(inflight_key(self.name), *args[1:]))
            if done < len(args) - 1 and args[0] != "again":
                self._late_acks(len(args) - 1 - done)
        elif release(self.server, self.name, args[0]) < 0:
            log.error("an in-flight entry of %s is not a request: dropped", self.name)

    def _flush(self, force: bool = False) -> bool:
        """Write what waits, in order; True when nothing waits any more."""
        if not force and time.monotonic() < self.retry_at:
            return False
        done = 0
        try:
            while self.writes:
                self._do(self.writes[0])
                self.writes.pop(0)
                done += 1
        except DOWN as exc:
            self.failures += 1
            self.retry_at = time.monotonic() + BACKOFF.compute(self.failures)
            log.debug("Redis still away (%s): %d write(s) wait", type(exc).__name__, len(self.writes))
            return False
        if self.failures or done:
            log.warning("Redis answers again: %d deferred write(s) done", done)
        self.failures = 0
        return True

    def _away(self, exc: Exception) -> None:
        self._inc("dumpwatch/cluster/redis_errors")
        if not self.failures:
            log.error("Redis does not answer (%s): popping nothing, writes wait and are retried", type(exc).__name__)
        self.failures = max(self.failures, 1)
        self.retry_at = time.monotonic() + BACKOFF.compute(self.failures)


class RedisDownMiddleware:
    """The downloader middleware of the worker nearest the download (its ``process_exception`` is the
    first called, before one that may itself fail on Redis): a request that fails before or during its download
    because Redis is away (the shared politeness slot, the seen-set) is not the site's failure: it
    goes back to its queue when it finishes (:meth:`ReliableScheduler.spoil`), instead of being
    acknowledged as done and lost until the next run."""

    def __init__(self, crawler: Any):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> "RedisDownMiddleware":
        return cls(crawler)

    def process_exception(self, request: Any, exception: Exception) -> None:
        if isinstance(exception, DOWN):
            scheduler = getattr(getattr(self.crawler.engine, "_slot", None), "scheduler", None)
            if isinstance(scheduler, ReliableScheduler):
                scheduler.spoil(request, f"Redis was away before its download ({type(exception).__name__})")
        return None

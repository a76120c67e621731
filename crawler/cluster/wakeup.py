"""An idle worker crawl takes the requests pushed to its source's queue at once, not at its next idle check.

A Scrapy engine with nothing to do asks its scheduler again only at its slot's heartbeat, every 5 s
(``ExecutionEngine._SLOT_HEARTBEAT_INTERVAL``). scrapy-redis has no setting that shortens it: its
``SCHEDULER_IDLE_BEFORE_CLOSE`` is the timeout of a blocking pop (``BRPOP``) of its list queues,
which the priority queue used here ignores (and which would block the reactor), and its
``MAX_IDLE_TIME_BEFORE_CLOSE`` says when an idle ``RedisSpider`` closes. Asking Redis more often
would make every idle crawl of every worker call Redis several times a second. Instead:

- a push that finds its queue empty also publishes the source's name on the channel
  ``dumpwatch:pushed`` (:data:`PUSH`, one Lua call: the ``ZADD`` and, if it was the first, the
  ``PUBLISH``); the control node's push of a run's start requests publishes it too
  (:func:`crawler.cluster.control.push_start_requests`). A queue that already held requests
  publishes nothing: whoever crawls that source is busy taking them, or was woken by the first;
- each worker process subscribes once (:class:`Listener`, one thread and one connection for all its
  crawls) and, for each name it hears, schedules the next request of its crawls of that source
  on the reactor (``engine._slot.nextcall.schedule``: what the heartbeat does), through
  :class:`Wakeup`, a Scrapy extension of the worker crawl.

The heartbeat stays as it was: a message lost (Pub/Sub does not keep messages; Redis away, the
subscription being made again) costs at most the old 5 s. redis-py subscribes again by itself
after a cut connection; when that fails too (Redis away), the listener tries again with a backoff,
says the loss and the return in the log, and then wakes all its crawls once (a push may have been
missed). Wake-ups are counted in the crawl stats
(``dumpwatch/cluster/wakeups``).
Only source names go on the channel.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from redis.backoff import ExponentialBackoff
from scrapy import signals
from scrapy.crawler import Crawler

log = logging.getLogger(__name__)

CHANNEL = "dumpwatch:pushed"
BACKOFF = ExponentialBackoff(cap=10.0, base=0.5)  # between two subscriptions after a lost connection

# KEYS[1] the source's queue; ARGV[1] the score, ARGV[2] the request (JSON), ARGV[3] the channel,
# ARGV[4] the source. Returns how many requests the queue held before.
PUSH = """
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if before == 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return before
"""


def push(r: Any, queue: str, score: Any, data: Any, source: str) -> int:
    """``ZADD`` one request to ``queue``, and wake the idle crawls of ``source`` if it was empty."""
    scripts = r.__dict__.setdefault("_dumpwatch_scripts", {})  # as crawler.cluster.inflight caches its own
    if PUSH not in scripts:
        scripts[PUSH] = r.register_script(PUSH)
    return int(scripts[PUSH](keys=[queue], args=[score, data, CHANNEL, source]))


def announce(r: Any, source: str) -> None:
    """Wake the idle crawls of ``source`` (after a push made otherwise)."""
    r.publish(CHANNEL, source)


class Listener:
    """The subscription of one worker process: calls the callbacks registered for each name it hears."""

    def __init__(self, make_client: Callable[[], Any]):
        self.make_client = make_client
        self.callbacks: dict[str, list[Callable[[], None]]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # the running thread's own: a new thread gets a new one
        self.thread: threading.Thread | None = None
        self.errors = 0
        self.subscribed = threading.Event()

    def register(self, source: str, callback: Callable[[], None]) -> None:
        with self.lock:
            self.callbacks.setdefault(source, []).append(callback)
            if self.thread is None:
                self.stopping = threading.Event()
                self.thread = threading.Thread(target=self._run, args=(self.stopping,), name="dumpwatch-wakeup",
                                               daemon=True)
                self.thread.start()

    def unregister(self, source: str, callback: Callable[[], None]) -> None:
        with self.lock:
            cbs = self.callbacks.get(source, [])
            if callback in cbs:
                cbs.remove(callback)
            if not cbs:
                self.callbacks.pop(source, None)
            if not self.callbacks and self.thread is not None:
                self.stopping.set()
                self.thread = None

    def _call(self, source: str | None) -> None:
        with self.lock:
            chosen = [cb for name, cbs in self.callbacks.items() if source is None or name == source for cb in cbs]
        for cb in chosen:
            try:
                cb()
            except Exception as exc:  # a crawl closing: its engine's heartbeat still asks every 5 s
                self.errors += 1
                log.warning("wake-up of a crawl of %s failed (%s): it looks at its queue within 5 s anyway",
                            source or "every source", type(exc).__name__)

    def _run(self, stopping: threading.Event) -> None:
        failures = 0
        pubsub: Any = None
        while not stopping.is_set():
            try:
                if pubsub is None:
                    pubsub = self.make_client().pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(CHANNEL)
                    self.subscribed.set()
                    if failures:
                        log.warning("wake-ups heard again from Redis")
                        self._call(None)  # a push may have been missed meanwhile
                    failures = 0
                message = pubsub.get_message(timeout=1.0)
                if message and message.get("type") == "message":
                    data = message["data"]
                    self._call(data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data))
            except Exception as exc:  # Redis away: the engines' heartbeat still asks every 5 s
                self.subscribed.clear()
                self.errors += 1
                if not failures:
                    log.warning("wake-ups not heard from Redis (%s): idle crawls look at their queue every 5 s "
                                "meanwhile", type(exc).__name__)
                failures += 1
                try:
                    if pubsub is not None:
                        pubsub.close()
                except Exception:
                    pass
                pubsub = None
                stopping.wait(BACKOFF.compute(failures))
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                pass


_listeners: dict[str, Listener] = {}
_listeners_lock = threading.Lock()


def listener_for(url: str, make_client: Callable[[], Any]) -> Listener:
    """The process's listener of the Redis at ``url`` (one thread for every crawl of the worker)."""
    with _listeners_lock:
        if url not in _listeners:
            _listeners[url] = Listener(make_client)
        return _listeners[url]


class Wakeup:
    """The extension of a worker crawl: a push heard for its source schedules its next request."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.listener: Listener | None = None
        self.source = ""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "Wakeup":
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def wake(self) -> None:
        """In the listener's thread: schedule the engine's next request on the reactor."""
        from twisted.internet import reactor

        reactor.callFromThread(self._schedule)  # type: ignore[attr-defined]

    def _schedule(self) -> None:
        slot = getattr(self.crawler.engine, "_slot", None)
        if slot is not None and slot.closing is None:
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("dumpwatch/cluster/wakeups")
            slot.nextcall.schedule()

    def spider_opened(self, spider: Any) -> None:
        from crawler.cluster.connect import client, cluster_settings
        from crawler.state import state_of

        state = state_of(self.crawler)
        settings = cluster_settings(state.config, self.crawler.settings.get("REDIS_URL"))
        assert settings is not None
        self.source = state.source.name
        self.listener = listener_for(settings.redis_url, lambda: client(settings))
        self.listener.register(self.source, self.wake)

    def spider_closed(self, spider: Any) -> None:
        if self.listener is not None:
            self.listener.unregister(self.source, self.wake)

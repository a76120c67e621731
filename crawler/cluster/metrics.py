"""Prometheus metrics of the distributed mode: each worker's crawls and the control node's queues.

Off unless asked for: ``[cluster] metrics = "127.0.0.1:9464"`` (the control node and workers) or
``dumpwatch worker --metrics HOST:PORT``. The page has no authentication: an address that is not a
loopback one is refused unless ``[cluster] metrics_public = true`` (then put it behind a firewall
or a TLS proxy). What it shows is counts, times and source names: no URL, no host, no identifier
(labels are source names and kinds only).

A worker runs several Scrapy crawls in one process: :class:`Metrics` (a Scrapy extension of each
crawl) starts one HTTP server per process on prometheus-client's default registry and adds the
crawl to one :class:`WorkerCollector`, which reads each crawl's Scrapy stats when Prometheus scrapes
(counters are the stats themselves: nothing counted twice, nothing lost between scrapes).

The control node (:class:`ControlMetrics`, its own registry, started by the daemon) counts its
pushes and findings passes as they happen and computes its gauges at scrape time: the depth of each
source's request queue (``ZCARD``), the findings stream's pending entries and lag (``XINFO GROUPS``),
the delivery backlog (outbox messages per status), the workers per source and state (heartbeats).
A scrape that cannot reach Redis or the store says so (``dumpwatch_control_scrape_errors_total``)
and shows what it could read. Names and meanings: docs/scale.md, "Operations".
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from dumpwatch.errors import ConfigError

log = logging.getLogger(__name__)

MAX_KINDS = 30  # distinct error kinds per source before they are counted as "other"
SCRAPE_TIMEOUT = 5.0  # seconds a scrape waits for Redis


def parse_address(text: str, *, public: bool = False, path: Any = None, option: str | None = None) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → ``(host, port)``; a non-loopback host only if ``public``."""
    where = {"key": "cluster.metrics", "path": path} if option is None else {"key": option}
    m = re.fullmatch(r"\[?([0-9A-Za-z.:-]*?)\]?:(\d{1,5})", text.strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ConfigError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9464)", **where)
    host = m.group(1) or "0.0.0.0"
    host = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ConfigError(f"{host!r} is not an IP address (the metrics endpoint listens on one address)",
                          **where) from None
    if not loopback and not public:
        raise ConfigError(f"the metrics page has no authentication: {host} is not a loopback address; use "
                          "127.0.0.1 (scraped through an SSH tunnel or a local agent), or set [cluster] "
                          "metrics_public = true behind a firewall", **where)
    return host, int(m.group(2))


def serve(host: str, port: int, registry: Any = None) -> Any:
    """prometheus-client's HTTP server on ``host:port`` in a daemon thread; the server (``shutdown()``).

    An address that cannot be listened on (in use, not this machine's) is a :class:`ConfigError`:
    the daemon or worker does not start without the metrics it was asked for."""
    from prometheus_client import REGISTRY, start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=registry or REGISTRY)
    except OSError as exc:
        raise ConfigError(f"cannot serve the metrics on {host}:{port} ({exc.strerror or exc}): choose another "
                          "address", key="cluster.metrics") from None
    log.info("Prometheus metrics at http://%s:%d/metrics", host if ":" not in host else f"[{host}]", port)
    return server


def _kind(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9 ._-]", "", text)[:40].strip() or "other"


# -- a worker ------------------------------------------------------------------------------------------

COUNTERS = {  # Scrapy stat -> (metric, help), per source
    "dumpwatch/documents_fetched": ("dumpwatch_worker_documents_fetched", "Documents fetched."),
    "dumpwatch/documents": ("dumpwatch_worker_documents_scanned", "Documents scanned by the engine."),
    "dumpwatch/lost": ("dumpwatch_worker_documents_lost",
                       "Documents not scanned or not sent (fetched again at the source's next run)."),
    "dumpwatch/cluster/findings_sent": ("dumpwatch_worker_findings_sent", "Findings added to the findings stream."),
    "scheduler/dequeued/redis": ("dumpwatch_worker_requests_popped", "Requests taken from the Redis queue."),
    "dumpwatch/cluster/index_reloads": ("dumpwatch_worker_index_reloads",
                                        "Scanner reloads after a new index was copied here."),
    "dumpwatch/cluster/index_checks": ("dumpwatch_worker_index_checks",
                                       "Checks of this index against the control node's."),
}
ERROR_STATS = {"dumpwatch/cluster/bad_requests": "bad request", "dumpwatch/cluster/heartbeat_failed": "heartbeat",
               "dumpwatch/cluster/index_check_failed": "index check"}
ERROR_PREFIX = "dumpwatch/error_reasons/"


class WorkerCollector:
    """The crawls of this worker process, read at scrape time (one per process, default registry)."""

    def __init__(self) -> None:
        self.crawls: dict[str, Any] = {}  # source -> its Metrics extension
        self._lock = threading.Lock()

    def describe(self) -> list[Any]:
        return []  # nothing read at registration

    def add(self, source: str, ext: "Metrics") -> None:
        with self._lock:
            self.crawls[source] = ext

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            crawls = sorted(self.crawls.items())
        counters = {stat: CounterMetricFamily(name, doc, labels=["source"]) for stat, (name, doc) in COUNTERS.items()}
        errors = CounterMetricFamily("dumpwatch_worker_errors", "Errors by kind (a document lost, an HTTP "
                                     "status, a bad queue entry, a heartbeat not written...).", labels=["source", "kind"])
        stale = GaugeMetricFamily("dumpwatch_worker_index_stale", "1 while the crawl does not scan: its index "
                                  "does not match the control node's.", labels=["source"])
        heartbeat = GaugeMetricFamily("dumpwatch_worker_heartbeat_timestamp_seconds",
                                      "When the crawl last wrote its heartbeat to Redis.", labels=["source"])
        last = GaugeMetricFamily("dumpwatch_worker_last_document_timestamp_seconds",
                                 "When the crawl last scanned a document (its last success).", labels=["source"])
        for source, ext in crawls:
            stats = ext.stats()
            for stat, family in counters.items():
                family.add_metric([source], stats.get(stat, 0))
            kinds: dict[str, float] = defaultdict(float)
            for key, value in stats.items():
                if key.startswith(ERROR_PREFIX):
                    kinds[_kind(key[len(ERROR_PREFIX):])] += value
            for key, name in ERROR_STATS.items():
                if stats.get(key):
                    kinds[name] += stats[key]
            for i, (kind, value) in enumerate(sorted(kinds.items())):
                errors.add_metric([source, kind if i < MAX_KINDS else "other"], value)
            stale.add_metric([source], stats.get("dumpwatch/cluster/index_stale", 0))
            if stats.get("dumpwatch/cluster/heartbeat_at"):
                heartbeat.add_metric([source], stats["dumpwatch/cluster/heartbeat_at"])
            if ext.last_document:
                last.add_metric([source], ext.last_document)
        yield from counters.values()
        yield from (errors, stale, heartbeat, last)


_process: dict[str, Any] = {}  # the worker process's collector and server, made once
_process_lock = threading.Lock()


def serve_worker(host: str, port: int) -> None:
    """The worker process's metrics page (default registry), before its crawls start (crawler/cluster/worker.py)."""
    with _process_lock:
        if "collector" not in _process:
            from prometheus_client import REGISTRY

            collector = WorkerCollector()
            REGISTRY.register(collector)
            _process["collector"] = collector
            _process["server"] = serve(host, port)


class Metrics:
    """The Scrapy extension of a worker's crawl: its stats on the process's metrics page."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.last_document: float | None = None
        self._documents = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> "Metrics":
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        address = crawler.settings.get("DUMPWATCH_METRICS")
        if not address:
            raise NotConfigured("no metrics address")
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        host, port = address.rsplit(":", 1)
        serve_worker(host.strip("[]"), int(port))  # started already by run_worker: nothing to do
        return ext

    def spider_opened(self, spider: Any) -> None:
        from crawler.state import state_of

        _process["collector"].add(state_of(self.crawler).source.name, self)

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        documents = self.stats().get("dumpwatch/documents", 0)
        if documents != self._documents:
            self._documents = documents
            self.last_document = time.time()

    def stats(self) -> dict[str, Any]:
        stats = self.crawler.stats
        return stats.get_stats().copy() if stats is not None else {}  # one C-level copy: no lock needed


# -- the control node ----------------------------------------------------------------------------------

class ControlMetrics:
    """The control node's counts (updated by :class:`dumpwatch.daemon.cluster.Control`) and gauges
    (computed at scrape time), on a registry of its own."""

    def __init__(self, cluster: Any, home: Any, sources: Iterable[str]):
        from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

        self.cluster = cluster
        self.home = home
        self.sources = sorted(sources)
        self._lock = threading.Lock()
        self.pushed: dict[str, int] = defaultdict(int)
        self.last_push: dict[str, float] = {}
        self.findings: dict[str, int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.last_pass: float | None = None
        self._redis: Any = None
        self.server: Any = None
        self.registry = CollectorRegistry()
        for c in (ProcessCollector, PlatformCollector, GCCollector):
            c(registry=self.registry)
        self.registry.register(self)

    # counted as it happens
    def push_done(self, source: str, n: int) -> None:
        with self._lock:
            self.pushed[source] += n
            self.last_push[source] = time.time()

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def pass_done(self, done: dict[str, int]) -> None:
        with self._lock:
            for outcome in ("recorded", "duplicates", "claimed", "bad", "errors", "lost"):
                self.findings[outcome] += done.get(outcome, 0)
            for outcome, kind in (("bad", "findings entry not a finding"), ("errors", "finding not recorded"),
                                  ("lost", "finding lost")):
                self.errors[kind] += done.get(outcome, 0)
            self.last_pass = time.time()

    def start(self) -> None:
        host, port = self.cluster.metrics
        self.server = serve(host, port, self.registry)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # computed at scrape time
    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        scrape_errors: dict[str, int] = {}
        gauges = list(self._redis_gauges(scrape_errors)) + list(self._store_gauges(scrape_errors))
        with self._lock:
            for kind, n in scrape_errors.items():
                self.errors[kind] += n
            pushed = CounterMetricFamily("dumpwatch_control_requests_pushed", "Start requests pushed to "
                                         "the source's Redis queue by its crawl job.", labels=["source"])
            last_push = GaugeMetricFamily("dumpwatch_control_last_push_timestamp_seconds",
                                          "When the source's crawl job last pushed its start requests.",
                                          labels=["source"])
            for source in self.sources:
                pushed.add_metric([source], self.pushed.get(source, 0))
                if source in self.last_push:
                    last_push.add_metric([source], self.last_push[source])
            findings = CounterMetricFamily("dumpwatch_control_findings", "Findings stream entries by outcome "
                                           "(recorded, duplicates, claimed, bad, errors, lost).", labels=["outcome"])
            for outcome, n in sorted(self.findings.items()):
                findings.add_metric([outcome], n)
            errors = CounterMetricFamily("dumpwatch_control_errors", "Errors of the control node by kind.",
                                         labels=["kind"])
            for kind, n in sorted(self.errors.items()):
                errors.add_metric([kind], n)
            last_pass = GaugeMetricFamily("dumpwatch_control_last_findings_pass_timestamp_seconds",
                                          "When a pass over the findings stream last ended without a failure.")
            if self.last_pass is not None:
                last_pass.add_metric([], self.last_pass)
        yield from (pushed, last_push, findings, errors, last_pass)
        yield from gauges

    def _redis_client(self) -> Any:
        if self._redis is None:
            from crawler.cluster.connect import client

            self._redis = client(self.cluster, timeout=SCRAPE_TIMEOUT)
        return self._redis

    def _redis_gauges(self, scrape_errors: dict[str, int]) -> Iterator[Any]:
        import redis
        from prometheus_client.core import GaugeMetricFamily

        from crawler.cluster import findings, workers
        from crawler.cluster.worker import queue_key

        up = GaugeMetricFamily("dumpwatch_control_redis_up", "1 when the scrape could read Redis.")
        try:
            r = self._redis_client()
            depth = GaugeMetricFamily("dumpwatch_control_queue_depth", "Requests waiting in the source's "
                                      "Redis queue.", labels=["source"])
            for source in self.sources:
                depth.add_metric([source], r.zcard(queue_key(source)))
            stream = GaugeMetricFamily("dumpwatch_control_findings_stream", "The findings stream: entries "
                                       "(length), read and not acknowledged (pending), not yet read (lag).",
                                       labels=["what"])
            stream.add_metric(["length"], r.xlen(findings.STREAM))
            try:
                groups = {g["name"]: g for g in r.xinfo_groups(findings.STREAM)}
            except redis.ResponseError:  # no stream yet
                groups = {}
            group = groups.get(findings.GROUP, {})
            stream.add_metric(["pending"], group.get("pending") or 0)
            if group.get("lag") is not None:  # Redis 7+; None when Redis cannot tell
                stream.add_metric(["lag"], group["lag"])
            alive = GaugeMetricFamily("dumpwatch_control_workers", "Worker crawls per source by state (alive, "
                                      "silent: no heartbeat for 3 periods, stale_index: not scanning).",
                                      labels=["source", "state"])
            newest = GaugeMetricFamily("dumpwatch_control_worker_heartbeat_timestamp_seconds",
                                       "The newest heartbeat of the source's worker crawls.", labels=["source"])
            last_doc = GaugeMetricFamily("dumpwatch_control_last_document_timestamp_seconds",
                                         "When a worker last fetched a document of the source.", labels=["source"])
            counts: dict[tuple[str, str], int] = defaultdict(int)
            beats: dict[str, float] = {}
            docs: dict[str, float] = {}
            for w in workers.read(r):
                source = str(w.get("source") or "?")
                state = "silent" if w["silent"] else "stale_index" if w.get("stale_index") else "alive"
                counts[(source, state)] += 1
                for field, into in (("heartbeat", beats), ("last_document", docs)):
                    when = _timestamp(w.get(field))
                    if when is not None:
                        into[source] = max(when, into.get(source, 0.0))
            for source in sorted(set(self.sources) | {s for s, _ in counts}):
                for state in ("alive", "silent", "stale_index"):
                    alive.add_metric([source, state], counts.get((source, state), 0))
            for into, family in ((beats, newest), (docs, last_doc)):
                for source, when in sorted(into.items()):
                    family.add_metric([source], when)
        except (redis.RedisError, OSError) as exc:
            scrape_errors["scrape redis"] = 1
            log.warning("metrics: Redis not read (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, depth, stream, alive, newest, last_doc)

    def _store_gauges(self, scrape_errors: dict[str, int]) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from alerts.delivery import message_counts
        from alerts.grouping import pending_alerts
        from dumpwatch.store import open_db

        try:
            db = open_db(self.home.db_path)
            try:
                messages, alerts = message_counts(db), pending_alerts(db)
            finally:
                db.close()
        except Exception as exc:  # a locked or missing store: said, the rest is still shown
            scrape_errors["scrape store"] = 1
            log.warning("metrics: the store was not read (%s)", type(exc).__name__)
            return
        backlog = GaugeMetricFamily("dumpwatch_control_delivery_messages", "Outbox messages by status "
                                    "(pending and sending: the delivery backlog; dead: given up).", labels=["status"])
        for status in ("pending", "sending", "dead"):
            backlog.add_metric([status], messages.get(status, 0))
        pending = GaugeMetricFamily("dumpwatch_control_alerts_pending", "Alerts waiting for their group to go out.")
        pending.add_metric([], alerts)
        yield from (backlog, pending)


def _timestamp(text: Any) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text)).timestamp() if text else None
    except ValueError:
        return None

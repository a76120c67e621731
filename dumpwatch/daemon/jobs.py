"""The daemon's jobs: a crawl of each source (in a child process the daemon holds), source health, housekeeping.

:class:`Crawls` runs the ``crawl:NAME`` jobs. Each crawl runs in a child process with a time limit
(:func:`crawler.run.crawl_source`), so a crawl that crashes or hangs never takes the daemon down, and
:class:`Crawls` keeps the handle (:class:`subprocess.Popen`) of every child it started: at the stop,
the daemon signals its own children through :meth:`Crawls.signal` and waits for them, nothing else.
After :meth:`Crawls.close` no new crawl starts.

:func:`check_health` and :func:`housekeep` are the ``source-health`` and ``housekeeping`` jobs; each
opens its own connection to the store.

Jobs never call into the scheduler (see :mod:`dumpwatch.daemon.scheduler`); the result of each crawl
and the crawls running now are read by the daemon's thread for the state file.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from dumpwatch import clock
from dumpwatch.daemon.housekeeping import Retention
from dumpwatch.daemon.housekeeping import housekeep as run_housekeeping
from dumpwatch.daemon.settings import DaemonSettings
from dumpwatch.home import Home
from dumpwatch.tables import path_of

log = logging.getLogger(__name__)


class Crawls:
    """The crawl jobs of one daemon: which run now, the last result of each source, a handle to each child.

    ``on_change`` is called when a crawl starts (the state file is due); it must not block.
    """

    def __init__(self, home: Home, config: dict[str, Any], crawl_config: Any, settings: DaemonSettings,
                 on_change: Callable[[], None]):
        self.home = home
        self.config = config
        self.config_path = path_of(config)
        self.crawl_config = crawl_config  # crawler.sources.CrawlConfig
        self.settings = settings
        self._on_change = on_change
        self._lock = threading.Lock()  # all that follows: crawl jobs' threads and the daemon's thread
        self._closed = False  # no new crawl starts once set
        self._children: dict[str, subprocess.Popen] = {}  # source -> its crawl's child process
        self._sent: int | None = None  # the signal sent to every child; one that starts later gets it too
        self.running: dict[str, str] = {}  # source -> start time
        self.control: Any = None  # set in the distributed mode: crawls are pushed to Redis (daemon/cluster.py)
        self.last_results: dict[str, dict[str, Any]] = {}

    def crawl(self, name: str) -> dict[str, Any] | None:
        """One crawl of a source, in a child process with a time limit; the result, or None if stopping."""
        from crawler.run import crawl_source

        if self.control is not None:
            summary = self.control.push(name)
            with self._lock:
                self.last_results[name] = summary
            return summary
        cc = self.crawl_config
        src = cc.get(name)
        timeout = self.settings.crawl_timeout or cc.defaults.run_timeout
        with self._lock:  # with close(): a crawl either starts before close() looks, or never
            if self._closed:
                return None
            self.running[name] = clock.utcnow()
        self._on_change()
        try:
            result = crawl_source(src, home=self.home, config_path=self.config_path, timeout=timeout,
                                  settings={"DUMPWATCH_SCAN_PROCESSES": self.settings.scan_processes},
                                  failing_runs=cc.defaults.failing_runs, config=self.config,
                                  on_start=lambda proc: self._started(name, proc))
        finally:
            with self._lock:
                self.running.pop(name, None)
                self._children.pop(name, None)
        summary = {k: v for k, v in result.to_json().items() if k not in ("detail",)}
        with self._lock:
            self.last_results[name] = summary
        if result.ok:
            log.info("crawl of %s: ok; %d pages, %d new documents, %d new findings", name, result.pages,
                     result.documents, result.findings)
        else:
            log.warning("crawl of %s failed (%s); log: %s", name, result.close_reason, result.log_path)
        return summary

    def _started(self, name: str, proc: subprocess.Popen) -> None:
        """``crawl_source`` started the child: keep its handle; if the daemon is stopping, say so to it."""
        with self._lock:
            self._children[name] = proc
            if self._sent is not None:
                proc.send_signal(self._sent)

    def close(self) -> None:
        """No new crawl starts (a crawl job that runs later returns at once)."""
        with self._lock:
            self._closed = True

    def signal(self, sig: int) -> list[str]:
        """Send ``sig`` to the child of every running crawl, and to any child started after; the sources signalled.

        SIGINT: Scrapy closes the spider and records the run; SIGKILL: :func:`crawler.run.crawl_source`
        records the killed run. A child that already ended is not signalled (``Popen.send_signal``).
        """
        with self._lock:
            self._sent = sig
            for proc in self._children.values():
                proc.send_signal(sig)
            return sorted(self._children)

    def busy(self) -> bool:
        with self._lock:
            return bool(self.running)

    def snapshot(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """The crawls running now (source -> start time) and the last result of each source."""
        with self._lock:
            return dict(self.running), dict(self.last_results)


def check_health(home: Home, crawl_config: Any, config: dict[str, Any]) -> dict[str, list[str]]:
    """The ``source-health`` job: :func:`crawler.health.check_health` for every enabled source."""
    from crawler import health
    from dumpwatch.store import open_db

    db = open_db(home.db_path)
    try:
        return {src.name: health.check_health(db, src.name, failing_runs=crawl_config.defaults.failing_runs,
                                               config=config)
                for src in crawl_config.enabled()}
    finally:
        db.close()


def housekeep(home: Home, retention: Retention) -> dict[str, Any]:
    """The ``housekeeping`` job: retention and database maintenance (:mod:`dumpwatch.daemon.housekeeping`)."""
    from dumpwatch.store import open_db

    db = open_db(home.db_path)
    try:
        report = run_housekeeping(db, retention=retention, logs_dir=home.root / "logs")
    finally:
        db.close()
    return dict(report.__dict__)

"""The :class:`Daemon`: an APScheduler 3.x ``BackgroundScheduler`` with the jobs, its signals and its stop.

Building it runs :func:`dumpwatch.daemon.check.check_configuration`; :meth:`Daemon.build` adds the
jobs (explicit ids, ``max_instances=1``, ``coalesce=True``, a ``misfire_grace_time``); crawls run
in their own thread pool (``max_concurrent_crawls``) so they never delay alert delivery. At start, the
first crawl of each source is due one interval after its last recorded run, so a restart picks up
the schedule where it stopped.

The daemon's own thread (the one that runs :meth:`Daemon.run`) writes ``HOME/daemon.json`` (jobs,
next runs, counters, running crawls; read by ``dumpwatch status``) every ``HEARTBEAT_SECONDS`` and
soon after each job event, and once more after the scheduler has shut down. Jobs and job listeners
never call into the scheduler: ``BaseScheduler.shutdown(wait=True)`` holds the job-store lock while it
waits for the running jobs, so a job or listener that asked for the job list then would never end,
and neither would the shutdown. Listeners only update counters under the daemon's own lock. Only
APScheduler's public API is used.

A job that raises is logged and counted (``daemon.json``), never fatal. SIGTERM or SIGINT stops the
daemon: no new job starts, running crawls get ``shutdown_grace`` seconds to finish, then their child
processes (the daemon holds a handle to each, :class:`dumpwatch.daemon.jobs.Crawls`) are asked to
stop (SIGINT: Scrapy closes the spider and records the run) and killed after ``stop_timeout`` if they
do not (a second SIGTERM or SIGINT skips the grace time). One daemon per home (a lock file).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from dumpwatch import clock
from dumpwatch.daemon import jobs, state
from dumpwatch.daemon.check import check_configuration
from dumpwatch.daemon.settings import DaemonSettings, cron_trigger
from dumpwatch.daemon.state import JobStats
from dumpwatch.home import Home
from dumpwatch.tables import path_of

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
TICK_SECONDS = 0.5  # the daemon's thread looks for a signal, a stop or a job event this often
KILL_WAIT_SECONDS = 30.0  # after SIGKILL, how long the stop waits for the crawls to record their runs

CRAWL_JOB_PREFIX = "crawl:"
HEALTH_JOB = "source-health"
HOUSEKEEPING_JOB = "housekeeping"


class Daemon:
    """Build with the home and the loaded configuration; :meth:`run` blocks until SIGTERM/SIGINT.

    Building it runs :func:`~dumpwatch.daemon.check.check_configuration`: a configuration error is
    raised before anything starts; :attr:`warnings` holds what the check warned of.
    """

    def __init__(self, home: Home, config: Mapping[str, Any], *, settings: DaemonSettings | None = None,
                 redis_url: str | None = None):
        self.home = home
        self.config = config
        self.config_path = path_of(config)
        checked = check_configuration(home, config, redis_url)
        self.crawl_config = checked.crawl_config
        self.settings = settings or checked.settings
        self.warnings = checked.warnings
        self.stats: dict[str, JobStats] = {}
        self.started = clock.utcnow()
        self.stop_event = threading.Event()  # set it (or send SIGTERM/SIGINT) to stop run()
        self._changed = threading.Event()  # a job event or a crawl start: the state file is due
        self.crawls = jobs.Crawls(home, config, self.crawl_config, self.settings, on_change=self._changed.set)
        self.control = None  # the control node of the distributed mode (dumpwatch/daemon/cluster.py)
        if checked.cluster is not None:
            from dumpwatch.daemon.cluster import Control

            self.control = self.crawls.control = Control(home, config, self.crawl_config, checked.cluster)
        self._signals = 0  # SIGTERM/SIGINT received (the handler only counts: no lock in a handler)
        self._signal_name = "signal"
        self._lock = threading.Lock()  # the job counters (job threads, listeners)
        self._state_lock = threading.Lock()
        self._owner: int | None = None  # the thread that builds, runs and stops the scheduler
        self._jobs_seen: list[dict[str, Any]] = []
        self._lock_fh: Any = None
        self.scheduler: Any = None

    def interval_of(self, name: str) -> float:
        """The source's own interval, else ``[daemon] interval``, else the ``[crawler]`` default."""
        src = self.crawl_config.get(name)
        raw = next((s for s in self.config.get("sources", []) if isinstance(s, dict) and s.get("name") == name), {})
        if "interval" not in raw and self.settings.interval is not None:
            return self.settings.interval
        return src.interval

    # -- scheduler ---------------------------------------------------------------------------
    def build(self) -> Any:
        """A BackgroundScheduler with every job (not started). The calling thread owns it: only that
        thread reads its job list (for the state file) and stops it."""
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_EXECUTED,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
        )
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        from alerts import jobs as alert_jobs

        s = self.settings
        grace = int(s.misfire_grace_time) or 1
        sched = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(4), "crawls": ThreadPoolExecutor(s.max_concurrent_crawls)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
            timezone=timezone.utc)
        sched.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED
                           | EVENT_JOB_MAX_INSTANCES)
        now = datetime.now(timezone.utc)
        last_started = self._last_started()
        for src in self.crawl_config.enabled():
            if src.name in s.cron:
                trigger = cron_trigger(s.cron[src.name], s.jitter)
                first = None
            else:
                interval = self.interval_of(src.name)
                trigger = IntervalTrigger(seconds=interval, jitter=min(s.jitter, interval / 4) or None,
                                          timezone=timezone.utc)
                first = now + timedelta(seconds=random.uniform(0, min(s.jitter, interval / 4, 30.0)))
                if src.name in last_started:
                    first = max(first, last_started[src.name] + timedelta(seconds=interval))
            kwargs: dict[str, Any] = {"next_run_time": first} if first else {}
            sched.add_job(self.crawls.crawl, trigger, args=[src.name], id=CRAWL_JOB_PREFIX + src.name,
                          name=f"crawl {src.name} ({src.kind})", executor="crawls", max_instances=1,
                          coalesce=True, misfire_grace_time=grace, replace_existing=True, **kwargs)
        alert_jobs.add_jobs(sched, db_path=self.home.db_path, config=self.config, interval=s.delivery_interval,
                            misfire_grace_time=grace)
        sched.add_job(jobs.check_health, IntervalTrigger(seconds=s.health_interval, timezone=timezone.utc),
                      args=[self.home, self.crawl_config, self.config], id=HEALTH_JOB, name="source health",
                      max_instances=1, coalesce=True, misfire_grace_time=grace, replace_existing=True)
        sched.add_job(jobs.housekeep, IntervalTrigger(seconds=s.housekeeping_interval, timezone=timezone.utc),
                      args=[self.home, s.retention], id=HOUSEKEEPING_JOB, name="housekeeping", max_instances=1,
                      coalesce=True, misfire_grace_time=grace, replace_existing=True,
                      next_run_time=now + timedelta(seconds=min(60.0, s.housekeeping_interval)))
        if self.control is not None:
            from dumpwatch.daemon.cluster import FINDINGS_INTERVAL, FINDINGS_JOB

            sched.add_job(self.control.consume, IntervalTrigger(seconds=FINDINGS_INTERVAL, timezone=timezone.utc),
                          id=FINDINGS_JOB, name="findings stream", max_instances=1, coalesce=True,
                          misfire_grace_time=grace, replace_existing=True, next_run_time=now)
            from dumpwatch.daemon.cluster import RUNS_INTERVAL, RUNS_JOB

            sched.add_job(self.control.watch, IntervalTrigger(seconds=RUNS_INTERVAL, timezone=timezone.utc),
                          id=RUNS_JOB, name="runs and workers", max_instances=1, coalesce=True,
                          misfire_grace_time=grace, replace_existing=True, next_run_time=now)
        self.scheduler = sched
        self._owner = threading.get_ident()
        return sched

    def _last_started(self) -> dict[str, datetime]:
        from crawler import health
        from dumpwatch.store import open_db

        db = open_db(self.home.db_path)
        try:
            rows = health.last_started(db).items()
        finally:
            db.close()
        out = {}
        for name, started in rows:
            if started:
                dt = datetime.fromisoformat(started)
                out[name] = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
        return out

    def _on_event(self, event: Any) -> None:
        """Job listener (a job's thread, or the scheduler's): counters under our own lock, nothing more.

        It never calls into the scheduler, never writes the state file: ``shutdown(wait=True)``
        holds the job-store lock while it waits for the job whose end this reports.
        """
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_EXECUTED,
            EVENT_JOB_MISSED,
        )

        with self._lock:
            st = self.stats.setdefault(event.job_id, JobStats())
            if event.code == EVENT_JOB_ERROR:
                st.runs += 1
                st.errors += 1
                st.last_run = clock.utcnow()
                st.last_error = f"{type(event.exception).__name__}: {event.exception}"[:500]
                errors = st.errors
            elif event.code == EVENT_JOB_EXECUTED:
                st.runs += 1
                st.last_run = clock.utcnow()
            else:
                st.missed += 1
        if event.code == EVENT_JOB_ERROR:
            log.error("job %s failed (%d errors so far); the daemon goes on", event.job_id, errors,
                      exc_info=(type(event.exception), event.exception, event.exception.__traceback__))
        elif event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run time (past the misfire grace time)", event.job_id)
        elif event.code != EVENT_JOB_EXECUTED:  # max instances reached: the previous run is still going
            log.warning("job %s is still running: this run is skipped", event.job_id)
        self._changed.set()

    # -- the state file ----------------------------------------------------------------------
    def _job_list(self) -> list[dict[str, Any]]:
        """The scheduler's jobs while it runs; read only by the thread that owns the scheduler.

        Any other thread (a job, a listener) gets the last list seen: only the owner stops the
        scheduler, so only the owner knows that ``get_jobs()`` cannot meet a shutdown in progress.
        After the shutdown there is no job.
        """
        sched = self.scheduler
        if sched is None or not sched.running:
            return []
        if threading.get_ident() != self._owner:
            return self._jobs_seen
        self._jobs_seen = [{"id": job.id, "name": job.name, "trigger": str(job.trigger),
                            "next_run": clock.iso(nrt) if (nrt := getattr(job, "next_run_time", None)) else None}
                           for job in sched.get_jobs()]
        return self._jobs_seen

    def write_state(self, status: str = "running") -> None:
        """Write ``HOME/daemon.json`` (atomically). Called by the daemon's own thread, never by a job."""
        job_list = self._job_list()
        with self._state_lock:  # snapshot and write together: the last file is the latest snapshot
            running, last_results = self.crawls.snapshot()
            with self._lock:
                snapshot = {
                    "pid": os.getpid(), "status": status, "started": self.started,
                    "heartbeat": clock.utcnow(), "heartbeat_seconds": HEARTBEAT_SECONDS,
                    "config": self.config_path, "jobs": job_list,
                    "stats": {k: dict(v.__dict__) for k, v in sorted(self.stats.items())},
                    "running_crawls": running, "last_results": last_results,
                }
            if self.control is not None:  # the distributed mode: silent workers, runs closed
                snapshot["stats"]["workers"] = self.control.snapshot()
            state.write_state(self.home, snapshot)

    # -- run and stop ------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Take this home's daemon lock (:func:`dumpwatch.daemon.state.acquire_lock`); :meth:`stop` releases it."""
        self._lock_fh = state.acquire_lock(self.home)

    def _stop_requested(self) -> bool:
        return self._signals > 0 or self.stop_event.is_set()

    def run(self, *, install_signals: bool = True) -> int:
        """Start the jobs and block until SIGTERM/SIGINT (or :attr:`stop_event`); stop cleanly.

        This thread writes the state file: every ``HEARTBEAT_SECONDS``, soon after a job event, and
        once after the scheduler has shut down.
        """
        self.acquire_lock()
        for warning in self.warnings:
            log.warning("%s", warning)
        if install_signals:
            self._install_signals()
        if self.control is not None:
            self.control.start()  # its metrics page, if asked for (an address in use stops us here)
        sched = self.build()
        sched.start()
        self.write_state()
        log.info("daemon started (pid %d): %d crawl jobs; next runs: %s", os.getpid(),
                 len(self.crawl_config.enabled()),
                 ", ".join(f"{j['id']} {j['next_run']}" for j in self._jobs_seen))
        try:
            beat = time.monotonic() + HEARTBEAT_SECONDS
            while not self._stop_requested():
                self._changed.wait(TICK_SECONDS)
                if self._stop_requested():
                    break
                if self._changed.is_set() or time.monotonic() >= beat:
                    self._changed.clear()
                    self.write_state()
                    beat = time.monotonic() + HEARTBEAT_SECONDS
            if self._signals:
                log.info("%s received: stopping", self._signal_name)
        finally:
            self.stop()
        return 0

    def _install_signals(self) -> None:
        # The handler only counts (a handler that took a lock could wait for the very thread it
        # interrupted); the daemon's thread sees the count within TICK_SECONDS.
        def handler(signum: int, frame: Any) -> None:
            self._signal_name = signal.Signals(signum).name
            self._signals += 1

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _wait_for_crawls(self, seconds: float, *, grace: bool = False) -> None:
        """Wait (bounded) for the running crawls to end, writing the state each second.

        ``grace``: a second SIGTERM/SIGINT cuts the wait short.
        """
        deadline = time.monotonic() + seconds
        beat = 0.0
        while self.crawls.busy() and time.monotonic() < deadline:
            if grace and self._signals >= 2:
                log.warning("second %s: stopping running crawls now", self._signal_name)
                return
            if time.monotonic() >= beat:
                self.write_state("stopping")  # this thread owns the scheduler: it is not shutting down yet
                beat = time.monotonic() + 1.0
            time.sleep(0.1)

    def stop(self) -> None:
        """No new job; running crawls finish within ``shutdown_grace`` or are stopped; then shut down.

        Every wait is bounded: ``shutdown_grace``, then ``stop_timeout`` after SIGINT to the crawl
        children, then ``KILL_WAIT_SECONDS`` after SIGKILL; the scheduler's shutdown then waits only
        for jobs that end by themselves.
        """
        self.crawls.close()
        sched = self.scheduler
        if sched is not None and sched.running:
            sched.pause()
        self._wait_for_crawls(self.settings.shutdown_grace, grace=True)
        if self.crawls.busy():
            log.warning("stopping crawls still running: %s", ", ".join(sorted(self.crawls.snapshot()[0])))
            self.crawls.signal(signal.SIGINT)  # once: Scrapy closes the spider and records the run
            self._wait_for_crawls(self.settings.stop_timeout)
            if self.crawls.busy():
                log.warning("killing crawls that did not stop within %.0f s", self.settings.stop_timeout)
                self.crawls.signal(signal.SIGKILL)  # the killed run is recorded by crawl_source
                self._wait_for_crawls(KILL_WAIT_SECONDS)
        if sched is not None and sched.running:
            sched.shutdown(wait=True)  # the delivery pass in flight finishes
        if self.control is not None:
            self.control.stop()
        self.write_state("stopped")
        if self._lock_fh is not None:
            state.release_lock(self._lock_fh)
            self._lock_fh = None
        log.info("daemon stopped")

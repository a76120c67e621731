"""The dumpwatch daemon: APScheduler 3.x jobs for crawls, alert delivery, housekeeping and source health.

Jobs (explicit ids, ``max_instances=1``, ``coalesce=True``, a ``misfire_grace_time``):

- ``crawl:NAME``: one per enabled source, every ``interval`` (the source's, else ``[daemon] interval``,
  else ``[crawler] interval``) or on a crontab line (``[daemon.cron] NAME = "0 */6 * * *"``), with
  jitter. Each crawl runs in a child process (:func:`crawler.run.crawl_source`) with a time limit, so a
  crawl that crashes or hangs never takes the daemon down; crawls run in their own thread pool
  (``max_concurrent_crawls``) so they never delay alert delivery;
- ``alerts-delivery``: :func:`alerts.jobs.add_jobs` (every ``delivery_interval``);
- ``source-health``: :func:`crawler.health.check_health` for every enabled source;
- ``housekeeping``: retention and database maintenance (:mod:`dumpwatch.housekeeping`).

Before anything runs, :func:`check_configuration` runs every loader the crawls, scans and deliveries
will run (sources, ``[limits]``, ``[scan]``, receivers and their secrets, ``[contacts]`` against the
labs of the enrolled leaks, the key and the indexes, ``[daemon]``): an error stops the daemon at
start (``dumpwatch daemon --check`` runs the same check and exits).

The daemon's own thread (the one that runs :meth:`Daemon.run`) writes ``HOME/daemon.json`` (jobs,
next runs, counters, running crawls; read by ``dumpwatch status``) every ``HEARTBEAT_SECONDS`` and
soon after each job event, and once more after the scheduler has shut down. Jobs and job listeners
never call into the scheduler: ``BaseScheduler.shutdown(wait=True)`` holds the job-store lock while it
waits for the running jobs, so a job or listener that asked for the job list then would never end,
and neither would the shutdown. Listeners only update counters under the daemon's own lock.

A job that raises is logged and counted (``daemon.json``), never fatal. SIGTERM or SIGINT stops the
daemon: no new job starts, running crawls get ``shutdown_grace`` seconds to finish, then are asked to
stop (SIGINT: Scrapy closes the spider and records the run) and killed if they do not (a second
SIGTERM or SIGINT skips the grace time). Nothing is
lost: findings and their alerts are written in one transaction as they are found, page marks that
were not flushed are fetched again, already matched contents are not matched twice, and messages
claimed by a sender that died are sent again with the same idempotency key. At start, the first crawl
of each source is due one interval after its last recorded run, so a restart picks up the schedule
where it stopped. One daemon per home (a lock file).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dumpwatch import clock
from dumpwatch.errors import ConfigError, ConfigErrors, DumpwatchError
from dumpwatch.home import Home, section
from dumpwatch.housekeeping import Retention, housekeep

log = logging.getLogger(__name__)

STATE_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"
HEARTBEAT_SECONDS = 10.0
TICK_SECONDS = 0.5  # the daemon's thread looks for a signal, a stop or a job event this often
UNKNOWN_LAB = "(unknown)"  # the lab of enrolled records without one (matchers.index)

CRAWL_JOB_PREFIX = "crawl:"
HEALTH_JOB = "source-health"
HOUSEKEEPING_JOB = "housekeeping"


@dataclass(frozen=True)
class DaemonSettings:
    """The ``[daemon]`` table. Durations are seconds or strings like ``"30s"``, ``"15m"``, ``"6h"``, ``"7d"``."""

    interval: float | None = None  # default crawl interval of a source without its own (None: [crawler])
    jitter: float = 60.0  # a crawl starts up to this many seconds late, at random
    crawl_timeout: float | None = None  # None: [crawler] run_timeout
    max_concurrent_crawls: int = 2
    scan_processes: int = 1  # engine worker processes per crawl (0: in the crawl process)
    delivery_interval: float = 15.0
    health_interval: float = 900.0
    housekeeping_interval: float = 6 * 3600.0
    misfire_grace_time: float = 300.0
    shutdown_grace: float = 30.0  # running crawls may finish within this after SIGTERM ...
    stop_timeout: float = 15.0  # ... then are asked to stop (SIGINT), and killed after this
    retention: Retention = Retention()
    cron: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


_DURATIONS = ("interval", "jitter", "crawl_timeout", "delivery_interval", "health_interval",
              "housekeeping_interval", "misfire_grace_time", "shutdown_grace", "stop_timeout")
_RETENTIONS = ("seen_retention", "content_retention", "run_retention", "evidence_retention")
_KEYS = set(_DURATIONS) | set(_RETENTIONS) | {"max_concurrent_crawls", "scan_processes", "max_log_bytes", "cron"}


def load_settings(config: Mapping[str, Any]) -> DaemonSettings:
    """Parse and check the ``[daemon]`` table; every error names the key and the fix."""
    from crawler.sources import parse_duration, parse_size

    path = config.get("_path")
    table = section(dict(config), "daemon")

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, path=path, key=f"daemon.{key}")

    for key in table:
        if key not in _KEYS:
            raise fail(key, f"unknown key; the [daemon] table accepts: {', '.join(sorted(_KEYS))}")
    values: dict[str, Any] = {}
    for key in _DURATIONS + _RETENTIONS:
        if key in table:
            try:
                values[key] = parse_duration(table[key])
            except ValueError:
                raise fail(key, f"must be seconds or a duration like \"90s\", \"15m\", \"6h\", \"7d\", "
                                f"not {table[key]!r}") from None
    for key in ("interval", "delivery_interval", "health_interval", "housekeeping_interval"):
        if key in values and values[key] < 1:
            raise fail(key, f"must be at least 1 second, not {table[key]!r}")
    for key, minimum in (("max_concurrent_crawls", 1), ("scan_processes", 0)):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise fail(key, f"must be an integer >= {minimum}, not {value!r}")
            values[key] = value
    retention = Retention()
    ret = {k: values.pop(k) for k in _RETENTIONS if k in values}
    if "max_log_bytes" in table:
        try:
            ret["max_log_bytes"] = parse_size(table["max_log_bytes"])
        except ValueError:
            raise fail("max_log_bytes", f"must be bytes or a size like \"10MB\", not {table['max_log_bytes']!r}") from None
    retention = Retention(**{**retention.__dict__, **ret})
    cron = table.get("cron", {})
    if not isinstance(cron, dict):
        raise fail("cron", "must be a table: source name = \"crontab line\", e.g. pastes = \"*/15 * * * *\"")
    for name, expr in cron.items():
        if not isinstance(expr, str):
            raise fail(f"cron.{name}", f"must be a crontab line like \"0 */6 * * *\", not {expr!r}")
        try:
            cron_trigger(expr, 0)
        except ValueError as exc:
            raise fail(f"cron.{name}", f"not a valid crontab line ({exc}); five fields: minute hour day "
                                       "month day-of-week, e.g. \"30 3 * * *\"") from None
    return DaemonSettings(retention=retention, cron=MappingProxyType(dict(cron)), **values)


def cron_trigger(expr: str, jitter: float) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields instead of 5")
    minute, hour, day, month, dow = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=timezone.utc,
                       jitter=int(jitter) or None)


# -- the state file, read by `dumpwatch status` -----------------------------------------------------

def state_path(home: Home) -> Path:
    return home.root / STATE_FILE


def read_state(home: Home) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(home).read_text())
    except (OSError, ValueError):
        return None


def is_running(home: Home) -> bool:
    """True when a daemon holds this home's lock."""
    path = home.root / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


@dataclass
class JobStats:
    runs: int = 0
    errors: int = 0
    missed: int = 0
    last_run: str | None = None
    last_error: str | None = None


# -- the whole configuration check ------------------------------------------------------------------

# The top-level tables of dumpwatch.toml, and who reads them: any other is a mistake (a typo like
# [limit] would otherwise be ignored, and its settings with it).
TABLES = ("scan", "limits", "crawler", "network", "sources", "alerts", "receivers", "contacts", "routes", "daemon")


@dataclass(frozen=True)
class ConfigCheck:
    """What :func:`check_configuration` loaded, and what it warns of (errors are raised)."""

    crawl_config: Any  # crawler.sources.CrawlConfig
    settings: DaemonSettings
    alerting: Any  # alerts.settings.Alerting
    scan: Any  # matchers.scan.ScanSettings
    leaks: tuple[str, ...]
    labs: tuple[str, ...]
    warnings: tuple[str, ...]


def check_configuration(home: Home, config: dict[str, Any]) -> ConfigCheck:
    """Run every loader the crawls, scans and deliveries will run, all of them, before anything runs.

    The very functions the crawl child process calls (:func:`crawler.sources.load_crawl_config`,
    :meth:`matchers.scan.ScanSettings.from_config` for ``[scan]`` and ``[limits]``, the key and
    :func:`matchers.index.load_all` with its key id), those the delivery job calls
    (:func:`alerts.outbox.alerting_of`, every receiver's secret or password and TLS context), the
    ``[contacts]`` check against the labs of the enrolled leaks, and the ``[daemon]`` table. Every
    error found is raised at once (:class:`ConfigErrors`, each naming the file and the key); warnings
    are returned, for the caller to say.
    """
    from rapidfuzz import fuzz, process

    from alerts.outbox import alerting_of
    from alerts.settings import preflight
    from crawler.sources import load_crawl_config
    from matchers.errors import EngineError, SettingsError
    from matchers.scan import ScanSettings

    path = config.get("_path")
    errors: list[ConfigError] = []
    warnings: list[str] = []

    def attempt(load: Any, *args: Any) -> Any:
        try:
            return load(*args)
        except (ConfigError, SettingsError) as exc:
            errors.append(ConfigError(exc.message, path=exc.path or path, key=exc.key))
        except (DumpwatchError, EngineError) as exc:
            errors.append(ConfigError(str(exc), path=path))
        return None

    for key in config:
        if key not in TABLES and key != "_path":
            close = process.extractOne(key, TABLES, scorer=fuzz.ratio, score_cutoff=70)
            hint = f"did you mean [{close[0]}]? " if close else ""
            errors.append(ConfigError(f"unknown table; {hint}dumpwatch reads: {', '.join(TABLES)}",
                                      path=path, key=key))
    crawl_config = attempt(load_crawl_config, config)
    settings = attempt(load_settings, config)
    scan = attempt(ScanSettings.from_config, config)
    alerting = attempt(alerting_of, config)
    leaks, labs = _check_key_and_indexes(home, errors, warnings)
    if alerting is not None:
        errs, warns = preflight(alerting, labs if leaks else None)
        errors += errs
        warnings += warns
    if crawl_config is not None and settings is not None:
        enabled = {s.name for s in crawl_config.enabled()}
        for name in settings.cron:
            if attempt(crawl_config.get, name) is not None and name not in enabled:
                warnings.append(f"{path or 'the configuration'} [daemon.cron.{name}]: source {name!r} is "
                                "disabled (enabled = false): its crontab line is not used")
        if not enabled:
            warnings.append(f"no enabled source in {path or 'the configuration'}: the daemon only delivers "
                            "alerts and keeps house (add [[sources]] tables, see docs/crawler.md)")
        seen = settings.retention.seen_retention
        for src in crawl_config.enabled():
            if seen and seen < src.recrawl_age:
                errors.append(ConfigError(
                    f"seen_retention must be at least the recrawl_age of source {src.name!r} "
                    f"({src.recrawl_age:.0f} s), or pages would be fetched again early",
                    path=path, key="daemon.seen_retention"))
                break
    if errors:
        raise ConfigErrors(errors)
    return ConfigCheck(crawl_config=crawl_config, settings=settings, alerting=alerting, scan=scan,
                       leaks=leaks, labs=labs, warnings=tuple(warnings))


def _check_key_and_indexes(home: Home, errors: list[ConfigError],
                           warnings: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The key and the enrolled indexes as a crawl's scanner loads them; the leaks and their labs."""
    from matchers.fingerprint import key_id
    from matchers.index import load_all

    try:
        key = home.load_key()
    except DumpwatchError as exc:
        key, key_error = None, exc
    try:
        indexes = load_all(home.index_dir, key_id(key) if key else None)
    except Exception as exc:  # an unreadable index, or one built with another key
        errors.append(ConfigError(f"{exc}", path=home.index_dir))
        return (), ()
    leaks = tuple(idx.name for idx in indexes)
    labs = tuple(sorted({lab for idx in indexes for lab in idx.labs if lab != UNKNOWN_LAB}))
    given = bool(os.environ.get("DUMPWATCH_KEY")) or Path(os.environ.get("DUMPWATCH_KEY_FILE")
                                                          or home.key_path).exists()
    if key is None and (indexes or given):  # a key that cannot be read, or none for the enrolled leaks
        enrolled = f" (the enrolled leaks: {', '.join(leaks)})" if leaks else ""
        errors.append(ConfigError(f"{key_error}; without it every crawl fails{enrolled}", path=home.root))
    elif not indexes:
        what = "every crawl will fail at its start" if key is None else "crawls will find nothing"
        warnings.append(f"no leak enrolled in {home.root}: {what} until one is "
                        "(dumpwatch enroll FILE --leak NAME --lab-column COLUMN)")
    return leaks, labs


# -- the daemon ------------------------------------------------------------------------------------

class Daemon:
    """Build with the home and the loaded configuration; :meth:`run` blocks until SIGTERM/SIGINT.

    Building it runs :func:`check_configuration`: a configuration error is raised before anything
    starts; :attr:`warnings` holds what the check warned of.
    """

    def __init__(self, home: Home, config: dict[str, Any], *, settings: DaemonSettings | None = None):
        self.home = home
        self.config = config
        self.config_path = config.get("_path")
        checked = check_configuration(home, config)
        self.crawl_config = checked.crawl_config
        self.settings = settings or checked.settings
        self.warnings = checked.warnings
        self.stats: dict[str, JobStats] = {}
        self.running_crawls: dict[str, str] = {}  # source -> start time
        self.last_results: dict[str, dict[str, Any]] = {}
        self.started = clock.utcnow()
        self.stop_event = threading.Event()  # set it (or send SIGTERM/SIGINT) to stop run()
        self._stopping = threading.Event()  # no new crawl starts once set
        self._changed = threading.Event()  # a job event or a crawl start: the state file is due
        self._signals = 0  # SIGTERM/SIGINT received (the handler only counts: no lock in a handler)
        self._lock = threading.Lock()  # counters and running crawls (job threads, listeners)
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
        from apscheduler.events import (EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES,
                                        EVENT_JOB_MISSED)
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
            sched.add_job(self.crawl, trigger, args=[src.name], id=CRAWL_JOB_PREFIX + src.name,
                          name=f"crawl {src.name} ({src.kind})", executor="crawls", max_instances=1,
                          coalesce=True, misfire_grace_time=grace, replace_existing=True, **kwargs)
        alert_jobs.add_jobs(sched, db_path=self.home.db_path, config=self.config, interval=s.delivery_interval,
                            misfire_grace_time=grace)
        sched.add_job(self.check_health, IntervalTrigger(seconds=s.health_interval, timezone=timezone.utc),
                      id=HEALTH_JOB, name="source health", max_instances=1, coalesce=True,
                      misfire_grace_time=grace, replace_existing=True)
        sched.add_job(self.housekeep, IntervalTrigger(seconds=s.housekeeping_interval, timezone=timezone.utc),
                      id=HOUSEKEEPING_JOB, name="housekeeping", max_instances=1, coalesce=True,
                      misfire_grace_time=grace, replace_existing=True,
                      next_run_time=now + timedelta(seconds=min(60.0, s.housekeeping_interval)))
        self.scheduler = sched
        self._owner = threading.get_ident()
        return sched

    def _last_started(self) -> dict[str, datetime]:
        from dumpwatch.store import open_db

        db = open_db(self.home.db_path)
        try:
            rows = db.execute("SELECT source, max(started) FROM crawl_runs GROUP BY source").fetchall()
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
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

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

    # -- jobs --------------------------------------------------------------------------------
    def crawl(self, name: str) -> dict[str, Any] | None:
        """One crawl of a source, in a child process with a time limit; the result, or None if stopping."""
        from crawler.run import crawl_source

        cc = self.crawl_config
        src = cc.get(name)
        timeout = self.settings.crawl_timeout or cc.defaults.run_timeout
        with self._lock:  # with stop(): a crawl either starts before stop() looks, or never
            if self._stopping.is_set():
                return None
            self.running_crawls[name] = clock.utcnow()
        self._changed.set()
        try:
            result = crawl_source(src, home=self.home, config_path=self.config_path, timeout=timeout,
                                  settings={"DUMPWATCH_SCAN_PROCESSES": self.settings.scan_processes},
                                  failing_runs=cc.defaults.failing_runs, config=self.config)
        finally:
            with self._lock:
                self.running_crawls.pop(name, None)
        summary = {k: v for k, v in result.to_json().items() if k not in ("detail",)}
        with self._lock:
            self.last_results[name] = summary
        if result.ok:
            log.info("crawl of %s: ok; %d pages, %d new documents, %d new findings", name, result.pages,
                     result.documents, result.findings)
        else:
            log.warning("crawl of %s failed (%s); log: %s", name, result.close_reason, result.log_path)
        return summary

    def check_health(self) -> dict[str, list[str]]:
        from crawler import health
        from dumpwatch.store import open_db

        db = open_db(self.home.db_path)
        try:
            return {src.name: health.check_health(db, src.name, failing_runs=self.crawl_config.defaults.failing_runs,
                                                   config=self.config)
                    for src in self.crawl_config.enabled()}
        finally:
            db.close()

    def housekeep(self) -> dict[str, Any]:
        from dumpwatch.store import open_db

        db = open_db(self.home.db_path)
        try:
            report = housekeep(db, retention=self.settings.retention, logs_dir=self.home.root / "logs")
        finally:
            db.close()
        return dict(report.__dict__)

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
        jobs = self._job_list()
        with self._state_lock:  # snapshot and write together: the last file is the latest snapshot
            with self._lock:
                state = {
                    "pid": os.getpid(), "status": status, "started": self.started,
                    "heartbeat": clock.utcnow(), "heartbeat_seconds": HEARTBEAT_SECONDS,
                    "config": self.config_path, "jobs": jobs,
                    "stats": {k: dict(v.__dict__) for k, v in sorted(self.stats.items())},
                    "running_crawls": dict(self.running_crawls), "last_results": dict(self.last_results),
                }
            path = state_path(self.home)
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True, default=str))
            tmp.replace(path)

    # -- run and stop ------------------------------------------------------------------------
    def acquire_lock(self) -> None:
        self.home.ensure()
        fh = open(self.home.root / LOCK_FILE, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            state = read_state(self.home) or {}
            raise DumpwatchError(f"another daemon (pid {state.get('pid', '?')}) already runs on {self.home.root}; "
                                 "stop it first (one daemon per home)") from None
        self._lock_fh = fh

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

        self._signal_name = "signal"
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _wait_for_crawls(self, seconds: float, *, grace: bool = False, kill: bool = False) -> None:
        """Wait (bounded) for the running crawls to end, writing the state each second.

        ``grace``: a second SIGTERM/SIGINT cuts the wait short. ``kill``: SIGKILL the crawl children
        each second (a crawl registered just before the stop may start its child late).
        """
        deadline = time.monotonic() + seconds
        beat = 0.0
        while self.running_crawls and time.monotonic() < deadline:
            if grace and self._signals >= 2:
                log.warning("second %s: stopping running crawls now", self._signal_name)
                return
            if time.monotonic() >= beat:
                self.write_state("stopping")  # this thread owns the scheduler: it is not shutting down yet
                if kill:
                    _signal_crawl_children(signal.SIGKILL)
                beat = time.monotonic() + 1.0
            time.sleep(0.1)

    def stop(self) -> None:
        """No new job; running crawls finish within ``shutdown_grace`` or are stopped; then shut down.

        Every wait is bounded: ``shutdown_grace``, then ``stop_timeout`` after SIGINT, then 30 s
        after SIGKILL; the scheduler's shutdown then waits only for jobs that end by themselves.
        """
        with self._lock:
            self._stopping.set()
        sched = self.scheduler
        if sched is not None and sched.running:
            sched.pause()
        self._wait_for_crawls(self.settings.shutdown_grace, grace=True)
        if self.running_crawls:
            log.warning("stopping crawls still running: %s", ", ".join(sorted(self.running_crawls)))
            _signal_crawl_children(signal.SIGINT)  # once: Scrapy closes the spider and records the run
            self._wait_for_crawls(self.settings.stop_timeout)
            if self.running_crawls:
                log.warning("killing crawls that did not stop within %.0f s", self.settings.stop_timeout)
                self._wait_for_crawls(30.0, kill=True)  # the killed run is recorded by crawl_source
        if sched is not None and sched.running:
            sched.shutdown(wait=True)  # the delivery pass in flight finishes
        self.write_state("stopped")
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None
        log.info("daemon stopped")


def _signal_crawl_children(sig: int) -> list[int]:
    """Send ``sig`` to this process's crawl children (``python -m scrapy crawl``; Linux /proc)."""
    me = os.getpid()
    sent = []
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:  # pragma: no cover - not Linux: the crawl time limit still bounds them
        return sent
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            if ppid != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if b"scrapy" in cmd and b"crawl" in cmd:
            try:
                os.kill(int(entry), sig)
                sent.append(int(entry))
            except ProcessLookupError:
                pass
    return sent

"""The ``[daemon]`` table of dumpwatch.toml: intervals, jitter, the crawl time limit, retention, crontab lines.

:func:`load_settings` parses and checks it (every error names the key and the fix) into a frozen
:class:`DaemonSettings`; :func:`cron_trigger` turns a five-field crontab line into an APScheduler
trigger (in UTC, with jitter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timezone
from types import MappingProxyType
from typing import Any

from dumpwatch.daemon.housekeeping import Retention
from dumpwatch.tables import Collector, Key, Section, path_of


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


_R = Retention()
DAEMON = Section("daemon", {
    "interval": Key("duration", minimum=1),
    "jitter": Key("duration", DaemonSettings.jitter),
    "crawl_timeout": Key("duration"),
    "max_concurrent_crawls": Key("int", DaemonSettings.max_concurrent_crawls, minimum=1),
    "scan_processes": Key("int", DaemonSettings.scan_processes, minimum=0),
    "delivery_interval": Key("duration", DaemonSettings.delivery_interval, minimum=1),
    "health_interval": Key("duration", DaemonSettings.health_interval, minimum=1),
    "housekeeping_interval": Key("duration", DaemonSettings.housekeeping_interval, minimum=1),
    "misfire_grace_time": Key("duration", DaemonSettings.misfire_grace_time),
    "shutdown_grace": Key("duration", DaemonSettings.shutdown_grace),
    "stop_timeout": Key("duration", DaemonSettings.stop_timeout),
    "seen_retention": Key("duration", _R.seen_retention),
    "content_retention": Key("duration", _R.content_retention),
    "run_retention": Key("duration", _R.run_retention),
    "evidence_retention": Key("duration", _R.evidence_retention),
    "max_log_bytes": Key("size", _R.max_log_bytes),
    "cron": Key("str_table", MappingProxyType({}),
                hint="source name = \"crontab line\", e.g. pastes = \"*/15 * * * *\""),
})
_RETENTIONS = ("seen_retention", "content_retention", "run_retention", "evidence_retention", "max_log_bytes")


def load_settings(config: Mapping[str, Any]) -> DaemonSettings:
    """Parse and check the ``[daemon]`` table (:data:`DAEMON`); every error names the key and the fix."""
    path = path_of(config)
    values = DAEMON.read(config.get("daemon"), path=path)
    errors = Collector(path)
    for name, expr in values["cron"].items():
        try:
            cron_trigger(expr, 0)
        except ValueError as exc:
            errors.add(f"daemon.cron.{name}", f"not a valid crontab line ({exc}); five fields: minute hour day "
                                              "month day-of-week, e.g. \"30 3 * * *\"")
    errors.raise_any()
    retention = Retention(**{k: values.pop(k) for k in _RETENTIONS})
    return DaemonSettings(retention=retention, **values)


def cron_trigger(expr: str, jitter: float) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields instead of 5")
    minute, hour, day, month, dow = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=dow, timezone=timezone.utc,
                       jitter=int(jitter) or None)

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
from dumpwatch.errors import ConfigError
from dumpwatch.home import section


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

"""The whole configuration check, before the daemon starts anything (and ``dumpwatch daemon --check``).

:func:`check_configuration` runs every loader the crawls, scans and deliveries will run (sources,
``[limits]``, ``[scan]``, receivers and their secrets, ``[contacts]`` against the labs of the enrolled
leaks, the key and the indexes, ``[daemon]``) and raises every error at once, each naming the file
and the key; it returns what it loaded and what it warns of (:class:`ConfigCheck`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dumpwatch.daemon.settings import DaemonSettings, load_settings
from dumpwatch.errors import ConfigError, ConfigErrors, DumpwatchError
from dumpwatch.home import Home
from dumpwatch.tables import path_of

UNKNOWN_LAB = "(unknown)"  # the lab of enrolled records without one (matchers.index)

# The top-level tables of dumpwatch.toml, and who reads them: any other is a mistake (a typo like
# [limit] would otherwise be ignored, and its settings with it).
TABLES = ("scan", "limits", "crawler", "network", "sources", "alerts", "smtp", "receivers", "contacts", "routes",
          "daemon", "cluster")


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
    cluster: Any = None  # crawler.cluster.connect.ClusterSettings in the distributed mode


def check_configuration(home: Home, config: Mapping[str, Any], redis_url: str | None = None) -> ConfigCheck:
    """Run every loader the crawls, scans and deliveries will run, all of them, before anything runs.

    The very functions the crawl child process calls (:func:`crawler.sources.load_crawl_config`,
    :func:`dumpwatch.engine_settings.scan_settings_from` for ``[scan]`` and ``[limits]``, the key and
    :func:`matchers.index.load_all` with its key id), those the delivery job calls
    (:func:`alerts.outbox.alerting_of`, every receiver's secret or password and TLS context), the
    ``[contacts]`` check against the labs of the enrolled leaks, and the ``[daemon]`` table. Every
    error found is raised at once (:class:`ConfigErrors`, each naming the file and the key); warnings
    are returned, for the caller to say.
    """
    from rapidfuzz import fuzz, process

    from alerts.outbox import alerting_of
    from alerts.preflight import preflight
    from crawler.cluster.connect import cluster_settings
    from crawler.sources import load_crawl_config
    from dumpwatch.engine_settings import scan_settings_from
    from matchers.errors import EngineError, SettingsError

    path = path_of(config)
    errors: list[ConfigError] = []
    warnings: list[str] = []

    def attempt(load: Any, *args: Any) -> Any:
        try:
            return load(*args)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except (ConfigError, SettingsError) as exc:
            errors.append(ConfigError(exc.message, path=exc.path or path, key=exc.key))
        except (DumpwatchError, EngineError) as exc:
            errors.append(ConfigError(str(exc), path=path))
        return None

    for key in config:
        if key not in TABLES:
            close = process.extractOne(key, TABLES, scorer=fuzz.ratio, score_cutoff=70)
            hint = f"did you mean [{close[0]}]? " if close else ""
            errors.append(ConfigError(f"unknown table; {hint}dumpwatch reads: {', '.join(TABLES)}",
                                      path=path, key=key))
    crawl_config = attempt(load_crawl_config, config)
    settings = attempt(load_settings, config)
    scan = attempt(scan_settings_from, config)
    cluster = attempt(cluster_settings, config, redis_url)
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
                       leaks=leaks, labs=labs, warnings=tuple(warnings), cluster=cluster)


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

"""Run crawls in child processes (a Twisted reactor cannot restart in one process).

``dumpwatch crawl``, the daemon and the tests call :func:`crawl_source`: it runs exactly what
``scrapy crawl KIND -a source=NAME`` runs, in a child Python with a time limit, then reads the
run back from the store (a :class:`crawler.health.CrawlRun`, with how the process ended). A crawl
that crashed, could not start or was stopped is recorded as a failed run (so a dead source still
raises a health finding). The caller gets the child's :class:`subprocess.Popen` as soon as it starts
(``on_start``): the daemon keeps it, to stop its own children when it stops.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crawler import health
from crawler.sources import CrawlConfig, Source, load_crawl_config
from dumpwatch.home import Home
from dumpwatch.tables import path_of
from dumpwatch.store import open_db

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def scrapy_command(source: Source, *, run_key: str, settings: Mapping[str, Any] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "scrapy", "crawl", source.kind, "-a", f"source={source.name}",
           "-s", f"DUMPWATCH_RUN_KEY={run_key}"]
    for key, value in (settings or {}).items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def crawl_source(source: Source, *, home: Home, config_path: str | Path | None = None,
                 timeout: float | None = None, settings: Mapping[str, Any] | None = None,
                 failing_runs: int = 3, config: dict | None = None,
                 on_start: Callable[[subprocess.Popen], None] | None = None) -> health.CrawlRun:
    """Crawl one source in a child process and return what the run recorded.

    ``on_start`` gets the child process as soon as it is started (it may signal it: SIGINT stops
    the crawl cleanly); this function still waits for it, stops it at ``timeout`` and records it.
    """
    home.ensure()
    run_key = uuid.uuid4().hex
    log_path = home.log_file(f"crawl-{source.name}.log")  # private (0600), like its .stderr
    env = dict(os.environ)
    env["DUMPWATCH_HOME"] = str(home.root)
    if config_path:
        env["DUMPWATCH_CONFIG"] = str(config_path)
    else:
        env.pop("DUMPWATCH_CONFIG", None)
    env["SCRAPY_SETTINGS_MODULE"] = "crawler.settings"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = scrapy_command(source, run_key=run_key, settings={"LOG_FILE": str(log_path), **(settings or {})})
    log.info("crawling %s (%s): %s", source.name, source.kind, " ".join(cmd[1:]))
    returncode: int | None
    reason = ""
    with open(home.log_file(log_path.with_suffix(".stderr").name), "wb") as err:
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            if on_start is not None:
                on_start(proc)
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            reason = f"timeout after {timeout:.0f} s"
            log.warning("crawl of %s took longer than %.0f s: stopping it", source.name, timeout or 0)
            returncode = _stop(proc)
    db = open_db(home.db_path)
    run = health.get_run(db, run_key)
    if run is None or run.finished is None:
        if not reason:
            reason = f"crawl process exited with status {returncode} before recording its run"
        tail = _tail(log_path.with_suffix(".stderr")) or _tail(log_path)
        health.record_failed_run(db, source=source.name, kind=source.kind, run_key=run_key, reason=reason,
                                 detail={"returncode": returncode, "log_tail": tail})
        health.check_health(db, source.name, failing_runs=failing_runs, config=config)
        run = health.get_run(db, run_key)
    assert run is not None
    problems = tuple(p for p, _ in health.problems(db, source.name, failing_runs=failing_runs))
    return dataclasses.replace(run, ok=run.ok and returncode == 0, returncode=returncode, health=problems,
                               detail=run.detail or {}, log_path=str(log_path))


def crawl_sources(names: Sequence[str] | None, *, home: Home, config: dict, config_path: str | Path | None = None,
                  timeout: float | None = None, settings: Mapping[str, Any] | None = None) -> list[health.CrawlRun]:
    """Crawl the named sources (``None``: every enabled source), one after the other."""
    cc: CrawlConfig = load_crawl_config(config)
    sources = [cc.get(n) for n in names] if names else list(cc.enabled())
    results = []
    for src in sources:
        results.append(crawl_source(src, home=home, config_path=config_path or path_of(config),
                                    timeout=timeout if timeout is not None else cc.defaults.run_timeout,
                                    settings=settings, failing_runs=cc.defaults.failing_runs, config=config))
    return results


def _stop(proc: subprocess.Popen) -> int | None:
    """SIGINT first (Scrapy closes the spider cleanly and records the run), then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGKILL, 5.0)):
        try:
            proc.send_signal(sig)
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    return proc.poll()


def _tail(path: Path, lines: int = 8) -> str:
    """The last log lines (Scrapy's own messages: URLs and errors, never document contents)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-2000:]

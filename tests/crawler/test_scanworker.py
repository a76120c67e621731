"""The scan worker (crawler/scanworker.py): started with the crawl, light, and it says what the engine cost.

Real worker processes (``spawn``), the session's enrolled home; no timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
from collections import Counter

import pytest

from crawler.pipelines import cpu_stats
from crawler.scanworker import ScannerSpec, ScanWorker
from tests.helpers.crawlkit import repost


@pytest.fixture
def spec(enrolled_home, monkeypatch) -> ScannerSpec:
    from dumpwatch.engine_settings import scan_settings_from
    from dumpwatch.home import Home

    monkeypatch.delenv("DUMPWATCH_KEY", raising=False)
    monkeypatch.delenv("DUMPWATCH_KEY_FILE", raising=False)
    home = Home.resolve(enrolled_home)
    settings = scan_settings_from({})
    return ScannerSpec(home.index_dir, home.load_key(), settings.repost_threshold, settings.limits)


def test_the_worker_process_is_started_with_the_crawl_not_at_its_first_document(spec):
    before = set(multiprocessing.active_children())
    worker = ScanWorker(spec, 1)
    try:
        assert set(multiprocessing.active_children()) == before  # made, not started
        worker.start()
        assert len(set(multiprocessing.active_children()) - before) == 1
    finally:
        worker.close()


def test_a_worker_process_imports_the_engine_and_not_the_crawler(spec):
    """A ``spawn`` child imports the module of what it runs: the engine only, not Scrapy, Twisted,
    the store or the alerts (a lighter start for every crawl)."""
    worker = ScanWorker(spec, 1)
    try:
        worker.start()
        modules = worker.executor.submit(eval, "sorted(__import__('sys').modules)").result(timeout=120)
    finally:
        worker.close()
    assert "crawler.scanworker" in modules and "matchers.scan" in modules  # the index was loaded
    heavy = [m for m in modules if m.split(".")[0] in ("scrapy", "twisted", "sqlite_utils", "alerts", "asyncio")
             or m in ("crawler.pipelines", "crawler.state", "dumpwatch.store")]
    assert heavy == []


@pytest.mark.parametrize("processes", [1, 0])
def test_the_engine_cpu_of_each_scan_comes_back_with_its_finding(spec, people, processes):
    body = repost(people[0:20], "csv", 5).encode()
    sha = hashlib.sha256(body).hexdigest()
    worker = ScanWorker(spec, processes)
    try:
        worker.start()
        assert worker.engine_cpu == 0.0
        finding = asyncio.run(worker.scan(body, "r.csv", sha))
    finally:
        worker.close()
    expected = worker.scanner.scan_bytes(body, "r.csv", sha256=sha)  # the same engine, in this process
    assert finding.to_json() == expected.to_json() and finding.verdict == "repost"
    assert worker.engine_cpu > 0.0


def test_the_crawl_stats_say_where_its_cpu_went():
    class Stats:
        def __init__(self) -> None:
            self.values: Counter = Counter()

        def set_value(self, key: str, value: float) -> None:
            self.values[key] = value

    stats = Stats()
    cpu_stats(stats, 1.234)
    assert stats.values["dumpwatch/cpu/engine_s"] == 1.23
    assert stats.values["dumpwatch/cpu/crawl_process_s"] > 0  # this test process has run
    assert stats.values["dumpwatch/cpu/scan_workers_s"] >= 0
    assert set(stats.values) == {f"dumpwatch/cpu/{k}_s" for k in ("crawl_process", "scan_workers", "engine")}

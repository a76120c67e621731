"""Scrapy settings of the dumpwatch crawler (``scrapy.cfg`` points here).

Every request is checked by the network policy (``[network]`` and a source's
``allow_private_networks``; crawler/netguard.py, dumpwatch/netpolicy.py).

Per-source politeness (concurrency, delay, robots.txt, timeouts, download size, headers, user
agent) comes from ``dumpwatch.toml`` and is applied by the source spider before the crawl starts;
what is here are the project-wide defaults and the wiring.

Our own settings share the ``DUMPWATCH_`` prefix:

``DUMPWATCH_HOME``
    the home directory (database, key, index); default: the ``DUMPWATCH_HOME`` environment variable,
    else the user data directory.
``DUMPWATCH_CONFIG``
    the configuration file; default: ``DUMPWATCH_CONFIG`` in the environment, else HOME/dumpwatch.toml.
``DUMPWATCH_RUN_KEY``
    an identifier the launcher gives a run, to read its ``crawl_runs`` row back (default: random).
``DUMPWATCH_REPOST_THRESHOLD``
    matched records from which a document is a repost; default: ``[scan] repost_threshold`` of the
    configuration (3), as ``dumpwatch scan`` uses.
``DUMPWATCH_SCAN_PROCESSES``
    worker processes that run the engine (default 1: matching on another core than Scrapy's
    reactor); 0 runs it in a thread of the crawl process.
``DUMPWATCH_RETRY_BACKOFF`` / ``DUMPWATCH_RETRY_AFTER_MAX``
    first backoff delay in seconds (doubled at each retry) and the longest ``Retry-After`` honoured;
    set from ``[crawler] retry_backoff`` and ``retry_after_max``.
``DUMPWATCH_TEST_MODE``
    tests only: AutoThrottle off whatever the source says.
"""

from __future__ import annotations

import os

BOT_NAME = "dumpwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

DUMPWATCH_HOME = os.environ.get("DUMPWATCH_HOME", "")
DUMPWATCH_CONFIG = os.environ.get("DUMPWATCH_CONFIG", "")
DUMPWATCH_RUN_KEY = ""
DUMPWATCH_REPOST_THRESHOLD = None  # None: [scan] repost_threshold of the configuration (default 3)
DUMPWATCH_SCAN_PROCESSES = 1
DUMPWATCH_RETRY_BACKOFF = 2.0
DUMPWATCH_RETRY_AFTER_MAX = 600.0
DUMPWATCH_TEST_MODE = False

# Politeness defaults; each source overrides them from its configuration.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 50 * 1000**2
DOWNLOAD_WARNSIZE = 10 * 1000**2
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
REDIRECT_MAX_TIMES = 5
COOKIES_ENABLED = True
# Documents a callback yields are few (a paste, the posts of a topic page): Scrapy starts
# CONCURRENT_ITEMS asyncio tasks per response whatever it yields (its default of 100 cost ~1 ms of
# the reactor's CPU a page; 16 cost 0.16 ms, 4 cost 0.07 ms). Four posts of a topic page in the
# pipeline at once keep the scan worker fed; other pages' documents go on beside them.
CONCURRENT_ITEMS = 4
# Scrapy checks each callback that is a generator for a `return value` (a source parse and an AST
# walk, ~0.3 ms a response: its cache holds bound methods weakly, so it misses every time).
# tests/crawler/test_spider_callbacks.py checks our spiders once instead.
WARN_ON_GENERATOR_RETURN_VALUE = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# Scrapy's default resolver, checking every answer against the network policy (crawler/netguard.py)
TWISTED_DNS_RESOLVER = "crawler.netguard.PolicyResolver"
FEED_EXPORT_ENCODING = "utf-8"

DOWNLOADER_MIDDLEWARES = {
    # right after Scrapy's offsite filter (50): every request and each redirect, on its resolved address
    "crawler.netguard.NetworkGuardMiddleware": 60,
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "crawler.netguard.BombCountingCompressionMiddleware": 590,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    "crawler.middlewares.SeenMarkMiddleware": 540,
    "crawler.middlewares.SourceProxyMiddleware": 740,
}

SPIDER_MIDDLEWARES = {
    # closest to the spider: sees every document a callback yields, and the callback's end
    "crawler.middlewares.PageLedgerMiddleware": 950,
}

ITEM_PIPELINES = {
    "crawler.pipelines.ScanPipeline": 300,
}

EXTENSIONS = {
    "crawler.extensions.EscapedLog": 0,  # first: before anything logs what a page wrote
    "crawler.extensions.RunRecorder": 500,
}

"""What the components of one crawl share: the source, the home, the database and the seen-set.

The spider builds it in ``from_crawler`` (it knows the ``source`` argument) and hangs it on the
crawler; the middlewares, pipelines and extensions find it there when the engine opens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.seen import SeenSet
from crawler.sources import CrawlConfig, Source, load_crawl_config
from dumpwatch.home import Home
from dumpwatch.store import open_db

log = logging.getLogger(__name__)

ATTR = "dumpwatch_state"


@dataclass
class CrawlState:
    home: Home
    config: dict[str, Any]
    crawl_config: CrawlConfig
    source: Source
    db: sqlite_utils.Database
    seen: SeenSet

    @classmethod
    def build(cls, settings: Any, source_name: str) -> "CrawlState":
        home = Home.resolve(settings.get("DUMPWATCH_HOME") or None)
        config = home.load_config(settings.get("DUMPWATCH_CONFIG") or None)
        crawl_config = load_crawl_config(config)
        source = crawl_config.get(source_name)
        home.ensure()
        db = open_db(home.db_path)
        return cls(home, config, crawl_config, source, db, SeenSet(db, source.name, source.recrawl_age))


def attach(crawler: Crawler, state: CrawlState) -> None:
    setattr(crawler, ATTR, state)


def state_of(crawler: Crawler) -> CrawlState:
    """The crawl's state, or ``NotConfigured`` for a spider that is not a dumpwatch source spider."""
    state = getattr(crawler, ATTR, None)
    if state is None:
        raise NotConfigured("not a dumpwatch source spider (no -a source=NAME)")
    return state

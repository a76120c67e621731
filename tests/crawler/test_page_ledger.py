"""The page ledger and the pipeline without a crawl: a callback or a scan that raises loses nothing
silently (the page is an error of the run, fetched again), and the same bytes on two pages share
the fate of the one being scanned."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from types import SimpleNamespace

import pytest
from scrapy import Request
from scrapy.http import TextResponse

from crawler.items import Document
from crawler.middlewares import PageLedgerMiddleware
from crawler.pipelines import ScanPipeline
from crawler.seen import SeenSet
from dumpwatch.store import open_db
from matchers.finding import Finding


class Stats:
    def __init__(self) -> None:
        self.values: Counter = Counter()

    def inc_value(self, key: str, n: int = 1) -> None:
        self.values[key] += n

    def get_value(self, key: str, default: int = 0) -> int:
        return self.values.get(key, default)


@pytest.fixture
def crawl(tmp_path):
    db = open_db(tmp_path / "home" / "dumpwatch.db")
    seen = SeenSet(db, "src", 3600)
    state = SimpleNamespace(seen=seen, db=db, source=SimpleNamespace(name="src", kind="forum"), config={},
                            home=SimpleNamespace(db_path=tmp_path / "home" / "dumpwatch.db"))
    crawler = SimpleNamespace(stats=Stats(), dumpwatch_state=state)
    return SimpleNamespace(db=db, seen=seen, state=state, crawler=crawler)


def _status(db, key):
    row = db.execute("SELECT status, reason FROM crawl_seen_urls WHERE key = ?", [key]).fetchone()
    return tuple(row) if row else None


def _response(url: str, key: str) -> TextResponse:
    return TextResponse(url, body=b"<html></html>", encoding="utf-8", request=Request(url, meta={"dw_seen_key": key}))


def _doc(url: str, body: bytes = b"a;b\n1;2\n", seen_key: str = "", page_key: str = "") -> Document:
    return Document(source="src", url=url, name="p.html", kind="post", fetched_at="2026-01-01T00:00:00+00:00",
                    body=body, seen_key=seen_key, page_key=page_key)


def test_a_callback_that_raises_marks_its_page_lost(crawl):
    mw = PageLedgerMiddleware(crawl.crawler)

    def callback():
        yield _doc("http://f/t1#p1")
        raise ValueError("broken markup")

    out = []
    with pytest.raises(ValueError):
        for item in mw.process_spider_output(_response("http://f/t1", "t1"), callback()):
            out.append(item)
    assert out[0].page_key == "t1"  # the post knows its page
    crawl.seen.processed("t1")  # even if the post it did yield is stored
    crawl.seen.flush()
    assert _status(crawl.db, "t1") == ("error", "ValueError while parsing")
    assert crawl.crawler.stats.values["dumpwatch/lost"] == 1


def test_async_output_tags_documents_and_settles_the_page(crawl):
    mw = PageLedgerMiddleware(crawl.crawler)

    async def callback():
        yield _doc("http://f/t2#p1")
        yield _doc("http://f/t2#p2")

    async def consume():
        return [item async for item in mw.process_spider_output_async(_response("http://f/t2", "t2"), callback())]

    items = asyncio.run(consume())
    assert [i.page_key for i in items] == ["t2", "t2"]
    crawl.seen.flush()
    assert _status(crawl.db, "t2") is None  # parsed, but its posts are not stored yet
    for _ in items:
        crawl.seen.processed("t2")
    crawl.seen.flush()
    assert _status(crawl.db, "t2")[0] == "ok"


class FailingWorker:
    async def scan(self, body: bytes, name: str, sha256: str):
        await asyncio.sleep(0.05)
        raise RuntimeError("engine crash")

    def close(self) -> None:
        pass


class NoneWorker(FailingWorker):
    async def scan(self, body: bytes, name: str, sha256: str):
        return Finding(input=name)


def test_a_scan_error_is_an_error_of_the_run_and_the_page_is_fetched_again(crawl):
    pipe = ScanPipeline(crawl.crawler, crawl.state, FailingWorker())
    crawl.seen.expect("t3")
    crawl.seen.expect("t4")  # another page with the same bytes, while the first is being scanned
    crawl.seen.parsed("t3", "http://f/t3")
    crawl.seen.parsed("t4", "http://f/t4")

    async def both():
        await asyncio.gather(pipe.process_item(_doc("http://f/t3#p1", page_key="t3")),
                             pipe.process_item(_doc("http://f/t4#p1", page_key="t4")))

    asyncio.run(both())
    crawl.seen.flush()
    assert _status(crawl.db, "t3")[0] == "error" and _status(crawl.db, "t4")[0] == "error"
    stats = crawl.crawler.stats.values
    assert stats["dumpwatch/lost"] == 2 and stats["dumpwatch/errors"] == 2
    assert stats["dumpwatch/error_reasons/scan RuntimeError"] == 1
    assert not crawl.seen.content_seen(hashlib.sha256(b"a;b\n1;2\n").hexdigest())


def test_a_document_scanned_and_recorded_makes_its_page_ok(crawl):
    pipe = ScanPipeline(crawl.crawler, crawl.state, NoneWorker())
    crawl.seen.expect("t5")
    crawl.seen.parsed("t5", "http://f/t5")
    asyncio.run(pipe.process_item(_doc("http://f/t5#p1", page_key="t5")))
    crawl.seen.flush()
    assert _status(crawl.db, "t5")[0] == "ok"
    assert crawl.crawler.stats.values["dumpwatch/documents"] == 1

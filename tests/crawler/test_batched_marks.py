"""Content marks written a batch at a time (crawler/seen.py): no finding lost, no page done early.

A store that fails on the N-th write transaction (at ``BEGIN IMMEDIATE`` or at ``COMMIT``, as a full
disk does), for every N of a small crawl, and a crawl killed before it closes: whatever happened,
a page marked done, or a content marked known, has its finding stored, and what was not stored is
counted and fetched again; the next run (a store that works) stores every finding, once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from types import SimpleNamespace

import pytest

from crawler import seen as seen_module
from crawler.items import Document
from crawler.pipelines import ScanPipeline
from crawler.seen import SeenSet
from dumpwatch import store
from dumpwatch.errors import StorageError
from dumpwatch.store import open_db
from matchers.finding import Finding

PAGES = 14
REPOSTS = {0, 3, 6, 9, 12}  # the pages whose document the (fake) engine calls a repost
BATCH = 4  # PAGES is not a multiple of it: the last marks wait for the close


class Stats:
    def __init__(self) -> None:
        self.values: Counter = Counter()

    def inc_value(self, key: str, n: int = 1) -> None:
        self.values[key] += n


class Engine:
    """Says "repost" for the bodies of :data:`REPOSTS`, "none" for the others."""

    def __init__(self) -> None:
        self.scanned: list[str] = []

    async def scan(self, body: bytes, name: str, sha256: str) -> Finding:
        self.scanned.append(name)
        if int(name.split(".")[0][1:]) in REPOSTS:
            return Finding(input=name, verdict="repost", leak="labos", matched_records=3, records_seen=5,
                           identifiers={"nir": 3}, labs={"Biolab": 3}, categories=("nir",), sha256=sha256,
                           size=len(body))
        return Finding(input=name, records_seen=2, sha256=sha256, size=len(body))

    def close(self) -> None:
        pass


def _body(i: int) -> bytes:
    return f"page {i}\nnom;nir\nx;{i}\n".encode()


def _sha(i: int) -> str:
    return hashlib.sha256(_body(i)).hexdigest()


def _run(db_path, *, close: bool = True) -> tuple[SeenSet, Stats, Engine, bool]:
    """One crawl of the pages not fresh; ``close=False``: killed before the crawl closes."""
    db = open_db(db_path)
    seen = SeenSet(db, "src", 3600)
    state = SimpleNamespace(seen=seen, db=db, source=SimpleNamespace(name="src", kind="paste-api"), config={},
                            home=SimpleNamespace(db_path=db_path))
    stats = Stats()
    engine = Engine()
    pipe = ScanPipeline(SimpleNamespace(stats=stats), state, engine)  # type: ignore[arg-type]
    for i in range(PAGES):
        key = f"http://p/{i}"
        if seen.is_fresh(key):
            continue
        seen.expect(key)
        seen.parsed(key, key)
        asyncio.run(pipe.process_item(Document(source="src", url=key, name=f"p{i}.txt", kind="paste",
                                               fetched_at="2026-12-01T00:00:00+00:00", body=_body(i),
                                               page_key=key, seen_key=key)))
    flushed = False
    if close:
        try:
            seen.flush()
            flushed = True
        except StorageError:  # what the run recorder counts ("seen-set not written")
            pass
    return seen, stats, engine, flushed


def _stored(db_path) -> tuple[dict[str, str], set[str], list[str]]:
    db = open_db(db_path)
    pages = {k: s for k, s in db.execute("SELECT key, status FROM crawl_seen_urls").fetchall()}
    contents = {s for (s,) in db.execute("SELECT sha256 FROM crawl_seen_content").fetchall()}
    findings = [s for (s,) in db.execute("SELECT sha256 FROM findings").fetchall()]
    return pages, contents, findings


class FailingWrites:
    """The n-th write transaction from :meth:`fail` on fails at ``at`` ("BEGIN IMMEDIATE" or
    "COMMIT") with a full disk; the others work. ``counted``: the statements run since."""

    def __init__(self, real) -> None:
        self.real = real
        self.counted: Counter = Counter()
        self.n, self.at = 0, ""

    def fail(self, n: int, at: str) -> None:
        self.counted.clear()
        self.n, self.at = n, at

    def __call__(self, db, statement, deadline, limit):
        self.counted[statement] += 1
        if statement == self.at and self.counted[statement] == self.n:
            raise StorageError("storage failure (injected): database or disk is full")
        return self.real(db, statement, deadline, limit)


@pytest.fixture
def failing_write(monkeypatch) -> FailingWrites:
    writes = FailingWrites(store._locked)
    monkeypatch.setattr(store, "_locked", writes)
    return writes


def _check(db_path, stats: Stats, flushed: bool) -> None:
    """Nothing marked before it is stored, nothing lost silently."""
    pages, contents, findings = _stored(db_path)
    for i in REPOSTS:
        stored = _sha(i) in findings
        if pages.get(f"http://p/{i}") in ("ok", "bad"):
            assert stored, f"page {i} marked done before its finding was stored"
        if _sha(i) in contents:
            assert stored, f"content of page {i} marked known before its finding was stored"
        if not stored:  # lost: an error of the run, or no page mark at all (the seen-set not written)
            assert stats.values["dumpwatch/lost"] >= 1 or not flushed, stats.values
            assert pages.get(f"http://p/{i}") in (None, "error")


@pytest.mark.parametrize("at", ["BEGIN IMMEDIATE", "COMMIT"])
def test_a_store_failing_on_any_write_loses_no_finding_and_marks_nothing_early(tmp_path, monkeypatch,
                                                                                failing_write, at):
    monkeypatch.setattr(seen_module, "CONTENT_BATCH", BATCH)
    open_db(tmp_path / "count.db")
    # how many write transactions one crawl makes: every one of them is made to fail in turn
    failing_write.fail(0, at)
    _run(tmp_path / "count.db")
    count = failing_write.counted[at]
    assert count >= len(REPOSTS) + PAGES // BATCH  # findings, content batches, the close
    for n in range(1, count + 1):
        db_path = tmp_path / f"n{n}.db"
        open_db(db_path)
        failing_write.fail(n, at)
        _, stats, _, flushed = _run(db_path)
        _check(db_path, stats, flushed)
        failing_write.fail(0, at)  # the next run: the store works again
        _, again, engine, flushed = _run(db_path)
        assert flushed and again.values["dumpwatch/lost"] == 0
        pages, contents, findings = _stored(db_path)
        assert sorted(findings) == sorted(_sha(i) for i in REPOSTS), f"failure at write {n}"  # each once
        assert all(pages[f"http://p/{i}"] == "ok" for i in range(PAGES)), pages
        assert contents == {_sha(i) for i in range(PAGES)}


def test_a_crawl_killed_before_it_closes_fetches_its_pages_again_and_stores_each_finding_once(tmp_path,
                                                                                              monkeypatch):
    monkeypatch.setattr(seen_module, "CONTENT_BATCH", BATCH)
    db_path = tmp_path / "d.db"
    seen, stats, engine, _ = _run(db_path, close=False)  # killed: the last batch and the page marks lost
    pages, contents, findings = _stored(db_path)
    assert pages == {} and len(contents) == PAGES - PAGES % BATCH
    assert _sha(12) not in contents  # a repost whose finding is stored, its content mark lost
    assert sorted(findings) == sorted(_sha(i) for i in REPOSTS)
    _, again, engine, flushed = _run(db_path)
    assert flushed and again.values["dumpwatch/lost"] == 0
    # every page fetched again; only the contents whose marks were lost are scanned again
    assert len(engine.scanned) == PAGES - len(contents)
    assert again.values["dumpwatch/duplicate_content"] == len(contents)
    pages, contents, findings = _stored(db_path)
    assert sorted(findings) == sorted(_sha(i) for i in REPOSTS)  # no second finding for a copy
    assert set(pages.values()) == {"ok"} and len(pages) == PAGES and len(contents) == PAGES


def test_content_marks_are_known_at_once_and_written_a_batch_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(seen_module, "CONTENT_BATCH", BATCH)
    db = open_db(tmp_path / "d.db")
    seen = SeenSet(db, "src", 3600)

    def written() -> int:
        return db.execute("SELECT count(*) FROM crawl_seen_content").fetchone()[0]

    for i in range(BATCH - 1):
        seen.mark_content(_sha(i), size=10, url=f"http://p/{i}", verdict="none", finding_id=None)
    assert written() == 0 and all(seen.content_seen(_sha(i)) for i in range(BATCH - 1))
    seen.touch_content(_sha(0))  # known, not yet written: nothing to update
    seen.mark_content(_sha(BATCH), size=10, url="http://p/x", verdict="none", finding_id=None)
    assert written() == BATCH  # one transaction for the batch
    seen.mark_content(_sha(PAGES), size=10, url="http://p/y", verdict="none", finding_id=None)
    seen.mark("http://p/y", status="ok")
    assert seen.flush() == 1 and written() == BATCH + 1  # the rest with the page marks


def test_a_close_that_cannot_write_keeps_page_and_content_marks_together(tmp_path, monkeypatch):
    monkeypatch.setattr(seen_module, "CONTENT_BATCH", BATCH)
    db = open_db(tmp_path / "d.db")
    seen = SeenSet(db, "src", 3600)
    seen.mark_content(_sha(1), size=10, url="http://p/1", verdict="none", finding_id=None)
    seen.mark("http://p/1", status="ok")
    db.execute("CREATE TRIGGER dw_full BEFORE INSERT ON crawl_seen_urls BEGIN "
               "SELECT RAISE(ABORT, 'database or disk is full'); END")
    with pytest.raises(StorageError):
        seen.flush()
    assert db.execute("SELECT count(*) FROM crawl_seen_content").fetchone()[0] == 0  # rolled back together
    db.execute("DROP TRIGGER dw_full")
    assert seen.flush() == 1  # kept, written at the next try
    assert db.execute("SELECT count(*) FROM crawl_seen_content").fetchone()[0] == 1

"""The persistent seen-set: which pages were fetched and which contents were matched, and when.

Two tables (migration ``101_crawler`` in dumpwatch/store.py):

- ``crawl_seen_urls``: one row per page key (its URL, or URL + "@" + a version marker such as a
  topic's last-post date). A page whose row is younger than the source's ``recrawl_age`` and whose
  status is ``ok``, ``gone`` or ``bad`` is not fetched again; an ``error`` row is retried next run.
- ``crawl_seen_content``: one row per content SHA-256. The same bytes, wherever they show up again
  (a repost of a repost, a mirror), are not matched twice and never make a second finding.

A page is marked ``ok`` only once it is *done*: its callback has finished (every document it holds
was handed on) and every one of those documents was scanned and its finding, if any, committed
(:meth:`SeenSet.expect`, :meth:`SeenSet.parsed`, :meth:`SeenSet.processed`; the spider middleware
``crawler.middlewares.PageLedgerMiddleware`` and the pipeline call them). A page whose processing
failed (scan error, store error, an exception in a callback or a pipeline) is marked ``error``
(:meth:`SeenSet.failed`), which no later news of the same run overrides: it is fetched again on the
next run. A page downloaded but not done when the crawl stops is not marked at all: fetched again.

Page marks are buffered and written when the crawl closes (Scrapy closes a spider only after every
item went through the pipelines), so a crawl killed midway fetches those pages again next time
rather than losing what they held. Content marks are made once the finding is committed, and
written a batch at a time (:data:`CONTENT_BATCH` of them in one transaction, the rest with the
page marks, before them, in the same transaction): a content mark is never written before its
finding, and a page mark never before its content's. A crawl killed midway loses at most one
batch of content marks, whose findings are stored: those contents are scanned again when their
pages are fetched again, and the same copy never makes a second finding (``findings.dedup_key``).
A batch that cannot be written stays buffered (tried again at the next batch and at the close); the
document whose mark found the write failing is counted lost by the pipeline, and a close that
cannot write is an error of the run (crawler/extensions.py).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlite_utils

from dumpwatch import store
from dumpwatch.clock import cutoff, utcnow

log = logging.getLogger(__name__)

FRESH_STATUSES = ("ok", "gone", "bad")
# Content marks written in one transaction (each its own one cost ~0.1 ms of the reactor's CPU and a
# few WAL pages a document; docs/benchmarks.md, "Pipeline outside the engine").
CONTENT_BATCH = 64
# Within one run, the worse news of a page wins: an error (fetched again) over bad over gone over ok.
_SEVERITY = {"ok": 0, "gone": 1, "bad": 2, "error": 3}


class SeenSet:
    """Seen pages and contents of one source (content hashes are shared by all sources)."""

    def __init__(self, db: sqlite_utils.Database, source: str, recrawl_age: float):
        self.db = db
        self.source = source
        self.recrawl_age = recrawl_age
        self._pending: dict[str, dict[str, Any]] = {}
        self._contents: dict[str, tuple[Any, ...]] = {}  # content marks not yet written, by SHA-256
        # the page ledger: documents handed on and not yet done, pages whose callback finished
        self._outstanding: dict[str, int] = {}
        self._parsed: dict[str, str] = {}  # key -> page URL
        self._outcome: dict[str, dict[str, Any]] = {}  # key -> worst document outcome so far

    # -- pages ---------------------------------------------------------------------------------
    def is_fresh(self, key: str) -> bool:
        """True when ``key`` was fetched recently enough (and not in error): skip it."""
        if key in self._pending:
            return self._pending[key]["status"] in FRESH_STATUSES
        row = self.db.execute(
            "SELECT status, last_seen FROM crawl_seen_urls WHERE key = ?", [key]).fetchone()
        if row is None:
            return False
        status, last_seen = row
        return status in FRESH_STATUSES and last_seen >= cutoff(self.recrawl_age)

    def mark(self, key: str, *, url: str | None = None, status: str = "ok", http_status: int | None = None,
             reason: str = "", sha256: str | None = None) -> None:
        """Buffer a page mark; a later mark of the same key keeps the worse news (error over bad over ok)."""
        previous = self._pending.get(key)
        row = {"key": key, "url": url or key, "source": self.source, "status": status,
               "http_status": http_status, "reason": reason, "sha256": sha256}
        if previous:
            if _SEVERITY.get(previous["status"], 0) > _SEVERITY.get(status, 0):
                row["status"], row["reason"] = previous["status"], previous["reason"]
            for k in ("http_status", "sha256"):
                if row[k] is None:
                    row[k] = previous[k]
        self._pending[key] = row

    # -- the page ledger: a page is ok once its documents are stored ------------------------------
    def expect(self, key: str) -> None:
        """A callback handed on one more document of page ``key``."""
        self._outstanding[key] = self._outstanding.get(key, 0) + 1

    def parsed(self, key: str, url: str) -> None:
        """The callback of page ``key`` finished: the page is done once its documents are."""
        self._parsed[key] = url
        self._settle(key)

    def processed(self, key: str, *, status: str = "ok", reason: str = "", sha256: str | None = None) -> None:
        """One document of page ``key`` was scanned and its finding (if any) committed."""
        self._outstanding[key] = self._outstanding.get(key, 0) - 1
        worst = self._outcome.get(key)
        if worst is None or _SEVERITY.get(status, 0) > _SEVERITY.get(worst["status"], 0):
            self._outcome[key] = {"status": status, "reason": reason, "sha256": sha256}
        elif sha256 and not worst.get("sha256"):
            worst["sha256"] = sha256
        self._settle(key)

    def failed(self, key: str, *, url: str | None = None, reason: str) -> bool:
        """Processing of page ``key`` failed: it is fetched again next run. False if already known failed."""
        known = self._pending.get(key, {}).get("status") == "error"
        self.mark(key, url=url or self._parsed.get(key), status="error", reason=reason)
        return not known

    def unfinished(self) -> list[str]:
        """Pages downloaded whose documents are not all done (a crawl stopped midway): not marked."""
        return sorted(k for k, n in self._outstanding.items() if n > 0 or k not in self._parsed)

    def _settle(self, key: str) -> None:
        if key not in self._parsed or self._outstanding.get(key, 0) > 0:
            return
        outcome = self._outcome.pop(key, {"status": "ok", "reason": "", "sha256": None})
        self._outstanding.pop(key, None)
        self.mark(key, url=self._parsed[key], status=outcome["status"], reason=outcome["reason"],
                  sha256=outcome["sha256"])

    def flush(self) -> int:
        """Write the buffered content marks, then the page marks, in one transaction; return how
        many page marks. On a failure nothing is written and both stay buffered."""
        if not self._pending:
            self.flush_contents()
            return 0
        now = utcnow()
        rows = [(r["key"], r["url"], r["source"], now, now, r["status"], r["http_status"], r["reason"], r["sha256"])
                for r in self._pending.values()]
        with store.write(self.db):
            self._write_contents()
            self.db.conn.executemany(
                "INSERT INTO crawl_seen_urls (key, url, source, first_seen, last_seen, status, http_status, reason,"
                " sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET url = excluded.url,"
                " source = excluded.source, last_seen = excluded.last_seen, status = excluded.status,"
                " http_status = excluded.http_status, reason = excluded.reason, sha256 = excluded.sha256", rows)
        self._contents.clear()
        self._pending.clear()
        log.debug("seen-set: %d page marks written for %s", len(rows), self.source)
        return len(rows)

    # -- contents ------------------------------------------------------------------------------
    def content_seen(self, sha256: str) -> bool:
        if sha256 in self._contents:
            return True
        row = self.db.execute("SELECT 1 FROM crawl_seen_content WHERE sha256 = ?", [sha256]).fetchone()
        return row is not None

    def touch_content(self, sha256: str) -> None:
        if sha256 in self._contents:
            return  # its mark, made in this run, is not written yet
        with store.write(self.db):
            self.db.execute("UPDATE crawl_seen_content SET last_seen = ? WHERE sha256 = ?", [utcnow(), sha256])

    def mark_content(self, sha256: str, *, size: int, url: str, verdict: str,
                     finding_id: int | None) -> None:
        """A content whose finding (if any) is committed: known from now on; written with the next
        batch (:data:`CONTENT_BATCH`), which this call writes when it is full (and may then raise a
        storage error: the marks stay buffered)."""
        now = utcnow()
        self._contents.setdefault(sha256, (sha256, size, self.source, url, now, now, verdict, finding_id))
        if len(self._contents) >= CONTENT_BATCH:
            self.flush_contents()

    def flush_contents(self) -> int:
        """Write the buffered content marks (one transaction); return how many."""
        n = len(self._contents)
        if n:
            with store.write(self.db):
                self._write_contents()
            self._contents.clear()
        return n

    def _write_contents(self) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO crawl_seen_content (sha256, size, source, url, first_seen, last_seen, verdict,"
            " finding_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(self._contents.values()))


def bad_pages(db: sqlite_utils.Database, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Pages recorded as bad or in error, newest first (URL, status, reason): for operators."""
    where = "status IN ('bad', 'error')" + (" AND source = ?" if source else "")
    return list(db["crawl_seen_urls"].rows_where(where, [source] if source else [],
                                                 order_by="last_seen desc", limit=limit))


def expire(db: sqlite_utils.Database, *, urls_before: str | None, contents_before: str | None) -> tuple[int, int]:
    """Forget pages and contents not seen again since the given ISO times (``None``: keep them).

    A forgotten page is fetched again if it is still listed; a forgotten content could be matched
    again, so contents are kept longer. Returns (pages, contents) forgotten.
    """
    tables = set(db.table_names())
    urls = contents = 0
    with store.write(db):
        if urls_before and "crawl_seen_urls" in tables:
            urls = db.execute("DELETE FROM crawl_seen_urls WHERE last_seen < ?", [urls_before]).rowcount
        if contents_before and "crawl_seen_content" in tables:
            contents = db.execute("DELETE FROM crawl_seen_content WHERE last_seen < ?", [contents_before]).rowcount
    return urls, contents


def unlink_findings(db: sqlite_utils.Database, finding_ids_sql: str) -> None:
    """Detach seen contents from findings that are being deleted (``finding_ids_sql`` selects their ids)."""
    if "crawl_seen_content" in db.table_names():
        with store.write(db):
            db.execute(f"UPDATE crawl_seen_content SET finding_id = NULL WHERE finding_id IN ({finding_ids_sql})")

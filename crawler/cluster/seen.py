"""The seen-set shared by the workers of a source, in Redis (the distributed mode's :mod:`crawler.seen`).

On one machine the seen-set is two SQLite tables of the home (:class:`crawler.seen.SeenSet`). The
workers of a source share one in Redis instead, so an item page that one worker fetched and
recorded is not fetched again by another, and a content one of them scanned is not scanned again:

- ``dumpwatch:seen:SOURCE:H`` for a page, ``H`` the SHA-256 of its seen-set key (the URL, or URL +
  "@" + a version marker): a small JSON value (status ``ok``, ``gone``, ``bad`` or ``error``, when,
  the HTTP status and a short reason of our own), ``SET … EX recrawl_age``: Redis forgets it when
  the source's ``recrawl_age`` has passed, and the page is fetched again if it is still listed;
- ``dumpwatch:content:SHA256`` for a content (shared by all sources, as on one machine): its
  verdict and when, with the same expiry, renewed each time the same bytes show up again.

Keys hold hashes only: no URL, no content. :class:`RedisSeenSet` keeps the interface and the page
ledger of :class:`crawler.seen.SeenSet` (a page is ``ok`` only once its documents are done, the
worse news of a page wins), but writes each page mark as it is made instead of at the crawl's close
(a worker's crawl lives for days): a mark is made once the page's documents were scanned and their
findings added to the stream, so a page is never marked before what it held was sent. An ``error``
mark is written too (not fresh: fetched again next run). The worker builds it in place of the local
one (:func:`crawler.cluster.worker.worker_spider`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from crawler.seen import FRESH_STATUSES, SeenSet
from dumpwatch.clock import utcnow

log = logging.getLogger(__name__)

PAGE_PREFIX = "dumpwatch:seen:"
CONTENT_PREFIX = "dumpwatch:content:"
PENDING_MAX = 10_000  # page marks kept in memory to merge later news of the same page (then forgotten)


def page_key(source: str, key: str) -> str:
    """The Redis key of a page of ``source``: a hash of its seen-set key, never the URL itself."""
    return f"{PAGE_PREFIX}{source}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


def content_key(sha256: str) -> str:
    return f"{CONTENT_PREFIX}{sha256}"


class RedisSeenSet(SeenSet):
    """Seen pages of one source and seen contents, in Redis, with the source's ``recrawl_age`` as expiry.

    ``r``: a redis client (text responses). ``db`` is the worker's own store, not written by this class.
    """

    def __init__(self, r: Any, db: Any, source: str, recrawl_age: float):
        super().__init__(db, source, recrawl_age)
        self.r = r
        self.ttl = max(1, int(recrawl_age))
        self._known: dict[str, bool] = {}  # contents asked by prefetch_content, for the calls that follow

    # -- pages ---------------------------------------------------------------------------------
    def is_fresh(self, key: str) -> bool:
        if key in self._pending:
            return self._pending[key]["status"] in FRESH_STATUSES
        raw = self.r.get(page_key(self.source, key))
        if not raw:
            return False
        try:
            return json.loads(raw).get("status") in FRESH_STATUSES
        except (TypeError, ValueError, AttributeError):
            return False  # not ours: fetched again, and overwritten then

    def mark(self, key: str, *, url: str | None = None, status: str = "ok", http_status: int | None = None,
             reason: str = "", sha256: str | None = None) -> None:
        """Merge with the earlier news of the page (the worse wins), then write it to Redis now."""
        if len(self._pending) >= PENDING_MAX and key not in self._pending:
            self._pending.clear()
        super().mark(key, url=url, status=status, http_status=http_status, reason=reason, sha256=sha256)
        row = self._pending[key]
        value = {"status": row["status"], "at": utcnow(), "http_status": row["http_status"],
                 "reason": str(row["reason"] or "")[:120]}
        try:
            self.r.set(page_key(self.source, key), json.dumps(value, sort_keys=True), ex=self.ttl)
        except Exception as exc:
            if value["status"] in FRESH_STATUSES:
                raise  # its document goes back to the queue (crawler.cluster.inflight): fetched again
            # a page that is not fresh is fetched again at its next listing whether marked or not
            log.warning("the %s mark of a page of %s was not written (%s): it is fetched again next run",
                        value["status"], self.source, type(exc).__name__)

    def _settle(self, key: str) -> None:
        super()._settle(key)
        if key in self._parsed and key not in self._outstanding:  # settled: a long-lived crawl forgets it
            del self._parsed[key]

    def flush(self) -> int:
        """Every mark is already in Redis: forget the merged news; how many there were."""
        n = len(self._pending)
        self._pending.clear()
        return n

    # -- contents ------------------------------------------------------------------------------
    def prefetch_content(self, sha256: str, key: str) -> Any:
        """One round trip for the first two questions of a document: the value of ``key`` (the control
        node's index identity, crawler/cluster/reload.py) and whether the content is known, renewing
        its expiry if so (``EXPIRE`` answers both: what :meth:`content_seen` then
        :meth:`touch_content` would do in two). The answer is kept for those two calls."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(key)
        pipe.expire(content_key(sha256), self.ttl)
        raw, known = pipe.execute()
        if len(self._known) >= PENDING_MAX:
            self._known.clear()
        self._known[sha256] = bool(known)
        return raw

    def content_seen(self, sha256: str) -> bool:
        known = self._known.get(sha256)
        if known is None:
            return bool(self.r.exists(content_key(sha256)))
        if not known:
            del self._known[sha256]  # no touch follows
        return known

    def touch_content(self, sha256: str) -> None:
        if self._known.pop(sha256, None):
            return  # renewed by the prefetch
        self.r.expire(content_key(sha256), self.ttl)

    def mark_content(self, sha256: str, *, size: int, url: str, verdict: str,
                     finding_id: int | None) -> None:
        self.r.set(content_key(sha256), json.dumps({"verdict": verdict, "at": utcnow(), "size": int(size)},
                                                   sort_keys=True), ex=self.ttl, nx=True)


def use_redis_seen_set(state: Any, r: Any) -> RedisSeenSet:
    """The hook of a worker's crawl: its state's seen-set becomes the shared one (before the engine opens)."""
    state.seen = RedisSeenSet(r, state.db, state.source.name, state.source.recrawl_age)
    return state.seen

"""The reliable request queue, its Redis side: a request a worker popped stays in Redis until its result is stored.

scrapy-redis pops a request destructively (``ZRANGE`` + ``ZREMRANGEBYRANK``): a worker killed with
requests in hand loses them. Here the scheduler is still scrapy-redis's (through
:class:`crawler.cluster.queue.RedisScheduler`) and the queue still its sorted set per source, but:

- **pop** moves the first request of the source's queue, in one Lua script (atomic), into this
  worker crawl's *in-flight* hash ``dumpwatch:inflight:HOST:PID:SOURCE`` (the name of its heartbeat,
  :func:`crawler.cluster.workers.worker_name`): one field per pop (a random id), its value the
  queue entry as it was (JSON: the request, its score, its queue, when it was popped); the name
  joins the set ``dumpwatch:inflight-workers`` that rescuers read (no ``SCAN`` of the keyspace);
- **ack** (``HDEL``, sent with the crawl's next pop in one round trip, or alone after
  :data:`crawler.cluster.reliable.ACK_DELAY` when no pop comes) once the request is finished: its response went through the spider, every
  request it gave is pushed and every document it gave went through the pipelines (a finding
  ``XADD``-ed to the stream, :mod:`crawler.cluster.findings`), or its failure went through its
  errback. That moment is the engine's ``_Slot.remove_request``, which Scrapy calls only after the
  scrape of the response is complete; there is no signal for it, so :meth:`crawler.cluster.reliable.ReliableScheduler.open`
  wraps that method and refuses to start if the engine has no such slot (docs/scale.md,
  "Compatibility");
- **release** instead of ack when a finding of the request could not be sent (Redis away for
  longer than the bounded retries of :class:`crawler.cluster.worker.StreamPipeline`): the request
  goes back to its queue, to be run again;
- **requeue** of a whole in-flight hash, in one Lua script that first checks (atomically) that the
  worker's heartbeat is absent or silent: two rescuers cannot both put the same requests back (the
  second finds the hash gone). The control node does it at each pass of its ``findings`` job
  (:func:`requeue_dead`), a worker at its start (leftovers of a dead process of the same name
  first), and a worker that stops cleanly (SIGTERM) puts back what it still holds.

A request run again after a death may fetch a document twice; the store's dedup key (verdict,
leak, content SHA-256) makes that one finding.

While Redis does not answer, the worker pops nothing; the pushes of the requests it follows and
its acks wait in memory, in order (a parent's ack after its children's pushes), and are written
as soon as Redis answers again, retried with a bounded exponential backoff (redis-py's
``ExponentialBackoff``). Counted in the crawl stats (``dumpwatch/cluster/deferred_writes``) and
logged. A worker killed during the outage loses only that memory: its requests are still in
flight in Redis and are re-queued as those of a dead worker.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import redis

from crawler.cluster import workers
from dumpwatch import clock

log = logging.getLogger(__name__)

PREFIX = "dumpwatch:inflight:"  # + the worker crawl's name, HOST:PID:SOURCE
NAMES = "dumpwatch:inflight-workers"  # the set of names that popped, for the rescuers (no SCAN)
QUEUE_PREFIX = "dumpwatch:requests:"
# Redis away or refusing writes for now (BusyLoadingError is a ConnectionError): writes wait, retried.
DOWN = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError)


# KEYS[1] the source's queue, KEYS[2] the in-flight hash, KEYS[3] the names;
# ARGV[1] the entry's id, ARGV[2] now, ARGV[3] the worker's name.
POP = """
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then return false end
redis.call('ZREM', KEYS[1], top[1])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1],
           cjson.encode({request = top[1], score = top[2], queue = KEYS[1], since = ARGV[2]}))
return top[1]
"""

# KEYS[1] the in-flight hash; ARGV[1] the entry's id. 1: back in its queue, 0: not there.
RELEASE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local ok, e = pcall(cjson.decode, raw)
if not ok or type(e) ~= 'table' or type(e.queue) ~= 'string' or e.request == nil or e.score == nil
   or string.sub(e.queue, 1, string.len(ARGV[2])) ~= ARGV[2] then return -1 end
redis.call('ZADD', e.queue, e.score, e.request)
return 1
"""

# KEYS[1] the in-flight hash, KEYS[2] the heartbeats, KEYS[3] the names; ARGV[1] the worker's
# name, ARGV[2] the heartbeat cutoff ('' = do not check: the worker itself), ARGV[3] the queues'
# prefix. {-1, 0}: alive, nothing done; else {re-queued, dropped (not an entry)}; the hash is deleted.
REQUEUE = """
if ARGV[2] ~= '' then
  local hb = redis.call('HGET', KEYS[2], ARGV[1])
  if hb then
    local ok, info = pcall(cjson.decode, hb)
    if ok and type(info) == 'table' and type(info.heartbeat) == 'string' and info.heartbeat >= ARGV[2] then
      return {-1, 0}
    end
  end
end
local all = redis.call('HGETALL', KEYS[1])
local n, bad = 0, 0
for i = 1, #all, 2 do
  local ok, e = pcall(cjson.decode, all[i + 1])
  if ok and type(e) == 'table' and type(e.queue) == 'string' and e.request ~= nil and e.score ~= nil
     and string.sub(e.queue, 1, string.len(ARGV[3])) == ARGV[3] then
    redis.call('ZADD', e.queue, e.score, e.request)
    n = n + 1
  else
    bad = bad + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return {n, bad}
"""


def inflight_key(name: str) -> str:
    """The in-flight hash of the worker crawl ``name`` (HOST:PID:SOURCE)."""
    return PREFIX + name


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def script(r: Any, text: str) -> Any:
    """The Lua script on this client (EVALSHA, loaded again after a Redis restart: redis-py's Script)."""
    cache = r.__dict__.setdefault("_dumpwatch_scripts", {})
    if text not in cache:
        cache[text] = r.register_script(text)
    return cache[text]


def pop(r: Any, queue: str, name: str, entry_id: str) -> Any:
    """Move the first request of ``queue`` into ``name``'s in-flight hash as ``entry_id``; its data, or None."""
    return script(r, POP)(keys=[queue, inflight_key(name), NAMES], args=[entry_id, clock.utcnow(), name])


def ack(r: Any, name: str, entry_id: str) -> bool:
    """The request is finished: out of flight. False when it was not there (re-queued meanwhile)."""
    return bool(r.hdel(inflight_key(name), entry_id))


def release(r: Any, name: str, entry_id: str) -> int:
    """Put one in-flight request back in its queue: 1 done, 0 not in flight, -1 not an entry (dropped)."""
    return int(script(r, RELEASE)(keys=[inflight_key(name)], args=[entry_id, QUEUE_PREFIX]))


def requeue(r: Any, name: str, *, cutoff: str | None = None) -> tuple[int, int]:
    """Put every in-flight request of ``name`` back in its queue, atomically, and delete the hash.

    ``cutoff`` (stored time): only if ``name``'s heartbeat is absent or older (a dead worker);
    None: whatever the heartbeat (the worker itself). (re-queued, dropped), or (-1, 0) if alive.
    """
    n, bad = script(r, REQUEUE)(keys=[inflight_key(name), workers.KEY, NAMES],
                                 args=[name, cutoff or "", QUEUE_PREFIX])
    return int(n), int(bad)


def requeue_dead(r: Any, *, now: datetime | None = None, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """Re-queue the in-flight requests of every worker crawl whose heartbeat is absent or silent.

    Silent: older than three of its periods (:func:`crawler.cluster.workers.read`). Each rescue is
    atomic (:func:`requeue`), so concurrent rescuers re-queue each request once. Returns
    {worker name: requests re-queued}, and says each in the log.
    """
    now = now or datetime.now(timezone.utc)
    beats = {as_text(w["name"]): w for w in workers.read(r, now=now)}
    done: dict[str, int] = {}
    for name in sorted(as_text(n) for n in r.smembers(NAMES)):
        beat = beats.get(name)
        if name in exclude or (beat is not None and not beat["silent"]):
            continue
        period = float((beat or {}).get("period") or workers.HEARTBEAT_SECONDS)
        n, bad = requeue(r, name, cutoff=clock.iso(now - timedelta(seconds=3 * period)))
        if n < 0 or (n == 0 and not bad):
            continue  # it beat again meanwhile (alive), or another rescuer was first
        if bad:
            log.error("dropped %d in-flight entr%s of %s that are not requests", bad, "y" if bad == 1 else "ies", name)
        log.warning("re-queued %d request(s) of dead worker %s", n, name)
        done[name] = n
    return done


def held(r: Any, source: str, heartbeats: list[dict[str, Any]]) -> tuple[int, int]:
    """Requests of ``source`` still in flight: (with live crawls, with crawls that are silent or gone).

    The control node's ``runs`` job counts the first as in progress whatever the heartbeats say (a
    request popped, then waiting for its politeness slot, is in flight before its crawl's
    heartbeat says busy), and the second as waiting, so a run is not closed while the requests of
    a dead worker are on their way back to the queue (:func:`requeue_dead`).
    """
    alive = {as_text(h["name"]) for h in heartbeats if not h["silent"]}
    live = dead = 0
    for name in (as_text(n) for n in r.smembers(NAMES)):
        if name.split(":", 2)[-1] == source:
            n = int(r.hlen(inflight_key(name)))
            if name in alive:
                live += n
            else:
                dead += n
    return live, dead


def describe(r: Any) -> dict[str, Any]:
    """Every in-flight hash: {worker name: [{"url", "since"}]} (what the workers hold, for a look or a test)."""
    out: dict[str, Any] = {}
    for name in sorted(as_text(n) for n in r.smembers(NAMES)):
        entries = []
        for raw in r.hvals(inflight_key(name)):
            try:
                e = json.loads(raw)
                url = json.loads(e["request"]).get("url")
            except (TypeError, ValueError, KeyError, AttributeError):
                url, e = None, {}
            entries.append({"url": url, "since": e.get("since")})
        if entries:
            out[name] = entries
    return out

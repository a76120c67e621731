"""How a request waits for its domain's shared slot (crawler/cluster/politeness.py), on a real Redis.

The requests of one worker crawl queue in memory and one at a time asks Redis, sleeping until the
next start time the script gives, instead of every waiting request asking at every turn (each
turn's winner leaving the others to ask again: a number of calls growing with the square of the
queue). Counted: the ``ACQUIRE`` calls (Redis's own command statistics) and the leases in flight.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from scrapy import Request
from scrapy.http import Response

from crawler.cluster import politeness


class _Stats:
    def __init__(self):
        self.values = {}

    def inc_value(self, key, n=1):
        self.values[key] = self.values.get(key, 0) + n


def _middleware(rds, monkeypatch, *, delay: float, concurrency: int):
    source = SimpleNamespace(name="pastes", delay=delay, concurrency=concurrency, timeout=20, autothrottle=False)
    monkeypatch.setattr(politeness, "state_of", lambda crawler: SimpleNamespace(source=source))
    settings = SimpleNamespace(getbool=lambda key, default=False: False, getfloat=lambda key, default=0.0: default)
    rds.script_load(politeness.ACQUIRE)  # its first EVALSHA is not a NOSCRIPT answer counted as a call
    return politeness.SharedSlotMiddleware(SimpleNamespace(settings=settings, stats=_Stats()), rds)


def _evalsha_calls(rds) -> int:
    return int(rds.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def _run(mw, n: int, hold: float) -> tuple[int, list[int]]:
    """``n`` requests of one crawl at once, each holding its lease ``hold`` seconds; the most leases
    held at once, and how many were held as each request started."""
    held: list[int] = []
    now = [0]

    async def one(i: int) -> None:
        request = Request(f"http://paste.example/raw/{i}")
        await mw.process_request(request)
        now[0] += 1
        held.append(now[0])
        await asyncio.sleep(hold)
        now[0] -= 1
        mw.process_response(request, Response(request.url, request=request))

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 60)

    asyncio.run(main())
    return max(held), held


def test_queued_requests_sleep_until_the_next_start_instead_of_all_asking_at_each_turn(rds, monkeypatch):
    """12 requests, delay 0.05 s: each start costs at most a few calls (the one asking sleeps until
    the time the script gives); on the code before, all the waiting requests asked at every start."""
    mw = _middleware(rds, monkeypatch, delay=0.05, concurrency=4)
    rds.config_resetstat()
    n = 12
    most, _ = _run(mw, n, hold=0.0)
    calls = _evalsha_calls(rds)
    assert most <= 4
    assert n <= calls <= 3 * n, calls  # the code before: about n * (n + 1) / 2 = 78
    assert mw.crawler.stats.values["dumpwatch/cluster/polite_asks"] == calls
    assert rds.zcard(politeness.slot_keys("pastes", "paste.example")[1]) == 0  # every lease given back


def test_requests_over_the_concurrency_wait_in_memory_for_a_release(rds, monkeypatch):
    """No delay, concurrency 2, 10 requests held 0.1 s each: one call each (never "all leases
    taken", which the code before answered by every waiting request asking every 50 ms)."""
    mw = _middleware(rds, monkeypatch, delay=0, concurrency=2)
    rds.config_resetstat()
    most, _ = _run(mw, 10, hold=0.1)
    assert most == 2
    assert _evalsha_calls(rds) == 10
    assert mw.crawler.stats.values["dumpwatch/cluster/polite_waits"] >= 8  # queued in memory, counted


def test_a_request_waits_for_the_leases_other_workers_hold(rds, monkeypatch):
    """Another worker holds the only lease: the request asks again until it is given back, and its
    own crawl's queue behind it asks nothing meanwhile."""
    mw = _middleware(rds, monkeypatch, delay=0, concurrency=1)
    leases = politeness.slot_keys("pastes", "paste.example")[1]
    rds.zadd(leases, {"other-worker": 10**13})
    rds.config_resetstat()

    async def main() -> list[int]:
        order: list[int] = []

        async def one(i: int) -> None:
            request = Request(f"http://paste.example/raw/{i}")
            await mw.process_request(request)
            order.append(i)
            mw.process_response(request, Response(request.url, request=request))

        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = [asyncio.ensure_future(one(i)) for i in range(3)]
        await asyncio.sleep(0.3)
        assert order == []  # nothing started while the other worker holds the lease
        asked = _evalsha_calls(rds)
        elapsed = loop.time() - started  # an asker waits at least POLL_MS between two calls
        assert 1 <= asked <= elapsed / (politeness.POLL_MS / 1000) + 2  # one asker, not three
        rds.zrem(leases, "other-worker")
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return order

    assert asyncio.run(main()) == [0, 1, 2]

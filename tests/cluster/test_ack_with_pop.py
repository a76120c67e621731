"""A finished request's ack rides with the crawl's next pop (crawler/cluster/inflight.py), on a real Redis.

One round trip for both instead of two; an ack with no pop after it is written alone
(``ACK_DELAY``), and before anything else the scheduler writes; a clean stop writes the acks that
wait before it puts back what is still in flight, so a finished request is never run again.
"""

from __future__ import annotations

from types import SimpleNamespace

from scrapy import Request

from crawler.cluster import inflight, reliable
from crawler.cluster.queue import NoDupeFilter
from crawler.cluster.worker import queue_key

QUEUE = queue_key("pastes")
NAME = "h:7:pastes"


def _scheduler(r) -> reliable.ReliableScheduler:
    sched = reliable.ReliableScheduler(server=r, persist=True)
    sched.queue = reliable.ReliableQueue(r, SimpleNamespace(name="pastes", crawler=None), QUEUE)
    sched.df, sched.name = NoDupeFilter(), NAME
    return sched


def _calls(r, command: str) -> int:
    return int(r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_an_ack_is_sent_with_the_next_pop(rds):
    sched = _scheduler(rds)
    held = inflight.inflight_key(NAME)
    for n in range(3):
        sched.enqueue_request(Request(f"http://127.0.0.1:1/raw/{n}"))
    first = sched.next_request()
    assert rds.hlen(held) == 1
    sched.finished(first)
    assert rds.hlen(held) == 1 and sched.acks  # not yet written: it waits for the next pop
    rds.config_resetstat()
    second = sched.next_request()
    assert second is not None and rds.hlen(held) == 1  # the first out of flight, the second in
    assert first.url not in "".join(rds.hvals(held))
    assert _calls(rds, "hdel") == 1 and _calls(rds, "evalsha") == 1  # sent together (one pipeline)
    sched.finished(second)
    sched._send_acks()  # what the reactor does ACK_DELAY later when no pop comes
    assert rds.hlen(held) == 0 and not sched.acks
    third = sched.next_request()
    sched.finished(third)
    sched.enqueue_request(Request("http://127.0.0.1:1/raw/child"))  # any other write sends the acks first
    assert rds.hlen(held) == 0 and rds.zcard(QUEUE) == 1


def test_a_clean_stop_writes_the_waiting_acks_before_putting_back_what_is_in_flight(rds):
    sched = _scheduler(rds)
    for n in range(2):
        sched.enqueue_request(Request(f"http://127.0.0.1:1/raw/{n}"))
    done, held = sched.next_request(), sched.next_request()
    sched.finished(done)
    sched.stats = None
    sched.close("shutdown")
    queued = rds.zrange(QUEUE, 0, -1)
    assert len(queued) == 1 and held.url.rsplit("/", 1)[1] in queued[0]  # the finished one is not run again
    assert not rds.exists(inflight.inflight_key(NAME))

"""The reliable request queue (crawler/cluster/inflight.py) against a real redis-server, and real
`dumpwatch worker` processes: a request a worker popped stays in flight in Redis until its result is
stored; a worker killed with SIGKILL has its requests taken over in the same run; a Redis outage
while a request is in flight loses nothing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import redis
from scrapy import Request

from crawler.cluster import findings, inflight, reliable, workers
from crawler.cluster.queue import NoDupeFilter
from crawler.cluster.worker import queue_key
from dumpwatch import clock, store
from dumpwatch.devkit.localsites import SiteServer
from tests.helpers.crawlkit import NOISE, repost
from tests.helpers.clusterkit import paste_archive_config as _config
from tests.helpers.clusterkit import start_worker as _start_worker
from tests.helpers.clusterkit import stop_worker as _stop

WAIT = 120.0  # the longest wait for a worker (a wait, not an assertion on time)
QUEUE = queue_key("pastes")


# -- the queue's operations, atomic -----------------------------------------------------------------

def _queue(rds):
    return reliable.ReliableQueue(rds, SimpleNamespace(name="pastes", crawler=None), QUEUE)


def _beat(rds, name: str, age: float) -> None:
    when = clock.iso(datetime.now(timezone.utc) - timedelta(seconds=age))
    rds.hset(workers.KEY, name, json.dumps({"heartbeat": when, "source": "pastes", "period": 10.0}))


def test_pop_moves_a_request_in_flight_ack_and_release_take_it_out(rds):
    q = _queue(rds)
    for n in range(3):
        q.push(Request(f"http://127.0.0.1:1/raw/P{n}", priority=-n))
    popped, request = q.pop_to("h:1:pastes", "e1")
    assert popped and request.url == "http://127.0.0.1:1/raw/P0"  # the highest priority first
    assert rds.zcard(QUEUE) == 2 and rds.hlen(inflight.inflight_key("h:1:pastes")) == 1
    [entry] = rds.hvals(inflight.inflight_key("h:1:pastes"))
    assert json.loads(json.loads(entry)["request"])["url"] == request.url  # the queue entry as it was
    assert inflight.ack(rds, "h:1:pastes", "e1") is True and inflight.ack(rds, "h:1:pastes", "e1") is False
    assert rds.zcard(QUEUE) == 2 and not rds.exists(inflight.inflight_key("h:1:pastes"))
    popped, request = q.pop_to("h:1:pastes", "e2")
    assert inflight.release(rds, "h:1:pastes", "e2") == 1 and inflight.release(rds, "h:1:pastes", "e2") == 0
    assert rds.zcard(QUEUE) == 2 and q.pop_to("h:1:pastes", "e3")[1].url == request.url  # back, same place
    assert q.pop_to("h:1:pastes", "e4")[0] and q.pop_to("h:1:pastes", "e5") == (False, None)


def test_two_rescuers_racing_requeue_each_request_of_a_dead_worker_once(redis_server, rds):
    """Many rounds of two rescuers (their own connections) released at the same instant: each
    request of the dead worker is re-queued by exactly one of them; a live worker's are left alone."""
    q = _queue(rds)
    for round_ in range(25):
        rds.delete(QUEUE)
        for n in range(20):
            q.push(Request(f"http://127.0.0.1:1/raw/R{round_}x{n}"))
        for n in range(15):
            q.pop_to("dead:1:pastes", f"d{n}")
        for n in range(5):
            q.pop_to("alive:2:pastes", f"a{n}")
        _beat(rds, "dead:1:pastes", age=60)  # three periods of 10 s without a beat: dead
        _beat(rds, "alive:2:pastes", age=1)
        assert rds.zcard(QUEUE) == 0
        gate, results = threading.Barrier(2), []

        def rescue(gate=gate, results=results) -> None:
            client = redis_server.client()
            gate.wait()
            results.append(inflight.requeue_dead(client))
            client.close()

        threads = [threading.Thread(target=rescue) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(sum(r.values()) for r in results) == [0, 15], results
        assert rds.zcard(QUEUE) == 15 and not rds.exists(inflight.inflight_key("dead:1:pastes"))
        assert rds.hlen(inflight.inflight_key("alive:2:pastes")) == 5
        rds.delete(inflight.inflight_key("alive:2:pastes"))


def test_a_heartbeat_written_after_the_rescuer_looked_keeps_the_requests(rds):
    """The heartbeat is checked again inside the atomic move: a rescuer that read an old heartbeat
    (the worker was only slow) re-queues nothing."""
    q = _queue(rds)
    q.push(Request("http://127.0.0.1:1/raw/SLOW"))
    q.pop_to("slow:3:pastes", "s1")
    _beat(rds, "slow:3:pastes", age=1)  # it beat just now
    cutoff = clock.iso(datetime.now(timezone.utc) - timedelta(seconds=30))
    assert inflight.requeue(rds, "slow:3:pastes", cutoff=cutoff) == (-1, 0)
    assert rds.hlen(inflight.inflight_key("slow:3:pastes")) == 1 and rds.zcard(QUEUE) == 0
    # no heartbeat at all (stopped without putting back, or never beat): re-queued
    rds.hdel(workers.KEY, "slow:3:pastes")
    assert inflight.requeue_dead(rds) == {"slow:3:pastes": 1} and rds.zcard(QUEUE) == 1


def test_an_in_flight_entry_that_is_not_a_request_is_dropped_not_queued(rds, caplog):
    rds.sadd(inflight.NAMES, "x:4:pastes")
    rds.hset(inflight.inflight_key("x:4:pastes"), mapping={
        "bad": "not json", "elsewhere": json.dumps({"request": "{}", "score": "0", "queue": "other:key"})})
    assert inflight.requeue_dead(rds) == {"x:4:pastes": 0}
    assert not rds.exists("other:key") and not rds.exists(inflight.inflight_key("x:4:pastes"))
    assert not rds.sismember(inflight.NAMES, "x:4:pastes")
    assert "dropped 2 in-flight entries" in caplog.text


def test_the_scheduler_defers_pushes_and_acks_in_order_while_redis_is_away(tmp_path):
    """The scheduler alone (no crawl): a request popped, Redis stopped, its child pushed and its ack
    made meanwhile: nothing is written, nothing new popped; Redis back: the child is pushed before the
    parent leaves flight. A request whose finding could not be sent is released, not acknowledged."""
    from tests.helpers.redissrv import RedisServer

    server = RedisServer(tmp_path / "redis-aof", appendonly=True).start()
    try:
        r = server.client()
        sched = reliable.ReliableScheduler(server=r, persist=True)
        sched.queue = reliable.ReliableQueue(r, SimpleNamespace(name="pastes", crawler=None), QUEUE)
        sched.df, sched.name = NoDupeFilter(), "h:9:pastes"
        held = inflight.inflight_key("h:9:pastes")
        sched.enqueue_request(Request("http://127.0.0.1:1/archive"))
        parent = sched.next_request()
        assert parent.url.endswith("/archive") and r.hlen(held) == 1 and r.zcard(QUEUE) == 0
        server.stop()
        sched.enqueue_request(Request("http://127.0.0.1:1/raw/CHILD"))
        sched.finished(parent)
        assert len(sched.writes) == 2 and sched.next_request() is None and sched.has_pending_requests()
        server = RedisServer(tmp_path / "redis-aof", port=server.port, appendonly=True).start()
        r = server.client()
        assert r.hlen(held) == 1 and r.zcard(QUEUE) == 0  # the parent still in flight, no child yet
        sched.retry_at = 0.0  # the backoff's wait, over
        child = sched.next_request()  # the deferred writes first, in order, then a pop
        assert child.url.endswith("/raw/CHILD") and not sched.writes
        [entry] = r.hvals(held)
        assert "CHILD" in entry  # the parent acknowledged, the child in flight
        # a pop Redis did whose answer was lost with the connection: put back once Redis answers again
        sched.enqueue_request(Request("http://127.0.0.1:1/raw/LOST"))
        inflight.pop(r, QUEUE, "h:9:pastes", "lost")
        assert r.hlen(held) == 2 and r.zcard(QUEUE) == 0
        sched.suspect = True  # as after a pop that failed
        again = sched.next_request()
        assert again.url.endswith("/raw/LOST") and r.hlen(held) == 2 and "lost" not in r.hkeys(held)
        sched.finished(again)
        item = object()
        sched.finding_unsent(item)
        sched.item_scraped(item, SimpleNamespace(request=child, url=child.url))
        sched.finished(child)  # its finding was not sent: back in the queue
        assert not r.exists(held) and [m for m in r.zrange(QUEUE, 0, -1) if "CHILD" in m]
    finally:
        server.stop()


# -- real workers ------------------------------------------------------------------------------------

@pytest.fixture
def paste_site(people):
    """A paste archive: 3 reposts and 3 noise pastes at /raw/KEY; reposts are slow (0.8 s, the
    crawl timeout is 1 s) so that a worker holds them in flight when the test acts."""
    server = SiteServer().start()
    bodies = {"REPOSTAA": repost(people[0:25], "csv", 1), "REPOSTBB": repost(people[30:50], "json", 2),
              "REPOSTCC": repost(people[60:75], "kv", 3),
              "NOISEAAA": NOISE[0], "NOISEBBB": NOISE[1], "NOISECCC": NOISE[2]}
    links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in bodies)
    server.add("/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")
    for key, body in bodies.items():
        server.add(f"/raw/{key}", body, headers={"Content-Type": "text/plain; charset=utf-8"},
                   delay=0.8 if key.startswith("REPOST") else 0.0)
    server.bodies = bodies
    try:
        yield server
    finally:
        server.stop()


def _wait_for(predicate, proc, home, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}):\n{(home.root / 'worker.out').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not seen: {what}\n{(home.root / 'worker.out').read_text()[-3000:]}")
        time.sleep(0.05)


def _name(proc) -> str:
    import socket

    return f"{socket.gethostname()}:{proc.pid}:pastes"


def _held(r, proc, part: str) -> list[str]:
    """The URLs the worker holds in flight that contain ``part``."""
    try:
        return [e["url"] for e in inflight.describe(r).get(_name(proc), []) if part in (e["url"] or "")]
    except redis.ConnectionError:  # Redis stopped by the test meanwhile
        return []


def _sent(r) -> set[str]:
    return {f["url"] for _, f in r.xrange(findings.STREAM)}


def test_a_worker_killed_mid_crawl_has_its_requests_taken_over_in_the_same_run(homes, paste_site, redis_url, rds):
    """kill -9 of a worker holding requests in flight; the control node's findings job re-queues
    them once its heartbeat is silent, a second worker runs them: each repost one finding, every
    request the dead worker held fetched again, nothing left in flight."""
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    for home in homes.values():
        _config(home, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    first = _start_worker(homes["worker"], redis_url)
    second = None
    try:
        d.crawls.crawl("pastes")
        _wait_for(lambda: _held(rds, first, "/raw/REPOST"), first, homes["worker"], "a repost in flight")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = len(paste_site.paths())
        held = [e["url"] for e in inflight.describe(rds)[_name(first)]]
        assert any("/raw/REPOST" in u for u in held)
        # its heartbeat is as it was at the kill: not silent yet, nothing taken over
        assert d.control.consume()["requeued"] == 0 and len(inflight.describe(rds)[_name(first)]) == len(held)
        second = _start_worker(homes["worker2"], redis_url)
        _wait_for(lambda: rds.hexists(workers.KEY, _name(second)), second, homes["worker2"], "the second worker")
        # the dead worker's heartbeat as it is 30 s later (three periods without a beat)
        info = json.loads(rds.hget(workers.KEY, _name(first)))
        info["heartbeat"] = clock.iso(datetime.now(timezone.utc) - timedelta(seconds=31))
        rds.hset(workers.KEY, _name(first), json.dumps(info))
        assert d.control.consume()["requeued"] == len(held)  # said: "re-queued N requests of dead worker X"
        assert _name(first) not in inflight.describe(rds)
        reposts = {f"{paste_site.base}/raw/{k}" for k in paste_site.bodies if k.startswith("REPOST")}

        def over() -> bool:
            again = paste_site.paths()[killed_at:]
            return (reposts <= _sent(rds) and all(u.split(paste_site.base, 1)[1] in again for u in held)
                    and not any(inflight.describe(rds).values()) and rds.zcard(QUEUE) == 0)

        _wait_for(over, second, homes["worker2"], "every request of the dead worker run again")
        d.control.consume()
    finally:
        if second is not None:
            _stop(second)
        _stop(first)
    assert not any(inflight.describe(rds).values())
    db = store.open_db(control.db_path)
    found = store.findings(db, where="verdict = ?", params=["repost"])
    assert sorted(f["url"].rsplit("/", 1)[1] for f in found) == ["REPOSTAA", "REPOSTBB", "REPOSTCC"]
    said = (homes["worker2"].root / "worker.out").read_text()
    assert "Traceback" not in said


@pytest.mark.xdist_group("deployment")  # a 0.8 s page against a 1 s timeout: one deployment at a time
def test_redis_stopped_while_requests_are_in_flight_loses_nothing(homes, paste_site, tmp_path):
    """Redis (AOF on) stopped while the worker holds the listing (its follow-up pushes fail), then
    again while it holds a repost (its finding's XADD fails): after each restart the writes are done,
    every finding arrives, nothing is left in flight."""
    from dumpwatch.daemon.scheduler import Daemon
    from tests.helpers.redissrv import RedisServer

    paste_site.routes["/archive"].delay = 0.8
    server = RedisServer(tmp_path / "redis-aof", appendonly=True).start()
    control, worker = homes["control"], homes["worker"]
    _config(control, paste_site)
    _config(worker, paste_site)
    d = Daemon(control, control.load_config(), redis_url=server.url)
    d.control.redis()  # publishes the indexes the worker checks its own against
    proc = _start_worker(worker, server.url)
    try:
        _wait_for(lambda: server.client().hexists(workers.KEY, _name(proc)), proc, worker, "the worker")
        d.crawls.crawl("pastes")
        # the listing's follow-up pushes wait; then a repost's finding waits (its XADD retried)
        # (or, when the shared seen-set meets Redis away first, the page or document goes back to its queue)
        for part, said in (("/archive", ("writes wait for Redis (the first: push)", "will go back to its queue")),
                           ("/raw/REPOST", ("retried with backoff", "will go back to its queue"))):
            r = server.client()
            _wait_for(lambda r=r, part=part: _held(r, proc, part), proc, worker, f"{part} in flight")
            log_size = len((worker.root / "worker.out").read_text())
            server.stop()
            _wait_for(lambda said=said, n=log_size: any(s in (worker.root / "worker.out").read_text()[n:] for s in said),
                      proc, worker, " or ".join(said))
            time.sleep(1)  # Redis stays away a little longer: the retries go on
            server = RedisServer(tmp_path / "redis-aof", port=server.port, appendonly=True).start()
        r = server.client()
        reposts = {f"{paste_site.base}/raw/{k}" for k in paste_site.bodies if k.startswith("REPOST")}
        _wait_for(lambda: reposts <= _sent(r) and not any(inflight.describe(r).values()) and r.zcard(QUEUE) == 0,
                  proc, worker, "every finding sent, nothing in flight")
        assert d.control.consume()["recorded"] == 3
    finally:
        _stop(proc)
        server.stop()
    said = (worker.root / "worker.out").read_text()
    assert "Redis does not answer" in said and "deferred write(s) done" in said
    # the finding's XADD retried, or (the shared seen-set failing first) the document re-queued
    assert "failed tries" in said or "goes back to its queue" in said
    # a document whose processing met Redis away is logged by Scrapy with its traceback ("Error
    # processing"); nothing else may fail: no signal handler, no unhandled error
    assert "Error caught on signal handler" not in said and "Unhandled" not in said
    last_entry = ""
    for line in said.splitlines():
        if line[:4].isdigit():
            last_entry = line
        elif line.startswith("Traceback"):
            assert "error processing" in last_entry.lower(), last_entry
    found = store.findings(store.open_db(control.db_path), where="verdict = ?", params=["repost"])
    assert sorted(f["url"].rsplit("/", 1)[1] for f in found) == ["REPOSTAA", "REPOSTBB", "REPOSTCC"]


def test_a_worker_stopped_with_sigterm_leaves_nothing_in_flight(homes, paste_site, redis_url, rds):
    """SIGTERM while requests are in flight: each is finished or put back in its queue before the
    worker exits; its in-flight hash and heartbeat are gone (nothing for a rescuer to do)."""
    worker = homes["worker"]
    _config(homes["control"], paste_site)
    _config(worker, paste_site)
    from dumpwatch.daemon.scheduler import Daemon

    d = Daemon(homes["control"], homes["control"].load_config(), redis_url=redis_url)
    proc = _start_worker(worker, redis_url)
    try:
        d.crawls.crawl("pastes")
        _wait_for(lambda: _held(rds, proc, "/raw/REPOST"), proc, worker, "a repost in flight")
        held = [e["url"] for e in inflight.describe(rds)[_name(proc)]]
        _stop(proc, signal.SIGTERM)
    finally:
        _stop(proc)
    assert proc.returncode == 0
    assert _name(proc) not in inflight.describe(rds) and not rds.hexists(workers.KEY, _name(proc))
    queued = {json.loads(m)["url"] for m in rds.zrange(QUEUE, 0, -1)}
    served = paste_site.paths()
    for url in held:  # finished (fetched, its finding sent) or back in the queue
        assert url in queued or (url.split(paste_site.base, 1)[1] in served and
                                 ("REPOST" not in url or url in _sent(rds))), url

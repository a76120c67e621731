"""Idle worker crawls woken by a push (crawler/cluster/wakeup.py), on a real Redis.

Without it an idle crawl notices a push only at its engine's next heartbeat (5 s). Checked here:
the push script publishes the source's name when the queue was empty and only then, the
listener calls the crawls of that source alone, the control node's push announces itself, and a
listener whose connection was cut hears the next pushes.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from crawler.cluster import wakeup


def _until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _messages(pubsub) -> list[str]:
    out = []
    while (m := pubsub.get_message(timeout=0.5)) is not None:
        if m["type"] == "message":
            out.append(m["data"])
    return out


def test_a_push_to_an_empty_queue_publishes_the_source_once(rds):
    pubsub = rds.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(wakeup.CHANNEL)
    assert _until(lambda: pubsub.get_message(timeout=0.1) is None and pubsub.subscribed)
    queue = "dumpwatch:requests:pastes"
    assert wakeup.push(rds, queue, 0, '{"url": "http://a.example/1"}', "pastes") == 0
    assert wakeup.push(rds, queue, 0, '{"url": "http://a.example/2"}', "pastes") == 1
    assert wakeup.push(rds, queue, -1, '{"url": "http://a.example/3"}', "pastes") == 2
    assert rds.zrange(queue, 0, -1) == ['{"url": "http://a.example/3"}', '{"url": "http://a.example/1"}',
                                        '{"url": "http://a.example/2"}']  # as ZADD orders them
    assert _messages(pubsub) == ["pastes"]  # the first push only: the others find the crawls busy
    rds.delete(queue)
    wakeup.push(rds, queue, 0, '{"url": "http://a.example/4"}', "pastes")
    assert _messages(pubsub) == ["pastes"]
    pubsub.close()


def test_the_listener_wakes_the_crawls_of_the_pushed_source_only(rds, redis_server):
    listener = wakeup.Listener(redis_server.client)
    woken: dict[str, int] = {"pastes": 0, "forum": 0}
    lock = threading.Lock()

    def waker(name):
        def wake():
            with lock:
                woken[name] += 1
        return wake

    pastes, forum = waker("pastes"), waker("forum")
    listener.register("pastes", pastes)
    listener.register("forum", forum)
    try:
        assert _until(listener.subscribed.is_set)
        wakeup.push(rds, "dumpwatch:requests:pastes", 0, "{}", "pastes")
        assert _until(lambda: woken["pastes"] == 1)
        wakeup.announce(rds, "forum")  # after the first message: heard in order, by one thread
        assert _until(lambda: woken["forum"] == 1)
        assert woken == {"pastes": 1, "forum": 1}
        listener.unregister("forum", forum)
        wakeup.announce(rds, "forum")
        wakeup.announce(rds, "pastes")
        assert _until(lambda: woken["pastes"] == 2)
        assert woken["forum"] == 1
    finally:
        listener.unregister("pastes", pastes)
        listener.unregister("forum", forum)
    assert listener.thread is None  # no crawl left: the thread ends


def test_the_control_nodes_push_announces_the_source(rds, redis_server, monkeypatch):
    from crawler.cluster import control

    class Spider:
        name = "paste-api"

        def start_requests_for(self, url):
            from scrapy import Request

            yield Request(url)

    monkeypatch.setattr(control, "spider_for", lambda source, crawl_config: Spider())
    pubsub = rds.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(wakeup.CHANNEL)
    assert _until(lambda: pubsub.get_message(timeout=0.1) is None and pubsub.subscribed)
    source = SimpleNamespace(name="pastes", start_urls=["http://paste.example/api/recent.json"])
    assert control.push_start_requests(rds, source, None) == 1
    assert _messages(pubsub) == ["pastes"]
    pubsub.close()


def test_a_listener_whose_connection_is_cut_hears_the_next_pushes(rds, redis_server):
    listener = wakeup.Listener(redis_server.client)
    woken = []

    def wake():
        woken.append("pastes")

    listener.register("pastes", wake)
    try:
        assert _until(listener.subscribed.is_set)
        assert rds.client_kill_filter(_type="pubsub") >= 1  # the connection is cut

        def heard() -> bool:  # a message published while it was away is lost: the heartbeat covers it
            wakeup.announce(rds, "pastes")
            return bool(woken)

        assert _until(heard)
    finally:
        listener.unregister("pastes", wake)

"""A control node and a worker process over a real redis-server, crawling a local paste site: every
repost becomes one finding on the control node; the worker sends findings, never documents."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from dumpwatch import store
from dumpwatch.devkit.localsites import SiteServer
from tests.helpers.crawlkit import LEAK, NOISE, repost
from tests.helpers.clusterkit import paste_archive_config as _config
from tests.helpers.clusterkit import start_worker as _start_worker
from tests.helpers.clusterkit import stop_worker as _stop

WAIT = 90.0  # the longest wait for the worker (a wait, not an assertion on time)


@pytest.fixture
def paste_site(people):
    """A paste archive: 3 reposts and 3 noise pastes, each at /raw/KEY."""
    server = SiteServer().start()
    bodies = {"REPOSTAA": repost(people[0:25], "csv", 1), "REPOSTBB": repost(people[30:50], "json", 2),
              "REPOSTCC": repost(people[60:75], "kv", 3),
              "NOISEAAA": NOISE[0], "NOISEBBB": NOISE[1], "NOISECCC": NOISE[2]}
    links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in bodies)
    server.add("/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")
    for key, body in bodies.items():
        server.add(f"/raw/{key}", body, headers={"Content-Type": "text/plain; charset=utf-8"})
    server.bodies = bodies
    try:
        yield server
    finally:
        server.stop()


def _wait_for(predicate, proc, home) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}):\n{(home.root / 'worker.out').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not get there:\n{(home.root / 'worker.out').read_text()[-3000:]}")
        time.sleep(0.2)


def test_control_node_and_worker_record_each_repost_once(homes, paste_site, redis_url, rds, people):
    from crawler.cluster import findings
    from dumpwatch.daemon.scheduler import Daemon

    control, worker = homes["control"], homes["worker"]
    _config(control, paste_site)
    _config(worker, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    assert d.control is not None
    proc = _start_worker(worker, redis_url)
    try:
        assert d.crawls.crawl("pastes") == {"source": "pastes", "pushed": 1, "ok": True}
        raw = [f"{paste_site.base}/raw/{k}" for k in paste_site.bodies]
        _wait_for(lambda: set(paste_site.paths()) >= {f"/raw/{k}" for k in paste_site.bodies}
                  and rds.xlen(findings.STREAM) >= 3, proc, worker)
        done = d.control.consume()
        assert done["recorded"] == 3 and done["bad"] == 0 and done["errors"] == 0
        # the control node pushes the same source again (its next run): nothing new is recorded
        d.crawls.crawl("pastes")
        _wait_for(lambda: paste_site.paths().count("/archive") >= 2 and rds.zcard("dumpwatch:requests:pastes") == 0,
                  proc, worker)
        done = d.control.consume()
        assert done["recorded"] == 0
        _workers_are_shown(control, redis_url, rds)
    finally:
        _stop(proc)
    assert rds.hlen("dumpwatch:workers") == 1  # the worker stopped on purpose took its heartbeat away: the fake one is left
    db = store.open_db(control.db_path)
    found = store.findings(db, where="verdict = ?", params=["repost"])
    assert sorted(f["url"] for f in found) == sorted(u for u in raw if "REPOST" in u)
    assert all(f["leak"] == LEAK and f["source"] == "pastes" for f in found)
    assert store.open_db(worker.db_path).execute("SELECT count(*) FROM findings").fetchone()[0] == 0
    said = (worker.root / "worker.out").read_text()
    assert "finding sent" in said and "Traceback" not in said and "DeprecationWarning" not in said
    # what is in Redis: URLs and findings, no identifier of the reposted people
    everything = _everything(rds)
    crawled = "".join(paste_site.bodies.values())
    assert f"{paste_site.base}/raw/REPOSTAA" in everything
    for person in people[0:25] + people[30:50] + people[60:75]:
        for field in ("nir", "email", "telephone"):
            assert person[field] in crawled and person[field] not in everything


def _workers_are_shown(control, redis_url, rds) -> None:
    """`dumpwatch workers` while the worker runs: its crawl, then a silent one flagged (exit status 1)."""
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli

    run = CliRunner().invoke(cli, ["--home", str(control.root), "workers", "--redis", redis_url, "--json"])
    assert run.exit_code == 0, run.output
    [crawl] = json.loads(run.output)["workers"]
    assert crawl["source"] == "pastes" and crawl["version"] and crawl["silent"] is False
    assert crawl["name"].endswith(":pastes") and crawl["pid"] > 0
    rds.hset("dumpwatch:workers", "gone:1:pastes", json.dumps({"heartbeat": "2026-01-01T00:00:00+00:00",
                                                               "source": "pastes", "version": "0.1.0"}))
    run = CliRunner().invoke(cli, ["--home", str(control.root), "workers", "--redis", redis_url])
    assert run.exit_code == 1 and "gone:1:pastes" in run.output and "SILENT" in run.output


def _everything(rds) -> str:
    """Every key of the Redis and every value, as one text."""
    parts = []
    for key in rds.scan_iter():
        kind = rds.type(key)
        value = {"stream": lambda: rds.xrange(key), "zset": lambda: rds.zrange(key, 0, -1, withscores=True),
                 "list": lambda: rds.lrange(key, 0, -1), "hash": lambda: rds.hgetall(key),
                 "set": lambda: sorted(rds.smembers(key)), "string": lambda: rds.get(key)}[kind]()
        parts.append(json.dumps([key, value], default=str))
    return "\n".join(parts)


def test_two_workers_one_killed_mid_crawl_each_repost_is_one_finding(homes, paste_site, redis_url, rds):
    """kill -9 of a worker in the middle of a crawl, the same paste at two URLs, two workers with
    their own seen-sets: after the next run of the source, each repost is one finding."""
    from crawler.cluster import findings

    paste_site.add("/raw/REPOSTDD", paste_site.bodies["REPOSTAA"],  # the same bytes at another URL
                   headers={"Content-Type": "text/plain; charset=utf-8"})
    paste_site.bodies["REPOSTDD"] = paste_site.bodies["REPOSTAA"]
    links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in paste_site.bodies)
    paste_site.add("/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")
    for key in paste_site.bodies:
        paste_site.routes[f"/raw/{key}"].delay = 0.4  # slow pages (the crawl timeout is 1 s): the kill lands mid-crawl
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    for home in homes.values():
        _config(home, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    first, second = _start_worker(homes["worker"], redis_url), _start_worker(homes["worker2"], redis_url)
    try:
        d.crawls.crawl("pastes")
        _wait_for(lambda: any(p.startswith("/raw/") for p in paste_site.paths()), first, homes["worker"])
        os.killpg(first.pid, signal.SIGKILL)  # its popped requests are gone with it
        first.wait(timeout=10)
        d.control.consume()
        d.crawls.crawl("pastes")  # the next run of the source lists the pastes again

        def covered() -> bool:
            urls = {f["url"] for _, f in rds.xrange(findings.STREAM)}
            want = {f"{paste_site.base}/raw/{k}" for k in ("REPOSTBB", "REPOSTCC")}
            same = {f"{paste_site.base}/raw/{k}" for k in ("REPOSTAA", "REPOSTDD")}
            return want <= urls and bool(same & urls)

        _wait_for(covered, second, homes["worker2"])
        d.control.consume()
    finally:
        _stop(second)
        _stop(first)
    d.control.consume()  # anything the second worker sent before it stopped
    assert rds.xpending(findings.STREAM, findings.GROUP)["pending"] == 0
    db = store.open_db(control.db_path)
    found = store.findings(db, where="verdict = ?", params=["repost"])
    assert len(found) == 3  # REPOSTAA and REPOSTDD are one copy
    assert {f["url"].rsplit("/", 1)[1] for f in found} >= {"REPOSTBB", "REPOSTCC"}


def test_the_daemon_as_control_node_schedules_pushes_and_records(homes, paste_site, redis_url):
    """The daemon itself (its scheduler, crawl job and findings job in their threads) with a worker."""
    import threading

    from dumpwatch.daemon.scheduler import Daemon

    control, worker = homes["control"], homes["worker"]
    _config(control, paste_site, "\n[daemon]\njitter = 0\n")
    _config(worker, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    proc = _start_worker(worker, redis_url)
    runner = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
    runner.start()
    db = store.open_db(control.db_path)
    try:
        _wait_for(lambda: len(store.findings(db, where="verdict = ?", params=["repost"])) >= 3, proc, worker)
    finally:
        d.stop_event.set()
        runner.join(60)
        _stop(proc)
    assert not runner.is_alive()
    assert d.stats["findings"].runs >= 1 and d.stats["findings"].errors == 0
    assert d.stats["crawl:pastes"].errors == 0
    assert sorted(f["url"].rsplit("/", 1)[1] for f in store.findings(db, where="verdict = ?", params=["repost"])) \
        == ["REPOSTAA", "REPOSTBB", "REPOSTCC"]


def test_redis_stopped_for_ten_seconds_then_restarted_nothing_is_lost(homes, paste_site, tmp_path, people):
    """Redis with AOF on: findings sent before an outage are recorded after it; the worker and the
    control node wait through it and go on (a paste that appears after it becomes a finding too)."""
    import redis

    from tests.helpers.redissrv import RedisServer
    from crawler.cluster import findings
    from dumpwatch.daemon.scheduler import Daemon

    server = RedisServer(tmp_path / "redis-aof", appendonly=True).start()
    control, worker = homes["control"], homes["worker"]
    _config(control, paste_site)
    _config(worker, paste_site)
    d = Daemon(control, control.load_config(), redis_url=server.url)
    proc = _start_worker(worker, server.url)
    try:
        d.crawls.crawl("pastes")
        _wait_for(lambda: server.client().xlen(findings.STREAM) >= 3, proc, worker)
        server.stop()  # the findings are in the stream, not yet recorded
        with pytest.raises(redis.exceptions.ConnectionError):
            d.control.consume()  # a job error, counted by the daemon; tried again at its next run
        time.sleep(10)
        assert proc.poll() is None, "the worker died with Redis"
        server = RedisServer(tmp_path / "redis-aof", port=server.port, appendonly=True).start()
        done = d.control.consume()
        assert done["recorded"] == 3
        # a new repost after the outage: the same worker, the same control node
        paste_site.add("/raw/REPOSTEE", repost(people[100:120], "csv", 5),
                       headers={"Content-Type": "text/plain; charset=utf-8"})
        paste_site.bodies["REPOSTEE"] = "new"
        links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in paste_site.bodies)
        paste_site.add("/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")
        d.crawls.crawl("pastes")
        _wait_for(lambda: server.client().xlen(findings.STREAM) >= 4, proc, worker)
        assert d.control.consume()["recorded"] == 1
    finally:
        _stop(proc)
        server.stop()
    found = store.findings(store.open_db(control.db_path), where="verdict = ?", params=["repost"])
    assert sorted(f["url"].rsplit("/", 1)[1] for f in found) == ["REPOSTAA", "REPOSTBB", "REPOSTCC", "REPOSTEE"]

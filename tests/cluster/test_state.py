"""Crawl state in Redis (docs/scale.md, "Crawl state in Redis"): the shared seen-set, politeness
across workers, the runs a push opens and the control node closes, and the workers in `dumpwatch
status`. Real redis-server; real `dumpwatch worker` processes against a local paste site."""

from __future__ import annotations

import json
import logging
import time

import pytest

from crawler import health
from dumpwatch import store
from dumpwatch.devkit.localsites import SiteServer
from tests.helpers.crawlkit import NOISE, repost
from tests.helpers.clusterkit import paste_archive_config as _config
from tests.helpers.clusterkit import start_worker as _start_worker
from tests.helpers.clusterkit import stop_worker as _stop

WAIT = 120.0  # the longest wait for the workers (a wait, not an assertion on time)
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


@pytest.fixture
def paste_site(people):
    """A paste archive: 3 reposts and 3 noise pastes, each at /raw/KEY."""
    server = SiteServer().start()
    bodies = {"REPOSTAA": repost(people[0:25], "csv", 1), "REPOSTBB": repost(people[30:50], "json", 2),
              "REPOSTCC": repost(people[60:75], "kv", 3),
              "NOISEAAA": NOISE[0], "NOISEBBB": NOISE[1], "NOISECCC": NOISE[2]}
    _publish(server, bodies)
    try:
        yield server
    finally:
        server.stop()


def _publish(server, bodies: dict[str, str]) -> None:
    links = "".join(f'<tr><td><a href="/{k}">{k}</a></td></tr>' for k in bodies)
    server.add("/archive", f"<html><body><table class='maintable'>{links}</table></body></html>")
    for key, body in bodies.items():
        server.add(f"/raw/{key}", body, headers=TEXT)
    server.bodies = bodies


def _wait_for(predicate, procs: dict) -> None:
    """Until ``predicate()``; fails with the workers' output if one exits or the wait runs out."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        for home, proc in procs.items():
            if proc.poll() is not None:
                pytest.fail(f"a worker exited ({proc.returncode}):\n{(home.root / 'worker.out').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the workers did not get there:\n" + "\n".join(
                (home.root / "worker.out").read_text()[-2000:] for home in procs))
        time.sleep(0.2)


def _closed_run(d, db, procs: dict):
    """Run the control node's ``runs`` job until the source's latest run is closed; that run."""
    def closed() -> bool:
        d.control.watch()
        runs = health.recent_runs(db, "pastes", limit=1)
        return bool(runs) and not d.control.redis().hexists("dumpwatch:runs", "pastes")

    _wait_for(closed, procs)
    return health.recent_runs(db, "pastes", limit=1)[0]


def _raw_hits(site) -> dict[str, int]:
    paths = site.paths()
    return {k: paths.count(f"/raw/{k}") for k in site.bodies}


# -- the seen-set ---------------------------------------------------------------------------------

def test_the_shared_seen_set_keeps_hashes_with_the_sources_recrawl_age(rds, tmp_path):
    from crawler.cluster.seen import RedisSeenSet, page_key

    one = RedisSeenSet(rds, None, "pastes", 3600)
    url = "http://127.0.0.1:9/raw/REPOSTAA"
    one.mark(url, url=url, status="ok", sha256="ab" * 32)
    one.mark("http://127.0.0.1:9/raw/BROKEN", status="error", reason="HTTP 500")
    one.mark_content("cd" * 32, size=10, url=url, verdict="repost", finding_id=None)
    other = RedisSeenSet(rds, None, "pastes", 3600)  # another worker of the same source
    assert other.is_fresh(url) and not other.is_fresh("http://127.0.0.1:9/raw/BROKEN")
    assert not other.is_fresh("http://127.0.0.1:9/raw/NEVER")
    assert other.content_seen("cd" * 32) and not other.content_seen("ef" * 32)
    assert not RedisSeenSet(rds, None, "forum", 3600).is_fresh(url)  # pages are per source
    one.expect("http://127.0.0.1:9/raw/LEDGER")  # a page with one document, not yet scanned
    one.parsed("http://127.0.0.1:9/raw/LEDGER", "http://127.0.0.1:9/raw/LEDGER")
    assert not other.is_fresh("http://127.0.0.1:9/raw/LEDGER")
    one.processed("http://127.0.0.1:9/raw/LEDGER", sha256="ef" * 32)  # its finding sent: done, said at once
    assert other.is_fresh("http://127.0.0.1:9/raw/LEDGER") and one.unfinished() == []
    assert 3500 < rds.ttl(page_key("pastes", url)) <= 3600
    assert 3500 < rds.ttl("dumpwatch:content:" + "cd" * 32) <= 3600
    keys = list(rds.scan_iter())
    assert keys and all("127.0.0.1" not in k and "REPOST" not in k for k in keys)
    assert all("127.0.0.1" not in (rds.get(k) or "") for k in keys)  # no URL in the values either


def test_an_item_page_fetched_by_one_worker_is_not_fetched_again_by_another(homes, paste_site, redis_url, rds):
    from dumpwatch.daemon.scheduler import Daemon

    control, first_home, second_home = homes["control"], homes["worker"], homes["worker2"]
    for home in homes.values():
        _config(home, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    db = store.open_db(control.db_path)
    first = _start_worker(first_home, redis_url)
    try:
        d.crawls.crawl("pastes")
        assert _closed_run(d, db, {first_home: first}).ok
        assert set(_raw_hits(paste_site).values()) == {1}
    finally:
        _stop(first)
    second = _start_worker(second_home, redis_url)  # its own home: an empty local seen-set
    try:
        d.crawls.crawl("pastes")
        run = _closed_run(d, db, {second_home: second})
    finally:
        _stop(second)
    assert paste_site.paths().count("/archive") == 2
    assert _raw_hits(paste_site) == {k: 1 for k in paste_site.bodies}  # each item page fetched once in all
    assert run.ok and run.listed == 6 and run.documents == 0 and run.detail["skipped_seen"] == 6


# -- politeness across workers --------------------------------------------------------------------

@pytest.mark.xdist_group("deployment")  # the gaps between requests: no other deployment on the machine meanwhile
def test_two_workers_keep_the_sources_delay_between_requests_together(homes, redis_url, rds):
    """Two workers, one site, delay = 0.5 s: the site's request log shows 0.5 s between any two
    requests, whoever sent them (each worker alone would keep it only between its own)."""
    from crawler.cluster import workers
    from dumpwatch.daemon.scheduler import Daemon

    delay = 0.5
    site = SiteServer().start()
    _publish(site, {f"NOISE{chr(65 + i // 26)}{chr(65 + i % 26)}": NOISE[i % len(NOISE)] + f"\n#{i}\n"
                    for i in range(24)})
    control = homes["control"]
    _config(control, site, f"delay = {delay}\nconcurrency = 2\n")
    for name in ("worker", "worker2"):
        _config(homes[name], site, f'delay = {delay}\nconcurrency = 2\nuser_agent = "dw-{name}"\n')
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    d.control.redis()  # publishes the enrolled indexes: the workers start their crawls
    procs = {homes[n]: _start_worker(homes[n], redis_url) for n in ("worker", "worker2")}
    try:
        _wait_for(lambda: len(workers.read(rds)) == 2, procs)  # both crawls are up before the push
        d.crawls.crawl("pastes")
        _wait_for(lambda: all(site.hits(f"/raw/{k}") for k in site.bodies), procs)
    finally:
        for proc in procs.values():
            _stop(proc)
        site.stop()
    with site._lock:
        log = sorted(site.log)
    agents = {agent for _, _, agent in log}
    assert agents == {"dw-worker", "dw-worker2"}, agents  # both workers fetched pages of the site
    gaps = [b[0] - a[0] for a, b in zip(log, log[1:])]
    assert len(log) >= 26 and min(gaps) >= 0.8 * delay, sorted(gaps)[:5]  # 0.8: the log's own jitter


# -- runs ------------------------------------------------------------------------------------------

def test_a_pushed_run_is_counted_by_the_workers_and_closed_by_the_control_node(homes, paste_site, redis_url, rds):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli
    from dumpwatch.daemon.scheduler import Daemon

    control, worker = homes["control"], homes["worker"]
    _config(control, paste_site, f'\n[cluster]\nredis_url = "{redis_url}"\n')  # status reads the workers
    _config(worker, paste_site)
    d = Daemon(control, control.load_config())
    db = store.open_db(control.db_path)
    proc = _start_worker(worker, redis_url)
    try:
        d.crawls.crawl("pastes")
        [opened] = db["crawl_runs"].rows_where("source = 'pastes'")
        assert opened["close_reason"] == "running" and opened["finished"] is None
        run = _closed_run(d, db, {worker: proc})
        status = CliRunner().invoke(cli, ["--home", str(control.root), "status", "--json"])
        text = CliRunner().invoke(cli, ["--home", str(control.root), "status"])
    finally:
        _stop(proc)
    responses = len(paste_site.paths())  # the listing, six pastes and robots.txt (a 404)
    assert run.ok and run.close_reason == "finished" and run.detail["cluster"] is True
    assert (run.pages, run.listed, run.documents, run.findings, run.errors, run.bad) == (responses, 6, 6, 3, 0, 0)
    assert run.detail["verdicts"] == {"none": 3, "repost": 3} and run.detail["bytes"] > 0
    assert status.exit_code == 0, status.output
    shown = json.loads(status.output)
    [source] = shown["sources"]
    assert source["last_run"]["findings"] == 3 and source["last_run"]["ok"] and source["problems"] == []
    [crawl] = shown["workers"]
    assert crawl["source"] == "pastes" and crawl["pid"] == proc.pid and crawl["version"] and crawl["host"]
    assert crawl["silent"] is False and crawl["in_progress"] == 0 and crawl["last_document"]
    assert text.exit_code == 0 and f"pid {proc.pid}" in text.output and "SILENT" not in text.output
    assert "ok at" in text.output and "3 new findings" in text.output
    said = (worker.root / "worker.out").read_text()
    assert "Traceback" not in said and "DeprecationWarning" not in said


def _fake_worker(rds, name: str, *, age: float, in_progress: int = 0) -> None:
    from datetime import datetime, timedelta, timezone

    beat = (datetime.now(timezone.utc) - timedelta(seconds=age)).replace(microsecond=0).isoformat()
    rds.hset("dumpwatch:workers", name, json.dumps({"host": name.split(":")[0], "pid": 4242, "version": "0.1.0",
                                                    "source": "pastes", "heartbeat": beat, "in_progress": in_progress,
                                                    "last_document": None}))


def _opened_ago(rds, seconds: float, **changes) -> dict:
    info = json.loads(rds.hget("dumpwatch:runs", "pastes"))
    info.update(opened=info["opened"] - seconds, **changes)
    rds.hset("dumpwatch:runs", "pastes", json.dumps(info))
    return info


def test_a_worker_that_died_during_the_run_makes_it_partial_and_is_said_once(homes, paste_site, redis_url, rds,
                                                                             caplog):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    _config(control, paste_site, f'\n[cluster]\nredis_url = "{redis_url}"\n')
    d = Daemon(control, control.load_config())
    db = store.open_db(control.db_path)
    d.crawls.crawl("pastes")
    assert "run of pastes open since" in CliRunner().invoke(cli, ["--home", str(control.root), "status"]).output
    info = _opened_ago(rds, 100)
    for key, n in {"pages": 5, "listing_ok": 1, "listed": 6, "documents": 3, "findings_sent": 1}.items():
        rds.hincrby("dumpwatch:run:counters:" + info["run"], key, n)
    rds.delete("dumpwatch:requests:pastes")  # the queue is empty; one worker idle, one silent since 40 s
    _fake_worker(rds, "alive:1:pastes", age=0)
    _fake_worker(rds, "dead:2:pastes", age=40, in_progress=3)
    with caplog.at_level(logging.WARNING, logger="dumpwatch.daemon.cluster"):
        for _ in range(3):
            _fake_worker(rds, "alive:1:pastes", age=0)
            d.control.watch()
    run = health.recent_runs(db, "pastes", limit=1)[0]
    assert not run.ok and run.close_reason.startswith("partial: worker dead:2:pastes went silent during the run")
    assert (run.pages, run.listed, run.documents, run.findings) == (5, 6, 3, 1)
    assert caplog.text.count("worker dead:2:pastes is SILENT") == 1  # once, however many checks
    assert d.control.snapshot()["silent_seen"] == 1
    d.write_state()
    assert json.loads((control.root / "daemon.json").read_text())["stats"]["workers"]["silent_seen"] == 1
    shown = CliRunner().invoke(cli, ["--home", str(control.root), "status"])
    assert shown.exit_code == 0, shown.output
    assert "dead pid 4242" in shown.output and "SILENT for" in shown.output and "warned of 1 silent" in shown.output
    assert "FAILED (partial: worker dead:2:pastes went silent" in shown.output
    found = json.loads(CliRunner().invoke(cli, ["--home", str(control.root), "status", "--json"]).output)
    assert {w["name"]: w["silent"] for w in found["workers"]} == {"alive:1:pastes": False, "dead:2:pastes": True}
    assert found["open_runs"] == {} and found["workers_error"] is None


def test_a_run_that_times_out_or_has_no_worker_is_closed_as_an_error(homes, paste_site, redis_url, rds, monkeypatch):
    from crawler.cluster import runs
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    _config(control, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    db = store.open_db(control.db_path)
    d.crawls.crawl("pastes")
    _opened_ago(rds, 10, timeout=5.0)
    _fake_worker(rds, "busy:1:pastes", age=0, in_progress=1)
    assert d.control.watch()["closed"] == {"pastes": "error"}
    run = health.recent_runs(db, "pastes", limit=1)[0]
    assert not run.ok and run.detail["timed_out"]
    assert run.close_reason.startswith("error: no listing page was read; timed out after 10 s with 1 request(s) "
                                       "queued and 1 in progress")
    # the next push: nobody crawls the source any more
    rds.delete("dumpwatch:workers")
    monkeypatch.setattr(runs, "NO_WORKER_GRACE", 0.0)
    d.crawls.crawl("pastes")
    assert d.control.watch()["closed"] == {"pastes": "error"}
    run = health.recent_runs(db, "pastes", limit=1)[0]
    assert "no live worker crawls pastes (1 request(s) queued" in run.close_reason
    assert health.problems(db, "pastes", failing_runs=2)[0][0] == "failing"  # two failed runs: said as for a local crawl


def test_a_push_while_the_previous_run_is_open_closes_it_first(homes, paste_site, redis_url, rds):
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    _config(control, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    db = store.open_db(control.db_path)
    d.crawls.crawl("pastes")
    first = json.loads(rds.hget("dumpwatch:runs", "pastes"))["run"]
    d.crawls.crawl("pastes")
    assert json.loads(rds.hget("dumpwatch:runs", "pastes"))["run"] != first
    assert rds.get("dumpwatch:run:current:pastes") != first
    old = health.get_run(db, first)
    assert old.finished and "not finished when the next run was pushed" in old.close_reason


def test_the_shared_slot_spaces_starts_bounds_leases_and_throttles(rds):
    """The Lua scripts of crawler/cluster/politeness.py, as two workers call them."""
    from crawler.cluster.politeness import ACQUIRE, THROTTLE, slot_keys

    keys = slot_keys("pastes", "paste.example")
    acquire, throttle = rds.register_script(ACQUIRE), rds.register_script(THROTTLE)
    assert acquire(keys=keys, args=[400, 2, "a", 60_000]) == 0  # worker A starts a request
    assert 0 < acquire(keys=keys, args=[400, 2, "b", 60_000]) <= 400  # worker B waits for the delay
    rds.delete(keys[0])  # the delay has passed
    assert acquire(keys=keys, args=[400, 2, "b", 60_000]) == 0
    rds.delete(keys[0])
    assert acquire(keys=keys, args=[400, 2, "c", 60_000]) == -1  # two in flight: concurrency 2 is full
    rds.zrem(keys[1], "a")  # A's response came back
    assert acquire(keys=keys, args=[400, 2, "c", 60_000]) == 0
    rds.delete(keys[0])
    rds.zadd(keys[1], {"b": 0, "c": 0})  # leases of a killed worker, lapsed
    assert acquire(keys=keys, args=[400, 2, "d", 60_000]) == 0
    # AutoThrottle shared: slow answers raise the delay of every worker, an error never lowers it
    assert throttle(keys=[keys[2]], args=[3000, 400, 60_000, 1, 1]) == 1700
    assert throttle(keys=[keys[2]], args=[10, 400, 60_000, 1, 0]) == 1700
    rds.delete(keys[0])
    acquire(keys=keys, args=[400, 2, "e", 60_000])
    assert 400 < rds.pttl(keys[0]) <= 1700


def test_status_says_when_it_cannot_read_the_workers(homes, paste_site):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli
    from tests.helpers.crawlkit import free_port

    control = homes["control"]
    _config(control, paste_site, f'\n[cluster]\nredis_url = "redis://127.0.0.1:{free_port()}/0"\n')  # nobody there
    shown = CliRunner().invoke(cli, ["--home", str(control.root), "status"])
    assert shown.exit_code == 0 and "cannot read the workers from Redis (ConnectionError" in shown.output
    assert "pastes" in shown.output  # the rest of the status is still shown
    found = json.loads(CliRunner().invoke(cli, ["--home", str(control.root), "status", "--json"]).output)
    assert found["workers"] == [] and found["workers_error"].startswith("cannot read the workers")


def test_run_state_that_does_not_read_is_said_not_dropped(rds, caplog):
    """A counter that is not a number is said (not silently left out of the run's counts), and a
    silent worker whose heartbeat time does not read counts as having died during the run."""
    from crawler.cluster import runs

    rds.hset(runs.COUNTERS + "r1", mapping={"pages": 3, "errors": "x"})
    with caplog.at_level(logging.ERROR, logger="crawler.cluster.runs"):
        assert runs.counters_of(rds, "r1") == {"pages": 3}
    assert "counter errors is not a number" in caplog.text
    assert runs._stamp("not a time") > time.time()  # newer than any run's opening


def test_a_request_in_flight_keeps_the_run_open_though_the_heartbeat_says_idle(homes, paste_site, redis_url, rds):
    """A worker pops a request, then waits for its politeness slot: its heartbeat still says idle
    (it says busy once the request reaches the downloader), but the request is in its in-flight
    hash. The run must not close as "no listing page was read" before the listing is fetched."""
    from crawler.cluster import inflight
    from dumpwatch.daemon.scheduler import Daemon

    control = homes["control"]
    _config(control, paste_site)
    d = Daemon(control, control.load_config(), redis_url=redis_url)
    d.crawls.crawl("pastes")
    name = "idle:1:pastes"
    _fake_worker(rds, name, age=0, in_progress=0)
    assert inflight.pop(rds, "dumpwatch:requests:pastes", name, "e1") is not None  # the queue is empty now
    for _ in range(3):
        assert d.control.watch()["closed"] == {}
    assert inflight.ack(rds, name, "e1")
    d.control.watch()
    assert d.control.watch()["closed"] == {"pastes": "error"}  # nothing counted: the fake worker read nothing

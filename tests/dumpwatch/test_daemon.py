"""The real daemon (`python -m dumpwatch.cli daemon` in a child process) against a real pinnwand and a
real webhook receiver on 127.0.0.1; its configuration checks; its job-error listener."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dumpwatch.devkit import synth
from dumpwatch.devkit.localsites import WebhookReceiver, start_pinnwand

ROOT = Path(__file__).resolve().parent.parent.parent
LEAK = "labos-2021"
SECRET = "daemon-test-signing-secret-0123456789"
INTERVAL = 3
NOISE = [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "sku;designation;prix\nA-1001;Vis inox 4x40;0.12\nA-1002;Cheville 6mm;0.05\n",
    "quelqu'un a le lien de la suite ? merci d'avance\n",
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_HOME", "DUMPWATCH_CONFIG")}


def repost(people: list[dict[str, str]], fmt: str, seed: int) -> str:
    header, rows = synth.transform(people, seed=seed)
    return synth.render(header, rows, fmt, seed=seed)


@pytest.fixture
def dhome(enrolled_root, tmp_path) -> Path:
    root = tmp_path / "home"
    shutil.copytree(enrolled_root, root)
    return root


@pytest.fixture
def pinnwand(tmp_path):
    server = start_pinnwand(tmp_path / "pinnwand")
    yield server
    server.stop()


@pytest.fixture
def hook(tmp_path):
    receiver = WebhookReceiver(SECRET.encode()).start()
    yield receiver
    receiver.stop()


def write_config(home: Path, tmp_path: Path, pinnwand_base: str, hook_url: str, *, delay: float = 0,
                 daemon: str = "") -> Path:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    path = home / "dumpwatch.toml"
    path.write_text(f"""
[crawler]
delay = {delay}
autothrottle = false
concurrency = 1
timeout = 5
retry_times = 0
recrawl_age = "1h"

[[sources]]
name = "pastes"
kind = "paste-api"
start_urls = ["{pinnwand_base}/dw/recent.json"]
interval = {INTERVAL}
allow_private_networks = true  # the test servers are on 127.0.0.1

[daemon]
jitter = 0
scan_processes = 0
delivery_interval = 1
crawl_timeout = 120
{daemon}

[alerts]
authority_receiver = "cnil"
group_wait = 0
group_interval = 0
repeat_interval = 0

[[receivers]]
name = "cnil"
type = "webhook"
url = "{hook_url}"
secret_file = "{secret}"
""")
    return path


class DaemonProcess:
    def __init__(self, home: Path, log: Path):
        self.home, self.log_path = home, log
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "daemon"],
                                     cwd=ROOT, env=_env(), stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, timeout: float = 90) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_daemon(tmp_path):
    started: list[DaemonProcess] = []

    def start(home: Path) -> DaemonProcess:
        d = DaemonProcess(home, tmp_path / f"daemon{len(started)}.log")
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.stop()


def query(home: Path, sql: str, params: list | None = None) -> list[tuple]:
    from dumpwatch.store import open_db

    db = open_db(home / "dumpwatch.db")
    try:
        return db.execute(sql, params or []).fetchall()
    finally:
        db.close()


def wait_for(predicate, timeout: float, what: str, daemon: DaemonProcess | None = None, step: float = 0.2):
    """Poll ``predicate`` until true (bounded); fail with the daemon's log if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if daemon is not None and daemon.proc.poll() is not None:
            pytest.fail(f"daemon exited ({daemon.proc.returncode}) while waiting for {what}:\n{daemon.output()[-3000:]}")
        time.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}"
                + (f"\n{daemon.output()[-3000:]}" if daemon else ""))


def finished_runs(home: Path) -> int:
    return query(home, "SELECT count(*) FROM crawl_runs WHERE source = 'pastes' AND finished IS NOT NULL")[0][0]


def new_alert_keys(receiver: WebhookReceiver) -> list[str]:
    keys = []
    for h in receiver.hooks:
        keys += h.json()["new_alerts"]
    return keys


def alerted_urls(receiver: WebhookReceiver) -> list[str]:
    urls = []
    for h in receiver.hooks:
        data = h.json()
        new = set(data["new_alerts"])
        urls += [a["url"] for a in data["alerts"] if a["alert_key"] in new]
    return urls


def status_json(home: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "status", "--json"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- end to end ------------------------------------------------------------------------------------

@pytest.mark.xdist_group("deployment")  # a real daemon and its crawl children: one deployment at a time
def test_repost_pasted_is_alerted_by_webhook_within_one_interval(dhome, tmp_path, pinnwand, hook, people,
                                                                 start_daemon):
    pinnwand.paste(NOISE[0])
    write_config(dhome, tmp_path, pinnwand.base, hook.url)
    d = start_daemon(dhome)
    wait_for(lambda: finished_runs(dhome) >= 1, 60, "the first crawl", d)
    status = status_json(dhome)
    assert status["daemon"]["running"] is True
    jobs = {j["id"]: j for j in status["daemon"]["jobs"]}
    assert {"crawl:pastes", "alerts-delivery", "housekeeping", "source-health"} <= set(jobs)
    assert jobs["crawl:pastes"]["next_run"]
    assert status["sources"][0]["source"] == "pastes" and status["sources"][0]["last_run"]["ok"]
    assert hook.hooks == []  # noise is not alerted

    url = pinnwand.paste(repost(people[0:25], "csv", 1))
    pasted = time.monotonic()
    wait_for(lambda: url in alerted_urls(hook), INTERVAL + 20, "the webhook alert of the repost", d)
    # one crawl interval plus a few seconds: the crawl (a child Python starting Scrapy) and a delivery pass
    assert time.monotonic() - pasted < INTERVAL + 20
    assert all(h.signature_ok for h in hook.hooks)
    status = status_json(dhome)
    assert status["outbox"]["messages"].get("delivered", 0) >= 1
    assert d.stop() == 0
    assert "daemon stopped" in d.output()
    assert status_json(dhome)["daemon"]["running"] is False


@pytest.mark.xdist_group("deployment")  # a real daemon and its crawl children: one deployment at a time
def test_sigterm_during_a_crawl_then_restart_loses_nothing_and_alerts_nothing_twice(
        dhome, tmp_path, pinnwand, hook, people, start_daemon):
    urls = [pinnwand.paste(repost(people[i * 20:(i + 1) * 20], ("csv", "kv", "json")[i % 3], 10 + i))
            for i in range(10)]
    for text in NOISE:
        pinnwand.paste(text)
    # a slow crawl (0.5 s between requests, one at a time: ~7 s), stopped by SIGTERM at its first finding
    # and killed 0.3 s later (a crawl that does not close in time): the worst case of an interrupted crawl
    write_config(dhome, tmp_path, pinnwand.base, hook.url, delay=0.5, daemon="shutdown_grace = 0\nstop_timeout = 0.3")
    d = start_daemon(dhome)
    wait_for(lambda: query(dhome, "SELECT count(*) FROM findings WHERE verdict = 'repost'")[0][0] >= 1, 60,
             "the first finding of the crawl", d, step=0.05)
    assert d.stop() == 0, d.output()[-3000:]  # within the bound of DaemonProcess.stop (else it fails)
    state = json.loads((dhome / "daemon.json").read_text())  # written once more after the shutdown
    assert state["status"] == "stopped" and state["running_crawls"] == {} and state["jobs"] == []
    assert state["stats"]["crawl:pastes"]["runs"] >= 1  # the crawl job that ended during the stop is counted
    runs = query(dhome, "SELECT close_reason, finished FROM crawl_runs ORDER BY id")
    assert runs and all(finished for _, finished in runs), runs  # the interrupted run was recorded
    assert runs[-1][0] != "finished", runs  # ... as interrupted, not as complete
    found_before = query(dhome, "SELECT count(*) FROM findings WHERE verdict = 'repost'")[0][0]
    assert 1 <= found_before < len(urls)

    # the restart need not be slow (what it checks is that nothing is lost or alerted twice): the
    # same source without the 0.5 s between requests
    cfg = dhome / "dumpwatch.toml"
    cfg.write_text(cfg.read_text().replace("delay = 0.5\n", "delay = 0\n", 1))
    d2 = start_daemon(dhome)
    wait_for(lambda: set(urls) <= set(alerted_urls(hook)), 90, "alerts for every repost after the restart", d2)
    runs_now = finished_runs(dhome)
    wait_for(lambda: finished_runs(dhome) >= runs_now + 1, 60, "one more complete crawl", d2)
    time.sleep(2)  # and a delivery pass or two after it
    assert d2.stop() == 0

    findings = query(dhome, "SELECT url, count(*) FROM findings WHERE verdict = 'repost' GROUP BY url")
    assert {u for u, _ in findings} == set(urls)  # nothing lost, noise not found
    assert all(n == 1 for _, n in findings), findings  # one finding per copy
    keys = new_alert_keys(hook)
    assert len(keys) == len(set(keys)) == len(urls), keys  # each copy alerted once
    assert sorted(alerted_urls(hook)) == sorted(urls)
    idem = [h.key for h in hook.hooks]
    assert len(idem) == len(set(idem))  # no message sent twice
    stored = {k for (k,) in query(dhome, "SELECT alert_key FROM alerts WHERE receiver = 'cnil'")}
    assert stored == set(keys)


# -- start-up checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("snippet, key", [
    ('[daemon]\njitter = "soon"\n', "[daemon.jitter]"),
    ('[daemon]\nfrequency = 3\n', "[daemon.frequency]"),
    ('[daemon.cron]\nnowhere = "0 3 * * *"\n', "[sources]"),
    ('[daemon.cron]\npastes = "every day"\n', "[daemon.cron.pastes]"),
    ('[[sources]]\nname = "x"\nkind = "paste-api"\n', "[sources.x.start_urls]"),
])
def test_configuration_error_at_start_exits_2_naming_the_key(tmp_path, snippet, key):
    home = tmp_path / "home"
    home.mkdir()
    base = '[[sources]]\nname = "pastes"\nkind = "paste-api"\nstart_urls = ["http://127.0.0.1:9/x"]\n'
    (home / "dumpwatch.toml").write_text(snippet if snippet.startswith("[[sources]]") else base + snippet)
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "daemon"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert key in proc.stderr and "Error:" in proc.stderr
    assert not (home / "daemon.json").exists()  # nothing started


def test_missing_webhook_secret_is_an_error_at_start(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dumpwatch.toml").write_text('[[receivers]]\nname = "cnil"\ntype = "webhook"\n'
                                         'url = "http://127.0.0.1:9/hook"\nsecret_file = "/nonexistent/secret"\n')
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "daemon"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "receivers.cnil.secret_file" in proc.stderr, proc.stderr


def test_one_daemon_per_home(home):
    from dumpwatch.errors import DumpwatchError
    from dumpwatch.daemon.scheduler import Daemon
    from dumpwatch.daemon.state import is_running

    first = Daemon(home, {})
    first.acquire_lock()
    try:
        assert is_running(home)
        with pytest.raises(DumpwatchError, match="already runs"):
            Daemon(home, {}).acquire_lock()
    finally:
        first.stop()
    assert not is_running(home)


# -- the job listener, the state file and the shutdown ---------------------------------------------

def test_a_job_ending_during_shutdown_never_hangs_it_and_only_the_daemon_thread_asks_the_scheduler(home, caplog):
    """A job that fails is logged and counted and the daemon goes on; a job that ends while
    ``shutdown(wait=True)`` holds the job-store lock does not hang the stop (its listener only counts),
    and the state file written after the shutdown counts it. Only the daemon's own thread ever asks
    the scheduler for its jobs (a job or listener that did could wait for the lock forever)."""
    from apscheduler.schedulers.base import STATE_STOPPED

    from dumpwatch.daemon.scheduler import Daemon
    from dumpwatch.daemon.state import read_state

    ran, in_slow = threading.Event(), threading.Event()
    askers: list[int] = []  # the threads that called get_jobs()

    def boom() -> None:
        raise RuntimeError("synthetic job failure")

    class Probe(Daemon):
        def build(self):
            sched = super().build()
            real_get_jobs = sched.get_jobs

            def get_jobs(*args, **kwargs):
                askers.append(threading.get_ident())
                return real_get_jobs(*args, **kwargs)

            sched.get_jobs = get_jobs

            def slow() -> None:  # still running at the stop; ends once the shutdown has begun
                in_slow.set()
                deadline = time.monotonic() + 30
                while sched.state != STATE_STOPPED and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.3)  # shutdown(wait=True) now holds the job-store lock, waiting for this job

            for job_id, func in (("boom", boom), ("after", ran.set)):
                sched.add_job(func, "interval", seconds=0.2, id=job_id, max_instances=1, coalesce=True,
                              misfire_grace_time=5)
            sched.add_job(slow, "date", id="slow")
            return sched

    d = Probe(home, {})
    runner = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
    runner.start()
    try:
        wait_for(lambda: d.stats.get("boom") and d.stats["boom"].errors >= 2, 20, "two failures of the job")
        ran.clear()
        assert ran.wait(10), "another job no longer runs after failures"
        # the daemon's thread writes the state soon after the job events
        wait_for(lambda: ((read_state(home) or {}).get("stats", {}).get("boom", {}).get("errors") or 0) >= 2,
                 20, "the failures in daemon.json")
        running = read_state(home)
        assert running["status"] == "running" and "boom" in {j["id"] for j in running["jobs"]}
        assert in_slow.wait(10), "the slow job never started"
    finally:
        d.stop_event.set()
        runner.join(60)
    assert not runner.is_alive(), "the daemon did not stop: a job ending during the shutdown hangs it"
    assert d.stats["boom"].last_error == "RuntimeError: synthetic job failure"
    assert any("job boom failed" in r.getMessage() for r in caplog.records)
    state = read_state(home)
    assert state["status"] == "stopped" and state["jobs"] == [] and state["running_crawls"] == {}
    assert state["stats"]["slow"]["runs"] == 1 and state["stats"]["slow"]["errors"] == 0  # ended in the shutdown
    assert state["stats"]["boom"]["errors"] == d.stats["boom"].errors >= 2
    assert askers and set(askers) == {runner.ident}, "a job or listener called into the scheduler"


def test_no_private_scheduler_attribute_is_used():
    """The daemon uses APScheduler 3.x's public API only (a private lock once hid a deadlock)."""
    import re

    source = "\n".join(p.read_text() for p in sorted((ROOT / "dumpwatch" / "daemon").glob("*.py")))
    assert not re.findall(r"[.'\"]_(?:jobstores|executors|listeners|pending_jobs|thread|event)\w*", source)
    assert "/proc" not in source  # the daemon holds its crawl children; it never looks for them


def test_the_daemon_signals_its_own_crawl_children_even_one_started_after_the_signal(home, monkeypatch):
    """Each crawl hands its child process to the daemon as it starts (``crawl_source(on_start=...)``):
    the stop signals the running children, and a crawl that was already due but had not started its
    child gets the signal as soon as it does; after close() no crawl starts."""
    import crawler.run
    from crawler.health import CrawlRun
    from crawler.sources import load_crawl_config
    from dumpwatch.daemon.jobs import Crawls
    from dumpwatch.daemon.settings import DaemonSettings

    config = {"sources": [{"name": name, "kind": "paste-api", "start_urls": ["http://127.0.0.1:9/x"]}
                          for name in ("early", "late")]}
    children: dict[str, subprocess.Popen] = {}
    late_may_start = threading.Event()

    def crawl_source(src, *, on_start, **kwargs):  # stands for the Scrapy child: a process that waits
        if src.name == "late":
            assert late_may_start.wait(30)
        proc = subprocess.Popen(["sleep", "60"])
        children[src.name] = proc
        on_start(proc)
        code = proc.wait(timeout=60)
        return CrawlRun(source=src.name, kind=src.kind, ok=False, returncode=code, close_reason="stopped")

    monkeypatch.setattr(crawler.run, "crawl_source", crawl_source)
    crawls = Crawls(home, config, load_crawl_config(config), DaemonSettings(), on_change=lambda: None)
    threads = [threading.Thread(target=crawls.crawl, args=[name], daemon=True) for name in ("early", "late")]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: "early" in children and set(crawls.snapshot()[0]) == {"early", "late"}, 20,
                 "both crawls running, the first with its child")
        crawls.close()
        assert crawls.signal(signal.SIGINT) == ["early"]  # the only child started so far
        late_may_start.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert children["early"].returncode == children["late"].returncode == -signal.SIGINT
        running, results = crawls.snapshot()
        assert running == {} and not crawls.busy()
        assert results["early"]["returncode"] == results["late"]["returncode"] == -signal.SIGINT
        assert crawls.crawl("early") is None  # closed: no new crawl
    finally:
        late_may_start.set()
        for proc in children.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_housekeeping_forgets_old_state_keeps_alerts_due(home):
    from datetime import datetime, timedelta, timezone

    from dumpwatch.daemon.housekeeping import Retention, housekeep
    from dumpwatch.store import open_db

    db = open_db(home.db_path)
    old = (datetime.now(timezone.utc) - timedelta(days=400)).replace(microsecond=0).isoformat()
    new = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    for key, seen in (("http://a/old", old), ("http://a/new", new)):
        db["crawl_seen_urls"].insert({"key": key, "url": key, "source": "s", "first_seen": seen, "last_seen": seen,
                                      "status": "ok"})
    base = {"verdict": "repost", "leak": LEAK, "source": "s", "url": "u", "first_seen": old, "detected_at": old,
            "matched_records": 5, "records_seen": 5, "identifiers": "{}", "labs": "{}", "categories": "[]",
            "sample": "[]", "errors": "[]", "detail": "{}"}
    inc_closed = db["alert_incidents"].insert({"group_key": "g1", "status": "closed", "closed_at": old,
                                               "last_alert_at": old}).last_pk
    inc_open = db["alert_incidents"].insert({"group_key": "g2", "status": "open", "last_alert_at": old}).last_pk
    f_done = db["findings"].insert(dict(base, dedup_key="a")).last_pk
    f_open = db["findings"].insert(dict(base, dedup_key="b")).last_pk
    f_new = db["findings"].insert(dict(base, dedup_key="c", detected_at=new)).last_pk
    db["alerts"].insert({"alert_key": "k1", "finding_id": f_done, "incident_id": inc_closed, "status": "notified"})
    db["alerts"].insert({"alert_key": "k2", "finding_id": f_open, "incident_id": inc_open, "status": "pending"})
    db["alert_notifications"].insert({"idempotency_key": "n1", "incident_id": inc_closed, "status": "delivered"})
    logs = home.root / "logs"
    logs.mkdir()
    (logs / "crawl-s.log").write_bytes(b"x" * 2000)
    report = housekeep(db, retention=Retention(seen_retention=90 * 86400, evidence_retention=365 * 86400,
                                                max_log_bytes=1000), logs_dir=logs)
    assert report.seen_urls == 1 and report.findings == 1 and report.incidents == 1 and report.logs_rotated == 1
    assert [r[0] for r in db.execute("SELECT key FROM crawl_seen_urls")] == ["http://a/new"]
    assert {r[0] for r in db.execute("SELECT id FROM findings")} == {f_open, f_new}  # open incident kept
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
    assert (logs / "crawl-s.log.1").exists()


class HangingServer:
    """Accepts connections on 127.0.0.1 and never answers: a site that hangs."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns: list = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.xdist_group("deployment")  # a real daemon and its crawl children: one deployment at a time
def test_a_hanging_crawl_is_stopped_by_its_time_limit_and_the_daemon_goes_on(dhome, tmp_path, hook, start_daemon):
    hang = HangingServer()
    try:
        # the site hangs; the crawl's time limit (2 s) stops it before Scrapy's own download timeout (5 s)
        write_config(dhome, tmp_path, f"http://127.0.0.1:{hang.port}", hook.url,
                     daemon="shutdown_grace = 0\nstop_timeout = 1")
        cfg = dhome / "dumpwatch.toml"
        cfg.write_text(cfg.read_text().replace("crawl_timeout = 120", "crawl_timeout = 2"))
        d = start_daemon(dhome)
        wait_for(lambda: query(dhome, "SELECT count(*) FROM crawl_runs WHERE finished IS NOT NULL AND ok = 0")[0][0] >= 1
                 and query(dhome, "SELECT count(*) FROM crawl_runs")[0][0] >= 2,
                 60, "a crawl stopped by its time limit, and the next one started", d)
        assert "took longer than 2 s: stopping it" in d.output()
        assert d.proc.poll() is None  # still running
        status = status_json(dhome)
        assert status["daemon"]["running"] and status["sources"][0]["last_run"]["ok"] is False
        assert d.stop() == 0
    finally:
        hang.stop()


def test_status_text_shows_jobs_sources_and_outbox_while_the_daemon_runs(home):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli
    from dumpwatch.daemon.scheduler import Daemon

    (home.root / "dumpwatch.toml").write_text(
        '[[sources]]\nname = "pastes"\nkind = "paste-api"\nstart_urls = ["http://127.0.0.1:9/recent.json"]\n'
        'interval = "10m"\n[daemon.cron]\npastes = "30 3 * * *"\n')
    d = Daemon(home, home.load_config())
    d.acquire_lock()
    sched = d.build()
    sched.start(paused=True)
    try:
        d.write_state()
        out = CliRunner().invoke(cli, ["--home", str(home.root), "status"], catch_exceptions=False).output
        assert "daemon: running, pid" in out
        assert "crawl:pastes" in out and "T03:3" in out  # the crontab line's next run (with jitter)
        assert "pastes" in out and "never crawled" in out
        assert "outbox: 0 messages" in out
    finally:
        sched.shutdown()
        d.stop()
    out = CliRunner().invoke(cli, ["--home", str(home.root), "status"], catch_exceptions=False).output
    assert "daemon: not running (last seen" in out and "stopped" in out

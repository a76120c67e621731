"""Writes that cannot be lost: several real processes write one database at once (issue 8, case 2).

Each process does what a crawl and the daemon do, many times over: records findings through the
outbox (a read, then inserts), marks pages and contents seen, records its crawl runs, and runs
delivery passes. Under WAL a deferred transaction that reads then writes failed at once with
"database is locked" when another process committed in between; every write now takes the write
lock first (``dumpwatch.store.write``) and waits for it, so every write lands.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

PROCESSES = 3
ROUNDS = 40
SHARED = "shared"


def _config() -> dict:
    return {"alerts": {"authority_receiver": "cnil", "group_wait": 0, "group_interval": 0, "repeat_interval": 0},
            "receivers": [{"name": "cnil", "type": "webhook", "url": "http://127.0.0.1:9/hook",
                           "secret_file": "/nonexistent"}], "contacts": {}}


def _finding(url: str, sha_of: str):
    from matchers.finding import Finding

    return Finding(input=url, verdict="repost", leak="labos-2021", matched_records=3, records_seen=5,
                   identifiers={"nir": 3}, labs={"Biolab": 3}, categories=("nir",),
                   sha256=hashlib.sha256(sha_of.encode()).hexdigest(), size=100)


def _writer(db_path: str, wid: int, rounds: int, sent_log: str, queue) -> None:
    """One 'crawler + delivery' process; reports the errors it met (none expected)."""
    import logging

    logging.disable(logging.WARNING)  # "no contact for lab": expected, not what this test is about
    from alerts import record_finding
    from alerts.delivery import deliver_due
    from alerts.outbox import alerting_of
    from crawler import health
    from crawler.seen import SeenSet
    from dumpwatch import store

    config = _config()
    alerting = alerting_of(config)

    def sender(receiver, message, key):
        with open(sent_log, "a") as fh:  # one short line per send: O_APPEND keeps lines whole
            fh.write(f"{key}\n")
        return "ok"

    errors: list[str] = []
    db = store.open_db(db_path)
    seen = SeenSet(db, f"src{wid}", 3600)
    for i in range(rounds):
        url = f"http://127.0.0.1/{wid}/{i}"
        try:
            run_id = health.start_run(db, source=f"src{wid}", kind="paste-api", run_key=f"{wid}-{i}")
            finding_id = record_finding(db, _finding(url, url), source=f"src{wid}", url=url, config=config)
            # the same copy, posted on every source at once: one finding whoever records it
            record_finding(db, _finding(f"{url}#copy", f"{SHARED}-{i}"), source=f"src{wid}", url=f"{url}#copy",
                           config=config)
            seen.mark_content(hashlib.sha256(url.encode()).hexdigest(), size=100, url=url, verdict="repost",
                              finding_id=finding_id)
            seen.mark(url, url=url, status="ok")
            seen.flush()
            health.finish_run(db, run_id, ok=True, close_reason="finished", counters={"documents": 2})
            if i % 5 == wid % 5:
                deliver_due(db, alerting, sender=sender)
        except Exception as exc:  # noqa: BLE001 - the test reports them all
            errors.append(f"{type(exc).__name__}: {exc}")
    queue.put((wid, errors))


def test_concurrent_processes_lose_no_write(tmp_path):
    from alerts.delivery import deliver_due
    from alerts.outbox import alerting_of
    from dumpwatch import store

    db_path = tmp_path / "home" / "dumpwatch.db"
    store.open_db(db_path).close()
    sent_log = tmp_path / "sent.log"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(db_path), w, ROUNDS, str(sent_log), queue))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        reports = dict(queue.get(timeout=150) for _ in procs)
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    errors = [e for errs in reports.values() for e in errs]
    assert errors == [], errors[:5]
    assert all(p.exitcode == 0 for p in procs)

    # a last pass sends what is left; each message was sent exactly once across the processes
    db = store.open_db(db_path)

    def sender(receiver, message, key):
        with open(sent_log, "a") as fh:
            fh.write(f"{key}\n")
        return "ok"

    deliver_due(db, alerting_of(_config()), sender=sender)
    expected = PROCESSES * ROUNDS + ROUNDS  # one per process and round, plus one per shared copy
    assert db["findings"].count == expected
    assert db.execute("SELECT count(DISTINCT finding_id) FROM alerts").fetchone()[0] == expected
    assert db.execute("SELECT count(*) FROM crawl_seen_urls").fetchone()[0] == PROCESSES * ROUNDS
    assert db.execute("SELECT count(*) FROM crawl_seen_content").fetchone()[0] == PROCESSES * ROUNDS
    assert db.execute("SELECT count(*) FROM crawl_runs WHERE finished IS NOT NULL AND ok = 1").fetchone()[0] == \
        PROCESSES * ROUNDS
    assert db.execute("SELECT count(*) FROM alerts WHERE status != 'notified'").fetchone()[0] == 0
    delivered = {k for (k,) in db.execute("SELECT idempotency_key FROM alert_notifications WHERE status = 'delivered'")}
    assert db.execute("SELECT count(*) FROM alert_notifications WHERE status != 'delivered'").fetchone()[0] == 0
    sent = Path(sent_log).read_text().split()
    assert sorted(sent) == sorted(delivered)  # every message sent, none twice


def test_a_write_that_waits_too_long_says_so_and_writes_nothing(tmp_path, monkeypatch):
    """Past the bound (DUMPWATCH_WRITE_TIMEOUT), a clear error names the database and the fix."""
    from dumpwatch import store

    db_path = tmp_path / "home" / "dumpwatch.db"
    holder = store.open_db(db_path)
    waiter = store.open_db(db_path)
    monkeypatch.setenv(store.WRITE_TIMEOUT_ENV, "0.3")
    with store.write(holder):
        holder.execute("INSERT INTO crawl_seen_urls (key, url, source, status) VALUES ('k', 'k', 's', 'ok')")
        with pytest.raises(store.DatabaseBusy) as err:
            with store.write(waiter):
                waiter.execute("INSERT INTO crawl_seen_urls (key, url, source, status) VALUES ('w', 'w', 's', 'ok')")
    message = str(err.value)
    assert str(db_path) in message and store.WRITE_TIMEOUT_ENV in message and "locked" in message
    assert isinstance(err.value, store.StorageError)
    assert [k for (k,) in waiter.execute("SELECT key FROM crawl_seen_urls")] == ["k"]  # the holder's only
    assert not waiter.conn.in_transaction


def test_write_timeout_setting_is_checked(monkeypatch):
    from dumpwatch import store
    from dumpwatch.errors import DumpwatchError

    monkeypatch.setenv(store.WRITE_TIMEOUT_ENV, "soon")
    with pytest.raises(DumpwatchError, match=store.WRITE_TIMEOUT_ENV):
        store.write_timeout()
    monkeypatch.delenv(store.WRITE_TIMEOUT_ENV)
    assert store.write_timeout() == store.DEFAULT_WRITE_TIMEOUT


def test_nested_writes_are_one_transaction(tmp_path):
    from dumpwatch import store

    db = store.open_db(tmp_path / "d.db")
    with pytest.raises(RuntimeError):
        with store.write(db):
            db.execute("INSERT INTO crawl_seen_urls (key, url, source, status) VALUES ('a', 'a', 's', 'ok')")
            with store.write(db):
                db.execute("INSERT INTO crawl_seen_urls (key, url, source, status) VALUES ('b', 'b', 's', 'ok')")
            raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM crawl_seen_urls").fetchone()[0] == 0
    assert os.path.exists(tmp_path / "d.db")

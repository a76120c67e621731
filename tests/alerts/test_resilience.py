"""Durable delivery: a receiver down then up, dead letters and the fallback, and a real kill -9 of a
process in the middle of sending."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers.alertkit import WebhookReceiver, base_config, free_port, make_finding
from alerts import record_finding
from dumpwatch import clock
from alerts.delivery import backoff, deliver_due
from alerts.outbox import alerting_of
from alerts.settings import Alerting
from dumpwatch.store import open_db

REPO = Path(__file__).resolve().parents[2]


def _statuses(db) -> dict[str, str]:
    return {k: s for k, s in db.execute("SELECT idempotency_key, status FROM alert_notifications")}


def test_backoff_is_capped_exponential_with_jitter():
    import random

    a = Alerting(retry_base=10, retry_cap=100)
    rng = random.Random(1)
    for attempt, full in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (12, 100)):
        delays = [backoff(attempt, a, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len({round(d, 6) for d in delays}) > 1  # jitter


def test_receiver_down_then_up_delivers_each_alert_once_back(home, people, secret_file, smtp_server):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"  # nothing listens there yet: the receiver is down
    cfg = base_config(cnil_url=url, secret_file=secret_file, smtp_port=smtp_server.port, labs=[],
                      alerts={"retry_base": "1m", "retry_cap": "10m", "max_age": "1d"})
    alerting = alerting_of(cfg)
    db = open_db(home.db_path)
    t0 = clock.now()
    for i, leak in enumerate(("leak-a", "leak-b", "leak-c")):
        record_finding(db, make_finding(people[i * 10:(i + 1) * 10], url=f"https://p.example/{i}", leak=leak),
                       config=cfg, now=t0)
    first = deliver_due(db, alerting, now=t0)
    assert first.queued == 3 and first.delivered == 0
    # One attempt hits the dead receiver; the other two wait for the receiver's backoff.
    assert first.failed == 1 and first.deferred == 2
    state = db["alert_receivers"].get("cnil")
    assert state["consecutive_failures"] == 1 and "ConnectError" in state["last_error"]

    # Still down, before the backoff ends: nothing is attempted.
    again = deliver_due(db, alerting, now=t0 + timedelta(seconds=5))
    assert again.failed == 0 and again.delivered == 0 and again.deferred == 2

    receiver = WebhookReceiver(port=port).start()
    try:
        back = deliver_due(db, alerting, now=t0 + timedelta(minutes=30))
        assert back.delivered == 3, back.summary()
        keys = receiver.keys()
        assert set(keys) == set(_statuses(db)) and all(n == 1 for n in keys.values())
        assert set(_statuses(db).values()) == {"delivered"}
        assert db["alert_receivers"].get("cnil")["consecutive_failures"] == 0
        # A later pass sends nothing again.
        assert deliver_due(db, alerting, now=t0 + timedelta(hours=2)).delivered == 0
        assert len(receiver.hooks) == 3
    finally:
        receiver.stop()


def test_dead_letter_after_max_age_goes_to_fallback(home, people, secret_file, smtp_server):
    url = f"http://127.0.0.1:{free_port()}/hook"  # never up
    cfg = base_config(cnil_url=url, secret_file=secret_file, smtp_port=smtp_server.port, labs=[],
                      alerts={"retry_base": "1m", "retry_cap": "5m", "max_age": "1h", "fallback_receiver": "oncall",
                              "language": "en"})
    cfg["receivers"].append({"name": "oncall", "type": "email", "to": ["oncall@monitor.example"],
                             "smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "security": "none"})
    alerting = alerting_of(cfg)
    db = open_db(home.db_path)
    t0 = clock.now()
    record_finding(db, make_finding(people[:20], url="https://p.example/dead"), config=cfg, now=t0)
    t = t0
    for _ in range(30):  # bounded: retries until the message is dead
        report = deliver_due(db, alerting, now=t)
        if report.dead:
            break
        t += timedelta(minutes=6)
    assert report.dead == 1
    row = db.execute("SELECT status, attempts, last_error FROM alert_notifications WHERE receiver = 'cnil'").fetchone()
    assert row[0] == "dead" and row[1] >= 5 and "ConnectError" in row[2]
    # The copy for the fallback receiver goes out in the next pass, by email.
    final = deliver_due(db, alerting, now=t)
    assert final.delivered == 1
    (mail,) = smtp_server.mails
    assert mail.rcpt_tos == ["oncall@monitor.example"]
    assert b"Undeliverable to cnil" in mail.content
    fb = db.execute("SELECT fallback_of, idempotency_key FROM alert_notifications WHERE receiver = 'oncall'").fetchone()
    assert fb[0] is not None and fb[1].endswith("-fb")
    # Retrying the dead message by hand makes it due again.
    from alerts.delivery import retry

    nid = db.execute("SELECT id FROM alert_notifications WHERE receiver = 'cnil'").fetchone()[0]
    assert retry(db, alerting, nid, now=t)["status"] == "pending"


def _write_config(home, cfg: dict) -> None:
    """A dumpwatch.toml for a subprocess (only the shapes these tests use)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(v)

    lines = ["[alerts]"] + [f"{k} = {val(v)}" for k, v in cfg["alerts"].items()]
    for r in cfg["receivers"]:
        lines += ["", "[[receivers]]"] + [f"{k} = {val(v)}" for k, v in r.items()]
    lines += ["", "[contacts]"] + [f"{json.dumps(k)} = {val(v)}" for k, v in cfg["contacts"].items()]
    home.config_path.write_text("\n".join(lines) + "\n")


def _send(home, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "alerts", "send"],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO))


def test_kill_9_mid_delivery_loses_nothing(home, people, secret_file, smtp_server):
    receiver = WebhookReceiver(slow=True).start()
    try:
        cfg = base_config(cnil_url=receiver.url, secret_file=secret_file, smtp_port=smtp_server.port, labs=[])
        _write_config(home, cfg)
        db = open_db(home.db_path)
        for i, leak in enumerate(("leak-a", "leak-b", "leak-c")):
            record_finding(db, make_finding(people[i * 10:(i + 1) * 10], url=f"https://p.example/k{i}", leak=leak),
                           config=cfg)
        db.close()

        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "alerts", "send"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(REPO))
        try:
            assert receiver.arrived.wait(60), "the delivering process never reached the receiver"
            os.kill(proc.pid, signal.SIGKILL)  # a real kill -9, mid-request
        finally:
            proc.communicate(timeout=30)  # reaps the process and closes its pipes
        assert proc.returncode == -signal.SIGKILL
        in_flight = receiver.hooks[0].key

        db = open_db(home.db_path)
        rows = {k: (s, w) for k, s, w in db.execute(
            "SELECT idempotency_key, status, claimed_by FROM alert_notifications")}
        assert len(rows) == 3
        assert rows[in_flight][0] == "sending" and rows[in_flight][1].endswith(f":{proc.pid}")
        assert [s for k, (s, _) in rows.items() if k != in_flight] == ["pending", "pending"]
        db.close()

        # Restart: the receiver answers at once now; the killed sender's message is sent again.
        receiver.slow = False
        receiver.release.set()
        done = _send(home)
        assert done.returncode == 0, done.stderr
        assert "delivered 3" in done.stdout and "reclaimed 1" in done.stdout

        db = open_db(home.db_path)
        assert set(_statuses(db).values()) == {"delivered"}
        keys = receiver.keys()
        assert set(keys) == set(rows)  # nothing lost
        assert keys[in_flight] == 2  # the duplicate carries the same idempotency key
        assert sum(keys.values()) == 4
        bodies = {}
        for h in receiver.hooks:
            assert h.signature_ok
            bodies.setdefault(h.key, set()).add(json.dumps({k: v for k, v in h.json().items()}, sort_keys=True))
        assert len(bodies[in_flight]) == 1  # byte-for-byte the same message (frozen in the outbox)
        # And once more: nothing left to send.
        assert "delivered 0" in _send(home).stdout
        assert len(receiver.hooks) == 4
    finally:
        receiver.stop()


def test_finding_and_alerts_are_one_transaction(home, people, secret_file, smtp_server, monkeypatch):
    """If enqueuing the alerts fails half-way, the finding is not stored either (and can be retried)."""
    import alerts.grouping as grouping

    lab = people[0]["laboratoire"]
    cfg = base_config(cnil_url="http://127.0.0.1:9/hook", secret_file=secret_file, smtp_port=smtp_server.port,
                      labs=[lab])
    db = open_db(home.db_path)
    calls = {"n": 0}
    real = grouping.incident_for

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(grouping, "incident_for", crash_on_second)
    finding = make_finding([p for p in people if p["laboratoire"] == lab][:10], url="https://p.example/tx")
    with pytest.raises(RuntimeError, match="power cut"):
        record_finding(db, finding, config=cfg)
    for table in ("findings", "alerts", "alert_incidents"):
        assert db[table].count == 0, table
    monkeypatch.setattr(grouping, "incident_for", real)
    assert record_finding(db, finding, config=cfg) is not None
    assert db["alerts"].count == 2 and db["findings"].count == 1

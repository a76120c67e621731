"""Grouping and dedup: a copy alerts once; new copies of a leak join its incident and go out together,
on group_wait / group_interval / repeat_interval (time injected, never slept); the authority digest;
silences."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.alertkit import Capture, base_config, make_finding
from alerts import record_finding, silences
from dumpwatch import clock
from alerts.delivery import deliver_due
from alerts.grouping import acknowledge
from alerts.outbox import alerting_of
from dumpwatch.store import open_db


def _cfg(labs=(), **alerts):
    return base_config(cnil_url="http://127.0.0.1:9/hook", secret_file="/nonexistent", smtp_port=9,
                       labs=list(labs), alerts={"language": "en", **alerts})  # subjects pinned in English


def test_same_copy_never_alerts_twice(people):
    cfg = _cfg()
    db = open_db(None)
    f = make_finding(people[:10], url="https://p.example/a", sha="a" * 64)
    assert record_finding(db, f, config=cfg) is not None
    assert record_finding(db, f, config=cfg) is None
    # The same bytes at another address are the same copy too.
    moved = make_finding(people[:10], url="https://mirror.example/a", sha="a" * 64)
    assert record_finding(db, moved, config=cfg) is None
    cap = Capture()
    deliver_due(db, alerting_of(cfg), sender=cap)
    assert deliver_due(db, alerting_of(cfg), sender=cap, now=clock.now() + timedelta(days=1)).queued == 0
    assert len(cap.to("cnil")) == 1 and db["alerts"].count == 1


def test_new_copies_join_the_incident_and_go_out_grouped(people):
    cfg = _cfg(group_wait="30s", group_interval="5m", repeat_interval=0)
    alerting = alerting_of(cfg)
    db = open_db(None)
    cap = Capture()
    t0 = clock.now()
    record_finding(db, make_finding(people[:10], url="https://p.example/1"), config=cfg, now=t0)
    assert deliver_due(db, alerting, sender=cap, now=t0 + timedelta(seconds=10)).queued == 0  # group_wait
    record_finding(db, make_finding(people[10:20], url="https://p.example/2"), config=cfg, now=t0 + timedelta(seconds=20))
    first = deliver_due(db, alerting, sender=cap, now=t0 + timedelta(seconds=31))
    assert first.queued == 1 and first.delivered == 1
    (msg,) = cap.to("cnil")
    assert len(msg.data["alerts"]) == 2 and msg.data["kind"] == "alert"  # both copies in one message

    t1 = t0 + timedelta(seconds=31)
    for i in range(3):  # three more copies of the same leak, soon after
        record_finding(db, make_finding(people[30 + 10 * i:40 + 10 * i], url=f"https://p.example/n{i}"),
                       config=cfg, now=t1 + timedelta(seconds=10 * (i + 1)))
    assert deliver_due(db, alerting, sender=cap, now=t1 + timedelta(minutes=4)).queued == 0  # group_interval
    update = deliver_due(db, alerting, sender=cap, now=t1 + timedelta(minutes=5, seconds=1))
    assert update.queued == 1
    second = cap.to("cnil")[1]
    assert second.data["kind"] == "update" and len(second.data["new_alerts"]) == 3
    assert len(second.data["alerts"]) == 5 and second.data["incident"]["id"] == msg.data["incident"]["id"]
    assert second.subject.startswith("[dumpwatch] Update:") and "5 copies" in second.subject
    assert second.data["article33"]["deadline"] == msg.data["article33"]["deadline"]  # from first detection
    assert db.execute("SELECT count(*) FROM alert_incidents").fetchone()[0] == 1
    # A different leak is another incident, another message.
    record_finding(db, make_finding(people[:5], url="https://p.example/x", leak="other-leak"), config=cfg,
                   now=t1 + timedelta(minutes=6))
    assert deliver_due(db, alerting, sender=cap, now=t1 + timedelta(minutes=7)).queued == 1
    assert db.execute("SELECT count(*) FROM alert_incidents").fetchone()[0] == 2


def test_repeat_interval_reminds_until_acknowledged(people):
    cfg = _cfg(group_wait=0, repeat_interval="4h")
    alerting = alerting_of(cfg)
    db = open_db(None)
    cap = Capture()
    t0 = clock.now()
    record_finding(db, make_finding(people[:10], url="https://p.example/r"), config=cfg, now=t0)
    deliver_due(db, alerting, sender=cap, now=t0)
    assert deliver_due(db, alerting, sender=cap, now=t0 + timedelta(hours=3)).queued == 0
    assert deliver_due(db, alerting, sender=cap, now=t0 + timedelta(hours=4, seconds=1)).queued == 1
    reminder = cap.to("cnil")[1]
    assert reminder.data["kind"] == "reminder" and reminder.subject.startswith("[dumpwatch] Reminder:")
    incident = db.execute("SELECT id FROM alert_incidents").fetchone()[0]
    assert acknowledge(db, incident, author="cnil-agent", now=t0 + timedelta(hours=5))
    assert deliver_due(db, alerting, sender=cap, now=t0 + timedelta(hours=12)).queued == 0
    # Closed: the next copy opens a new incident.
    record_finding(db, make_finding(people[50:60], url="https://p.example/r2"), config=cfg,
                   now=t0 + timedelta(hours=13))
    assert db.execute("SELECT count(*) FROM alert_incidents").fetchone()[0] == 2


def test_incident_closes_after_ttl(people):
    cfg = _cfg(group_wait=0, repeat_interval=0, incident_ttl="72h")
    alerting = alerting_of(cfg)
    db = open_db(None)
    t0 = clock.now()
    record_finding(db, make_finding(people[:10], url="https://p.example/t1"), config=cfg, now=t0)
    deliver_due(db, alerting, sender=Capture(), now=t0)
    deliver_due(db, alerting, sender=Capture(), now=t0 + timedelta(hours=73))
    assert db.execute("SELECT status, closed_by FROM alert_incidents").fetchone() == ("closed", "ttl")


def test_authority_digest(people):
    cfg = _cfg(group_wait=0, authority_digest=True, digest_interval="1d")
    alerting = alerting_of(cfg)
    db = open_db(None)
    cap = Capture()
    t0 = clock.now()
    record_finding(db, make_finding(people[:10], url="https://p.example/d1", leak="leak-a"), config=cfg, now=t0)
    record_finding(db, make_finding(people[10:20], url="https://p.example/d2", leak="leak-b"), config=cfg, now=t0)
    deliver_due(db, alerting, sender=cap, now=t0)
    (digest,) = cap.to("cnil")
    assert digest.data["kind"] == "digest" and {a["leak"] for a in digest.data["alerts"]} == {"leak-a", "leak-b"}
    record_finding(db, make_finding(people[20:30], url="https://p.example/d3", leak="leak-c"), config=cfg,
                   now=t0 + timedelta(hours=1))
    assert deliver_due(db, alerting, sender=cap, now=t0 + timedelta(hours=23)).queued == 0
    assert deliver_due(db, alerting, sender=cap, now=t0 + timedelta(days=1, seconds=1)).queued == 1
    nxt = cap.to("cnil")[1]
    assert [a["leak"] for a in nxt.data["alerts"]] == ["leak-c"]  # only what is new since the last digest


def test_silences_hold_then_expire(people):
    labs = sorted({p["laboratoire"] for p in people})[:2]
    cfg = _cfg(labs, group_wait=0, group_interval=0, repeat_interval=0)
    alerting = alerting_of(cfg)
    db = open_db(None)
    cap = Capture()
    t0 = clock.now()
    sid = silences.add(db, silences.parse_matchers([f"lab={labs[0]}"]), author="dpo", comment="lab informed",
                       ends_at=t0 + timedelta(hours=2), now=t0)
    silences.add(db, {"leak": "test-*"}, author="ops", comment="test leak",
                 ends_at=t0 + timedelta(days=30), now=t0)
    copy = [p for p in people if p["laboratoire"] in labs][:40]
    record_finding(db, make_finding(copy, url="https://p.example/s1"), config=cfg, now=t0)
    record_finding(db, make_finding(people[:5], url="https://p.example/s2", leak="test-leak"), config=cfg, now=t0)
    deliver_due(db, alerting, sender=cap, now=t0 + timedelta(seconds=1))
    assert sorted(r for r, _, _ in cap.sent) == ["cnil", "lab1"]  # lab0 and the test leak are silenced
    assert all(m.data["alerts"][0]["leak"] == "labos-2021" for _, m, _ in cap.sent)
    silenced = db.execute("SELECT receiver, json_extract(labels, '$.leak') FROM alerts WHERE status = 'silenced'").fetchall()
    assert ("lab0", "labos-2021") in silenced and ("cnil", "test-leak") in silenced
    silences.expire(db, sid, now=t0 + timedelta(minutes=30))
    assert [s.id for s in silences.listed(db, now=t0 + timedelta(minutes=31))] == [sid + 1]
    record_finding(db, make_finding(copy[:20], url="https://p.example/s3"), config=cfg, now=t0 + timedelta(hours=1))
    deliver_due(db, alerting, sender=cap, now=t0 + timedelta(hours=1, seconds=1))
    assert len(cap.to("lab0")) == 1  # the new copy goes out; the silenced one stays silenced
    assert len(cap.to("lab0")[0].data["alerts"]) == 1


def test_same_copy_recorded_while_another_process_writes_it(home, people):
    """Two connections (two crawler processes) on one copy: the second waits for the first's write
    lock, then sees the copy recorded: one finding, one alert, and no "database is locked"."""
    import threading

    from dumpwatch import store

    cfg = _cfg()
    f = make_finding(people[:10], url="https://p.example/race", sha="c" * 64)
    holding, results = threading.Event(), {}

    def first() -> None:
        b = open_db(home.db_path)
        with store.write(b):
            results["b"] = record_finding(b, f, config=cfg)
            holding.set()
            threading.Event().wait(0.5)  # still holding the write lock when a starts
        b.close()

    t = threading.Thread(target=first)
    t.start()
    assert holding.wait(30)
    a = open_db(home.db_path)
    assert record_finding(a, f, config=cfg) is None  # waited for b, then saw its copy
    t.join(30)
    assert results["b"] is not None
    assert a["findings"].count == 1 and a["alerts"].count == 1

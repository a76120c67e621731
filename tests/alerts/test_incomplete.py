"""A finding the engine could not read completely is stored as such and every alert says its count
is a lower bound (issue 8: partial results are marked, never reported as the whole)."""

from __future__ import annotations

import dataclasses

from tests.helpers.alertkit import Capture, base_config, make_finding
from alerts import record_finding
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from alerts.render import INCOMPLETE
from dumpwatch import migrations, store


def _cfg():
    return base_config(cnil_url="http://127.0.0.1:9/hook", secret_file="/nonexistent", smtp_port=9, labs=[],
                       alerts={"language": "en"})  # INCOMPLETE is the English msgid


def _partial(people, url, sha):
    f = make_finding(people, url=url, sha=sha)
    return dataclasses.replace(f, complete=False)


def test_incomplete_finding_is_stored_and_alerted_as_a_lower_bound(people):
    cfg = _cfg()
    db = store.open_db(None)
    partial = record_finding(db, _partial(people[:10], "https://p.example/part", "d" * 64), config=cfg)
    whole = record_finding(db, make_finding(people[20:30], url="https://p.example/whole", sha="e" * 64), config=cfg)
    assert store.get_finding(db, partial)["complete"] == 0
    assert store.get_finding(db, whole)["complete"] == 1
    cap = Capture()
    deliver_due(db, alerting_of(cfg), sender=cap)
    [message] = cap.to("cnil")
    assert INCOMPLETE in message.text and INCOMPLETE in message.html
    assert INCOMPLETE[1:] in message.markdown and "https://p.example/part" in message.markdown
    assert message.data["article33"]["complete"] is False
    assert message.data["article33"]["incomplete_locations"] == ["https://p.example/part"]
    views = {v["url"]: v for v in message.data["alerts"]}
    assert views["https://p.example/part"]["complete"] is False and views["https://p.example/whole"]["complete"]


def test_complete_finding_says_nothing_of_the_kind(people):
    cfg = _cfg()
    db = store.open_db(None)
    record_finding(db, make_finding(people[:10], url="https://p.example/a", sha="f" * 64), config=cfg)
    cap = Capture()
    deliver_due(db, alerting_of(cfg), sender=cap)
    [message] = cap.to("cnil")
    assert "lower bound" not in message.text + message.markdown + message.html
    assert message.data["article33"]["complete"] is True


def test_findings_recorded_before_the_column_count_as_complete(tmp_path):
    """Migration 103 adds the column to an existing database; earlier findings are complete."""
    import sqlite_utils

    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in migrations.MIGRATIONS[:3]:
        fn(db)
        db["_migrations"].insert({"name": name, "applied_at": "2026-01-01T00:00:00+00:00"})
    db["findings"].insert({"dedup_key": "old", "verdict": "repost", "url": "u"})
    db.close()
    db = store.open_db(path)
    assert [r["complete"] for r in store.findings(db)] == [1]
    assert "103_finding_complete" in {n for (n,) in db.execute("SELECT name FROM _migrations")}

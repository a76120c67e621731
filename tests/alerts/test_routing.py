"""Who gets what: default routes (CNIL, each lab's contact, operators), custom routes, severity."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.helpers.alertkit import Capture, base_config, make_finding
from alerts import record_finding, record_health
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from alerts.routes import severity
from dumpwatch.store import open_db


@pytest.fixture
def three_labs(people):
    labs = sorted({p["laboratoire"] for p in people})[:3]
    by_lab = {lab: [p for p in people if p["laboratoire"] == lab] for lab in labs}
    copy = by_lab[labs[0]][:30] + by_lab[labs[1]][:20] + by_lab[labs[2]][:10]
    return labs, copy


def _cfg(labs, **alerts):
    return base_config(cnil_url="http://127.0.0.1:9/hook", secret_file="/nonexistent", smtp_port=9, labs=labs,
                       alerts=alerts)


def test_default_routes_cnil_labs_and_operators(three_labs):
    labs, copy = three_labs
    cfg = _cfg(labs[:2])  # the third lab has no contact
    db = open_db(None)
    record_finding(db, make_finding(copy, url="https://p.example/1"), config=cfg)
    record_finding(db, make_finding(copy[:4], url="https://p.example/schema", verdict="schema-match"), config=cfg)
    record_health(db, source="forum", problem="failing", config=cfg)
    cap = Capture()
    deliver_due(db, alerting_of(cfg), sender=cap)
    assert Counter(r for r, _, _ in cap.sent) == {"cnil": 1, "lab0": 1, "lab1": 1, "ops": 2}

    (cnil,) = cap.to("cnil")
    assert cnil.data["alerts"][0]["verdict"] == "repost"
    assert cnil.data["alerts"][0]["records"]["by_lab"] == {labs[0]: 30, labs[1]: 20, labs[2]: 10}
    assert sorted(m.data["alerts"][0]["verdict"] for m in cap.to("ops")) == ["schema-match", "source-health"]

    # Each lab sees its own count, and nothing of the other labs (names, counts, totals, sample).
    for name, lab, own in (("lab0", labs[0], 30), ("lab1", labs[1], 20)):
        (msg,) = cap.to(name)
        (view,) = msg.data["alerts"]
        assert view["records"] == {"matched": own, "by_lab": {lab: own}}
        assert "sample" not in view and "identifiers" not in view
        assert msg.data["article33"]["people_approx"] == own
        blob = json.dumps(msg.to_json(), ensure_ascii=False)
        for other in labs:
            if other != lab:
                assert other not in blob
        assert "60 records" not in blob and '"matched": 60' not in blob


def test_custom_routes_continue_and_matchers(three_labs):
    labs, copy = three_labs
    cfg = _cfg(labs, )
    cfg["routes"] = [
        {"name": "critical-to-cnil", "match": {"severity": "critical"}, "receiver": "cnil"},
        {"name": "reposts-to-ops", "match": {"verdict": "repost"}, "receiver": "ops", "continue": True},
        {"name": "bretagne-labs", "match": {"verdict": "repost", "lab": [labs[0], labs[2]]}, "per_lab": True},
    ]
    alerting = alerting_of(cfg)
    db = open_db(None)
    # 150 records with NIR: critical → the first route only (no continue).
    big = copy * 3
    record_finding(db, make_finding(big, url="https://p.example/big", sha="b" * 64), config=alerting)
    # 60 records: high → ops (continue) and the per-lab route for two of the three labs.
    record_finding(db, make_finding(copy, url="https://p.example/small", leak="other"), config=alerting)
    rows = db.execute("SELECT receiver, lab, route, severity FROM alerts ORDER BY id").fetchall()
    assert rows == [("cnil", "", "critical-to-cnil", "critical"),
                    ("ops", "", "reposts-to-ops", "high"),
                    ("lab0", labs[0], "bretagne-labs", "high"),
                    ("lab2", labs[2], "bretagne-labs", "high")]


def test_no_receivers_enqueues_nothing_but_records(people, caplog):
    db = open_db(None)
    fid = record_finding(db, make_finding(people[:10], url="https://p.example/none"), config=None)
    assert fid is not None
    assert db["alerts"].count == 0
    assert db["findings"].count == 1


@pytest.mark.parametrize("verdict,categories,n,expected", [
    ("repost", ("identity", "nir"), 100, "critical"),
    ("repost", ("identity", "health"), 5, "high"),
    ("repost", ("identity", "contact"), 5000, "high"),
    ("repost", ("identity", "contact"), 50, "medium"),
    ("schema-match", ("nir",), 0, "medium"),
    ("schema-match", ("identity",), 0, "low"),
    ("source-health", (), 0, "info"),
])
def test_severity(verdict, categories, n, expected):
    assert severity(verdict, categories, n) == expected

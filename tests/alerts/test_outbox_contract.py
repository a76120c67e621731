"""The outbox's contract, row by row: what record_finding, record_health, enqueue and alert_key store.

Public behaviour only (the rows a delivery pass and an operator read), never how the transaction
is taken: a finding is stored once, with its alerts, one per receiver and lab scope, in the open
incident of its group; the same copy is never stored or alerted twice; when any part fails, nothing
is stored; nothing cleartext reaches the database. Time is injected, never slept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers.alertkit import base_config, make_finding
from alerts import grouping, outbox, record_finding, record_health, settings
from dumpwatch import clock
from alerts.outbox import alert_key, alerting_of, enqueue
from dumpwatch import store
from dumpwatch.store import open_db

T0 = datetime(2021, 2, 23, 10, 0, 0, tzinfo=timezone.utc)


def _cfg(labs=(), **alerts):
    return base_config(cnil_url="http://127.0.0.1:9/hook", secret_file="/nonexistent", smtp_port=9,
                       labs=list(labs), alerts={"group_wait": "30s", "group_interval": "5m",
                                                "repeat_interval": "4h", **alerts})


def _rows(db, sql, params=()):
    return list(db.query(sql, list(params)))


@pytest.fixture
def two_labs(people):
    labs = sorted({p["laboratoire"] for p in people})[:2]
    copy = [p for p in people if p["laboratoire"] == labs[0]][:6] + [p for p in people if p["laboratoire"] == labs[1]][:4]
    return labs, copy


# -- alert_key ---------------------------------------------------------------------------------------

def test_alert_key_is_a_truncated_sha256_of_installation_receiver_copy_and_lab():
    expected = hashlib.sha256(b"i1|cnil|repost:labos:abc|").hexdigest()[:32]
    assert alert_key("cnil", "repost:labos:abc", "", installation="i1") == expected
    assert len(expected) == 32
    keys = {alert_key("cnil", "k", "", installation="i1"), alert_key("ops", "k", "", installation="i1"),
            alert_key("cnil", "k2", "", installation="i1"), alert_key("cnil", "k", "Biolab", installation="i1"),
            alert_key("cnil|k", "", "", installation="i1"), alert_key("cnil", "k", "", installation="i2")}
    assert len(keys) == 6


# -- record_finding ------------------------------------------------------------------------------------

def test_a_repost_is_stored_with_one_alert_per_receiver_and_lab(two_labs):
    labs, copy = two_labs
    db = open_db(None)
    finding = make_finding(copy, url="https://p.example/1", sha="a" * 64)
    fid = record_finding(db, finding, source="paste", config=_cfg(labs), now=T0)
    assert isinstance(fid, int)
    (row,) = _rows(db, "SELECT * FROM findings")
    assert row["id"] == fid
    assert row["dedup_key"] == f"repost:labos-2021:{'a' * 64}"
    assert (row["verdict"], row["leak"], row["source"], row["url"]) == ("repost", "labos-2021", "paste",
                                                                          "https://p.example/1")
    assert row["detected_at"] == row["first_seen"] == "2021-02-23T10:00:00+00:00"
    assert row["matched_records"] == 10 and json.loads(row["labs"]) == {labs[0]: 6, labs[1]: 4}

    alerts = _rows(db, "SELECT * FROM alerts ORDER BY id")
    assert [(a["receiver"], a["lab"], a["route"]) for a in alerts] == [
        ("cnil", "", "authority"), ("lab0", labs[0], "lab-contacts"), ("lab1", labs[1], "lab-contacts")]
    for a in alerts:
        assert a["alert_key"] == alert_key(a["receiver"], row["dedup_key"], a["lab"],
                                          installation=store.installation_id(db))
        assert a["finding_id"] == fid and a["status"] == "pending" and a["severity"] == "high"
        assert a["created_at"] == "2021-02-23T10:00:00+00:00"
        assert a["silence_id"] is None and a["notification_id"] is None
        labels = json.loads(a["labels"])
        assert labels["receiver"] == a["receiver"] and labels["lab"] == a["lab"]
        assert (labels["leak"], labels["verdict"], labels["severity"], labels["source"]) == (
            "labos-2021", "repost", "high", "paste")
    # Each alert in its own incident (one group per receiver and lab), due after group_wait.
    incidents = _rows(db, "SELECT * FROM alert_incidents ORDER BY id")
    assert [i["id"] for i in incidents] == [a["incident_id"] for a in alerts]
    for inc, a in zip(incidents, alerts):
        assert inc["receiver"] == a["receiver"] and inc["route"] == a["route"] and inc["status"] == "open"
        assert inc["opened_at"] == inc["last_alert_at"] == "2021-02-23T10:00:00+00:00"
        assert inc["next_flush_at"] == "2021-02-23T10:00:30+00:00"
        assert inc["last_notified_at"] is None and inc["next_repeat_at"] is None and inc["notifications"] == 0
        assert (inc["group_wait"], inc["group_interval"], inc["repeat_interval"]) == (30.0, 300.0, 14400.0)
        assert inc["closed_at"] is None and inc["closed_by"] is None
        assert json.loads(inc["labels"]) == {"receiver": a["receiver"], "leak": "labos-2021",
                                             "verdict": "repost", "lab": a["lab"]}


def test_labels_are_stored_as_sorted_utf8_json(people):
    lab = "Biopôle Lannion"
    copy = [p for p in people if p["laboratoire"] == lab][:5]
    db = open_db(None)
    record_finding(db, make_finding(copy, url="https://p.example/u"), source="forum", config=_cfg([lab]), now=T0)
    alert, = _rows(db, "SELECT labels FROM alerts WHERE lab = ?", [lab])
    assert alert["labels"] == ('{"lab": "Biopôle Lannion", "leak": "labos-2021", "receiver": "lab0", '
                               '"severity": "high", "source": "forum", "verdict": "repost"}')
    incident, = _rows(db, "SELECT labels FROM alert_incidents WHERE receiver = 'lab0'")
    assert incident["labels"] == ('{"lab": "Biopôle Lannion", "leak": "labos-2021", "receiver": "lab0", '
                                  '"verdict": "repost"}')


def test_first_seen_is_kept_when_given_and_defaults_to_now(people):
    db = open_db(None)
    record_finding(db, make_finding(people[:5], url="https://p.example/fs"), first_seen="2021-02-20T08:00:00+00:00",
                   config=_cfg(), now=T0)
    (row,) = _rows(db, "SELECT first_seen, detected_at FROM findings")
    assert row == {"first_seen": "2021-02-20T08:00:00+00:00", "detected_at": "2021-02-23T10:00:00+00:00"}


def test_the_same_copy_is_stored_and_alerted_once(people):
    db = open_db(None)
    cfg = _cfg()
    f = make_finding(people[:5], url="https://p.example/a", sha="b" * 64)
    assert record_finding(db, f, config=cfg, now=T0) is not None
    for later in (T0, T0 + timedelta(days=3)):
        assert record_finding(db, f, config=cfg, now=later) is None
    assert record_finding(db, make_finding(people[:5], url="https://elsewhere.example/a", sha="b" * 64),
                          config=cfg, now=T0) is None
    assert (db["findings"].count, db["alerts"].count, db["alert_incidents"].count) == (1, 1, 1)
    # Another copy (other bytes) is another finding, in the same incident.
    other = record_finding(db, make_finding(people[:5], url="https://p.example/b", sha="c" * 64), config=cfg,
                           now=T0 + timedelta(seconds=10))
    assert other is not None
    assert (db["findings"].count, db["alerts"].count, db["alert_incidents"].count) == (2, 2, 1)


def test_two_routes_to_one_receiver_make_one_alert(people):
    cfg = _cfg()
    cfg["routes"] = [
        {"name": "first", "match": {"verdict": "repost"}, "receiver": "cnil", "continue": True},
        {"name": "second", "match": {"leak": "labos-*"}, "receiver": "cnil", "continue": True},
        {"name": "third", "match": {"verdict": "repost"}, "receiver": "ops"},
        {"name": "never", "match": {"verdict": "repost"}, "receiver": "ops"},
    ]
    db = open_db(None)
    record_finding(db, make_finding(people[:5], url="https://p.example/r"), config=cfg, now=T0)
    assert [(a["receiver"], a["route"]) for a in _rows(db, "SELECT * FROM alerts ORDER BY id")] == [
        ("cnil", "first"), ("ops", "third")]


def test_enqueue_again_adds_nothing(people):
    alerting = alerting_of(_cfg())
    db = open_db(None)
    fid = record_finding(db, make_finding(people[:5], url="https://p.example/e"), config=alerting, now=T0)
    row = store.get_finding(db, fid)
    with db.atomic():
        assert enqueue(db, alerting, fid, row, now=T0 + timedelta(minutes=1)) == []
    assert db["alerts"].count == 1
    # The row read back routes as the one recorded: another copy of it gets its alert.
    decoded = {**row, "dedup_key": "repost:labos-2021:other"}
    with db.atomic():
        (new,) = enqueue(db, alerting, fid, decoded, now=T0 + timedelta(minutes=1))
    (a,) = _rows(db, "SELECT * FROM alerts WHERE id = ?", [new])
    assert a["severity"] == "high" and a["alert_key"] == alert_key("cnil", "repost:labos-2021:other", "",
                                                                    installation=store.installation_id(db))


def test_severity_follows_categories_and_counts(people):
    db = open_db(None)
    cfg = _cfg(critical_records=5)
    record_finding(db, make_finding(people[:5], url="https://p.example/c"), config=cfg, now=T0)
    record_finding(db, make_finding(people[:4], url="https://p.example/h"), config=cfg, now=T0)
    record_finding(db, make_finding(people[:4], url="https://p.example/m", categories=("identity", "contact")),
                   config=cfg, now=T0)
    assert [r[0] for r in db.execute("SELECT severity FROM alerts ORDER BY id")] == ["critical", "high", "medium"]


def test_schema_matches_go_to_the_operators_only(people):
    db = open_db(None)
    record_finding(db, make_finding(people[:5], url="https://p.example/s", verdict="schema-match"), config=_cfg(),
                   now=T0)
    assert [(a["receiver"], a["lab"], a["severity"]) for a in _rows(db, "SELECT * FROM alerts")] == [
        ("ops", "", "medium")]


def test_no_matching_route_stores_the_finding_without_alert(people, caplog):
    cfg = _cfg()
    cfg["routes"] = [{"name": "only-other", "match": {"leak": "other"}, "receiver": "cnil"}]
    db = open_db(None)
    with caplog.at_level(logging.INFO, logger="alerts.outbox"):
        fid = record_finding(db, make_finding(people[:5], url="https://p.example/n"), config=cfg, now=T0)
    assert fid is not None and db["findings"].count == 1 and db["alerts"].count == 0
    assert f"finding {fid} (repost, high) matched no route" in caplog.text


def test_without_receivers_findings_are_recorded_and_the_operator_warned(people, caplog, monkeypatch):
    from alerts import routes

    monkeypatch.setattr(routes, "_warned", set())
    db = open_db(None)
    with caplog.at_level(logging.WARNING, logger="alerts.routes"):
        assert record_finding(db, make_finding(people[:5], url="https://p.example/0"), config=None) is not None
        assert record_finding(db, make_finding(people[:5], url="https://p.example/1"), config={}) is not None
    assert db["findings"].count == 2 and db["alerts"].count == 0
    assert [r.getMessage() for r in caplog.records if "receivers" in r.getMessage()] == [
        "no [[receivers]] configured in dumpwatch.toml: findings are recorded but no alert is queued "
        "(see docs/alerts.md)"]


def test_alerting_of_takes_a_parsed_configuration_as_is():
    alerting = settings.load(_cfg())
    assert alerting_of(alerting) is alerting
    assert alerting_of(_cfg()).receivers.keys() == alerting.receivers.keys()


# -- incidents ---------------------------------------------------------------------------------------

def test_new_copies_join_the_open_incident_and_keep_its_schedule(people):
    db = open_db(None)
    cfg = _cfg()
    record_finding(db, make_finding(people[:5], url="https://p.example/1"), config=cfg, now=T0)
    record_finding(db, make_finding(people[5:10], url="https://p.example/2"), config=cfg,
                   now=T0 + timedelta(seconds=10))
    (inc,) = _rows(db, "SELECT * FROM alert_incidents")
    assert inc["last_alert_at"] == "2021-02-23T10:00:10+00:00"
    assert inc["next_flush_at"] == "2021-02-23T10:00:30+00:00"  # group_wait counts from the first copy
    assert inc["opened_at"] == "2021-02-23T10:00:00+00:00"
    assert [r[0] for r in db.execute("SELECT incident_id FROM alerts")] == [inc["id"], inc["id"]]


def test_after_a_notification_a_new_copy_waits_for_group_interval(people):
    db = open_db(None)
    cfg = _cfg()
    record_finding(db, make_finding(people[:5], url="https://p.example/1"), config=cfg, now=T0)
    (inc,) = _rows(db, "SELECT id FROM alert_incidents")
    # What a delivery pass leaves behind once it notified the group.
    db.execute("UPDATE alert_incidents SET next_flush_at = NULL, last_notified_at = ? WHERE id = ?",
               ["2021-02-23T10:00:30+00:00", inc["id"]])
    record_finding(db, make_finding(people[5:10], url="https://p.example/2"), config=cfg,
                   now=T0 + timedelta(minutes=1))
    (inc,) = _rows(db, "SELECT * FROM alert_incidents")
    assert inc["next_flush_at"] == "2021-02-23T10:05:30+00:00"  # last notification + group_interval
    db.execute("UPDATE alert_incidents SET next_flush_at = NULL WHERE id = ?", [inc["id"]])
    record_finding(db, make_finding(people[10:15], url="https://p.example/3"), config=cfg,
                   now=T0 + timedelta(hours=1))
    (inc,) = _rows(db, "SELECT * FROM alert_incidents")
    assert inc["next_flush_at"] == "2021-02-23T11:00:00+00:00"  # interval long past: now
    assert inc["last_alert_at"] == "2021-02-23T11:00:00+00:00"


def test_an_incident_waiting_without_notification_waits_group_wait(people):
    db = open_db(None)
    cfg = _cfg()
    record_finding(db, make_finding(people[:5], url="https://p.example/1"), config=cfg, now=T0)
    db.execute("UPDATE alert_incidents SET next_flush_at = NULL")
    record_finding(db, make_finding(people[5:10], url="https://p.example/2"), config=cfg,
                   now=T0 + timedelta(minutes=2))
    (inc,) = _rows(db, "SELECT * FROM alert_incidents")
    assert inc["next_flush_at"] == "2021-02-23T10:02:30+00:00"


def test_a_closed_incident_is_not_reused(people):
    db = open_db(None)
    cfg = _cfg()
    record_finding(db, make_finding(people[:5], url="https://p.example/1"), config=cfg, now=T0)
    db.execute("UPDATE alert_incidents SET status = 'closed'")
    record_finding(db, make_finding(people[5:10], url="https://p.example/2"), config=cfg,
                   now=T0 + timedelta(hours=1))
    incidents = _rows(db, "SELECT * FROM alert_incidents ORDER BY id")
    assert [i["status"] for i in incidents] == ["closed", "open"]
    assert incidents[1]["next_flush_at"] == "2021-02-23T11:00:30+00:00"
    assert [r[0] for r in db.execute("SELECT incident_id FROM alerts ORDER BY id")] == [1, 2]


def test_a_digest_route_groups_every_leak_per_receiver(people):
    db = open_db(None)
    cfg = _cfg(authority_digest=True, digest_interval="1d")
    record_finding(db, make_finding(people[:5], url="https://p.example/a", leak="leak-a"), config=cfg, now=T0)
    record_finding(db, make_finding(people[:5], url="https://p.example/b", leak="leak-b"), config=cfg, now=T0)
    (inc,) = _rows(db, "SELECT * FROM alert_incidents")
    assert json.loads(inc["labels"]) == {"receiver": "cnil", "digest": "true"}
    assert inc["group_key"] == "cnil|authority|digest"
    assert (inc["group_wait"], inc["group_interval"], inc["repeat_interval"]) == (30.0, 86400.0, 0.0)
    assert db["alerts"].count == 2


# -- nothing stored when a part fails ----------------------------------------------------------------

@pytest.mark.parametrize("part", ["route", "enqueue", "second-incident"])
def test_nothing_is_stored_when_a_part_fails(two_labs, monkeypatch, part):
    labs, copy = two_labs
    db = open_db(None)
    cfg = _cfg(labs)
    if part == "route":
        monkeypatch.setattr(outbox.routes, "route", _raise)
    elif part == "enqueue":
        monkeypatch.setattr(outbox, "enqueue", _raise)
    else:  # the second alert's incident cannot be written: the first alert is already inserted
        real, calls = grouping.incident_for, []

        def second_fails(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise sqlite3.OperationalError("disk I/O error")
            return real(*args, **kwargs)

        monkeypatch.setattr(grouping, "incident_for", second_fails)
    finding = make_finding(copy, url="https://p.example/tx")
    with pytest.raises((RuntimeError, sqlite3.Error, store.StorageError)):
        record_finding(db, finding, config=cfg, now=T0)
    monkeypatch.undo()
    for table in ("findings", "alerts", "alert_incidents"):
        assert db[table].count == 0, table
    # The same copy can be recorded once the failure is gone.
    assert record_finding(db, finding, config=cfg, now=T0) is not None
    assert db["alerts"].count == 3


def _raise(*args, **kwargs):
    raise RuntimeError("power cut")


def test_an_integrity_error_is_never_taken_for_a_copy_already_recorded(people, monkeypatch):
    """The write lock is taken before the dedup check, so no other process can insert the same copy
    in between: an integrity error is a failure, raised (never a silent "already recorded")."""
    db = open_db(None)
    f = make_finding(people[:5], url="https://p.example/race")

    def raced(db_, row):
        raise sqlite3.IntegrityError("UNIQUE constraint failed: findings.dedup_key")

    monkeypatch.setattr(store, "insert_finding", raced)
    with pytest.raises(sqlite3.IntegrityError):
        record_finding(db, f, config=_cfg(), now=T0)
    with pytest.raises(sqlite3.IntegrityError):
        record_health(db, source="forum", problem="failing", config=_cfg(), now=T0)
    assert db["findings"].count == 0 and db["alerts"].count == 0


# -- privacy -----------------------------------------------------------------------------------------

def test_identifiers_slipping_into_a_finding_are_masked_before_storage(people):
    p = people[0]
    nir, mail = p["nir"], p["email"]
    phone = "".join(c for c in p["telephone"] if c.isdigit())
    finding = make_finding(people[:5], url=f"https://p.example/{nir}")
    from dataclasses import replace

    finding = replace(finding, sample=(f"{nir} {mail}",), errors=(f"cannot parse {phone}",),
                      input=f"https://p.example/{mail}")
    db = open_db(None)
    record_finding(db, finding, url=f"https://p.example/u?tel={phone}", detail={"note": f"nir {nir}", "n": 3},
                   config=_cfg(), now=T0)
    blob = json.dumps(_rows(db, "SELECT * FROM findings"), ensure_ascii=False)
    for ident in (nir, mail, phone):
        assert ident not in blob
    (row,) = _rows(db, "SELECT * FROM findings")
    assert json.loads(row["detail"])["n"] == 3 and "** *** *** **" in json.loads(row["detail"])["note"]
    assert json.loads(row["sample"])[0].startswith(f"{nir[0]} {nir[1:3]} {nir[3:5]} **")
    assert "***@" in row["url"] or "** **" in row["url"]
    (error,) = json.loads(row["errors"])
    assert error == f"cannot parse 0{phone[1]} ** ** ** {phone[-2:]}"


def test_the_input_is_masked_when_it_is_the_stored_address(people):
    mail = people[0]["email"]
    db = open_db(None)
    finding = make_finding(people[:5], url=f"https://p.example/u?m={mail}")
    record_finding(db, finding, config=_cfg(), now=T0)
    (row,) = _rows(db, "SELECT url, source FROM findings")
    assert row == {"url": f"https://p.example/u?m={mail[0]}***@{mail.split('@')[1]}", "source": ""}


# -- record_health -----------------------------------------------------------------------------------

def test_source_health_is_one_finding_per_source_problem_and_day(caplog):
    db = open_db(None)
    cfg = _cfg()
    fid = record_health(db, source="forum", problem="failing", detail={"runs": 3, "cause": "délai dépassé"},
                        config=cfg, now=T0)
    assert fid is not None
    (row,) = _rows(db, "SELECT * FROM findings")
    assert row["dedup_key"] == "source-health:forum:failing:2021-02-23"
    assert (row["verdict"], row["leak"], row["source"], row["url"]) == ("source-health", None, "forum", "")
    assert row["first_seen"] == row["detected_at"] == "2021-02-23T10:00:00+00:00"
    assert (row["matched_records"], row["records_seen"]) == (0, 0)
    assert row["detail"] == '{"cause": "délai dépassé", "problem": "failing", "runs": 3}'  # sorted keys, UTF-8
    assert (row["identifiers"], row["labs"], row["categories"], row["sample"], row["errors"]) == (
        "{}", "{}", "[]", "[]", "[]")
    (a,) = _rows(db, "SELECT * FROM alerts")
    assert (a["receiver"], a["route"], a["severity"], a["finding_id"]) == ("ops", "operators", "info", fid)
    assert a["alert_key"] == alert_key("ops", row["dedup_key"], "", installation=store.installation_id(db))
    assert json.loads(a["labels"]) == {"leak": "", "verdict": "source-health", "severity": "info", "source": "forum",
                                       "lab": "", "receiver": "ops"}

    assert record_health(db, source="forum", problem="failing", config=cfg, now=T0 + timedelta(hours=13)) is None
    assert record_health(db, source="forum", problem="empty", config=cfg, now=T0) is not None
    assert record_health(db, source="pastes", problem="failing", config=cfg, now=T0) is not None
    assert record_health(db, source="forum", problem="failing", config=cfg, now=T0 + timedelta(days=1)) is not None
    assert db["findings"].count == 4 and db["alerts"].count == 4


def test_source_health_without_detail_and_its_failure_stores_nothing(monkeypatch):
    db = open_db(None)
    record_health(db, source="forum", problem="failing", config=_cfg(), now=T0)
    assert json.loads(_rows(db, "SELECT detail FROM findings")[0]["detail"]) == {"problem": "failing"}
    monkeypatch.setattr(outbox.routes, "route", _raise)
    with pytest.raises(RuntimeError):
        record_health(db, source="pastes", problem="failing", config=_cfg(), now=T0)
    assert db["findings"].count == 1 and db["alerts"].count == 1


def test_source_health_detail_is_masked():
    db = open_db(None)
    record_health(db, source="forum", problem="failing", detail={"error": "bad row 1 85 05 78 006 084 91"},
                  config=_cfg(), now=T0)
    assert "006 084" not in _rows(db, "SELECT detail FROM findings")[0]["detail"]


def test_clock_defaults_to_now(people):
    db = open_db(None)
    before = clock.iso(clock.now())
    record_finding(db, make_finding(people[:5], url="https://p.example/now"), config=_cfg())
    record_health(db, source="forum", problem="failing", config=_cfg())
    after = clock.iso(clock.now() + timedelta(seconds=1))
    for (stamp,) in db.execute("SELECT detected_at FROM findings"):
        assert before <= stamp <= after


# -- enqueue on rows as other writers give them ------------------------------------------------------

def test_enqueue_adds_only_the_alerts_still_missing(two_labs, caplog):
    labs, copy = two_labs
    db = open_db(None)
    fid = record_finding(db, make_finding(copy, url="https://p.example/m"), config=_cfg(), now=T0)
    assert [r[0] for r in db.execute("SELECT receiver FROM alerts")] == ["cnil"]
    # The labs' contacts are configured later: enqueueing again adds their alerts, not the authority's.
    row = store.get_finding(db, fid)
    caplog.clear()  # only what the second enqueue logs (an earlier test may have left INFO on)
    with caplog.at_level(logging.INFO, logger="alerts.outbox"), db.atomic():
        new = enqueue(db, alerting_of(_cfg(labs)), fid, row, now=T0 + timedelta(minutes=1))
    assert len(new) == 2
    assert [m.split(" queued for ")[1] for m in _messages(caplog, logging.INFO)] == [
        f"lab0 (finding {fid}, repost high, lab {labs[0]})", f"lab1 (finding {fid}, repost high, lab {labs[1]})"]
    assert [r[0] for r in db.execute("SELECT receiver FROM alerts ORDER BY id")] == ["cnil", "lab0", "lab1"]


def test_enqueue_a_row_without_labs_categories_or_counts():
    db = open_db(None)
    alerting = alerting_of(_cfg(high_records=1))
    fid = db["findings"].insert({"dedup_key": "repost:x:1", "verdict": "repost", "url": "u"}).last_pk
    row = {"dedup_key": "repost:x:1", "verdict": "repost", "labs": None, "categories": None}
    with db.atomic():
        (aid,) = enqueue(db, alerting, fid, row, now=T0)
    (a,) = _rows(db, "SELECT * FROM alerts WHERE id = ?", [aid])
    assert a["severity"] == "medium"  # no records, no NIR or health: not "high" even at high_records=1
    assert json.loads(a["labels"]) == {"leak": "", "verdict": "repost", "severity": "medium", "source": "",
                                       "lab": "", "receiver": "cnil"}


def test_the_stored_url_is_the_one_given(people):
    db = open_db(None)
    record_finding(db, make_finding(people[:5], url="https://mirror.example/a"), url="https://p.example/page",
                   config=_cfg(), now=T0)
    assert _rows(db, "SELECT url FROM findings")[0]["url"] == "https://p.example/page"


# -- what the operator reads in the log ---------------------------------------------------------------

def _messages(caplog, level):
    return [r.getMessage() for r in caplog.records if r.name == "alerts.outbox" and r.levelno == level]


def test_log_lines_of_queued_alerts_and_of_copies_seen_again(people, caplog):
    db = open_db(None)
    f = make_finding(people[:5], url="https://p.example/log", sha="d" * 64)
    key = f"repost:labos-2021:{'d' * 64}"
    with caplog.at_level(logging.DEBUG, logger="alerts.outbox"):
        fid = record_finding(db, f, config=_cfg(), now=T0)
        record_finding(db, f, config=_cfg(), now=T0)
    assert _messages(caplog, logging.INFO) == [
        f"alert {alert_key('cnil', key, '', installation=store.installation_id(db))} queued for cnil (finding {fid}, repost high)"]
    assert _messages(caplog, logging.DEBUG) == [f"copy already recorded ({key}): no new alert"]


def test_the_no_route_line_is_exact_and_only_when_nothing_was_queued(people, caplog):
    cfg = _cfg()
    cfg["routes"] = [{"name": "only-other", "match": {"leak": "other"}, "receiver": "cnil"}]
    db = open_db(None)
    with caplog.at_level(logging.INFO, logger="alerts.outbox"):
        fid = record_finding(db, make_finding(people[:5], url="https://p.example/n"), config=cfg, now=T0)
        assert _messages(caplog, logging.INFO) == [f"finding {fid} (repost, high) matched no route: no alert"]
        caplog.clear()
        record_finding(db, make_finding(people[:5], url="https://p.example/y"), config=_cfg(), now=T0)
    assert not [m for m in _messages(caplog, logging.INFO) if "matched no route" in m]

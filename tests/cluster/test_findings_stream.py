"""The findings stream (crawler/cluster/findings.py) against a real redis-server: every finding a
worker sends is recorded once, whatever is delivered twice or left behind by a dead consumer."""

from __future__ import annotations

import functools
import hashlib
import json

import pytest

from alerts import record_finding
from crawler.cluster import findings
from dumpwatch import store
from matchers.finding import Finding

LEAK = "labos-2021"


def _finding(n: int, **kw) -> Finding:
    data = dict(input=f"https://p.example/raw/{n}", verdict="repost", leak=LEAK, matched_records=5,
                records_seen=9, identifiers={"nir": 5, "phone": 3}, labs={"Labo Nord": 5},
                categories=("nir", "phone"), sha256=hashlib.sha256(f"doc {n}".encode()).hexdigest(), size=900,
                sample=("NIR 1 84 12 ** *** *** **", "06 ** ** ** 12"))
    data.update(kw)
    return Finding(**data)


def _send(rds, n: int, **kw) -> str:
    return findings.publish(rds, _finding(n, **kw), source="pastes", url=f"https://p.example/raw/{n}",
                            first_seen="2026-11-30T10:00:00+00:00", detail={"document": "paste", "size": 900})


@pytest.fixture
def db(tmp_path):
    return store.open_db(tmp_path / "home" / "dumpwatch.db")


def _consumer(rds, db, name: str, **kw) -> findings.Consumer:
    return findings.Consumer(rds, functools.partial(record_finding, db, config={}), name=name, **kw)


def _count(db) -> int:
    return db.execute("SELECT count(*) FROM findings").fetchone()[0]


def _pending(rds) -> int:
    return rds.xpending(findings.STREAM, findings.GROUP)["pending"]


def test_entries_carry_the_finding_and_never_the_document(rds):
    secret = "Jeanne Martin 1 84 12 75 123 456 78"
    _send(rds, 1, sample=("jeanne.martin@example.org", "+33 6 12 34 56 78"))
    [(_, fields)] = rds.xrange(findings.STREAM)
    assert set(fields) == set(findings.FIELDS)
    data = json.loads(fields["finding"])
    assert data["matched_records"] == 5 and data["sha256"] == _finding(1).sha256
    text = json.dumps(fields)
    assert "jeanne.martin@example.org" not in text and "12 34 56 78" not in text  # masked as in the store
    assert secret not in text


def test_each_entry_becomes_one_finding_and_is_acknowledged_after_the_commit(rds, db):
    ids = [_send(rds, n) for n in range(3)]
    done = _consumer(rds, db, "control-a").run_once()
    assert (done.read, done.recorded, done.duplicates, done.bad, done.errors) == (3, 3, 0, 0, 0)
    assert done.ids == ids
    assert _count(db) == 3 and _pending(rds) == 0
    row = db.execute("SELECT source, url, leak, matched_records FROM findings ORDER BY id").fetchone()
    assert row == ("pastes", "https://p.example/raw/0", LEAK, 5)


def test_the_same_document_delivered_twice_is_one_finding(rds, db):
    _send(rds, 7)
    _send(rds, 7)  # a second worker, or a second run, found the same bytes
    done = _consumer(rds, db, "control-a").run_once()
    assert (done.recorded, done.duplicates) == (1, 1)
    assert _count(db) == 1 and _pending(rds) == 0


class Killed(BaseException):
    """The consumer process dies here (a BaseException: nothing in the consumer catches it)."""


class DiesAtSecondAck:
    """A Redis client whose second XACK never happens: the process died right after the commit."""

    def __init__(self, r):
        self._r = r
        self.acks = 0

    def __getattr__(self, name):
        return getattr(self._r, name)

    def xack(self, *args):
        self.acks += 1
        if self.acks == 2:
            raise Killed()
        return self._r.xack(*args)


def test_a_consumer_killed_between_commit_and_ack_loses_nothing_and_counts_nothing_twice(rds, db):
    for n in range(4):
        _send(rds, n)
    dying = findings.Consumer(DiesAtSecondAck(rds), functools.partial(record_finding, db, config={}),
                              name="control-a")
    with pytest.raises(Killed):
        dying.run_once()
    assert _count(db) == 2  # the first two are committed
    assert _pending(rds) == 3  # XREADGROUP gave control-a all four; only the first was acknowledged

    taker = _consumer(rds, db, "control-b", claim_idle=0)
    done = taker.run_once()
    assert done.claimed == 3
    assert (done.recorded, done.duplicates) == (2, 1)  # the one committed before the kill: no new finding
    assert _count(db) == 4 and _pending(rds) == 0
    assert len({r[0] for r in db.execute("SELECT dedup_key FROM findings")}) == 4


def test_a_restarted_consumer_reads_its_own_pending_entries_first(rds, db):
    _send(rds, 1)
    first = _consumer(rds, db, "control-a")
    first.ensure_group()
    rds.xreadgroup(findings.GROUP, "control-a", {findings.STREAM: ">"})  # read, then the process died
    again = _consumer(rds, db, "control-a")  # same name, long claim_idle: its own entries still come back
    done = again.run_once()
    assert (done.recorded, done.claimed) == (1, 0)
    assert _count(db) == 1 and _pending(rds) == 0


def test_an_entry_that_is_not_a_finding_is_set_aside_and_said(rds, db, caplog):
    rds.xadd(findings.STREAM, {"v": "1", "finding": "{not json", "source": "x"})
    rds.xadd(findings.STREAM, {"v": "1", "finding": json.dumps({"input": "x", "verdict": "none"})})
    _send(rds, 3)
    done = _consumer(rds, db, "control-a").run_once()
    assert (done.bad, done.recorded) == (2, 1)
    assert rds.xlen(findings.DEAD) == 2 and _pending(rds) == 0
    assert "is not a finding" in caplog.text


def test_a_pending_entry_deleted_from_the_stream_is_counted_lost_and_said(rds, db, caplog):
    """A finding read but not recorded, then deleted (XDEL, XTRIM): it can no longer be recorded, so
    the pass counts it lost, says so and sets it aside; it is never acknowledged as if it were done."""
    entry_id = _send(rds, 1)
    first = _consumer(rds, db, "control-a")
    first.ensure_group()
    rds.xreadgroup(findings.GROUP, "control-a", {findings.STREAM: ">"})  # read, then the process died
    rds.xdel(findings.STREAM, entry_id)
    done = _consumer(rds, db, "control-a").run_once()
    assert (done.lost, done.recorded) == (1, 0) and _count(db) == 0 and _pending(rds) == 0
    assert rds.xlen(findings.DEAD) == 1 and "a finding is lost" in caplog.text


def test_a_storage_failure_leaves_the_entry_pending_for_the_next_pass(rds, db):
    _send(rds, 1)
    failing = findings.Consumer(rds, lambda **kw: (_ for _ in ()).throw(store.StorageError("disk full")),
                                name="control-a")
    done = failing.run_once()
    assert (done.errors, done.recorded) == (1, 0) and _pending(rds) == 1
    done = _consumer(rds, db, "control-a").run_once()
    assert done.recorded == 1 and _count(db) == 1 and _pending(rds) == 0


def test_a_redis_that_lost_its_data_gets_its_consumer_group_again(rds, db, caplog):
    import redis

    consumer = _consumer(rds, db, "control-a")
    _send(rds, 1)
    assert consumer.run_once().recorded == 1
    rds.flushall()  # a restart without persistence
    with pytest.raises(redis.ResponseError):
        consumer.run_once()
    assert "consumer group is gone" in caplog.text
    _send(rds, 2)
    assert consumer.run_once().recorded == 1 and _count(db) == 2

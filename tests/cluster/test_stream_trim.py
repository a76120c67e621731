"""The findings stream stays bounded (crawler/cluster/findings.py, ``Consumer.trim``), on a real Redis:
acknowledged entries leave it, pending and unread ones never do, another group's needs hold too,
and entries younger than ``keep`` stay (to be looked at)."""

from __future__ import annotations

import functools

from alerts import record_finding
from crawler.cluster import findings
from dumpwatch import store
from tests.cluster.test_findings_stream import _send


def _consumer(rds, db, **kw) -> findings.Consumer:
    return findings.Consumer(rds, functools.partial(record_finding, db, config={}), name="control", **kw)


def test_acknowledged_entries_are_trimmed_and_the_stream_stays_bounded(rds, tmp_path):
    db = store.open_db(tmp_path / "home" / "dumpwatch.db")
    consumer = _consumer(rds, db, keep=0)
    total = 0
    for batch in range(5):  # findings keep coming; the stream never holds more than one pass's worth
        for n in range(20):
            _send(rds, batch * 20 + n)
        done = consumer.run_once()
        total += done.trimmed
        assert done.recorded == 20 and rds.xlen(findings.STREAM) == 0
    assert total == 100 and db.execute("SELECT count(*) FROM findings").fetchone()[0] == 100


def test_pending_and_unread_entries_and_other_groups_needs_are_never_trimmed(rds, tmp_path):
    db = store.open_db(tmp_path / "home" / "dumpwatch.db")
    consumer = _consumer(rds, db, keep=0)
    ids = [_send(rds, n) for n in range(6)]
    consumer.ensure_group()
    # another consumer of the group read the first two and died before its XACK: pending
    rds.xreadgroup(findings.GROUP, "dead-control", {findings.STREAM: ">"}, count=2)
    done = consumer.run_once()  # reads the 4 others (the 2 pending are not idle long enough to claim)
    assert done.recorded == 4
    assert [i for i, _ in rds.xrange(findings.STREAM)] == ids  # the oldest pending one holds the floor
    rds.xack(findings.STREAM, findings.GROUP, ids[0])
    later = _send(rds, 6)  # not read yet by anyone
    assert consumer.trim() == 1
    assert [i for i, _ in rds.xrange(findings.STREAM)] == ids[1:] + [later]
    # a second group (another reader) that has read only up to ids[2]: its unread entries stay
    rds.xgroup_create(findings.STREAM, "archive", id=ids[2])
    rds.xack(findings.STREAM, findings.GROUP, ids[1])
    assert consumer.run_once().recorded == 1  # `later`
    assert [i for i, _ in rds.xrange(findings.STREAM)] == ids[3:] + [later]
    assert consumer.trim() == 0
    assert db.execute("SELECT count(*) FROM findings").fetchone()[0] == 5


def test_acknowledged_entries_younger_than_keep_stay(rds, tmp_path):
    db = store.open_db(tmp_path / "home" / "dumpwatch.db")
    consumer = _consumer(rds, db)  # the default: a day
    for n in range(5):
        _send(rds, n)
    done = consumer.run_once()
    assert done.recorded == 5 and done.trimmed == 0 and rds.xlen(findings.STREAM) == 5
    assert findings.KEEP_SECONDS >= 3600

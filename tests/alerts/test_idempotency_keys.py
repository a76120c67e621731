"""Idempotency keys are unique per installation (issue 10, case 7): two fresh homes alerting the same
copy in the same incident send different keys (a receiver that drops keys it processed, as
docs/alerts.md advises, no longer drops the second installation's message); one home sends the same
key on every retry, across a restart."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.alertkit import Capture, base_config, make_finding
from alerts import record_finding
from alerts.channels import ChannelError
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from dumpwatch import clock, store
from dumpwatch.home import Home
from dumpwatch.store import open_db

CFG = base_config(cnil_url="http://127.0.0.1:9/hook", secret_file="/nonexistent", smtp_port=9, labs=[])


def _alert_once(root, people) -> tuple[str, int, str, str]:
    """A fresh home finds one copy and sends its first message: (key, incident, alert key, installation)."""
    home = Home(root).ensure()
    db = open_db(home.db_path)
    record_finding(db, make_finding(people[:10], url="https://p.example/same", sha="c" * 64), config=CFG)
    capture = Capture()
    assert deliver_due(db, alerting_of(CFG), sender=capture).delivered == 1
    ((name, _, key),) = capture.sent
    incident, alert = db.execute("SELECT incident_id, alert_key FROM alerts WHERE receiver = 'cnil'").fetchone()
    installation = store.installation_id(db)
    db.close()
    return key, incident, alert, installation


def test_two_fresh_homes_send_different_keys_for_the_same_copy_and_incident(tmp_path, people):
    key_a, incident_a, alert_a, inst_a = _alert_once(tmp_path / "a", people)
    key_b, incident_b, alert_b, inst_b = _alert_once(tmp_path / "b", people)
    assert incident_a == incident_b == 1  # the same copy, the same incident number ...
    assert key_a.startswith("dw-") and key_b.startswith("dw-")
    assert key_a != key_b and alert_a != alert_b  # ... but another installation
    assert inst_a != inst_b and len(inst_a) == 32


def test_one_home_keeps_its_key_across_retries_and_a_restart(tmp_path, people):
    home = Home(tmp_path / "home").ensure()
    db = open_db(home.db_path)
    installation = store.installation_id(db)
    record_finding(db, make_finding(people[:10], url="https://p.example/r", sha="d" * 64), config=CFG)
    sent: list[str] = []

    def down(receiver, message, key):
        sent.append(key)
        raise ChannelError("receiver down")

    t0 = clock.now()
    assert deliver_due(db, alerting_of(CFG), now=t0, sender=down).failed == 1
    db.close()

    db = open_db(home.db_path)  # a restart: a new process opens the same home
    assert store.installation_id(db) == installation
    capture = Capture()
    report = deliver_due(db, alerting_of(CFG), now=t0 + timedelta(hours=2), sender=capture)
    assert report.delivered == 1
    ((name, _, key),) = capture.sent
    assert key == sent[0]

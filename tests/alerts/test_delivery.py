"""End to end through real receivers: findings → routes → outbox → SMTP server and signed webhooks."""

from __future__ import annotations

import email
import email.policy
import logging
from pathlib import Path

import pytest

from alerts import record_finding, record_health
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from dumpwatch.store import open_db
from tests.helpers.alertkit import (LEAK, WebhookReceiver, assert_no_identifier, base_config, make_finding,
                                   start_smtp)


def mail_text(content: bytes) -> str:
    """Every decoded part of a mail (text, HTML, attachments): what a reader would see."""
    msg = email.message_from_bytes(content, policy=email.policy.default)
    parts = [str(msg)]
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_content()
        parts.append(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
    return "\n".join(parts)


@pytest.fixture
def copy_people(people):
    """Two labs' patients in one reposted copy: 40 of one, 25 of another."""
    labs = sorted({p["laboratoire"] for p in people})
    a = [p for p in people if p["laboratoire"] == labs[0]][:40]
    b = [p for p in people if p["laboratoire"] == labs[1]][:25]
    return labs[0], labs[1], a + b


def test_real_smtp_and_webhook_content_and_privacy(home, people, copy_people, webhook, smtp_server, secret_file,
                                                    caplog):
    caplog.set_level(logging.DEBUG)
    lab_a, lab_b, copy = copy_people
    cfg = base_config(cnil_url=webhook.url, secret_file=secret_file, smtp_port=smtp_server.port,
                      labs=[lab_a, lab_b], alerts={"language": "en"})  # the wording below is English
    db = open_db(home.db_path)
    finding = make_finding(copy, url="https://paste.example/raw/AbC123")
    # An engine bug leaking a cleartext identifier into the sample must still not get out.
    leaky = finding.__class__(**{**finding.__dict__, "sample": finding.sample + (copy[5]["email"], copy[6]["nir"])})
    fid = record_finding(db, leaky, source="paste-site", config=cfg)
    assert fid is not None
    schema = make_finding(copy[:3], url="https://forum.example/t/42", verdict="schema-match")
    record_finding(db, schema, source="forum", config=cfg)
    record_health(db, source="forum", problem="silent", detail={"runs": 3}, config=cfg)

    report = deliver_due(db, alerting_of(cfg))
    assert report.delivered == 5 and report.failed == 0, report.summary()

    # CNIL: one signed JSON message with everything an Article 33 notification needs.
    cnil = [h for h in webhook.hooks if h.path == "/hook"]
    assert len(cnil) == 1 and all(h.signature_ok for h in webhook.hooks)
    data = cnil[0].json()
    assert cnil[0].key == data["idempotency_key"] and data["receiver"] == "cnil"
    (alert,) = data["alerts"]
    assert alert["verdict"] == "repost" and alert["leak"] == LEAK
    assert alert["url"] == "https://paste.example/raw/AbC123" and alert["source"] == "paste-site"
    assert alert["records"] == {"matched": 65, "seen": 68, "by_lab": {lab_a: 40, lab_b: 25}}
    assert alert["sha256"] == finding.sha256 and alert["severity"] == "high"  # < 100 records, NIR + health
    assert alert["first_seen"] and alert["detected_at"] and alert["sample"]
    art33 = data["article33"]
    assert art33["people_approx"] == 65 and art33["records_approx"] == 65
    assert art33["categories"][:2] == ["nir", "health"] and art33["likely_consequences"]
    assert art33["deadline"] > art33["detected_at"]
    assert "Article 33" in data["draft_markdown"] and "72 hours" in data["draft_markdown"]

    # Operators: the schema match and the source-health finding, never the confirmed repost.
    ops = [h.json() for h in webhook.hooks if h.path == "/ops"]
    assert sorted(d["alerts"][0]["verdict"] for d in ops) == ["schema-match", "source-health"]

    # Each lab: one email, its own count only, the Article 33 draft attached, Message-ID = key.
    assert len(smtp_server.mails) == 2
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_server.mails}
    for addr, lab, own, other in (("dpo0@lab0.example", lab_a, 40, lab_b), ("dpo1@lab1.example", lab_b, 25, lab_a)):
        raw = by_rcpt[addr].content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = mail_text(raw)
        assert msg["Message-ID"] == f"<{msg['X-Dumpwatch-Key']}@dumpwatch>"
        assert f"{own} records of {lab} patients" in msg["Subject"]
        assert other not in text and "65" not in msg["Subject"]
        assert any(p.get_filename() == "article33-draft.md" for p in msg.walk())
        assert "Article 33" in text

    # No cleartext identifier in any delivered byte, nor in the database.
    for h in webhook.hooks:
        assert_no_identifier(h.body, people, "a webhook body")
    for m in smtp_server.mails:
        assert_no_identifier(m.content, people, "a raw email")
        assert_no_identifier(mail_text(m.content).encode(), people, "a decoded email")
    assert_no_identifier(caplog.text.encode(), people, "the logs")
    db.close()
    blob = b"".join(p.read_bytes() for p in Path(home.db_path).parent.glob("dumpwatch.db*"))
    assert blob
    assert_no_identifier(blob, people, "the database")


def test_smtp_starttls_with_auth(home, people, tmp_path, monkeypatch, webhook, secret_file):
    import trustme
    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    smtp = start_smtp(tls_context=server_ctx, require_starttls=True, authenticator=authenticator,
                      auth_required=True)
    try:
        monkeypatch.setenv("DW_SMTP_PASSWORD", "s3cret")
        lab = people[0]["laboratoire"]
        cfg = base_config(cnil_url=webhook.url, secret_file=secret_file, smtp_port=smtp.port, labs=[lab])
        cfg["receivers"][2].update(security="starttls", username="dumpwatch", password_env="DW_SMTP_PASSWORD",
                                   ca_file=str(ca_file))
        db = open_db(home.db_path)
        mine = [p for p in people if p["laboratoire"] == lab][:5]
        record_finding(db, make_finding(mine, url="https://paste.example/raw/tls"), config=cfg)
        report = deliver_due(db, alerting_of(cfg))
        assert report.delivered == 2, (report.summary(), report.errors)
        assert logins == [("dumpwatch", "s3cret")]
        assert len(smtp.mails) == 1 and smtp.mails[0].rcpt_tos == ["dpo0@lab0.example"]

        # Without the CA the certificate is refused: verification is on by default.
        cfg["receivers"][2].pop("ca_file")
        record_finding(db, make_finding(mine[:3], url="https://paste.example/raw/tls2", leak="other-leak"),
                       config=cfg)
        report = deliver_due(db, alerting_of(cfg))
        assert report.delivered == 1 and report.failed == 1, report.summary()
        assert "TLS" in report.errors[0] and "certificate" in report.errors[0].lower()
        assert len(smtp.mails) == 1
    finally:
        smtp.controller.stop()


def test_webhook_signature_rejected_with_wrong_secret(home, people, secret_file, smtp_server):
    receiver = WebhookReceiver(secret=b"another-secret").start()
    try:
        cfg = base_config(cnil_url=receiver.url, secret_file=secret_file, smtp_port=smtp_server.port, labs=[])
        db = open_db(home.db_path)
        record_finding(db, make_finding(people[:5], url="https://x.example/1"), config=cfg)
        report = deliver_due(db, alerting_of(cfg))
        # The receiver answers 401: a permanent error, the message is a dead letter (no fallback set).
        assert report.dead == 1 and "401" in report.errors[0]
        assert receiver.hooks and not receiver.hooks[0].signature_ok
        status = db.execute("SELECT status FROM alert_notifications").fetchone()[0]
        assert status == "dead"
    finally:
        receiver.stop()


def test_slack_format_is_signed_text(home, people, secret_file, smtp_server, webhook):
    cfg = base_config(cnil_url=webhook.url, secret_file=secret_file, smtp_port=smtp_server.port, labs=[],
                      alerts={"language": "en"})
    cfg["receivers"][0]["format"] = "slack"
    db = open_db(home.db_path)
    record_finding(db, make_finding(people[:150], url="https://x.example/slack"), config=cfg)
    assert deliver_due(db, alerting_of(cfg)).delivered == 1
    (hook,) = webhook.hooks
    body = hook.json()
    assert set(body) == {"text", "username"} and hook.signature_ok and hook.key.startswith("dw-")
    assert "CRITICAL repost of labos-2021: 150 records" in body["text"]
    assert_no_identifier(hook.body, people, "a slack body")


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1 (trustme)."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, ca_file


def test_https_webhook_verifies_certificates(home, people, secret_file, smtp_server, tls_ca):
    server_ctx, ca_file = tls_ca
    receiver = WebhookReceiver(ssl_context=server_ctx).start()
    try:
        cfg = base_config(cnil_url=receiver.url, secret_file=secret_file, smtp_port=smtp_server.port, labs=[])
        db = open_db(home.db_path)
        record_finding(db, make_finding(people[:5], url="https://x.example/tls-a", leak="a"), config=cfg)
        refused = deliver_due(db, alerting_of(cfg))
        assert refused.failed == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.errors[0]
        assert receiver.hooks == []
        cfg["receivers"][0]["ca_file"] = str(ca_file)
        nid = db.execute("SELECT id FROM alert_notifications").fetchone()[0]
        from alerts.delivery import retry

        retry(db, alerting_of(cfg), nid)
        ok = deliver_due(db, alerting_of(cfg))
        assert ok.delivered == 1 and receiver.hooks[0].signature_ok
    finally:
        receiver.stop()


def test_smtp_implicit_tls(home, people, secret_file, webhook, tls_ca):
    server_ctx, ca_file = tls_ca
    smtp = start_smtp(ssl_context=server_ctx)
    try:
        lab = people[0]["laboratoire"]
        cfg = base_config(cnil_url=webhook.url, secret_file=secret_file, smtp_port=smtp.port, labs=[lab])
        cfg["receivers"][2].update(security="tls", ca_file=str(ca_file))
        db = open_db(home.db_path)
        mine = [p for p in people if p["laboratoire"] == lab][:3]
        record_finding(db, make_finding(mine, url="https://paste.example/raw/smtps"), config=cfg)
        report = deliver_due(db, alerting_of(cfg))
        assert report.delivered == 2, report.errors
        assert len(smtp.mails) == 1
    finally:
        smtp.controller.stop()

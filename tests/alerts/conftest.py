"""Fixtures of the alerts tests: a real SMTP server (aiosmtpd) and a real webhook receiver that
verifies signatures, both on 127.0.0.1 free ports, stopped after each test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.alertkit import SECRET
from dumpwatch.devkit.localsites import WebhookReceiver, start_smtp  # shared with `dumpwatch demo`


@pytest.fixture
def smtp_server():
    server = start_smtp()
    yield server
    server.controller.stop()


@pytest.fixture
def webhook():
    receiver = WebhookReceiver(SECRET.encode()).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def secret_file(tmp_path) -> Path:
    p = tmp_path / "webhook.secret"
    p.write_text(SECRET + "\n")
    p.chmod(0o600)
    return p

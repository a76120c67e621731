"""The signature-verification snippets of README.md and docs/*.md run, as written, on a message that
dumpwatch signed and sent to a real HTTP receiver; what the docs say of the library's ``verify`` is
its real signature (issue 10, case 8)."""

from __future__ import annotations

import inspect
import re
import time
from pathlib import Path

import httpx
import pytest

from alerts.channels import webhook as channel
from alerts.outbox import alerting_of
from alerts.render import probe_message
from tests.helpers.alertkit import SECRET, base_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def snippets() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for block in FENCE.findall(path.read_text(encoding="utf-8")):
            if re.search(r"^def verify\(", block, re.M):
                found.append((path.name, block))
    return found


def test_the_docs_have_a_verification_snippet():
    assert snippets(), "no ```python block defining verify() in README.md or docs/*.md"


@pytest.fixture
def signed(webhook, secret_file):
    """One message signed and POSTed by the webhook channel; what the receiver got (headers, body)."""
    cfg = base_config(cnil_url=webhook.url, secret_file=secret_file, smtp_port=9, labs=[])
    receiver = alerting_of(cfg).receivers["cnil"]
    assert channel.send(receiver, probe_message(receiver.name, "dw-docs"), "dw-docs") == "HTTP 200"
    [hook] = webhook.hooks
    assert hook.signature_ok
    return httpx.Headers(hook.headers), hook.body  # case-insensitive, as a receiver's framework gives


@pytest.mark.parametrize("where,code", snippets(), ids=[name for name, _ in snippets()])
def test_snippet_runs_as_written_on_a_real_signed_message(where, code, signed):
    headers, body = signed
    namespace: dict = {}
    exec(compile(code, f"<{where} snippet>", "exec"), namespace)
    verify = namespace["verify"]
    secret = SECRET.encode()
    assert verify(secret, headers, body) is True
    assert verify(secret, headers, body + b" ") is False  # a changed body
    assert verify(b"another secret", headers, body) is False
    old = str(int(time.time()) - 3600)  # a replay an hour later, correctly signed for its time
    replay = httpx.Headers(headers)
    replay["X-Dumpwatch-Timestamp"], replay["X-Dumpwatch-Signature"] = old, channel.sign(secret, old, body)
    assert verify(secret, replay, body) is False
    # the library's verify agrees on the same inputs
    assert channel.verify(secret, headers["X-Dumpwatch-Timestamp"], body, headers["X-Dumpwatch-Signature"])
    assert not channel.verify(secret, old, body, replay["X-Dumpwatch-Signature"])


def test_what_the_docs_say_of_the_library_verify_is_its_signature():
    said = []
    for path in DOCS:
        said += re.findall(r"`alerts\.channels\.webhook\.verify(\([^`]*\))`", path.read_text(encoding="utf-8"))
    assert said, "the docs name alerts.channels.webhook.verify without its call signature"
    real = inspect.signature(channel.verify)
    for call in said:
        stated = inspect.signature(eval(f"lambda {call[1:-1]}: None"))  # the parameters as the doc writes them
        assert list(stated.parameters) == list(real.parameters), call
        for name, p in stated.parameters.items():
            assert p.kind == real.parameters[name].kind, (call, name)
            assert p.default == real.parameters[name].default, (call, name)

"""Webhook channel: a JSON POST signed with HMAC-SHA256, with an idempotency key header.

Headers::

    Content-Type: application/json
    Idempotency-Key: dw-…                 (the same on every retry of one message)
    X-Dumpwatch-Timestamp: 1614067200     (Unix seconds when this attempt was signed)
    X-Dumpwatch-Signature: sha256=HEX     (HMAC-SHA256(secret, timestamp + "." + body))

A receiver verifies the signature over the raw body, rejects a timestamp too far from its clock
(replays), and drops a key it has already processed. ``format = "slack"`` sends a
Slack/Mattermost-compatible ``{"text": …}`` body instead (still signed), escaped for chat by
:func:`chat_text` (no mention, link, image or control sequence from what a page wrote). TLS
verification is on unless the receiver says ``verify_tls = false``; ``ca_file`` trusts a private CA.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import httpx

from alerts.channels import ChannelError, tls_context
from alerts.render import Message
from alerts.settings import Receiver
from dumpwatch.escape import mrkdwn, mrkdwn_markdown

log = logging.getLogger(__name__)

SLACK_LIMIT = 3500
SIGNATURE_HEADER = "X-Dumpwatch-Signature"
TIMESTAMP_HEADER = "X-Dumpwatch-Timestamp"
KEY_HEADER = "Idempotency-Key"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300,
           now: float | None = None) -> bool:
    """What a receiver does: constant-time comparison, and a timestamp within ``tolerance`` seconds."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


DRAFT_SEPARATOR = "\n" + "-" * 72 + "\n"  # between the message and the Article 33 draft in Message.text


def chat_text(text: str) -> str:
    """A message's plain text as Slack/Mattermost text: each line escaped by :func:`mrkdwn`, the
    Article 33 draft (Markdown, escaped when it was rendered) by :func:`mrkdwn_markdown`."""
    head, sep, draft = text.partition(DRAFT_SEPARATOR)
    lines = "\n".join(mrkdwn(line, limit=None) for line in head.split("\n"))
    return lines + sep + mrkdwn_markdown(draft) if sep else lines


def body_of(receiver: Receiver, message: Message) -> bytes:
    if receiver.format == "slack":
        text = chat_text(message.text)
        if len(text) > SLACK_LIMIT:  # cut; a code span cut open is closed, or its URL would become a link
            text = text[:SLACK_LIMIT]
            text += ("`" if text.count("`") % 2 else "") + "\n…"
        payload = {"text": text, "username": "dumpwatch"}
    else:
        payload = {**message.data, "subject": message.subject, "text": message.text,
                   "draft_markdown": message.markdown}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


def send(receiver: Receiver, message: Message, idempotency_key: str) -> str:
    body = body_of(receiver, message)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "dumpwatch-alerts/1",
        KEY_HEADER: idempotency_key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(receiver.secret(), timestamp, body),
        "X-Dumpwatch-Kind": str(message.data.get("kind", "")),
    }
    try:
        response = httpx.post(receiver.url, content=body, headers=headers, timeout=receiver.timeout,
                              verify=tls_context(receiver), follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ChannelError(f"receiver {receiver.name}: POST {receiver.url} failed: {type(exc).__name__}: {exc}") from None
    if response.is_success:
        return f"HTTP {response.status_code}"
    status = response.status_code
    transient = status in (408, 425, 429) or status >= 500
    raise ChannelError(f"receiver {receiver.name}: POST {receiver.url} answered HTTP {status} "
                       f"{response.text[:200]!r}", permanent=not transient)

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

The URL (``url``, ``url_env`` or ``url_file``: :meth:`~alerts.settings.Receiver.endpoint`) is a
credential for Slack and Mattermost: errors name it redacted (:func:`dumpwatch.redact.redact_url`),
httpx's text and the receiver's answer are redacted too, and so is httpx's own request log line.
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
from dumpwatch.redact import redact_url, redact_urls, secret_parts

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
    url = receiver.endpoint()
    shown = redact_url(url)  # the URL is a credential: never in an error, a log or a column
    _SENT_TO.update(_forms(url))
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
        response = httpx.post(url, content=body, headers=headers, timeout=receiver.timeout,
                              verify=tls_context(receiver), follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # its text may quote the URL
        raise ChannelError(f"receiver {receiver.name}: POST failed: {type(exc).__name__}: "
                           f"{redact_urls(str(exc), _forms(url))} ({shown})") from None
    if response.is_success:
        return f"HTTP {response.status_code}"
    status = response.status_code
    transient = status in (408, 425, 429) or status >= 500
    answer = redact_urls(response.text[:4000], _forms(url))[:200]  # it may echo the URL it was called on
    raise ChannelError(f"receiver {receiver.name}: POST answered HTTP {status} {answer!r} ({shown})",
                       permanent=not transient)


_SENT_TO: set[str] = set()  # the receiver URLs this process posted to


def _forms(url: str) -> set[str]:
    """A URL as configured, as httpx writes it (host lowercased, path encoded), and the parts of it
    that may hold its token (:func:`dumpwatch.redact.secret_parts`)."""
    try:
        written = str(httpx.URL(url))
    except (httpx.InvalidURL, ValueError):
        written = url
    return secret_parts(url) | secret_parts(written)


class _RedactedRequests(logging.Filter):
    """httpx logs every request with its URL at INFO ("HTTP Request: POST https://…"): the receivers'
    URLs are redacted here, on httpx's own logger, before any handler (the daemon's log, the
    journal) sees them. Other requests made with httpx are logged as they are."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(url in text for url in _SENT_TO):
            record.msg, record.args = redact_urls(text, _SENT_TO), None
        return True


if not any(isinstance(f, _RedactedRequests) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactedRequests())

"""Receiver URLs are credentials: how they are shown wherever dumpwatch shows one.

For Slack and Mattermost incoming webhooks (and many others) whoever knows the URL can post to the
channel: the URL is the secret. So a receiver's URL is never written whole to a log, a
``last_error`` column or a command's output; it is shown as its scheme, host (and port) and a short
hash of the whole URL, enough to tell two receivers apart and to check which URL is configured
(``printf %s "$URL" | sha256sum | cut -c1-6``) without revealing it::

    https://hooks.slack.com/services/T000/B000/XXXXXXXX  →  https://hooks.slack.com/…#3f2a9c

The hash is a plain SHA-256 cut to 6 hex digits (24 bits): thousands of millions of URLs share
each value, so it tells nothing about a token that is itself random. :func:`redact_urls` does the
same to every URL in a text (an error message quoting the URL it failed on: httpx's do), and leaves
an already redacted URL as it is, so applying it twice changes nothing. It imports nothing of the
project (the ground floor).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["redact_url", "redact_urls", "secret_parts", "url_hash"]

HASH_DIGITS = 6
# scheme://anything up to a space, a quote, a bracket, a backtick or a control character
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s'\"<>`\x00-\x1f\x7f]+")
_REDACTED = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/\s]*/…#[0-9a-f]{%d}" % HASH_DIGITS)


def url_hash(url: str) -> str:
    """The short hash that identifies ``url`` in its redacted form."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…#hash``: no user, password, path, query or fragment of ``url``
    (a text that is not a URL, a bare path or token: ``…#hash``)."""
    if _REDACTED.fullmatch(url):
        return url
    if "://" not in url:
        return f"…#{url_hash(url)}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL urllib can split (a bad port, a broken IPv6 literal)
        return f"…#{url_hash(url)}"
    if ":" in host:
        host = f"[{host}]"
    where = f"{host}:{port}" if port is not None else host
    scheme = parts.scheme or "?"
    return f"{scheme}://{where}/…#{url_hash(url)}"


def redact_urls(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted, and first every one of ``secrets`` (the configured
    URLs, their paths: found even where they are not shaped like a URL, inside a longer word or
    quoted), longest first."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, redact_url(secret))
    return _URL.sub(lambda m: _one(m.group(0)), text)


def _one(found: str) -> str:
    if _REDACTED.fullmatch(found):
        return found
    # a sentence's full stop, comma or closing bracket after the URL is not part of it
    stripped = found.rstrip(".,;:!?)]}")
    return redact_url(stripped) + found[len(stripped):]


def secret_parts(url: str) -> set[str]:
    """What of ``url`` a server or a library may quote besides the URL itself: its path with the
    query (``/services/T000/B000/XXXX``) and its last path segment, when they are long enough to
    hold a token (16 characters or more: Slack and Mattermost tokens have 24 and 26)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return {url} | {p for p in (path, last, parts.query) if len(p) >= 16}

"""The serializer of the requests put in Redis (scrapy-redis ``SCHEDULER_SERIALIZER``): JSON, never pickle.

scrapy-redis pickles its requests by default, which lets whoever can write to Redis run code on every
worker. Here a request is the dict :meth:`scrapy.Request.to_dict` gives, written as JSON: its bytes
(body, headers) as base64 or Latin-1 text, its ``meta``, ``cookies`` and ``cb_kwargs`` JSON values
or refused. :func:`loads` reads back only such a dict: a plain :class:`scrapy.Request` (no
``_class``, which scrapy would import), an http(s) URL, callbacks named by a public method name.
Both raise :class:`ValueError` for anything else.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

KEYS = frozenset({"url", "callback", "errback", "method", "headers", "body", "cookies", "meta", "encoding",
                  "priority", "dont_filter", "flags", "cb_kwargs"})
_METHOD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def dumps(obj: Any) -> str:
    """A request dict as one JSON text; :class:`ValueError` for anything that is not one."""
    if not isinstance(obj, dict):
        raise ValueError(f"only request dicts go to Redis, not {type(obj).__name__}")
    unknown = set(obj) - KEYS
    if unknown:  # "_class" among them: only plain scrapy.Request objects cross
        raise ValueError(f"request dict with keys that do not go to Redis: {', '.join(sorted(unknown))}")
    data = dict(obj)
    data["body"] = base64.b64encode(bytes(obj.get("body") or b"")).decode("ascii")
    data["headers"] = {_text(k): [_text(v) for v in vs] for k, vs in (obj.get("headers") or {}).items()}
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:  # a meta or cb_kwargs value that is not JSON
        raise ValueError(f"request to {obj.get('url')!r} holds a value that is not JSON: {exc}") from None
    _check(json.loads(text))
    return text


def loads(text: str | bytes) -> dict[str, Any]:
    """The request dict back from :func:`dumps` (for :func:`scrapy.utils.request.request_from_dict`)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a JSON request: {exc}") from None
    _check(data)
    data["body"] = base64.b64decode(data.get("body") or "", validate=True)
    data["headers"] = {k.encode("latin-1"): [v.encode("latin-1") for v in vs]
                       for k, vs in (data.get("headers") or {}).items()}
    return data


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _check(data: Any) -> None:
    if not isinstance(data, dict):
        raise ValueError("a request must be a JSON object")
    unknown = set(data) - KEYS
    if unknown:
        raise ValueError(f"unexpected request keys: {', '.join(sorted(unknown))}")
    url = data.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ValueError("a request needs an http:// or https:// URL")
    for name in ("callback", "errback"):
        value = data.get(name)
        if value is not None and not (isinstance(value, str) and _METHOD_NAME.fullmatch(value)):
            raise ValueError(f"{name} must name a public method of the spider, not {value!r}")
    for name in ("meta", "cookies", "cb_kwargs", "headers"):
        if data.get(name) is not None and not isinstance(data[name], dict):
            raise ValueError(f"{name} must be an object")
    if not isinstance(data.get("body", ""), str):
        raise ValueError("body must be base64 text")

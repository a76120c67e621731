"""The enrolled indexes of a worker, checked against the control node's before it scans anything.

A worker scans with its own copy of the home's ``index/`` and key (copied by the operator; see
docs/scale.md). The control node publishes what it has enrolled at each crawl push (:func:`publish`):
the key id (:func:`matchers.fingerprint.key_id`, a public identifier, never the key) and, per leak,
the SHA-256 of the index's ``meta.json`` (it changes when a leak is enrolled again). A worker checks
its own against it at start (:func:`check`) and refuses to run with a foreign key, a missing leak, a
stale copy or a leak the control node does not have, saying which and what to do (:func:`compare`);
a running worker goes on checking (crawler/cluster/reload.py: it reloads a fresh copy, pauses on a
stale one). The control node publishes again at each findings pass too (dumpwatch/daemon/cluster.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from dumpwatch.errors import ScannerUnavailable

log = logging.getLogger(__name__)

KEY = "dumpwatch:indexes"


def identity(home: Any) -> dict[str, Any]:
    """The key id and, per enrolled leak, the SHA-256 of its ``meta.json``."""
    from matchers.fingerprint import key_id

    index_dir = Path(home.index_dir)
    leaks = {}
    if index_dir.is_dir():
        for d in sorted(index_dir.iterdir()):
            meta = d / "meta.json"
            if d.is_dir() and not d.name.startswith(".") and meta.exists():
                leaks[d.name] = hashlib.sha256(meta.read_bytes()).hexdigest()
    return {"key_id": key_id(home.load_key()), "leaks": leaks}


def publish(r: Any, home: Any) -> dict[str, Any]:
    """The control node: what it has enrolled, for the workers to check."""
    mine = identity(home)
    r.set(KEY, json.dumps(mine, sort_keys=True))
    return mine


def compare(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """What differs between a worker's identity and the control node's, each said with what to do."""
    if mine["key_id"] != theirs.get("key_id"):
        return [f"has another key (key id {mine['key_id']}) than the control node ({theirs.get('key_id')})"]
    problems = []
    for leak, digest in sorted(theirs.get("leaks", {}).items()):
        if leak not in mine["leaks"]:
            problems.append(f"leak {leak!r} is not enrolled here")
        elif mine["leaks"][leak] != digest:
            problems.append(f"leak {leak!r} is stale here (enrolled again on the control node)")
    problems += [f"leak {leak!r} is enrolled here but not on the control node"
                 for leak in sorted(set(mine["leaks"]) - set(theirs.get("leaks", {})))]
    return problems


def published(r: Any) -> dict[str, Any] | None:
    """The control node's published identity, ``None`` before it published one."""
    raw = r.get(KEY)
    return json.loads(raw) if raw else None


def check(r: Any, home: Any, *, wait: float = 1.0) -> dict[str, Any]:
    """A worker: its indexes and key against the control node's; :class:`ScannerUnavailable` saying why not.

    Until the control node has published its own, this waits (polling every ``wait`` seconds), said once.
    """
    raw = r.get(KEY)
    if not raw:
        log.warning("waiting for the control node to publish its enrolled indexes (Redis key %s): "
                    "is `dumpwatch daemon --redis …` running?", KEY)
    while not raw:
        time.sleep(wait)
        raw = r.get(KEY)
    theirs = json.loads(raw)
    mine = identity(home)
    problems = compare(mine, theirs)
    if problems:
        what = "key and index/" if mine["key_id"] != theirs.get("key_id") else "index/"
        raise ScannerUnavailable(f"this worker's home {home.root}: {'; '.join(problems)}: copy the control "
                                 f"node's {what} here and start the worker again")
    return mine

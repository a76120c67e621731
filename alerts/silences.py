"""Silences: matchers on alert labels (globs), an author, a comment and an expiry.

An alert whose labels match every matcher of an active silence is recorded as ``silenced`` when its
group goes out, and never sent. Labels: ``leak``, ``verdict``, ``severity``, ``lab`` (the lab a
contact's alert is about; empty for the authority's and operators'), ``source``, ``receiver``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import sqlite_utils

from dumpwatch import clock
from dumpwatch import store
from dumpwatch.errors import SilenceError

log = logging.getLogger(__name__)

LABELS = ("leak", "verdict", "severity", "lab", "source", "receiver")


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: dict[str, str]
    author: str
    comment: str
    created_at: str
    starts_at: str
    ends_at: str

    def active(self, at: datetime) -> bool:
        return self.starts_at <= clock.iso(at) < self.ends_at

    def matches(self, labels: dict[str, Any]) -> bool:
        return all(fnmatchcase(str(labels.get(k) or ""), v) for k, v in self.matchers.items())


def parse_matchers(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["leak=labos-2021", "receiver=lab-*"]`` → ``{"leak": "labos-2021", "receiver": "lab-*"}``."""
    matchers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in LABELS:
            raise SilenceError(f"matcher {item!r}: write LABEL=VALUE with LABEL one of {', '.join(LABELS)} "
                               "(VALUE may be a glob, e.g. receiver=lab-*)")
        matchers[key] = value.strip()
    if not matchers:
        raise SilenceError("a silence needs at least one matcher, e.g. --match leak=labos-2021")
    return matchers


def check_known(matchers: dict[str, str], known: dict[str, Any]) -> None:
    """Refuse a matcher on a label whose value (or glob) matches nothing that exists: ``known`` maps
    a label (``lab``, ``source``) to the names it can take. A silence on a mistyped lab would
    otherwise be accepted and silence nothing, while the alerts it was meant for go out. An empty
    value (``lab=``: the authority's and operators' alerts, which have no lab) is always valid."""
    from dumpwatch.tables import did_you_mean

    for label, names in known.items():
        value = matchers.get(label)
        if not value:
            continue
        names = sorted(set(names))
        if any(fnmatchcase(n, value) for n in names):
            continue
        what = {"lab": "no enrolled leak has a lab", "source": "no configured source is named"}.get(
            label, f"no {label} is")
        listed = ", ".join(repr(n) for n in names[:12]) + (", …" if len(names) > 12 else "")
        raise SilenceError(f"--match {label}={value!r}: {what} {value!r}; {did_you_mean(value, names)}"
                           f"known: {listed or 'none'} (a silence on it would silence nothing)")


def add(db: sqlite_utils.Database, matchers: dict[str, str], *, author: str, comment: str,
        ends_at: datetime, starts_at: datetime | None = None, now: datetime | None = None) -> int:
    now = now or clock.now()
    if not author.strip() or not comment.strip():
        raise SilenceError("a silence needs an author (--author, default $USER) and a comment (--comment): who, and why")
    if ends_at <= (starts_at or now):
        raise SilenceError("a silence must end after it starts: give a positive --duration or a later --until")
    with store.write(db):
        sid = db["alert_silences"].insert({
            "matchers": json.dumps(matchers, sort_keys=True, ensure_ascii=False), "author": author,
            "comment": comment, "created_at": clock.iso(now), "starts_at": clock.iso(starts_at or now),
            "ends_at": clock.iso(ends_at),
        }).last_pk
    log.info("silence %s added by %s until %s: %s", sid, author, clock.iso(ends_at), matchers)
    return int(sid)


def expire(db: sqlite_utils.Database, silence_id: int, *, now: datetime | None = None) -> Silence:
    now = now or clock.now()
    row = db.execute("SELECT * FROM alert_silences WHERE id = ?", [silence_id]).fetchone()
    if row is None:
        raise SilenceError(f"no silence {silence_id}; see: dumpwatch alerts silence list --all")
    with store.write(db):
        db.execute("UPDATE alert_silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
                   [clock.iso(now), silence_id, clock.iso(now)])
    return get(db, silence_id)


def get(db: sqlite_utils.Database, silence_id: int) -> Silence:
    return _silence(db["alert_silences"].get(silence_id))


def listed(db: sqlite_utils.Database, *, include_expired: bool = False,
           now: datetime | None = None) -> list[Silence]:
    now = now or clock.now()
    where, params = (None, None) if include_expired else ("ends_at > ?", [clock.iso(now)])
    return [_silence(r) for r in db["alert_silences"].rows_where(where, params, order_by="id")]


def active(db: sqlite_utils.Database, at: datetime) -> list[Silence]:
    t = clock.iso(at)
    rows = db["alert_silences"].rows_where("starts_at <= ? AND ends_at > ?", [t, t], order_by="id")
    return [_silence(r) for r in rows]


def _silence(row: dict[str, Any]) -> Silence:
    return Silence(id=row["id"], matchers=json.loads(row["matchers"]), author=row["author"],
                   comment=row["comment"], created_at=row["created_at"], starts_at=row["starts_at"],
                   ends_at=row["ends_at"])

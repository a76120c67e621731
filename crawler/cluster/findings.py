"""The findings stream: workers ``XADD`` what they found, the control node records it, once.

A worker never writes SQLite in the distributed mode: for each document whose verdict is not
``none`` it adds one entry to the Redis Stream ``dumpwatch:findings`` (:func:`publish`): the finding
as the scan JSON contract (counts, categories, leak, the content's SHA-256, the redacted sample,
masked again as the store masks it), the source, the URL, when it was fetched and the small
``detail`` the store keeps. Never the document.

The control node reads the stream with a consumer group (:class:`Consumer`): ``XREADGROUP``, then
:func:`alerts.record_finding` (the finding, its alerts into the outbox, one transaction), then
``XACK`` only once that transaction committed. What happens when things go wrong:

- the control node dies after the commit and before the ``XACK``: the entry stays pending; read
  again (by the same consumer name at its restart: its own pending entries first, or by another
  consumer through ``XAUTOCLAIM`` after ``claim_idle``), it is recorded again, and the store's
  dedup key (verdict, leak, content SHA-256) makes that a no-op: one finding, one alert;
- the same document found twice (two workers, two runs, two URLs with the same bytes): two
  entries, one finding;
- the store cannot write (disk full, locked): the entry is not acknowledged, it is retried at the
  next pass; counted in ``errors``;
- an entry that is not a finding (written by something else): moved to ``dumpwatch:findings:dead``
  with the reason, acknowledged, counted in ``bad`` and said in the log.

After a pass that acknowledged entries, the stream is trimmed below the oldest entry any consumer
group still needs and below :data:`KEEP_SECONDS` ago (:meth:`Consumer.trim`: ``XTRIM MINID``):
acknowledged entries leave Redis after a day (about 1.1 KB each), pending and unread ones never do.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from alerts.privacy import scrub, scrub_value
from matchers.finding import Finding

log = logging.getLogger(__name__)

STREAM = "dumpwatch:findings"
DEAD = "dumpwatch:findings:dead"
GROUP = "control"
VERSION = "1"
KEEP_SECONDS = 86_400.0  # acknowledged entries stay this long in the stream (to be looked at), then trimmed
FIELDS = ("v", "finding", "source", "url", "first_seen", "detail")


def entry(finding: Finding, *, source: str, url: str, first_seen: str | None = None,
          detail: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The stream entry of one finding: text fields only, nothing of the document but its counts."""
    data = finding.to_json()
    data["sample"] = [scrub(str(s)) for s in data.get("sample") or ()]
    data["errors"] = [scrub(str(e)) for e in data.get("errors") or ()]
    data["input"] = scrub(str(data.get("input") or ""))
    return {"v": VERSION, "finding": json.dumps(data, sort_keys=True), "source": source, "url": scrub(url),
            "first_seen": first_seen or "", "detail": json.dumps(scrub_value(dict(detail or {})), sort_keys=True)}


def publish(r: redis.Redis, finding: Finding, **kwargs: Any) -> str:
    """``XADD`` one finding to the stream; its entry id. Trimmed by the control node once acknowledged
    (:meth:`Consumer.trim`), never by the workers."""
    return r.xadd(STREAM, entry(finding, **kwargs))


def parse(fields: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of :func:`alerts.record_finding` from a stream entry; ValueError if it is not one."""
    if fields.get("v") != VERSION:
        raise ValueError(f"unknown entry version {fields.get('v')!r}")
    try:
        data = json.loads(fields["finding"])
        detail = json.loads(fields.get("detail") or "{}")
        finding = Finding.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a finding: {type(exc).__name__}: {str(exc)[:200]}") from None
    if finding.verdict == "none" or not finding.sha256 or not isinstance(detail, dict):
        raise ValueError("a finding entry needs a verdict other than none and the content's sha256")
    return {"finding": finding, "source": fields.get("source", ""), "url": fields.get("url") or None,
            "first_seen": fields.get("first_seen") or None, "detail": detail}


@dataclass
class Pass:
    """What one :meth:`Consumer.run_once` did."""

    read: int = 0
    recorded: int = 0
    duplicates: int = 0
    claimed: int = 0
    bad: int = 0
    errors: int = 0
    lost: int = 0  # pending entries deleted from the stream before they were recorded
    trimmed: int = 0  # entries deleted from the stream once every group had acknowledged them
    ids: list[str] = field(default_factory=list)  # the entries acknowledged


class Consumer:
    """The control node's reader of the findings stream (a consumer of the group ``control``).

    ``record`` writes one finding and returns its id, or ``None`` when it was already recorded
    (:func:`alerts.record_finding` with the database and configuration bound). ``name`` is this
    consumer's name in the group: keep it stable across restarts (its own pending entries are read
    again first). ``claim_idle`` (seconds): entries another consumer read and did not acknowledge
    for that long are claimed (``XAUTOCLAIM``). ``keep`` (seconds): how long acknowledged entries
    stay in the stream (for a look with ``XRANGE``) before :meth:`trim` deletes them.
    """

    def __init__(self, r: redis.Redis, record: Any, *, name: str | None = None, claim_idle: float = 300.0,
                 stream: str = STREAM, group: str = GROUP, keep: float = KEEP_SECONDS):
        self.r = r
        self.keep_ms = int(keep * 1000)
        self.record = record
        self.name = name or f"control-{socket.gethostname()}"
        self.claim_idle_ms = int(claim_idle * 1000)
        self.stream = stream
        self.group = group
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; it reads from the stream's start."""
        try:
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def run_once(self, *, count: int = 100, block_ms: int | None = None) -> Pass:
        """One pass: this consumer's own pending entries, those claimed from dead consumers, then new ones.

        ``block_ms``: how long to wait for a new entry when there is none (None: do not wait).
        """
        if not self._group_ready:
            self.ensure_group()
        try:
            return self._pass(count, block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # a Redis that restarted without its data: the group again next pass
                self._group_ready = False
                log.error("the findings stream's consumer group is gone (Redis restarted without "
                          "persistence?): it is created again; findings sent meanwhile may be lost")
            raise

    def _pass(self, count: int, block_ms: int | None) -> Pass:
        done = Pass()
        # 1. ours, read before a crash or a failed write, not acknowledged
        self._handle(self._read("0", count, None), done)
        # 2. others', idle for claim_idle: a dead consumer's
        cursor = "0-0"
        while True:
            cursor, claimed, *_ = self.r.xautoclaim(self.stream, self.group, self.name, self.claim_idle_ms,
                                                    start_id=cursor, count=count)
            claimed = [(i, f) for i, f in claimed if f is not None]  # None: an entry deleted meanwhile
            if claimed:
                log.warning("took over %d finding(s) left unacknowledged by another consumer", len(claimed))
            done.claimed += len(claimed)
            self._handle(claimed, done)
            if cursor in ("0-0", b"0-0"):
                break
        # 3. new entries
        while True:
            entries = self._read(">", count, block_ms)
            self._handle(entries, done)
            if len(entries) < count:
                break
            block_ms = None
        if done.ids:  # 4. what every group has acknowledged leaves the stream (bounded memory)
            done.trimmed = self.trim()
        return done

    def _read(self, start: str, count: int, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        answer = self.r.xreadgroup(self.group, self.name, {self.stream: start}, count=count, block=block_ms)
        return [(i, f) for _, entries in (answer or []) for i, f in entries]

    def _handle(self, entries: list[tuple[str, dict[str, str]]], done: Pass) -> None:
        for entry_id, fields in entries:
            if not fields:  # a pending entry whose data was deleted from the stream: a finding lost
                done.lost += 1
                log.error("findings stream entry %s was deleted before it was recorded: a finding is lost "
                          "(someone ran XDEL or XTRIM on %s); set aside in %s", entry_id, self.stream, DEAD)
                self.r.xadd(DEAD, {"id": entry_id, "reason": "deleted from the stream before it was recorded"})
                self.r.xack(self.stream, self.group, entry_id)
                continue
            done.read += 1
            try:
                kwargs = parse(fields)
            except ValueError as exc:
                done.bad += 1
                log.error("findings stream entry %s is not a finding (%s): moved to %s", entry_id, exc, DEAD)
                self.r.xadd(DEAD, {"id": entry_id, "reason": str(exc)[:500]})
                self.r.xack(self.stream, self.group, entry_id)
                continue
            try:
                finding_id = self.record(**kwargs)
            except Exception as exc:  # a storage failure: not acknowledged, read again next pass
                done.errors += 1
                log.error("could not record finding %s from %s (%s): left pending, retried next pass",
                          entry_id, kwargs["source"], type(exc).__name__)
                continue
            if finding_id is None:
                done.duplicates += 1
            else:
                done.recorded += 1
            self.r.xack(self.stream, self.group, entry_id)  # only after the commit
            done.ids.append(entry_id)

    def trim(self) -> int:
        """Delete the entries older than ``keep`` that every consumer group of the stream has read and
        acknowledged (``XTRIM … MINID``); how many. The floor is, for each group, its oldest pending
        entry, or the entry after the last it read when nothing is pending; the lowest floor of all
        groups is kept, and no higher than ``keep`` ago (an entry's id is its time on Redis's clock).
        Entries only grow above it meanwhile (new ones, new reads), so nothing pending or unread is
        ever trimmed. A stream without a group is not trimmed."""
        now_s, now_us = self.r.time()
        floor = (max(0, int(now_s) * 1000 + int(now_us) // 1000 - self.keep_ms), 0)
        groups = self.r.xinfo_groups(self.stream)
        for group in groups:
            if int(group["pending"]):
                bound = _id(self.r.xpending(self.stream, group["name"])["min"])
            else:
                ms, seq = _id(group["last-delivered-id"])
                bound = (ms, seq + 1)
            floor = min(floor, bound)
        if not groups or floor <= (0, 1):
            return 0
        return int(self.r.xtrim(self.stream, minid=f"{floor[0]}-{floor[1]}", approximate=False))


def _id(entry_id: Any) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)

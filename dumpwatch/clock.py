"""The one time module: ISO 8601 UTC strings with second precision in the store (comparable as
text), aware datetimes in code, and ``now`` passed in where tests must not sleep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(dt: datetime) -> str:
    """The stored form, comparable as text: ``2021-02-23T10:00:00+00:00``."""
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def parse(text: str) -> datetime:
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def later(dt: datetime, seconds: float) -> str:
    """``iso(dt + seconds)``, rounded up to the next second so a wait is never cut short."""
    whole = int(seconds) + (1 if seconds > int(seconds) else 0)
    return iso(dt + timedelta(seconds=whole))


def utcnow() -> str:
    """Now, in the stored form."""
    return iso(now())


def cutoff(seconds: float, now_: datetime | None = None) -> str:
    """The stored form of ``seconds`` before ``now_`` (default: now): rows older than it expire."""
    return iso((now_ or now()) - timedelta(seconds=seconds))

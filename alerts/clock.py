"""Time for the alerts package: ISO 8601 UTC strings in the store (the format of ``store.utcnow``),
aware datetimes in code, and one injectable ``now`` so tests never sleep."""

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

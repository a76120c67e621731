"""Types shared by the extraction modules: limits, tables, errors and the per-input context.

Public names are re-exported by :mod:`matchers.extract`; import them from there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from matchers.errors import (  # noqa: F401 (re-exported by matchers.extract)
    ArchiveBombError,
    CorruptInputError,
    ExtractError,
    LimitExceededError,
    SettingsError,
)

log = logging.getLogger("matchers.extract")

KINDS = ("delimited", "json", "html", "keyvalue", "combo", "text")


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one input may cause; see docs/extraction.md.

    Every limit is per input (one call of ``extract``), nested members included.
    """

    max_bytes: int = 2 * 1024**3         # total decompressed bytes read from one input
    max_ratio: float = 200.0             # decompressed/compressed ratio above which a member is a bomb
    max_depth: int = 3                   # nested containers (a.zip!b.zip!c.gz!d.csv is depth 3)
    max_members: int = 10_000            # members of one archive
    max_json_bytes: int = 256 * 1024**2  # one non-streamable JSON record / HTML page (characters)
    max_html_bytes: int = 32 * 1024**2   # one HTML page (UTF-8 bytes): its BeautifulSoup tree needs 30-50x
    max_line_chars: int = 1024**2        # longer physical lines are split (never one giant string)
    ratio_grace_bytes: int = 1024**2     # members expanding to less than this are never called bombs

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise SettingsError(f"must be a positive number, not {value!r}", key=f"limits.{f.name}")


@dataclass(frozen=True)
class Table:
    """One table of records found in an input; ``rows`` is lazy (the contract: matchers.extract)."""

    source: str
    kind: str
    header: tuple[str, ...] | None
    rows: Iterator[Any]
    encoding: str | None = None


class Context:
    """What one ``extract`` call shares between its readers: limits, error list, byte budget."""

    def __init__(self, limits: Limits, errors: list[str] | None):
        self.limits = limits
        self.errors: list[str] = errors if errors is not None else []
        self.used = 0

    def report(self, source: str, reason: str) -> None:
        """Record one problem. ``reason`` never quotes content: names, sizes and causes only."""
        message = f"{source}: {reason}"
        self.errors.append(message)
        log.info("extract: %s", message)

    def take(self, n: int) -> int:
        """Count ``n`` content bytes against ``max_bytes``; returns how many fit (< n: exhausted)."""
        room = self.limits.max_bytes - self.used
        if n <= room:
            self.used += n
            return n
        self.used = self.limits.max_bytes + 1
        return max(room, 0)

    def limit_reason(self) -> str:
        return (f"more than max_bytes={self.limits.max_bytes} bytes of content; the rest was not "
                f"read (raise Limits.max_bytes / [extract] max_bytes to read further)")

    @property
    def exhausted(self) -> bool:
        return self.used > self.limits.max_bytes

    @property
    def remaining(self) -> int:
        return max(0, self.limits.max_bytes - self.used)

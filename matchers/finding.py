"""What the engine says about one input: the scan result, and the JSON contract built from it.

A :class:`Finding` crosses package boundaries (crawler → store → alerts), so it is frozen and holds
no cleartext identifier: counts, categories, a redacted sample and the content hash only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

REPOST = "repost"
SCHEMA_MATCH = "schema-match"
NONE = "none"
VERDICTS = (REPOST, SCHEMA_MATCH, NONE)


@dataclass(frozen=True)
class Finding:
    """The result of scanning one input (a file, a URL, a crawled document)."""

    input: str
    verdict: str = NONE
    leak: str | None = None
    matched_records: int = 0
    records_seen: int = 0
    schema_score: float = 0.0
    identifiers: dict[str, int] = field(default_factory=dict)
    labs: dict[str, int] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    sha256: str | None = None
    size: int = 0
    sample: tuple[str, ...] = ()
    # Per-leak matched counts when an input holds records of several enrolled leaks.
    leaks: dict[str, int] = field(default_factory=dict)
    # False when part of the input could not be scanned (an internal error in some records, a
    # read error midway): ``matched_records`` and the other counts are then a lower bound.
    complete: bool = True

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def to_json(self) -> dict[str, Any]:
        """The object `dumpwatch scan --json` prints for this input (see README, "Scan JSON")."""
        data = asdict(self)
        data["categories"] = list(self.categories)
        data["errors"] = list(self.errors)
        data["sample"] = list(self.sample)
        data["schema_score"] = round(self.schema_score, 3)
        return data

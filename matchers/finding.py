"""What the engine says about one input: the scan result, and the JSON contract built from it.

A :class:`Finding` crosses package boundaries (crawler → store → alerts), so it is frozen and holds
no cleartext identifier: counts, categories, a redacted sample and the content hash only.

Nothing is reported clean that was not read: an input that could not be read at all has the
verdict ``error`` (its reason in ``errors``), and one read only in part keeps its verdict with
``complete`` false, its counts then being a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

REPOST = "repost"
SCHEMA_MATCH = "schema-match"
NONE = "none"
ERROR = "error"  # the input could not be read at all (missing file, HTTP error, refused connection …)
VERDICTS = (REPOST, SCHEMA_MATCH, NONE, ERROR)


@dataclass(frozen=True)
class Finding:
    """The result of scanning one input (a file, a URL, a crawled document).

    ``complete`` is False when part of the input could not be read or scanned: the counts are then
    a lower bound. It is always False when ``errors`` is not empty or the verdict is ``error``
    (``__post_init__`` makes it so), so no reader can take a partial result for the whole. A
    verdict ``error`` needs its reason in ``errors``: build one with :meth:`unreadable`.
    """

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
    # Positions in the enrolled index (never a value) of the records of ``leak`` confirmed in this
    # input, by lab: what `dumpwatch findings patients` turns into row numbers of the enrolled file.
    # Not part of the scan JSON (:meth:`to_json`); stored per lab, as positions only.
    records: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")
        if not isinstance(self.complete, bool):
            raise TypeError(f"complete must be a bool, not {self.complete!r}")
        if isinstance(self.errors, str):  # a bare string would read as one error per character
            object.__setattr__(self, "errors", (self.errors,))
        if self.verdict == ERROR and not self.errors:
            raise ValueError("a Finding with verdict 'error' must say why in errors")
        if self.complete and (self.errors or self.verdict == ERROR):
            object.__setattr__(self, "complete", False)

    @classmethod
    def unreadable(cls, input: str, reason: str) -> "Finding":  # noqa: A002 (the JSON field's name)
        """The finding for an input that could not be read at all; ``reason`` names no content."""
        return cls(input=input, verdict=ERROR, errors=(reason,), complete=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Finding":
        """The Finding back from :meth:`to_json` (one line of ``dumpwatch scan --json``).

        Objects written before ``complete`` existed read as complete unless they carry errors;
        unknown keys are ignored, so a newer writer's output still reads.
        """
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        for k in ("categories", "errors", "sample"):
            if k in kw:
                kw[k] = tuple(kw[k] or ())
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        """The object `dumpwatch scan --json` prints for this input (see README, "Scan JSON")."""
        # Not asdict(): it deep-copied ``records`` (a position per matched record: 900,000 of them
        # in a 1M-row repost, about a second of CPU) only for it to be dropped here; every other
        # field is a plain value, a tuple of strings or a dict of counts.
        data = {f.name: (dict(v) if isinstance(v, dict) else v) for f in fields(self) if f.name != "records"
                for v in (getattr(self, f.name),)}
        data["categories"] = list(self.categories)
        data["errors"] = list(self.errors)
        data["sample"] = list(self.sample)
        data["schema_score"] = round(self.schema_score, 3)
        return data

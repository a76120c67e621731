"""What the engine says about one input: the scan result, and the JSON contract built from it.

A :class:`Finding` crosses package boundaries (crawler → store → alerts), so it is frozen and holds
no cleartext identifier: counts, categories, a redacted sample and the content hash only.

Nothing is reported clean that was not read: an input that could not be read at all has the
verdict ``error`` (its reason in ``errors``), and one read only in part keeps its verdict with
``complete`` false, its counts then being a lower bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

REPOST = "repost"
SCHEMA_MATCH = "schema-match"
NONE = "none"
ERROR = "error"  # the input could not be read at all (missing file, HTTP error, refused connection …)
VERDICTS = (REPOST, SCHEMA_MATCH, NONE, ERROR)


class Positions(Mapping):
    """The confirmed records of one leak in an input, per lab, built only when read.

    A :class:`~collections.abc.Mapping` ``{lab: (position, …)}`` (positions in the enrolled index,
    ascending) made from two arrays the scan has anyway: the sorted ``positions`` confirmed and the
    lab number of each (``of_lab``, indices into ``labs``). The scan JSON never prints them: only
    the store reads them (``alerts.patients.save_positions``, the Art. 34 look-ups), so a scan that
    is not recorded never turns hundreds of thousands of positions into Python tuples. Equal to the
    plain dict of the same content; pickled as its arrays (the crawler's scan worker sends it
    through a pipe), never as tuples. Works on any array type with ``==``, indexing and ``tolist``
    (numpy's): this module imports no numpy, the CLI imports it at start-up.
    """

    __slots__ = ("_positions", "_of_lab", "_labs", "_built")

    def __init__(self, positions: Any, of_lab: Any, labs: dict[int, str]):
        self._positions = positions   # sorted positions confirmed (an integer array)
        self._of_lab = of_lab         # the lab number of each, aligned with positions
        self._labs = labs             # lab number -> lab name, only the labs present
        self._built: dict[str, tuple[int, ...]] = {}

    def __getitem__(self, lab: str) -> tuple[int, ...]:
        if lab not in self._built:
            number = next((n for n, name in self._labs.items() if name == lab), None)
            if number is None:
                raise KeyError(lab)
            self._built[lab] = tuple(self._positions[self._of_lab == number].tolist())
        return self._built[lab]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labs.values())

    def __len__(self) -> int:
        return len(self._labs)

    def __repr__(self) -> str:
        return f"Positions({len(self._positions)} positions in {len(self._labs)} lab(s))"

    def __reduce__(self):  # the arrays, not the tuples built so far
        return (Positions, (self._positions, self._of_lab, self._labs))


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
    # Not part of the scan JSON (:meth:`to_json`); stored per lab, as positions only. A scan gives
    # a :class:`Positions`, which builds a lab's tuple when it is read.
    records: Mapping[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

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
        # Not the records (positions in the index: for the store, not for the scan's output), which
        # asdict would copy one by one.
        data = asdict(replace(self, records={}))
        del data["records"]
        data["categories"] = list(self.categories)
        data["errors"] = list(self.errors)
        data["sample"] = list(self.sample)
        data["schema_score"] = round(self.schema_score, 3)
        return data

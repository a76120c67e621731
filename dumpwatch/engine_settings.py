"""The engine's tables of dumpwatch.toml, ``[scan]`` and ``[limits]``, parsed into the engine's objects.

The engine (``matchers/``) parses no configuration: it is handed a :class:`matchers.extract.Limits`
and a :class:`matchers.scan.ScanSettings`, whose own invariants raise
:class:`matchers.errors.SettingsError`. This module declares the two tables (:mod:`dumpwatch.tables`)
and builds those objects; ``dumpwatch scan``/``enroll``, the crawler's scanner and
``daemon --check`` all call it::

    [scan]
    repost_threshold = 3     # confirmed records that make a copy a repost
    workers = 4              # processes a large delimited file is split across

    [limits]                 # see docs/extraction.md
    max_bytes = 2147483648
    max_depth = 3
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from dumpwatch.tables import Collector, Key, Section, path_of
from matchers.extract import Limits
from matchers.scan import ScanSettings

SCAN = Section("scan", {
    "repost_threshold": Key("int", ScanSettings.repost_threshold, minimum=1),
    "workers": Key("int", ScanSettings.workers, minimum=1),
}, group_unknown=True)

LIMITS = Section("limits", {f.name: Key("number", f.default, above=0) for f in fields(Limits)})

_FLOAT_LIMITS = {f.name for f in fields(Limits) if f.type in (float, "float")}


def limits_from(config: Mapping[str, Any] | None) -> Limits:
    """The ``[limits]`` table as :class:`~matchers.extract.Limits` (every key optional)."""
    values = LIMITS.read((config or {}).get("limits"), path=path_of(config))
    return Limits(**{k: float(v) if k in _FLOAT_LIMITS else int(v) for k, v in values.items()})


def scan_settings_from(config: Mapping[str, Any] | None, *, threshold: int | None = None,
                       workers: int | None = None) -> ScanSettings:
    """``[scan]`` and ``[limits]`` as :class:`~matchers.scan.ScanSettings`; ``threshold`` and
    ``workers`` (command-line options) win over the file when given."""
    errors = Collector(path_of(config))
    with errors.collect():
        values = SCAN.read((config or {}).get("scan"), path=path_of(config))
    with errors.collect():
        limits = limits_from(config)
    errors.raise_any()
    return ScanSettings(repost_threshold=threshold or values["repost_threshold"], limits=limits,
                        workers=workers or values["workers"])

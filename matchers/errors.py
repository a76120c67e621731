"""The engine's errors: one shallow tree, in the manner of ``httpx/_exceptions.py``.

The engine imports nothing of ``dumpwatch/`` (it is handed its limits, the key and the indexes), so
its errors have their own root. The front door catches :class:`EngineError` next to
``dumpwatch.errors.DumpwatchError`` and prints the message, which says how to fix the problem.

    EngineError                  a user can act on it; the message says how
     ├── SettingsError           a ``[scan]`` or ``[limits]`` value the engine refuses (file, key, fix)
     ├── LeakNameError           a leak name that cannot name a directory
     ├── IndexFileError          an index missing, corrupt, or built with another key
     ├── EnrollError             a leaked file that cannot be enrolled
     │    └── MapError           ``enroll --map``: an unknown kind, or a column the file lacks
     └── ExtractError            raised inside extraction, reported in ``Finding.errors``
          ├── ArchiveBombError   a container that declares or produces far more than it holds
          ├── LimitExceededError a ``Limits`` bound reached
          └── CorruptInputError  a container that cannot be read
"""

from __future__ import annotations

from pathlib import Path


class EngineError(Exception):
    """Base class of the engine's errors a user can act on; the message says how."""


class Located:
    """An error about one value of a file: ``message``, ``path`` and ``key``, shown as
    ``PATH [KEY]: MESSAGE``. Shared by :class:`SettingsError` and ``dumpwatch.errors.ConfigError``."""

    def __init__(self, message: str, *, path: Path | str | None = None, key: str | None = None):
        where = " ".join(p for p in (str(path) if path else "", f"[{key}]" if key else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.path = path
        self.key = key


class SettingsError(Located, EngineError):
    """A setting the engine was handed is invalid: the message names the file, the key and the fix."""


class LeakNameError(EngineError):
    """A leak name that cannot be used (it names the index's directory)."""


class IndexFileError(EngineError):
    """An index is missing, corrupt, or was built with another key."""


class EnrollError(EngineError):
    """The leaked file cannot be enrolled as given; the message says what to change."""


class MapError(EnrollError):
    """A column mapping override (``--map COLUMN=KIND``) names a kind or a column that does not exist."""


class ExtractError(EngineError):
    """A problem with the content of one input (never raised out of ``extract``: reported)."""


class ArchiveBombError(ExtractError):
    """A compressed member expands too much (declared or counted ratio above ``max_ratio``)."""


class LimitExceededError(ExtractError):
    """A size, depth or count limit of :class:`matchers.extract.Limits` was reached."""


class CorruptInputError(ExtractError):
    """A container or document is truncated or corrupt."""

"""Every error of dumpwatch, in one tree, in the manner of ``httpx/_exceptions.py``.

An error a user can act on derives from :class:`DumpwatchError` (the ground floor, the crawler, the
alerts and the front door) or from :class:`matchers.errors.EngineError` (the engine, which imports
nothing of ``dumpwatch/`` and so has its own root; it is re-exported here). The front door catches
:data:`USER_ERRORS` and prints the message, which says what to do; anything else is a bug and is
reported with its traceback.

    DumpwatchError                a user can act on it; the message says how
     ├── ConfigError              a configuration value is wrong (file, key, fix)
     │    └── ConfigErrors        every error a whole check found, one per line
     ├── SecretKeyError           the fingerprint key is missing, malformed or does not fit the index
     ├── StorageError             the database cannot be read or written (disk full, read-only, I/O)
     │    └── DatabaseBusy        another process held the write lock past the write timeout
     ├── ScannerUnavailable       the crawler cannot load the engine (no leak, wrong key, no index)
     ├── ChannelError             an alert could not be delivered (``permanent`` when retrying is vain)
     └── SilenceError             a silence cannot be created or found

    EngineError (matchers/errors.py)
     ├── SettingsError            a ``[scan]`` or ``[limits]`` value the engine refuses
     ├── LeakNameError            a leak name that cannot name a directory
     ├── IndexFileError           an index missing, corrupt, or built with another key
     ├── EnrollError              a leaked file that cannot be enrolled
     │    └── MapError            ``enroll --map``: an unknown kind, or a column the file lacks
     └── ExtractError             raised inside extraction, reported in ``Finding.errors``
          ├── ArchiveBombError    a container that declares or produces far more than it holds
          ├── LimitExceededError  a ``Limits`` bound reached
          └── CorruptInputError   a container that cannot be read

This module imports only the engine's leaf module ``matchers.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

from matchers.errors import (ArchiveBombError, CorruptInputError, EngineError, EnrollError,
                             ExtractError, IndexFileError, LeakNameError, LimitExceededError,
                             Located, MapError, SettingsError)

__all__ = [
    "DumpwatchError", "ConfigError", "ConfigErrors", "SecretKeyError", "StorageError", "DatabaseBusy",
    "ScannerUnavailable", "ChannelError", "SilenceError", "USER_ERRORS",
    "EngineError", "SettingsError", "LeakNameError", "IndexFileError", "EnrollError", "MapError",
    "ExtractError", "ArchiveBombError", "LimitExceededError", "CorruptInputError", "Located",
]


class DumpwatchError(Exception):
    """Base class of errors a user can act on; the message says how."""


class ConfigError(Located, DumpwatchError):
    """The configuration is invalid: the message names the file, the key and the fix
    (``message``, ``path``, ``key``; the same shape as the engine's :class:`SettingsError`)."""


class ConfigErrors(ConfigError):
    """Every error a whole check of the configuration found (:attr:`errors`), one per line."""

    def __init__(self, errors: Sequence[ConfigError]):
        errors = tuple(errors)
        first = errors[0]
        if len(errors) == 1:
            super().__init__(first.message, path=first.path, key=first.key)
        else:
            DumpwatchError.__init__(self, f"{len(errors)} configuration errors:\n"
                                    + "\n".join(f"  {e}" for e in errors))
            self.message, self.path, self.key = str(self), first.path, first.key
        self.errors = errors


class SecretKeyError(DumpwatchError):
    """The fingerprint key is missing, malformed or does not fit the index."""


class StorageError(DumpwatchError):
    """The database cannot be read or written: disk full, read-only, cannot be opened, I/O error."""


class DatabaseBusy(StorageError):
    """Another process held the database's write lock longer than the write timeout."""


class ScannerUnavailable(DumpwatchError):
    """The engine could not be loaded (no leak enrolled, wrong key, missing index)."""


class ChannelError(DumpwatchError):
    """A message could not be delivered; ``permanent`` when a retry cannot succeed."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class SilenceError(DumpwatchError):
    """A silence cannot be created or found; the message says why."""


#: What the front door catches and prints as one ``Error:`` line (the message says what to do).
USER_ERRORS: tuple[type[Exception], ...] = (DumpwatchError, EngineError)

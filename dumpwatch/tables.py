"""The one checker of configuration tables: each table declared once, next to the code that owns it.

dumpwatch.toml is read once (:meth:`dumpwatch.home.Home.load_config` gives a :class:`Config`, a
read-only mapping that knows its file), and each of its tables is parsed once, where it enters, by
the :class:`Section` its owner declares::

    CRAWLER = Section("crawler", {
        "recrawl_age": Key("duration", 7 * 86400.0),
        "max_download_size": Key("size", 50 * 1000**2),
        "concurrency": Key("int", 2, minimum=1),
    })
    values = CRAWLER.read(config.get("crawler"), path=path_of(config))   # {"recrawl_age": 604800.0, ...}

``read`` checks the type of every key (strings, booleans, integers, numbers, durations, sizes, lists
and tables of strings, one of some choices), its bounds, the required keys, and refuses unknown keys
with a did-you-mean (:func:`difflib.get_close_matches`). Every error of the table is collected and
raised at once (:class:`~dumpwatch.errors.ConfigErrors`), each a :class:`~dumpwatch.errors.ConfigError`
naming the file, the key path (``sources.pastes.interval``) and the fix. What a declaration cannot
say (a CSS selector that compiles, a receiver that exists) its owner checks after ``read``.

Declared sections: ``[crawler]`` and ``[[sources]]`` (crawler/sources.py), ``[alerts]``,
``[[receivers]]`` and ``[[routes]]`` (alerts/settings.py), ``[smtp]`` and ``[contacts]``
(alerts/contacts.py), ``[daemon]`` (dumpwatch/daemon/settings.py),
``[scan]`` and ``[limits]`` (dumpwatch/engine_settings.py, which hands the engine its objects),
``[network]`` (dumpwatch/netpolicy.py; read with ``[[sources]]`` by crawler/sources.py, and by ``scan``),
``[cluster]`` (crawler/cluster/connect.py).

One duration parser (:func:`parse_duration`) and one size parser (:func:`parse_size`) serve them all.
This module imports only :mod:`dumpwatch.errors` and the standard library.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dumpwatch.errors import ConfigError, ConfigErrors

__all__ = ["Config", "path_of", "table_of", "array_of", "Key", "Section", "Collector",
           "parse_duration", "parse_size", "DURATION_EXAMPLES", "SIZE_EXAMPLES"]


# -- the loaded file ---------------------------------------------------------------------------------

class Config(Mapping[str, Any]):
    """The top-level tables of dumpwatch.toml, read-only, and the file they came from (:attr:`path`).

    Read-only at the top (the tables inside are the plain values ``tomllib`` gave). A plain mapping
    works wherever a ``Config`` does: it simply has no path, so its errors name no file.
    """

    __slots__ = ("_data", "path")

    def __init__(self, data: Mapping[str, Any] | None = None, path: str | Path | None = None):
        self._data = MappingProxyType(dict(data or {}))
        self.path: str | None = str(path) if path else None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Config({dict(self._data)!r}, path={self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Config, (dict(self._data), self.path))


def path_of(config: Mapping[str, Any] | None) -> str | None:
    """The file a configuration came from (``None`` for a plain mapping)."""
    return getattr(config, "path", None)


def table_of(config: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    """The table ``[name]`` of a configuration, or an empty one; an error if it is not a table."""
    value = (config or {}).get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table: write [{name}] and its keys below it", path=path_of(config),
                          key=name)
    return value


def array_of(config: Mapping[str, Any] | None, name: str) -> list[Any]:
    """The array of tables ``[[name]]`` of a configuration, or an empty one."""
    value = (config or {}).get(name, [])
    if isinstance(value, Mapping):
        raise ConfigError(f"must be an array of tables: write [[{name}]] (two brackets) for each one",
                          path=path_of(config), key=name)
    if not isinstance(value, list):
        raise ConfigError(f"must be an array of [[{name}]] tables", path=path_of(config), key=name)
    return value


# -- durations and sizes -----------------------------------------------------------------------------

DURATION_EXAMPLES = '30 (seconds), "250ms", "90s", "15m", "6h", "7d", "2w" or "1h30m"'
SIZE_EXAMPLES = '512 (bytes), "64KB", "512KiB", "50MB", "1GB" or "2GiB"'

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d|w)\s*)+")
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d|w)")
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(rf"({_NUMBER})\s*(b|kb|mb|gb|kib|mib|gib)?")


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string: ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h"``,
    ``"2d"``, ``"2w"``, a bare ``"90"``, or parts added up, ``"1h30m"``.

    Raises :class:`ValueError` (its message gives examples) for a negative, infinite or unreadable value.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value >= 0 and math.isfinite(value):
            return float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(_NUMBER, text):
            return float(text)
        if _DURATION.fullmatch(text):
            return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f"must be seconds or a duration like {DURATION_EXAMPLES}, not {value!r}")


def parse_size(value: Any) -> int:
    """Bytes from a whole number of bytes or a string: ``"512"``, ``"64KB"``, ``"50MB"``, ``"1GB"``,
    ``"512KiB"``, ``"10MiB"``, ``"2GiB"`` (case ignored, ``"1.5MB"`` too, rounded down).

    KB, MB and GB are decimal (1000, 1000², 1000³ bytes); KiB, MiB and GiB are binary (1024, 1024²,
    1024³). Raises :class:`ValueError` (its message gives examples) for a negative or unreadable value.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value.strip().lower())
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[m.group(2) or ""])
    raise ValueError(f"must be bytes or a size like {SIZE_EXAMPLES}, not {value!r}")


# -- declarations ------------------------------------------------------------------------------------

TYPES = ("str", "text", "bool", "int", "number", "duration", "size", "str_list", "str_table", "table", "any")


@dataclass(frozen=True)
class Key:
    """One key of a table: its type, its default, its bounds, and the fix to suggest.

    Types: ``str`` (a non-empty string, stripped), ``text`` (any string), ``bool``, ``int``,
    ``number`` (int or float, given as a float), ``duration`` (seconds, :func:`parse_duration`),
    ``size`` (bytes, :func:`parse_size`), ``str_list`` (a list of non-empty strings, or one string),
    ``str_table`` (a table of strings), ``table`` (any table), ``any`` (not checked).
    ``minimum`` is inclusive, ``above`` exclusive (``above=0``: a positive number); ``choices``
    lists the accepted values; ``hint`` is appended to the key's errors.
    """

    type: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[Any, ...] = ()
    hint: str = ""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise TypeError(f"unknown key type {self.type!r}; one of {TYPES}")

    def convert(self, value: Any) -> Any:
        """The checked value; :class:`ValueError` with the message of what is expected."""
        t = self.type
        if t == "duration":
            value = parse_duration(value)
        elif t == "size":
            value = parse_size(value)
        elif t == "str":
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"must be a non-empty string, not {value!r}")
            value = value.strip()
        elif t == "text":
            if not isinstance(value, str):
                raise ValueError(f"must be a string, not {value!r}")
        elif t == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, not {value!r}")
        elif t in ("int", "number"):
            kinds = int if t == "int" else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
                raise ValueError(f"must be {self._bounds('an integer' if t == 'int' else 'a number')}, "
                                 f"not {value!r}")
            value = value if t == "int" else float(value)
        elif t == "str_list":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError(f"must be a list of strings, e.g. [\"a\", \"b\"], not {value!r}")
            value = tuple(v.strip() for v in value)
        elif t == "str_table":
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                raise ValueError("must be a table of strings, e.g. { \"Accept-Language\" = \"fr\" }")
            value = MappingProxyType(dict(value))
        elif t == "table":
            if not isinstance(value, Mapping):
                raise ValueError(f"must be a table, not {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be {_one_of(self.choices)}, not {value!r}")
        if t in ("int", "number", "duration", "size") and not self._in_bounds(value):
            unit = {"duration": " seconds", "size": " bytes"}.get(t, "")
            what = {"int": "an integer", "number": "a number"}.get(t, f"a {t}")
            raise ValueError(f"must be {self._bounds(what, unit)}, not {value!r}")
        return value

    def _in_bounds(self, value: float) -> bool:
        return ((self.minimum is None or value >= self.minimum) and (self.above is None or value > self.above)
                and (self.maximum is None or value <= self.maximum))

    def _bounds(self, what: str, unit: str = "") -> str:
        if self.above == 0 and self.minimum is None and self.maximum is None:
            return f"a positive {what.split(' ', 1)[1]}"
        parts = [f">= {_num(self.minimum)}{unit}" if self.minimum is not None else "",
                 f"> {_num(self.above)}{unit}" if self.above is not None else "",
                 f"<= {_num(self.maximum)}{unit}" if self.maximum is not None else ""]
        bounds = " and ".join(p for p in parts if p)
        return f"{what} {bounds}" if bounds else what


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _one_of(choices: Iterable[Any]) -> str:
    names = [repr(c) for c in choices]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``known`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


class Section:
    """A declared table: its keys (:class:`Key`), read and checked by :meth:`read`.

    ``name`` is how errors name the table (``[crawler]``); ``group_unknown`` reports every unknown
    key in one error on the table itself (``[scan]: unknown key(s) a, b``) instead of one per key.
    """

    def __init__(self, name: str, keys: Mapping[str, Key], *, group_unknown: bool = False):
        self.name = name
        self.keys: Mapping[str, Key] = MappingProxyType(dict(keys))
        self.group_unknown = group_unknown

    def __or__(self, other: "Section") -> "Section":
        """This section with the keys of ``other`` added (a source's common keys and its kind's)."""
        return Section(self.name, {**self.keys, **other.keys}, group_unknown=self.group_unknown)

    def __repr__(self) -> str:
        return f"Section({self.name!r}, keys={sorted(self.keys)})"

    def read(self, table: Any, *, path: str | Path | None = None, where: str | None = None,
             defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The value of every declared key of ``table`` (its default when absent), checked.

        ``where`` is the key path of the table in errors (default: the section's name, e.g.
        ``sources.pastes``); ``defaults`` replaces declared defaults (a source inherits ``[crawler]``).
        Every error of the table is raised at once: :class:`ConfigErrors`.
        """
        where = where or self.name
        if table is None:
            table = {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"must be a table, not {table!r}", path=path, key=where)
        errors = Collector(path)
        unknown = [k for k in table if k not in self.keys]
        accepted = ", ".join(sorted(self.keys))
        if unknown and self.group_unknown:
            hints = "".join(did_you_mean(k, self.keys) for k in unknown)
            errors.add(where, f"unknown key(s) {', '.join(sorted(unknown))}; {hints}known: {accepted}")
        else:
            for k in unknown:
                errors.add(f"{where}.{k}", f"unknown key; {did_you_mean(k, self.keys)}"
                                           f"the [{self.name}] table accepts: {accepted}")
        values: dict[str, Any] = {}
        for name, key in self.keys.items():
            if name not in table:
                if key.required:
                    errors.add(f"{where}.{name}", f"is required{'; ' + key.hint if key.hint else ''}")
                values[name] = (defaults or {}).get(name, key.default)
                continue
            try:
                values[name] = key.convert(table[name])
            except ValueError as exc:
                errors.add(f"{where}.{name}", f"{exc}{'; ' + key.hint if key.hint else ''}")
        errors.raise_any()
        return values


class Collector:
    """Collects the :class:`ConfigError` of a whole check, to raise them all at once.

    ``with collector.collect(): ...`` keeps the errors raised in the block (a single error or a
    :class:`ConfigErrors`) and goes on; :meth:`raise_any` raises what was collected.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = path
        self.errors: list[ConfigError] = []

    def add(self, key: str | None, message: str) -> None:
        self.errors.append(ConfigError(message, path=self.path, key=key))

    @contextmanager
    def collect(self) -> Iterator[None]:
        try:
            yield
        except ConfigErrors as exc:
            self.errors.extend(exc.errors)
        except ConfigError as exc:
            self.errors.append(exc)

    def raise_any(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)

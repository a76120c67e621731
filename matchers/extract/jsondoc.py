"""JSON → tables of flat records, streaming (ijson), for arrays, objects of arrays and JSON lines.

Records are ``dict[str, str]``: nested objects are flattened with dotted keys (``patient.nom``),
lists of scalars joined with ``", "``, lists of objects indexed (``analyses.0.code``), every value
a string (``None`` → ``""``, booleans → ``true``/``false``). Keys are kept as written.

Shapes:

* root array → one table (``name``), one record per item, built by ijson's C backend;
* root object → each array found under object members becomes its own table
  (``name#/patients``, ``name#/data/rows``); the scalars around them (``"source": "export"``)
  form one last record (``name``). Short arrays of scalars (<= 1000) stay in that record, joined;
* JSON lines → one table, one record per line; lines that do not parse are counted in one error.

Malformed or truncated JSON yields the records read so far plus an error entry.

Speed (issue 9): JSON lines are read a list at a time (:func:`~matchers.extract.decode.line_batches`).
A list of flat objects (every value a string) is decoded in one ``json.loads`` call, as the items of
one array (exactly what line by line gives: :func:`_joined`); any other list by the C scanner
``json.loads`` itself calls, mapped over the list at C level; a list in which a line does not parse
as one whole value (or nests too deeply) is decoded again line by line with ``json.loads``, so a
bad line is counted and located as before. Array items are taken
from ijson a list at a time, ijson reading the bytes under a UTF-8 stream as they are
(:mod:`matchers.extract.jsonbytes`). Records that are already flat (objects whose values are all
strings, most dumps) are recognised by one C-level pass per list, not per value. A table's rows are
the chain of these lists: no Python step per record.
"""

from __future__ import annotations

import io
import itertools
import json
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ijson

from matchers.extract.decode import line_batches
from matchers.extract.jsonbytes import utf8_reader
from matchers.extract.model import Context, Table

SCALAR_JOIN_MAX = 1000
ARRAY_BATCH = 256       # array items taken from ijson at a time
_SCAN = json.JSONDecoder().scan_once   # what json.loads calls: (value, end) of the value at an index
_LAST = operator.itemgetter(-1)
_STRUCTURAL_SECOND = ("start_map", "map_key", "start_array", "end_array", "end_map")


def _premature(exc: BaseException) -> bool:
    message = str(exc)
    return "premature EOF" in message or "Incomplete JSON content" in message


def probe(sample: str, complete: bool) -> str | None:
    """``array``, ``object``, ``lines`` or ``None`` (not JSON) for a text sample."""
    text = sample.lstrip("\ufeff \t\r\n")
    if not text or text[0] not in "[{":
        return None
    first, _, rest = text.partition("\n")
    try:
        value: Any = json.loads(first)
    except ValueError:
        value = None
    if isinstance(value, (dict, list)):
        following = next((line for line in rest.split("\n") if line.strip()), None)
        if following is not None:
            return "lines"
        if complete:
            return "array" if isinstance(value, list) else "object"
    events: list[str] = []
    error: BaseException | None = None
    try:
        for event, _value in ijson.basic_parse(io.BytesIO(text.encode("utf-8", "surrogatepass"))):
            events.append(event)
            if len(events) >= 200:
                break
    except ijson.JSONError as exc:
        error = exc
    structural = len(events) >= 2 and events[1] in _STRUCTURAL_SECOND
    if error is None or (_premature(error) and not complete) or structural:
        if not events:
            return None
        return "array" if events[0] == "start_array" else "object" if events[0] == "start_map" else None
    return None


def _s(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def flatten(value: Any, prefix: str, out: dict[str, str]) -> dict[str, str]:
    """Flatten one JSON value into ``out`` under ``prefix`` (see module docstring)."""
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            out[prefix or "value"] = ", ".join(_s(item) for item in value)
        else:
            for i, item in enumerate(value):
                flatten(item, f"{prefix}.{i}" if prefix else str(i), out)
    else:
        out[prefix or "value"] = _s(value)
    return out


def record(value: Any, key: str = "value") -> dict[str, str]:
    """One array item as a record: objects flattened, scalars under ``key``."""
    if isinstance(value, dict):
        for item in value.values():
            if type(item) is not str:
                return flatten(value, "", {})
        return value      # already flat, all strings (the common case): no copy
    if isinstance(value, list):
        out: dict[str, str] = {}
        for i, item in enumerate(value):
            flatten(item, str(i), out)
        return out
    return {key: _s(value)}


def _flat(values: list[Any] | tuple[Any, ...]) -> bool:
    """Every value an object whose values are all strings (:func:`record` returns each as it is):
    one C-level pass, ``str.join`` refusing anything but strings (``dict.values`` anything but
    objects)."""
    try:
        "".join(itertools.chain.from_iterable(map(dict.values, values)))
    except TypeError:
        return False
    return True


@dataclass
class _State:
    records: int = 0
    failed: bool = False


def _pointer(keys: list[str]) -> str:
    return "/".join(str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def json_tables(text: io.TextIOBase, shape: str, source: str, encoding: str | None,
                ctx: Context) -> Iterator[Table]:
    state = _State()

    def report_failure(exc: BaseException) -> None:
        if not state.failed:
            state.failed = True
            what = "truncated" if _premature(exc) else "malformed"
            ctx.report(source, f"{what} JSON ({type(exc).__name__}): stopped after "
                               f"{state.records} records; the records before were read")

    if shape == "lines":
        rows = itertools.chain.from_iterable(_lines_rows(text, source, ctx, state))
        yield Table(source, "json", None, rows, encoding)
    elif shape == "array":
        items = ijson.items(utf8_reader(text), "item")
        rows = itertools.chain.from_iterable(_array_rows(items, state, report_failure))
        yield Table(source, "json", None, rows, encoding)
    else:
        events = _safe(ijson.basic_parse(utf8_reader(text)), report_failure)
        yield from _ObjectWalker(events, source, encoding, ctx, state).tables()


def _safe(events: Iterator[tuple[str, Any]], on_error: Callable[[BaseException], None]
          ) -> Iterator[tuple[str, Any]]:
    try:
        yield from events
    except Exception as exc:  # noqa: BLE001 — bad content is reported, never raised
        on_error(exc)


def _array_rows(items: Iterator[Any], state: _State, on_error: Callable[[BaseException], None]
                ) -> Iterator[list[dict[str, str]]]:
    """The records of an array's items in order, in lists of :data:`ARRAY_BATCH` (the table's
    rows are their chain: no Python step per record); the first failure (of the parse, or of an
    item too deeply nested to flatten) is reported after the records before it, and ends the table."""
    while True:
        batch: list[Any] = []
        failure: BaseException | None = None
        try:   # list.extend keeps the items read before a parse error: they are still given
            batch.extend(itertools.islice(items, ARRAY_BATCH))
        except Exception as exc:  # noqa: BLE001 — bad content is reported, never raised
            failure = exc
        if _flat(batch):
            state.records += len(batch)
            yield batch
        else:
            rows = []
            for item in batch:
                state.records += 1
                try:
                    rows.append(record(item))
                except Exception as exc:  # noqa: BLE001
                    failure = exc
                    break
            yield rows
        if failure is not None:
            on_error(failure)
            return
        if len(batch) < ARRAY_BATCH:
            return


def _lines_rows(text: io.TextIOBase, source: str, ctx: Context, state: _State
                ) -> Iterator[list[dict[str, str]]]:
    """The records of JSON lines, a list per list of lines (the table's rows are their chain)."""
    bad = 0
    first_bad = 0
    number = 0    # lines before the batch
    misses = 0    # batches the one-call decoding did not take ...
    skip = 0      # ... and how many batches it sits out since the last (doubling: 2, 4, … 1024)
    for batch in line_batches(text, ctx.limits.max_line_chars):
        lines = list(filter(None, map(str.strip, batch)))
        rows = None
        if skip:
            skip -= 1
        elif lines:
            rows = _joined(lines)
            if rows is None:
                misses += 1
                skip = 1 << min(misses, 10)
        if rows is None:
            rows = _decoded(lines)
        if rows is None:   # a line that does not parse: the batch line by line, as json.loads says
            rows = []
            for at, line in enumerate(batch, number + 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(record(json.loads(line)))
                except (ValueError, RecursionError):
                    bad += 1
                    first_bad = first_bad or at
        number += len(batch)
        state.records += len(rows)
        yield rows
    if bad:
        ctx.report(source, f"{bad} JSON lines could not be parsed (first at line {first_bad}); "
                           f"{state.records} records read")


def _joined(lines: list[str]) -> list[dict[str, str]] | None:
    """Stripped, non-empty JSON lines decoded in one call, as the items of one array (the keys of
    all records then share their string objects), when every line is a flat object: else None.

    Sound because the joint is ``,\\n`` and a raw line break cannot be inside a JSON string: each
    line ends with a ``}`` outside any string; when every item is an object whose values are all
    strings, nothing nests, so that ``}`` closes an item and the joint that follows separates two
    items. With as many items as lines, every line is exactly one item, the value ``json.loads``
    gives for that line alone."""
    if set(map(_LAST, lines)) != {"}"}:
        return None
    try:
        values = json.loads("[" + ",\n".join(lines) + "]")
    except (ValueError, RecursionError):
        return None
    if len(values) != len(lines) or not _flat(values):
        return None
    return values


def _decoded(lines: list[str]) -> list[dict[str, str]] | None:
    """The records of stripped, non-empty JSON lines, decoded by the C scanner mapped over them;
    None when any line is not one whole JSON value (the caller then decodes line by line)."""
    try:
        parsed = list(map(_SCAN, lines, itertools.repeat(0)))
    except (ValueError, RecursionError):
        return None
    if len(parsed) != len(lines):   # no value at the start of a line: its StopIteration ended map
        return None
    if not parsed:
        return []
    values, ends = zip(*parsed)
    if ends != tuple(map(len, lines)):   # text after the value ("extra data" for json.loads)
        return None
    if _flat(values):
        return list(values)
    try:
        return list(map(record, values))
    except (ValueError, RecursionError):
        return None


class _ObjectWalker:
    """Walks a root object's events; arrays under object members become tables."""

    def __init__(self, events: Iterator[tuple[str, Any]], source: str, encoding: str | None,
                 ctx: Context, state: _State):
        self._events = events
        self._source = source
        self._encoding = encoding
        self._ctx = ctx
        self._state = state
        self._rest: dict[str, str] = {}
        self._rest_chars = 0
        self._rest_full = False

    def _keep(self, key: str, value: str) -> None:
        if self._rest_full:
            return
        self._rest_chars += len(key) + len(value)
        if self._rest_chars > self._ctx.limits.max_json_bytes:
            self._rest_full = True
            self._ctx.report(self._source, f"JSON object members larger than max_json_bytes="
                                           f"{self._ctx.limits.max_json_bytes}: the rest was skipped")
            return
        self._rest[key] = value

    def tables(self) -> Iterator[Table]:
        stack: list[str | None] = []
        key: str | None = None
        for event, value in self._events:
            if event == "map_key":
                key = value
            elif event == "start_map":
                stack.append(key)
                key = None
            elif event == "end_map":
                stack.pop()
                key = None
                if not stack:
                    break
            elif event == "start_array":
                path = [k for k in stack[1:] if k is not None] + ([key] if key is not None else [])
                yield from self._array(path)
            else:
                path = [k for k in stack[1:] if k is not None] + ([key] if key is not None else [])
                self._keep(".".join(path) or "value", _s(value))
        if self._rest:
            self._state.records += 1
            yield Table(self._source, "json", None, iter([self._rest]), self._encoding)

    def _array(self, path: list[str]) -> Iterator[Table]:
        name = path[-1] if path else "value"
        scalars: list[str] = []
        first_item: tuple[str, Any] | None = None
        for event, value in self._events:
            if event == "end_array":
                self._keep(".".join(path) or "value", ", ".join(scalars))
                return
            if event in ("start_map", "start_array") or len(scalars) >= SCALAR_JOIN_MAX:
                first_item = (event, value)
                break
            scalars.append(_s(value))
        else:
            return   # events ended (truncated JSON, already reported)
        rows = self._rows(name, scalars, first_item)
        yield Table(f"{self._source}#/{_pointer(path)}", "json", None, rows, self._encoding)
        for _ in rows:
            pass

    def _rows(self, name: str, scalars: list[str], first: tuple[str, Any]) -> Iterator[dict[str, str]]:
        for value in scalars:
            self._state.records += 1
            yield {name: value}
        event, value = first
        while True:
            if event == "end_array":
                return
            if event in ("start_map", "start_array"):
                built = self._build(event, value)
                row = None
                if built is not None:
                    try:
                        row = record(built, name)
                    except RecursionError:
                        self._ctx.report(self._source, "a JSON record nested too deeply: skipped")
                if row is not None:
                    self._state.records += 1
                    yield row
            else:
                self._state.records += 1
                yield {name: _s(value)}
            nxt = next(self._events, None)
            if nxt is None:
                return
            event, value = nxt

    def _build(self, event: str, value: Any) -> Any:
        builder = ijson.common.ObjectBuilder()
        builder.event(event, value)
        depth = 1
        chars = 0
        limit = self._ctx.limits.max_json_bytes
        building = True
        for event, value in self._events:
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            elif building and isinstance(value, str):
                chars += len(value)
                if chars > limit:
                    building = False
                    self._ctx.report(self._source, f"one JSON record is larger than max_json_bytes"
                                                   f"={limit}: skipped")
            if building:
                builder.event(event, value)
            if depth == 0:
                return builder.value if building else None
        return None   # truncated inside this record: only whole records are returned

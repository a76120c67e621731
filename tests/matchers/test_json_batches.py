"""JSON lines and arrays read a list at a time (issue 9, one core): the same records and errors as
reading them one line (one item) at a time.

:mod:`matchers.extract.jsondoc` reads JSON lines a list at a time (C-level reads,
:func:`matchers.extract.decode.line_batches`), decodes a list of flat objects in one
``json.loads`` call as the items of one array, other lists by the C scanner mapped over the lines,
and a list with a bad line line by line; array items come from ijson a list at a time. The
reference here is the reader as it was (one ``json.loads`` per line of ``text_lines``, one
``record`` per item), copied below. Hypothesis generates documents with good flat and nested
objects, bad lines, fragments of objects that only parse when joined (``{"a": "x"`` then
``"b": "y"}``, ``{"c": "1"}, {"d": "2"}``), lines over the cap, blank lines, scalars, arrays, deep
nesting and ``\\r``/``\\r\\n`` endings; arrays truncated or malformed after any item.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterator

import ijson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matchers.extract import decode, jsonbytes, jsondoc
from matchers.extract.model import Context, Limits

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the reference: the reader before this work, one line (one item) at a time ------------------
def old_text_lines(text: io.TextIOBase, cap: int) -> Iterator[str]:
    carry = ""
    after_cr = False
    for chunk in iter(functools.partial(text.readline, cap), ""):
        if after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
            after_cr = False
            if not chunk:
                continue
        if chunk.endswith(("\n", "\r")):
            after_cr = chunk.endswith("\r") and len(chunk) == cap
            yield carry + chunk.rstrip("\r\n")
            carry = ""
            continue
        after_cr = False
        if len(chunk) < cap:
            yield carry + chunk
            carry = ""
            continue
        piece = carry + chunk
        cut = piece.rfind(" ", max(0, len(piece) - 256))
        if cut <= 0:
            cut = len(piece)
        yield piece[:cut]
        carry = piece[cut:]
    if carry:
        yield carry


def old_lines(text: io.TextIOBase, cap: int) -> tuple[list, list[str]]:
    rows, records, bad, first_bad = [], 0, 0, 0
    for number, line in enumerate(old_text_lines(text, cap), 1):
        line = line.strip()
        if not line:
            continue
        try:
            row = jsondoc.record(json.loads(line))
        except (ValueError, RecursionError):
            bad += 1
            first_bad = first_bad or number
            continue
        records += 1
        rows.append(row)
    errors = [f"x.jsonl: {bad} JSON lines could not be parsed (first at line {first_bad}); "
              f"{records} records read"] if bad else []
    return rows, errors


def old_array(data: bytes) -> tuple[list, list[str]]:
    rows, errors, records = [], [], 0
    try:
        for item in ijson.items(jsonbytes.Utf8Text(decode.open_text(io.BytesIO(data), "utf-8")), "item"):
            records += 1
            rows.append(jsondoc.record(item))
    except Exception as exc:  # noqa: BLE001
        what = "truncated" if jsondoc._premature(exc) else "malformed"
        errors.append(f"x.json: {what} JSON ({type(exc).__name__}): stopped after {records} records; "
                      f"the records before were read")
    return rows, errors


# -- the reader now -----------------------------------------------------------------------------
def new_tables(text: io.TextIOBase, shape: str, name: str, cap: int) -> tuple[list, list[str]]:
    ctx = Context(Limits(max_line_chars=cap), [])
    rows = [row for table in jsondoc.json_tables(text, shape, name, "utf-8", ctx) for row in table.rows]
    return rows, ctx.errors


def texts(data: str) -> list[io.TextIOBase]:
    """The text as extraction opens a file (bytes, universal line ends kept) and as a str source."""
    return [decode.open_text(io.BytesIO(data.encode("utf-8", "surrogatepass")), "utf-8"), io.StringIO(data)]


# -- generated documents ------------------------------------------------------------------------
WORDS = st.sampled_from(["nom", "prénom", "email", "a", "b", "x}", "{y", "[z]", "c,d", 'q"r', "é\u2028",
                         "null", "true", "1", ""])
FLAT = st.dictionaries(WORDS, WORDS, max_size=5)
NESTED = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | WORDS,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
                      max_leaves=8)
TOKENS = st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"b}"', '"c\\"d"', '"{"', '1', '-0', '2.5e1',
                          'null', 'true', ' ', '"\\n"', '\t', '\ufeff', 'x', '"é"'])


@st.composite
def json_line(draw) -> str:
    kind = draw(st.integers(0, 9))
    if kind <= 3:
        return json.dumps(draw(FLAT), ensure_ascii=draw(st.booleans()))
    if kind == 4:
        return json.dumps(draw(NESTED))
    if kind == 5:   # an object cut in two or more lines, or two objects on one line
        objs = [json.dumps(draw(FLAT)) for _ in range(draw(st.integers(1, 3)))]
        text = draw(st.sampled_from([",", ", ", "\n", ",\n"])).join(objs)
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.sampled_from(["\n", ",\n", "\n,"])) + text[cut:]
    if kind == 6:   # token soup
        return "".join(draw(st.lists(TOKENS, max_size=8)))
    if kind == 7:
        return draw(st.sampled_from(["", "   ", "\t", "[", "]", "{", "}", "{}", "[]", "\"s\"", "3"]))
    if kind == 8:   # deep nesting (RecursionError in json.loads or in the flattening)
        depth = draw(st.sampled_from([5, 3000]))
        return '{"a":' * depth + '"x"' + "}" * depth if draw(st.booleans()) else "[" * depth + "]" * depth
    return " " * draw(st.integers(0, 3)) + json.dumps(draw(FLAT)) + " " * draw(st.integers(0, 3))


@st.composite
def jsonl_document(draw) -> tuple[str, int]:
    lines = draw(st.lists(json_line(), max_size=40))
    ends = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines)))
    data = "".join(line + end for line, end in zip(lines, ends))
    if draw(st.booleans()) and data:
        data = data.rstrip("\r\n")   # last line without its end
    cap = draw(st.sampled_from([8, 40, 200, 1 << 20]))
    return data, cap


@SETTINGS
@given(doc=jsonl_document(), lines_per_list=st.sampled_from([1, 3, 1024]))
def test_json_lines_give_the_records_and_errors_of_the_line_by_line_reader(doc, lines_per_list):
    data, cap = doc
    with pytest.MonkeyPatch.context() as m:
        m.setattr(decode, "BATCH_LINES", lines_per_list)
        for new_text, old_text in zip(texts(data), texts(data)):
            assert new_tables(new_text, "lines", "x.jsonl", cap) == old_lines(old_text, cap)


@SETTINGS
@given(data=st.text(st.sampled_from("ab \r\n\t{}é"), max_size=300), cap=st.sampled_from([1, 2, 7, 64]),
       lines_per_list=st.sampled_from([1, 2, 5, 1024]), chars=st.sampled_from([10, 1 << 20]))
def test_line_batches_are_the_lines_of_text_lines(data, cap, lines_per_list, chars):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(decode, "BATCH_LINES", lines_per_list)
        m.setattr(decode, "BATCH_CHARS", chars)
        for new_text, old_text in zip(texts(data), texts(data)):
            batches = list(decode.line_batches(new_text, cap))
            assert [line for batch in batches for line in batch] == list(old_text_lines(old_text, cap))
            assert all(batches)
            assert all(len(b) <= lines_per_list for b in batches)


@st.composite
def array_document(draw) -> bytes:
    items = draw(st.lists(st.one_of(FLAT, FLAT, NESTED), max_size=30))
    if draw(st.booleans()):   # an item nested deeper than the flattening can follow
        items.insert(draw(st.integers(0, len(items))), "DEEP")
    text = "[" + ",".join('{"a":' * 2000 + "1" + "}" * 2000 if i == "DEEP" else json.dumps(i) for i in items) + "]"
    cut = draw(st.sampled_from(["none", "truncate", "garbage", "bytes"]))
    if cut == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif cut == "garbage":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["}", "]]", "x", ",,", "{"])) + text[at:]
    data = text.encode()
    if cut == "bytes":   # bytes that are not UTF-8 (the text stream reads U+FFFD), or a character cut
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"])) + data[at:]
    return data


@SETTINGS
@given(data=array_document(), per_list=st.sampled_from([1, 2, 256]))
def test_arrays_give_the_records_and_errors_of_the_item_by_item_reader(data, per_list):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(jsondoc, "ARRAY_BATCH", per_list)
        text = decode.open_text(io.BytesIO(data), "utf-8")
        assert new_tables(text, "array", "x.json", 1 << 20) == old_array(data)


PIECES = st.sampled_from([b"a", b"{", b'"', "é".encode(), "€".encode(), "😀".encode(), b"\xff", b"\xc3",
                          b"\xe2\x82", b"\xf0\x9f", b"\xed\xa0\x80", b"\x00"])


@SETTINGS
@given(data=st.lists(PIECES, max_size=60).map(b"".join), n=st.sampled_from([1, 2, 3, 5, 65536]))
def test_the_bytes_ijson_reads_are_the_text_encoded(data, n):
    """The bytes under a UTF-8 text stream pass as they are, bad bytes as the text reads them."""
    reader = jsonbytes.utf8_reader(decode.open_text(io.BytesIO(data), "utf-8"))
    assert isinstance(reader, jsonbytes.Utf8Bytes)
    assert reader.read(0) == b""
    got = b"".join(iter(functools.partial(reader.read, n), b""))
    assert got == decode.open_text(io.BytesIO(data), "utf-8").read().encode("utf-8", "surrogatepass")


def test_other_text_streams_are_read_as_text():
    assert isinstance(jsonbytes.utf8_reader(io.StringIO("[]")), jsonbytes.Utf8Text)
    assert isinstance(jsonbytes.utf8_reader(decode.open_text(io.BytesIO(b"[]"), "cp1252")), jsonbytes.Utf8Text)
    assert isinstance(jsonbytes.utf8_reader(decode.open_text(io.BytesIO(b"[]"), "utf-8-sig")), jsonbytes.Utf8Text)


def test_flat_json_lines_are_decoded_a_list_at_a_time(monkeypatch):
    """Before: one ``json.loads`` per line (a Python call and its checks for each record)."""
    lines = [json.dumps({"nom": f"N{i}", "email": f"p{i}@example.org"}) for i in range(3000)]
    calls = []
    real = json.loads
    monkeypatch.setattr(jsondoc.json, "loads", lambda s, *a, **k: calls.append(1) or real(s, *a, **k))
    rows, errors = new_tables(io.StringIO("\n".join(lines) + "\n"), "lines", "x.jsonl", 1 << 20)
    assert errors == [] and len(rows) == 3000 and rows[2999] == {"nom": "N2999", "email": "p2999@example.org"}
    assert len(calls) <= 3000 // 1024 + 1


def test_a_bad_line_among_flat_lines_is_counted_and_located():
    lines = [json.dumps({"nom": f"N{i}"}) for i in range(2500)]
    lines[1500] = '{"nom": "cut'
    lines[1501] = 'here"}'
    rows, errors = new_tables(io.StringIO("\n".join(lines)), "lines", "x.jsonl", 1 << 20)
    assert len(rows) == 2498
    assert errors == ["x.jsonl: 2 JSON lines could not be parsed (first at line 1501); 2498 records read"]


def test_fragments_that_parse_only_when_joined_are_bad_lines():
    """A one-call decoding of the joined lines would take these three lines for three objects."""
    data = '{"a": "x"\n"b": "y"}\n{"c": "1"}, {"d": "2"}\n'
    rows, errors = new_tables(io.StringIO(data), "lines", "x.jsonl", 1 << 20)
    assert rows == []
    assert errors == ["x.jsonl: 3 JSON lines could not be parsed (first at line 1); 0 records read"]


def test_a_truncated_array_keeps_the_items_of_its_last_list():
    data = ("[" + ",".join(json.dumps({"n": str(i)}) for i in range(300)) + ',{"n": "30').encode()
    rows, errors = new_tables(decode.open_text(io.BytesIO(data), "utf-8"), "array", "x.json", 1 << 20)
    assert [r["n"] for r in rows] == [str(i) for i in range(300)]
    assert errors == ["x.json: truncated JSON (IncompleteJSONError): stopped after 300 records; "
                      "the records before were read"]


@pytest.mark.parametrize("cap", [16, 1 << 20])
def test_a_list_of_lines_holds_little_text_when_lines_are_long(cap, monkeypatch):
    monkeypatch.setattr(decode, "BATCH_CHARS", 64)
    data = ("x" * 15 + "\n") * 100
    batches = list(decode.line_batches(io.StringIO(data), cap))
    assert sum(map(len, batches)) == 100
    step = max(1, min(64, 64 // cap))
    assert max(sum(map(len, b)) for b in batches) <= 64 + step * cap


def test_text_lines_reads_ahead_about_what_the_text_stream_does():
    """The text reader meters blobs beside the lines: reading far ahead would change the order."""
    text = io.StringIO(("x" * 2000 + "\n") * 5_000)
    lines = decode.text_lines(text, 1 << 20)
    assert next(lines) == "x" * 2000
    assert text.tell() <= decode.BUFFER_BYTES + 16 * 2001

"""The Finding contract: verdict ``error`` for an unreadable input, ``complete`` for a partial one."""

from __future__ import annotations

import dataclasses
import json

import pytest

from matchers.finding import ERROR, NONE, REPOST, VERDICTS, Finding


def test_error_verdict_says_why_and_is_never_complete():
    f = Finding.unreadable("https://paste.example/raw/x", "https://paste.example/raw/x: HTTP 404 Not Found")
    assert f.verdict == ERROR == "error" and ERROR in VERDICTS
    assert f.complete is False and f.errors == ("https://paste.example/raw/x: HTTP 404 Not Found",)
    data = f.to_json()
    assert data["verdict"] == "error" and data["complete"] is False
    assert data["errors"] == ["https://paste.example/raw/x: HTTP 404 Not Found"]
    # Even when a caller asks for complete=True: an input not read at all is not complete.
    assert Finding(input="x", verdict=ERROR, errors=("x: gone",), complete=True).complete is False
    with pytest.raises(ValueError, match="why"):
        Finding(input="x", verdict=ERROR)  # an error without its reason helps nobody


def test_complete_defaults_true_and_errors_make_it_false():
    """Old callers (no ``complete`` argument) still work; a finding with errors is partial."""
    clean = Finding(input="a.csv", verdict=REPOST, matched_records=5, records_seen=5)
    assert clean.complete is True and clean.to_json()["complete"] is True
    partial = Finding(input="a.zip", verdict=REPOST, matched_records=5, records_seen=9,
                      errors=("a.zip!b.csv: encrypted member skipped (no password)",))
    assert partial.complete is False and partial.verdict == REPOST  # the verdict stands
    assert Finding(input="b", complete=False).complete is False
    with pytest.raises(TypeError):
        Finding(input="b", complete="yes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        clean.complete = False  # type: ignore[misc]
    # A bare string is one error, not one per character.
    assert Finding(input="c", errors="c: read error").errors == ("c: read error",)


def test_json_round_trip_and_old_json():
    f = Finding(input="u", verdict=REPOST, leak="labos-2021", matched_records=3, records_seen=4,
                identifiers={"nir": 4}, labs={"Bio Pontivy": 3}, categories=("nir",), sha256="ab" * 32,
                size=10, sample=("1 85 05 ** *** *** **",), leaks={"labos-2021": 3},
                errors=("u: download cut off after 10 bytes",))
    back = Finding.from_json(json.loads(json.dumps(f.to_json())))
    assert back == f and back.complete is False
    old = {k: v for k, v in Finding(input="v").to_json().items() if k != "complete"}
    assert Finding.from_json({**old, "added_later": 1}) == Finding(input="v", verdict=NONE)

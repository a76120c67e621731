"""Exports for analysts: a real finding (a synthetic repost scanned and recorded) exported as a MISP
event, loaded back by PyMISP's own loader, and as a STIX 2.1 bundle, checked by stix2-validator;
neither holds a cleartext identifier of the synthetic leak, nor its redacted sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


@pytest.fixture
def recorded(home, people, tmp_path):
    leak = synth.write_csv(people, tmp_path / "leak.csv")
    assert run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire").exit_code == 0
    repost = synth.write_repost(people[:50], tmp_path / "copy.csv", fmt="csv", spaced=True)
    out = run(home.root, "scan", "--record", str(repost), "--json")
    fid = json.loads(out.stdout)["finding_id"]
    assert fid
    return home, fid


def _secrets(people) -> list[str]:
    """Every identifying value of the 50 people in the copy (and the fragments a redaction keeps)."""
    values = []
    for p in people[:50]:
        values += [p["nir"], p["nir"][:7], synth.spaced_nir(p["nir"]), p["email"], p["email"].split("@")[0],
                   p["telephone"], p["telephone"].replace(" ", ""), p["adresse"], p["date_naissance"]]
        values += [p["nom"]] if len(p["nom"]) > 4 else []
    return values


def _assert_clean(text: str, people) -> None:
    leaked = [v for v in _secrets(people) if v and v in text]
    assert not leaked, leaked[:3]
    assert "***" not in text  # not even the redacted sample


def test_misp_event_loads_back_and_holds_no_identifier(recorded, people):
    from pymisp import MISPEvent

    home, fid = recorded
    result = run(home.root, "findings", "export", str(fid), "--format", "misp", "--tlp", "green")
    assert result.exit_code == 0, result.output
    _assert_clean(result.output, people)
    ev = MISPEvent()
    ev.load(result.output)
    assert {t.name for t in ev.tags} >= {"tlp:green", 'dumpwatch:leak="labos-2021"'}
    names = sorted(o.name for o in ev.objects)
    assert names == ["file", "paste"]  # a file scanned: no URL object
    file = next(o for o in ev.objects if o.name == "file")
    finding = json.loads(run(home.root, "findings", "show", str(fid), "--json").output)
    assert file.get_attributes_by_relation("sha256")[0].value == finding["sha256"]
    counters = {a.comment: int(a.value) for a in ev.attributes if a.type == "counter"}
    assert counters["matched_records"] == 50 and counters["records_seen"] == 50
    assert {a.value for a in ev.attributes if a.type == "text"} >= {"nir", "contact"}


def test_stix_bundle_is_valid_and_holds_no_identifier(recorded, people, tmp_path):
    from stix2validator import ValidationOptions, validate_string

    home, fid = recorded
    out = tmp_path / "bundle.json"
    result = run(home.root, "findings", "export", str(fid), "--format", "stix", "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    _assert_clean(text, people)
    report = validate_string(text, ValidationOptions(version="2.1", strict=False))
    assert report.is_valid, [e for r in report.object_results for e in r.errors]
    objs = json.loads(text)["objects"]
    by_type = {}
    for o in objs:
        by_type.setdefault(o["type"], []).append(o)
    sighting, = by_type["sighting"]
    report_obj, = by_type["report"]
    assert sighting["sighting_of_ref"] == report_obj["id"]
    assert sighting["observed_data_refs"] == [by_type["observed-data"][0]["id"]]
    assert sighting["x_dumpwatch_matched_records"] == 50
    assert by_type["file"][0]["hashes"]["SHA-256"]
    tlp_amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
    assert all(tlp_amber in o.get("object_marking_refs", [tlp_amber]) for o in objs)


def test_export_of_a_url_tip_has_a_url_object(home, people, tmp_path):
    from alerts.export import misp_event, stix_bundle

    row = {"id": 3, "verdict": "repost", "leak": "labos-2021", "source": "tip",
           "url": "https://paste.example/raw/Xy12", "sha256": "ab" * 32, "size": 1234,
           "first_seen": "2026-02-23T10:00:00+00:00", "detected_at": "2026-02-23T10:05:00+00:00",
           "matched_records": 12, "records_seen": 20, "identifiers": {"nir": 12}, "labs": {"Biolab Vannes": 12},
           "categories": ["nir"], "complete": 1, "sample": [f"{people[0]['email']}"]}
    ev = misp_event(row)
    assert sorted(o.name for o in ev.objects) == ["file", "paste", "url"]
    text = ev.to_json() + stix_bundle(row).serialize()
    assert people[0]["email"] not in text and "paste.example/raw/Xy12" in text


@pytest.mark.parametrize("fmt", ["misp", "stix"])
def test_export_on_stdout_shows_no_raw_bidi_or_control_character(home, people, tmp_path, fmt):
    """A URL written by a hostile page (an RLO, a C1 control) stays the same JSON on the terminal,
    with those characters as \\u escapes (docs/security.md, the escaping rules)."""
    import re

    leak = synth.write_csv(people, tmp_path / "leak.csv")
    assert run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire").exit_code == 0
    repost = synth.write_repost(people[:50], tmp_path / "copy\u202egpj.csv", fmt="csv", spaced=True)
    fid = json.loads(run(home.root, "scan", "--record", str(repost), "--json").stdout)["finding_id"]
    out = run(home.root, "findings", "export", str(fid), "--format", fmt).stdout
    assert not re.search("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out)
    if fmt == "misp":  # the file object names the file: the value is kept, only written escaped
        assert "copy\u202egpj" in json.dumps(json.loads(out), ensure_ascii=False)

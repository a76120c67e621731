"""A schema match against the enrolled header names the leak (it printed `leak -`); one against
no enrolled leak says so in words."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def test_schema_match_against_the_enrolled_header_names_the_leak(home, people, strangers, tmp_path):
    other = synth.write_repost(strangers[:60], tmp_path / "other.csv", fmt="csv", delimiter=";")
    before = run(home.root, "scan", str(other))
    assert "no enrolled leak (the schema of a lab-patient file)" in before.output and "leak -" not in before.output
    leak = synth.write_csv(people, tmp_path / "leak.csv")
    assert run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire").exit_code == 0
    obj = json.loads(run(home.root, "scan", str(other), "--json").stdout)
    assert obj["verdict"] == "schema-match" and obj["matched_records"] == 0
    assert obj["leak"] == "labos-2021"
    text = run(home.root, "scan", str(other)).output
    assert "leak labos-2021: 0 confirmed records" in text and "leak -" not in text

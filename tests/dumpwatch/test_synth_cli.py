"""`dumpwatch synth`: synthetic leaks and reposts from the command line, scanned for real."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.cli.main import cli


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def test_synth_leak_and_reposts_are_found_by_scan(home, tmp_path):
    leak = tmp_path / "leak.csv"
    made = run(home.root, "synth", "leak", str(leak), "--rows", "400", "--labs", "3", "--seed", "5")
    assert made.exit_code == 0, made.output
    assert leak.read_text().count("\n") == 401 and leak.read_text().startswith("laboratoire;nom;prenom")
    assert run(home.root, "enroll", str(leak), "--leak", "demo", "--lab-column", "laboratoire").exit_code == 0
    assert len(json.loads(run(home.root, "leaks", "--json").output)[0]["labs"]) == 3
    copy = tmp_path / "copy.json.gz"
    made = run(home.root, "synth", "repost", str(copy), "--rows", "40", "--skip", "100", "--seed", "5",
               "--labs", "3", "--strangers", "25", "--format", "json", "--english", "--spaced", "--compress", "gzip")
    assert made.exit_code == 0, made.output
    other = tmp_path / "other.csv"
    assert run(home.root, "synth", "repost", str(other), "--rows", "0", "--strangers", "50", "--seed", "5").exit_code == 0
    result = run(home.root, "scan", str(copy), str(other), "--json")
    by_name = {Path(o["input"]).name: o for o in map(json.loads, result.stdout.splitlines())}
    assert by_name["copy.json.gz"]["verdict"] == "repost"
    assert by_name["copy.json.gz"]["matched_records"] == 40 and by_name["copy.json.gz"]["records_seen"] == 65
    assert by_name["other.csv"]["verdict"] == "schema-match"


def test_synth_refuses_unknown_columns_and_an_empty_copy(home, tmp_path):
    bad = run(home.root, "synth", "repost", str(tmp_path / "x.csv"), "--columns", "nom,nirr")
    assert bad.exit_code == 2 and "nirr" in bad.output
    assert run(home.root, "synth", "repost", str(tmp_path / "x.csv"), "--rows", "0").exit_code == 2


def test_synth_without_faker_names_the_extra(home, tmp_path, monkeypatch, capsys):
    from dumpwatch.cli.main import main

    monkeypatch.setitem(sys.modules, "faker", None)  # import faker raises ImportError
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(home.root), "synth", "leak", str(tmp_path / "l.csv"), "--rows", "3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Faker" in err and "dumpwatch[demo]" in err and "'test'" in err

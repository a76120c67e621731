"""Which patients (Art. 34), without a second leak: `dumpwatch findings patients FINDING --lab LAB`
gives that lab's row numbers in the enrolled file (with its SHA-256), nothing else; the database
keeps positions only; every use is logged; removing or replacing the leak forgets the positions."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth
from dumpwatch.store import open_db

LAB = "Biolab Vannes"


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


@pytest.fixture
def recorded(home, people, tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "dpo-vannes")
    leak = synth.write_csv(people, tmp_path / "leak.csv")
    assert run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire").exit_code == 0
    chosen = random.Random(5).sample(range(len(people)), 90)
    copy = synth.write_repost([people[i] for i in chosen], tmp_path / "copy.json", fmt="json", english=True,
                              shuffle_columns=True, seed=3)
    fid = json.loads(run(home.root, "scan", "--record", str(copy), "--json").stdout)["finding_id"]
    assert fid
    return home, fid, leak, chosen


def test_rows_of_one_lab_are_the_rows_of_the_enrolled_file(recorded, people):
    home, fid, leak, chosen = recorded
    with open(leak, newline="", encoding="utf-8") as fh:
        file_rows = list(csv.DictReader(fh, delimiter=";"))
    expected = sorted(i + 1 for i in chosen if file_rows[i]["laboratoire"] == LAB)
    assert expected and len(expected) < len(chosen)
    result = run(home.root, "findings", "patients", str(fid), "--lab", LAB, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["rows"] == expected  # this lab's rows only, exactly
    assert got["file"] == "leak.csv" and got["file_sha256"] == hashlib.sha256(leak.read_bytes()).hexdigest()
    assert set(got) == {"finding", "leak", "lab", "file", "file_sha256", "row_base", "rows"}
    text = run(home.root, "findings", "patients", str(fid), "--lab", LAB).stdout
    assert [int(x) for x in text.splitlines() if not x.startswith("#")] == expected
    for p in (people[i] for i in chosen):  # nothing but numbers: no value of a person
        assert p["nir"] not in text and p["email"] not in text and p["nom"] not in text
    log = run(home.root, "findings", "patients", str(fid), "--log").stdout
    assert log.count("dpo-vannes") == 2 and LAB in log and str(len(expected)) in log


def test_the_database_holds_positions_only(recorded, people):
    home, fid, _, chosen = recorded
    db = open_db(home.db_path)
    rows = db.execute("SELECT lab, count, positions FROM finding_records WHERE finding_id = ?", [fid]).fetchall()
    assert sum(r[1] for r in rows) == 90 and all(len(r[2]) == 4 * r[1] for r in rows)
    raw = b"".join(p.read_bytes() for p in home.db_path.parent.glob(home.db_path.name + "*"))  # with the WAL
    for i in chosen:
        p = people[i]
        for value in (p["nir"], p["email"], p["telephone"].replace(" ", "")):
            assert value.encode() not in raw


def test_a_lab_not_in_the_copy_and_no_lab_are_refused(recorded):
    home, fid, _, _ = recorded
    assert CliRunner().invoke(cli, ["--home", str(home.root), "findings", "patients", str(fid)]).exit_code == 2
    missing = CliRunner().invoke(cli, ["--home", str(home.root), "findings", "patients", str(fid), "--lab",
                                       "Biolab Vanes"])
    assert missing.exit_code != 0 and "did you mean 'Biolab Vannes'" in str(missing.exception)
    assert "(none)" in run(home.root, "findings", "patients", str(fid), "--log").stdout  # refused: not logged


def test_replacing_or_removing_the_leak_forgets_the_positions(recorded, people, tmp_path):
    home, fid, leak, _ = recorded
    assert run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire",
               "--replace").exit_code == 0
    again = CliRunner().invoke(cli, ["--home", str(home.root), "findings", "patients", str(fid), "--lab", LAB])
    assert again.exit_code != 0 and "no record positions" in str(again.exception)


def test_the_output_file_is_private(recorded, tmp_path):
    home, fid, _, _ = recorded
    out = tmp_path / "rows.json"
    assert run(home.root, "findings", "patients", str(fid), "--lab", LAB, "--json", "-o", str(out)).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600 and json.loads(out.read_text())["rows"]

"""`dumpwatch enroll --map` refuses what it would silently ignore (issue 8, case 5).

An unknown kind (``nir=nirr``) or a column the file lacks (``numss=nir``) used to be accepted, and
the leak was enrolled without that column's fingerprints. Both now exit 2, naming the valid ones.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.devkit import synth
from dumpwatch.cli.main import cli
from matchers import schema
from matchers.enroll import MapError, check_map


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


@pytest.fixture
def leak(people, tmp_path) -> Path:
    """The leak with its NIR column under a name the schema does not know (``num_ss``)."""
    src = synth.write_csv(people[:60], tmp_path / "src.csv")
    with src.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    rows[0] = ["num_ss" if h == "nir" else h for h in rows[0]]
    out = tmp_path / "leak.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=";").writerows(rows)
    return out


def test_unknown_kind_exits_2_naming_the_kinds(home, leak):
    result = run(home.root, "enroll", str(leak), "--leak", "l", "--map", "num_ss=nirr")
    assert result.exit_code == 2
    assert "unknown kind 'nirr'" in result.output and "did you mean 'nir'?" in result.output
    for kind in schema.KINDS:  # the list comes from the schema, all of it
        assert kind in result.output
    assert not (home.index_dir / "l").exists()  # refused before reading the file


def test_unknown_column_exits_2_naming_the_columns(home, leak):
    result = run(home.root, "enroll", str(leak), "--leak", "l", "--map", "numss=nir")
    assert result.exit_code == 2
    assert "no column 'numss' in the file" in result.output and "did you mean 'num_ss'?" in result.output
    assert "num_ss, " in result.output and "telephone" in result.output  # its columns
    assert not (home.index_dir / "l").exists()


def test_a_right_map_enrolls_the_nirs(home, leak, people, tmp_path):
    result = run(home.root, "enroll", str(leak), "--leak", "l", "--map", "NUM SS=nir", "--map", "commentaire=")
    assert result.exit_code == 0, result.output
    assert "num_ss→nir" in result.output and "commentaire" not in result.output.split("Columns:")[1]
    # NIR + name alone (no phone, no email) now confirm records: the NIR fingerprints are there.
    with (tmp_path / "nir_name.csv").open("w", encoding="utf-8") as fh:
        fh.write("nir;nom;prenom\n")
        for p in people[:10]:
            fh.write(f"{p['nir']};{p['nom']};{p['prenom']}\n")
    out = json.loads(run(home.root, "scan", str(tmp_path / "nir_name.csv"), "--json").stdout)
    assert out["matched_records"] == 10


def test_columns_by_position_and_json_keys(home, people, tmp_path):
    headerless = tmp_path / "noheader.csv"
    headerless.write_text("".join(f"{p['nir']};{p['email']};{p['nom']}\n" for p in people[:20]))
    assert run(home.root, "enroll", str(headerless), "--leak", "pos", "--map", "2=last_name").exit_code == 0
    result = run(home.root, "enroll", str(headerless), "--leak", "pos", "--map", "3=last_name", "--replace")
    assert result.exit_code == 2 and "no column '3'" in result.output and "0, 1, 2" in result.output
    doc = tmp_path / "leak.json"
    doc.write_text(json.dumps([{"secu": p["nir"], "mail": p["email"], "nom": p["nom"]} for p in people[:20]]))
    assert run(home.root, "enroll", str(doc), "--leak", "js", "--map", "secu=nir").exit_code == 0
    result = run(home.root, "enroll", str(doc), "--leak", "js", "--map", "secus=nir", "--replace")
    assert result.exit_code == 2 and "did you mean 'secu'?" in result.output


def test_check_map_uses_the_schema_kinds(monkeypatch):
    for kind in schema.KINDS:
        check_map({"x": kind}, ["x"])
    check_map({"x": ""}, ["x"])  # ignore the column
    with pytest.raises(MapError, match="unknown kind"):
        check_map({"x": "ssn"})
    monkeypatch.setattr(schema, "KINDS", (*schema.KINDS, "ssn"))  # one place defines the kinds
    check_map({"x": "ssn"})
    with pytest.raises(MapError, match="valid kinds: .*ssn"):
        check_map({"x": "sn"})
    with pytest.raises(MapError, match=r"no column 'y'.*its columns: x"):
        check_map({"y": "nir"}, ["x"])
    check_map({"N° Sécu": "nir"}, ["n secu"])  # matched as the schema matcher matches: folded


def test_help_lists_every_kind():
    result = CliRunner().invoke(cli, ["enroll", "--help"], terminal_width=400)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert ", ".join(schema.KINDS) in text

"""Leaks are managed: enrolling a name again must be asked for (--replace), and `leaks remove`
removes the index and the entry, checks the key id, and keeps the leak's findings with a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth


def run(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def _enroll(home, people, tmp_path, n: int, *extra: str):
    leak = synth.write_csv(people[:n], tmp_path / f"leak{n}.csv")
    return run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire", *extra)


def test_enrolling_an_enrolled_name_again_needs_replace(home, people, tmp_path):
    assert _enroll(home, people, tmp_path, 300).exit_code == 0
    again = _enroll(home, people, tmp_path, 50)
    assert again.exit_code == 2
    assert "already enrolled" in again.output and "300 records" in again.output and "--replace" in again.output
    assert json.loads(run(home.root, "leaks", "--json").output)[0]["records"] == 300  # untouched
    replaced = _enroll(home, people, tmp_path, 50, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(run(home.root, "leaks", "--json").output)[0]["records"] == 50


def test_remove_deletes_the_index_and_keeps_the_findings_with_a_note(home, people, tmp_path):
    assert _enroll(home, people, tmp_path, 300).exit_code == 0
    repost = synth.write_repost(people[:40], tmp_path / "repost.csv", fmt="csv")
    from alerts import record_finding
    from dumpwatch.store import open_db, findings
    from matchers.scan import Scanner
    from dumpwatch.engine_settings import scan_settings_from

    scanner = Scanner.from_index_dir(home.index_dir, home.load_key(), scan_settings_from({}))
    finding = scanner.scan_path(Path(repost))
    assert finding.verdict == "repost"
    db = open_db(home.db_path)
    fid = record_finding(db, finding, source="tip")
    result = run(home.root, "leaks", "remove", "labos-2021", "--author", "dpo")
    assert result.exit_code == 0, result.output
    assert "1 finding(s) kept" in result.output
    assert not (home.index_dir / "labos-2021").exists()
    assert list(home.index_dir.iterdir()) == []  # nothing left aside
    assert json.loads(run(home.root, "leaks", "--json").output) == []
    kept = findings(open_db(home.db_path))
    assert [f["id"] for f in kept] == [fid]
    assert kept[0]["detail"]["leak_removed"]["by"] == "dpo"
    # the name is free again, without --replace
    assert _enroll(home, people, tmp_path, 50).exit_code == 0


def _exit_code(home, *args: str, capsys) -> tuple[int, str]:
    from dumpwatch.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--home", str(home.root), *args])
    return exc.value.code, capsys.readouterr().err


def test_remove_unknown_leak_and_wrong_key(home, people, tmp_path, monkeypatch, capsys):
    code, err = _exit_code(home, "leaks", "remove", "nope", capsys=capsys)
    assert code == 2 and "no enrolled leak 'nope'" in err
    assert _enroll(home, people, tmp_path, 100).exit_code == 0
    monkeypatch.setenv("DUMPWATCH_KEY", "ab" * 32)  # another key than the one the index was built with
    code, err = _exit_code(home, "leaks", "remove", "labos-2021", capsys=capsys)
    assert code == 2 and "--force" in err
    assert (home.index_dir / "labos-2021" / "meta.json").exists()  # not removed
    assert run(home.root, "leaks", "remove", "labos-2021", "--force").exit_code == 0
    assert not (home.index_dir / "labos-2021").exists()

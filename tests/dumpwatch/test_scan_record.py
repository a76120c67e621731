"""Tips become findings: `dumpwatch scan --record` records a repost like a crawled document
(finding, alerts, evidence, the tipster's note), and `scan -` reads standard input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth


def run(home: Path, *args: str, input: bytes | None = None):  # noqa: A002
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=input, catch_exceptions=False)


@pytest.fixture
def enrolled(home, people, tmp_path):
    leak = synth.write_csv(people, tmp_path / "leak.csv")
    assert run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire").exit_code == 0
    secret = tmp_path / "hook.secret"
    secret.write_text("s" * 32 + "\n")
    secret.chmod(0o600)
    (home.root / "dumpwatch.toml").write_text(
        '[alerts]\nauthority_receiver = "cnil"\n\n[[receivers]]\nname = "cnil"\ntype = "webhook"\n'
        f'url = "http://127.0.0.1:9/hook"\nsecret_file = "{secret}"\n')
    return home


def test_scan_record_makes_a_finding_with_alerts_evidence_and_note(enrolled, people, tmp_path):
    repost = synth.write_repost(people[:60], tmp_path / "dump_from_tip.csv", fmt="csv")
    other = tmp_path / "notes.txt"
    other.write_text("rien ici\n")
    note = "tip by phone, caller saw it on a forum; contact jean.dupont@example.org"
    result = run(enrolled.root, "scan", "--record", "--note", note, str(repost), str(other), "--json")
    assert result.exit_code == 0, result.output
    objs = {Path(o["input"]).name: o for o in map(json.loads, result.stdout.splitlines())}
    fid = objs["dump_from_tip.csv"]["finding_id"]
    assert isinstance(fid, int) and objs["notes.txt"]["finding_id"] is None
    shown = json.loads(run(enrolled.root, "findings", "show", str(fid), "--json").output)
    assert shown["verdict"] == "repost" and shown["source"] == "tip" and shown["matched_records"] == 60
    assert shown["url"] == "file:dump_from_tip.csv" and shown["sha256"] and shown["size"] == repost.stat().st_size
    assert shown["detail"]["tip"]["note"].startswith("tip by phone")
    assert "jean.dupont@example.org" not in json.dumps(shown)  # scrubbed like every stored text
    assert [a["receiver"] for a in shown["alerts"]] == ["cnil"]
    # the same copy again: no second finding, no second alert
    again = run(enrolled.root, "scan", "--record", str(repost))
    assert again.exit_code == 0 and "already recorded" in again.output
    assert len(json.loads("[" + ",".join(run(enrolled.root, "findings", "list", "--json").output.split("\n")[:-1]) + "]")) == 1


def test_scan_reads_standard_input(enrolled, people):
    body = synth.render(*synth.transform(people[:30]), "csv").encode()
    result = run(enrolled.root, "scan", "-", "--json", input=body)
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["input"] == "(stdin)" and obj["verdict"] == "repost" and obj["matched_records"] == 30
    recorded = run(enrolled.root, "scan", "-", "--record", input=body)
    assert "recorded as finding" in recorded.output


def test_note_without_record_is_a_usage_error(enrolled, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x\n")
    assert run(enrolled.root, "scan", str(f), "--note", "hello").exit_code == 2

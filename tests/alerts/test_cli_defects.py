"""The smaller defects of the alerts and findings commands (issue 13), each pinned:
the silence help examples run; silences on a lab or source that does not exist are refused with a
did-you-mean; `alerts list` says when alerts wait that are not messages yet; a failed test message
is not said to be retried; `findings list` filters and --format json|csv|table."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shlex

import pytest
from click.testing import CliRunner

from tests.helpers.alertkit import make_finding
from alerts import record_finding
from dumpwatch.cli.main import cli
from dumpwatch.devkit import synth
from dumpwatch.store import open_db


def _run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home.root), *args], catch_exceptions=False)


@pytest.fixture
def configured(home, webhook, secret_file, people, tmp_path):
    leak = synth.write_csv(people, tmp_path / "leak.csv")
    assert _run(home, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire").exit_code == 0
    home.config_path.write_text(
        "[alerts]\ngroup_wait = \"1h\"\noperators_receiver = \"cnil\"\n\n"
        f'[[receivers]]\nname = "cnil"\ntype = "webhook"\nurl = "{webhook.url}"\nsecret_file = "{secret_file}"\n\n'
        f'[[receivers]]\nname = "down"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\nsecret_file = "{secret_file}"\n\n'
        '[[sources]]\nname = "pastes"\nkind = "feed"\nstart_urls = ["http://127.0.0.1:9/feed.xml"]\n'
    )
    config = home.load_config()
    db = open_db(home.db_path)
    vannes = [p for p in people if p["laboratoire"] == "Biolab Vannes"][:5]
    others = [p for p in people if p["laboratoire"] != "Biolab Vannes"][:12]
    ids = [record_finding(db, make_finding(others, url="https://paste.example/raw/a", sha="1" * 64),
                          source="pastes", config=config),
           record_finding(db, make_finding(vannes, url="https://forum.example/t/9", sha="2" * 64),
                          source="tip", config=config)]
    db.close()
    return home, ids


def _examples(help_text: str) -> list[list[str]]:
    """The example commands of a --help text (continuation lines joined)."""
    text = help_text.split("Example", 1)[1]
    text = re.sub(r"\\\s*\n\s*", " ", text)
    return [shlex.split(line.strip())[1:] for line in text.splitlines() if line.strip().startswith("dumpwatch ")]


def test_silence_add_help_examples_run(configured, monkeypatch):
    monkeypatch.setenv("USER", "dpo")  # the examples rely on the default --author
    home, _ = configured
    examples = _examples(_run(home, "alerts", "silence", "add", "--help").output)
    examples += _examples(_run(home, "alerts", "silence", "--help").output)
    assert len(examples) == 3
    for args in examples:
        result = _run(home, *args)
        assert result.exit_code == 0, (args, result.output)


@pytest.mark.parametrize("matcher, hint", [("lab=Biolab Vanes", "did you mean 'Biolab Vannes'"),
                                           ("lab=Biolab*Paris", "no enrolled leak has a lab"),
                                           ("source=paste", "did you mean 'pastes'")])
def test_silence_on_a_lab_or_source_that_does_not_exist_is_refused(configured, matcher, hint):
    home, _ = configured
    result = CliRunner().invoke(cli, ["--home", str(home.root), "alerts", "silence", "add", "--match", matcher,
                                      "--comment", "x", "--author", "y"])
    assert result.exit_code != 0
    assert hint in str(result.exception)
    assert _run(home, "alerts", "silence", "list").output.strip() == "(none)"


def test_silence_on_existing_lab_glob_and_source_is_accepted(configured):
    home, _ = configured
    for matcher in ("lab=Biolab*", "source=tip", "lab="):
        assert _run(home, "alerts", "silence", "add", "--match", matcher, "--comment", "c",
                    "--author", "a").exit_code == 0


def test_alerts_list_says_alerts_are_waiting(configured):
    home, ids = configured
    shown = json.loads(_run(home, "findings", "show", str(ids[0]), "--json").output)
    assert shown["alerts"][0]["status"] == "pending"
    out = _run(home, "alerts", "list").output
    assert "alert(s) waiting for their group to go out" in out


def test_a_failed_test_message_is_not_said_to_be_retried(configured, caplog):
    home, _ = configured
    with caplog.at_level(logging.INFO):
        result = CliRunner().invoke(cli, ["--home", str(home.root), "alerts", "test", "down"])
    assert result.exit_code != 0
    text = caplog.text
    assert "will retry" not in text and "dead after 1 attempt" in text
    rows = [json.loads(line) for line in _run(home, "alerts", "list", "--receiver", "down", "--json").output.splitlines()]
    assert [r["status"] for r in rows] == ["dead"]


def test_findings_list_filters_and_formats(configured):
    home, ids = configured

    def listed(*args):
        return [json.loads(line)["id"] for line in _run(home, "findings", "list", *args, "--format", "json").output.splitlines()]

    assert listed() == ids[::-1]
    assert listed("--lab", "Biolab Vannes") == [ids[1]] and listed("--lab", "Nowhere Lab") == []
    first_labs = json.loads(_run(home, "findings", "show", str(ids[0]), "--json").output)["labs"]
    assert listed("--lab", sorted(first_labs)[0]) == [ids[0]]
    assert listed("--source", "tip") == [ids[1]]
    assert listed("--verdict", "schema-match") == []
    assert listed("--since", "1h") == ids[::-1]
    assert listed("--since", "2999-01-01") == []
    bad = CliRunner().invoke(cli, ["--home", str(home.root), "findings", "list", "--since", "last tuesday"])
    assert bad.exit_code == 2
    out = _run(home, "findings", "list", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["id"]) for r in rows] == ids[::-1] and rows[0]["url"] == "https://forum.example/t/9"
    assert _run(home, "findings", "list", "--format", "table").output.startswith("ID")


@pytest.mark.parametrize("command, column", [(("alerts", "list"), "subject"), (("alerts", "receivers"), "target"),
                                             (("alerts", "incidents", "--all"), "group_key"),
                                             (("findings", "list"), "verdict"),
                                             (("alerts", "silence", "list"), "comment"), (("leaks",), "records")])
def test_every_list_command_takes_format_table_json_csv(configured, command, column):
    home, _ = configured
    assert _run(home, "alerts", "silence", "add", "--match", "receiver=down", "--duration", "1h",
                "--author", "dpo", "--comment", "maintenance").exit_code == 0
    csv_out = _run(home, *command, "--format", "csv").output
    header, *lines = csv_out.splitlines()
    assert column in header.split(","), csv_out
    json_rows = [json.loads(line) for line in _run(home, *command, "--format", "json").output.splitlines()]
    assert len(json_rows) == len(lines) and all(column in r for r in json_rows)
    table = _run(home, *command, "--format", "table").output
    assert column.upper() in table.splitlines()[0] or (not lines and table.startswith("(none)"))


def test_csv_output_defuses_formulas_and_control_characters():
    from dumpwatch.cli.listing import _cell

    assert _cell("=HYPERLINK(\"http://x\")").startswith("'=")
    assert _cell("-1+2") == "'-1+2"
    assert "\x1b" not in _cell("a\x1b[31mb")
    assert _cell(3) == 3 and _cell(None) == ""

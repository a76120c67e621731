"""`dumpwatch alerts …` and `dumpwatch findings …` through the real command line, and the
APScheduler job registration."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from tests.helpers.alertkit import make_finding
from alerts import record_finding
from dumpwatch.cli.main import cli
from dumpwatch.cli.alerts import COMMANDS as ALERTS
from dumpwatch.cli.findings import COMMANDS as FINDINGS
from dumpwatch.errors import DumpwatchError
from dumpwatch.store import open_db


def _walk(cmd: click.Command, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, path + (name,))


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for group in ALERTS + FINDINGS:
        for path, cmd in _walk(group, (group.name,)):
            result = runner.invoke(cli, [*path, "--help"])
            assert result.exit_code == 0, (path, result.output)
            assert "Example" in result.output, f"dumpwatch {' '.join(path)} --help has no example"


@pytest.fixture
def configured(home, webhook, secret_file, people):
    home.config_path.write_text(
        "[alerts]\ngroup_wait = 0\n\n"
        f'[[receivers]]\nname = "cnil"\ntype = "webhook"\nurl = "{webhook.url}"\nsecret_file = "{secret_file}"\n'
        'language = "en"\n\n'  # the draft's English title is checked below
        f'[[receivers]]\nname = "down"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\nsecret_file = "{secret_file}"\n'
    )
    config = home.load_config()
    db = open_db(home.db_path)
    fid = record_finding(db, make_finding(people[:12], url="https://paste.example/raw/cli"), source="pastes",
                         config=config)
    db.close()
    return home, fid


def _run(home, *args):
    result = CliRunner().invoke(cli, ["--home", str(home.root), *args], catch_exceptions=False)
    return result


def test_send_list_show_retry(configured, webhook):
    home, fid = configured
    out = _run(home, "alerts", "send")
    assert out.exit_code == 0 and "delivered 1" in out.output
    assert len(webhook.hooks) == 1
    rows = [json.loads(line) for line in _run(home, "alerts", "list", "--json").output.splitlines()]
    assert len(rows) == 1 and rows[0]["status"] == "delivered" and rows[0]["receiver"] == "cnil"
    shown = _run(home, "alerts", "show", str(rows[0]["id"]))
    assert rows[0]["idempotency_key"] in shown.output and "https://paste.example/raw/cli" in shown.output
    draft = _run(home, "alerts", "show", str(rows[0]["id"]), "--draft").output
    assert draft.startswith("# Draft: notification of a personal data breach (GDPR Article 33)")
    again = _run(home, "alerts", "retry", str(rows[0]["id"]), "--now")
    assert again.exit_code == 0 and "delivered 1" in again.output
    assert webhook.keys()[rows[0]["idempotency_key"]] == 2  # a resend carries the same key

    findings = [json.loads(line) for line in _run(home, "findings", "list", "--json").output.splitlines()]
    assert [f["id"] for f in findings] == [fid] and findings[0]["verdict"] == "repost"
    detail = json.loads(_run(home, "findings", "show", str(fid), "--json").output)
    assert detail["alerts"][0]["receiver"] == "cnil" and detail["alerts"][0]["status"] == "notified"
    with pytest.raises(DumpwatchError, match="no finding 999"):
        _run(home, "findings", "show", "999")


def test_test_command(configured, webhook):
    home, _ = configured
    ok = _run(home, "alerts", "test", "cnil")
    assert ok.exit_code == 0 and "delivered to cnil" in ok.output
    assert webhook.hooks[-1].json()["kind"] == "test" and webhook.hooks[-1].signature_ok
    from dumpwatch.cli.main import main

    table = _run(home, "alerts", "receivers").output
    assert "cnil" in table and "down" in table

    with pytest.raises(SystemExit) as exc:
        main(["--home", str(home.root), "alerts", "test", "down"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--home", str(home.root), "alerts", "test", "nobody"])
    down = [line for line in _run(home, "alerts", "receivers").output.splitlines() if line.startswith("down")]
    assert down and "failed: Connect" in down[0] and " 1 " in down[0]
    # A failed test message is not retried later.
    statuses = [json.loads(line)["status"] for line in _run(home, "alerts", "list", "--receiver", "down",
                                                              "--json").output.splitlines()]
    assert statuses == ["dead"]


def test_silence_commands(configured):
    home, _ = configured
    out = _run(home, "alerts", "silence", "add", "--match", "receiver=cnil", "--match", "leak=labos-*",
               "--author", "agent", "--comment", "takedown requested", "--duration", "2h")
    assert out.exit_code == 0 and out.output.startswith("silence 1 until")
    listed = [json.loads(line) for line in _run(home, "alerts", "silence", "list", "--json").output.splitlines()]
    assert listed[0]["matchers"] == {"receiver": "cnil", "leak": "labos-*"} and listed[0]["state"] == "active"
    assert "0 delivered" not in _run(home, "alerts", "send").output
    db = open_db(home.db_path)
    assert db.execute("SELECT status FROM alerts").fetchone()[0] == "silenced"
    assert _run(home, "alerts", "silence", "expire", "1").exit_code == 0
    assert _run(home, "alerts", "silence", "list").output.strip() == "(none)"
    assert "expired" in _run(home, "alerts", "silence", "list", "--all").output
    bad = CliRunner().invoke(cli, ["--home", str(home.root), "alerts", "silence", "add", "--match", "colour=red",
                                   "--comment", "x", "--author", "y"])
    assert bad.exit_code != 0


def test_add_jobs_registers_the_delivery_job(home, configured, webhook):
    from apscheduler.schedulers.background import BackgroundScheduler

    from alerts.jobs import JOB_ID, add_jobs, deliver_once

    home, _ = configured
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start(paused=True)
    try:
        (job,) = add_jobs(scheduler, db_path=home.db_path, config=home.load_config(), interval=5)
        assert job.id == JOB_ID and job.max_instances == 1 and job.coalesce is True
        assert job.misfire_grace_time == 60 and job.func is deliver_once
        job.func(**job.kwargs)  # what the scheduler runs
        assert len(webhook.hooks) == 1
    finally:
        scheduler.shutdown(wait=False)

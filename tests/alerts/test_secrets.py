"""Webhook URLs are credentials (issue 10, case 6): they can come from ``url_env`` / ``url_file``, and
a URL holding a recognisable token is never shown whole: not in the log (httpx's request lines
included), not in ``last_error`` of messages and receivers, not in any command's output, not in
the bytes of the database, whatever failed (a refused connection, a receiver that answers 500 and
echoes the URL, a channel or a library that quotes it)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.alertkit import SECRET, WebhookReceiver, base_config, free_port, make_finding
from alerts import record_finding
from alerts.channels import ChannelError
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from alerts.preflight import preflight
from alerts.settings import load
from dumpwatch import clock
from dumpwatch.errors import ConfigError, ConfigErrors
from dumpwatch.redact import redact_url, redact_urls, url_hash
from dumpwatch.store import open_db

REPO = Path(__file__).resolve().parents[2]
TOKENS = {name: f"XOXB{name.upper()}T0KEN4242deadbeefcafe" for name in ("slack", "down", "lit", "bad", "echo")}


class EchoServer:
    """A receiver that answers 500 and quotes the URL it was called on, whole and by its path."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = (f"no webhook at http://{self.headers['Host']}{self.path} "
                        f"(token {self.path.rsplit('/', 1)[-1]})").encode()
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.stop()


def _leaks(blob: bytes | str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [name for name, token in TOKENS.items() if token.encode() in data]


# -- the redaction -------------------------------------------------------------------------------------

def test_a_url_is_shown_as_its_scheme_host_and_a_short_hash():
    url = f"https://hooks.slack.com/services/T000/B000/{TOKENS['slack']}"
    assert redact_url(url) == f"https://hooks.slack.com/…#{url_hash(url)}" and len(url_hash(url)) == 6
    assert redact_url("http://user:pw@[::1]:8080/x?t=1").startswith("http://[::1]:8080/…#")
    down = f"http://127.0.0.1:9/{TOKENS['down']}"
    text = f"POST {url} failed (see {url}.) and '{down}'"
    once = redact_urls(text)
    assert not _leaks(once) and once.count("https://hooks.slack.com/…#") == 2
    assert once.endswith(f".) and 'http://127.0.0.1:9/…#{url_hash(down)}'")
    assert redact_urls(once) == once  # applying it twice changes nothing
    # a configured URL is found even where it is not shaped like a URL
    assert not _leaks(redact_urls(f"x{url}y", [url]))


# -- url_env / url_file --------------------------------------------------------------------------------

def _webhook(name: str, **keys) -> dict:
    return {"name": name, "type": "webhook", "secret_env": "DW_TEST_SECRET", **keys}


def test_exactly_one_of_url_url_env_url_file(monkeypatch):
    for keys in ({}, {"url": "https://a.example/x", "url_env": "X"}, {"url_env": "X", "url_file": "/f"}):
        with pytest.raises((ConfigError, ConfigErrors), match="exactly one of url"):
            load({"receivers": [_webhook("w", **keys)]})
    r = load({"receivers": [_webhook("w", url_env="DW_TEST_URL")]}).receivers["w"]
    assert r.url == "" and r.target == "url from $DW_TEST_URL"


def test_url_from_the_environment_or_a_file_is_read_at_each_use_and_never_quoted(tmp_path, monkeypatch):
    url = f"https://hooks.example/services/{TOKENS['slack']}"
    path = tmp_path / "ops.url"
    path.write_text(url + "\n")
    monkeypatch.setenv("DW_TEST_URL", url)
    monkeypatch.setenv("DW_TEST_SECRET", "s")
    alerting = load({"receivers": [_webhook("env", url_env="DW_TEST_URL"), _webhook("file", url_file=str(path)),
                                   _webhook("unset", url_env="DW_TEST_UNSET"),
                                   _webhook("bad", url_env="DW_TEST_BAD")]})
    assert alerting.receivers["env"].endpoint() == url == alerting.receivers["file"].endpoint()
    assert alerting.receivers["file"].target == f"url from file {path}"
    monkeypatch.setenv("DW_TEST_BAD", f"hooks.example/{TOKENS['bad']} with spaces")
    errors, _ = preflight(alerting, None)
    assert {e.key for e in errors} == {"receivers.unset.url_env", "receivers.bad.url_env"}
    assert not _leaks(" ".join(str(e) for e in errors))
    assert "does not hold one http:// or https:// URL" in str(next(e for e in errors if "bad" in e.key))


def test_url_from_a_file_delivers(tmp_path, monkeypatch):
    receiver = WebhookReceiver().start()
    try:
        path = tmp_path / "cnil.url"
        path.write_text(receiver.url + "\n")
        monkeypatch.setenv("DW_TEST_SECRET", SECRET)
        cfg = {"alerts": {"group_wait": 0}, "receivers": [_webhook("cnil", url_file=str(path))]}
        db = open_db(None)
        record_finding(db, make_finding([], url="https://p.example/1", sha="a" * 64), config=cfg)
        report = deliver_due(db, alerting_of(cfg))
        assert report.delivered == 1 and receiver.hooks[0].signature_ok
    finally:
        receiver.stop()


# -- every path where a URL could be shown -------------------------------------------------------------

def _cli(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dumpwatch.cli", "-vv", "--home", str(home), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def test_no_receiver_url_in_logs_columns_outputs_or_database_bytes(tmp_path, echo, secret_file):
    ok = WebhookReceiver().start()
    try:
        home = tmp_path / "home"
        home.mkdir()
        urls = {"slack": f"http://127.0.0.1:{echo.port}/services/T000/B000/{TOKENS['slack']}",
                "down": f"http://127.0.0.1:{free_port()}/hooks/{TOKENS['down']}",
                "lit": f"http://127.0.0.1:{ok.port}/hook/{TOKENS['lit']}",
                "bad": f"htp:/127.0.0.1/{TOKENS['bad']}"}
        (tmp_path / "slack.url").write_text(urls["slack"] + "\n")
        (home / "dumpwatch.toml").write_text("\n".join([
            "[alerts]", "group_wait = 0",
            *[line for name, key, value in (("slack", "url_file", str(tmp_path / "slack.url")),
                                            ("down", "url_env", "DW_DOWN_URL"), ("lit", "url", urls["lit"]),
                                            ("bad", "url_env", "DW_BAD_URL"))
              for line in ("[[receivers]]", f'name = "{name}"', 'type = "webhook"', f'{key} = "{value}"',
                           f'secret_file = "{secret_file}"', 'format = "slack"', "")]]))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
        env.update(DW_DOWN_URL=urls["down"], DW_BAD_URL=urls["bad"])

        outputs = {}
        for name in ("lit", "slack", "down", "bad"):
            result = _cli(home, "alerts", "test", name, env=env)
            outputs[f"alerts test {name}"] = result.stdout + result.stderr
            assert (result.returncode == 0) == (name == "lit"), result.stderr
        assert "HTTP Request: POST http://127.0.0.1:" in outputs["alerts test lit"]  # httpx's line, redacted
        assert f"POST answered HTTP 500 'no webhook at http://127.0.0.1:{echo.port}/…#" in outputs["alerts test slack"]
        assert "ConnectError" in outputs["alerts test down"]
        assert "does not hold one http:// or https:// URL" in outputs["alerts test bad"]

        listed = _cli(home, "alerts", "list", "--json", env=env)
        ids = [json.loads(line)["id"] for line in listed.stdout.splitlines()]
        assert len(ids) == 4
        commands = [("alerts", "receivers"), ("alerts", "list"), ("alerts", "list", "--json"), ("status",),
                    ("status", "--json"), *[("alerts", "show", str(i)) for i in ids],
                    *[("alerts", "show", str(i), "--json") for i in ids]]
        for args in commands:
            result = _cli(home, *args, env=env)
            assert result.returncode == 0, (args, result.stderr)
            outputs[" ".join(args)] = result.stdout + result.stderr
        receivers = outputs["alerts receivers"]
        assert "url from $DW_DOWN_URL" in receivers and "url from file /" in receivers
        assert f"http://127.0.0.1:{ok.port}/…#{url_hash(urls['lit'])}" in receivers
        for command, text in outputs.items():
            assert not _leaks(text), (command, _leaks(text), text[-2000:])

        db = open_db(home / "dumpwatch.db")
        errors = [e for (e,) in db.execute("SELECT last_error FROM alert_notifications WHERE last_error IS NOT NULL")]
        errors += [e for (e,) in db.execute("SELECT last_error FROM alert_receivers WHERE last_error IS NOT NULL")]
        assert len(errors) == 6 and not _leaks(" ".join(errors))
        db.close()
        for path in home.rglob("*"):  # the database, its -wal, the logs: their bytes
            if path.is_file() and path.name != "dumpwatch.toml":  # (where receiver "lit" has it, as url =)
                assert not _leaks(path.read_bytes()), path
    finally:
        ok.stop()


def test_delivery_redacts_what_a_channel_or_a_library_quotes(caplog):
    url = f"https://hooks.example/services/{TOKENS['echo']}"
    cfg = {"alerts": {"group_wait": 0, "retry_base": "1m"},
           "receivers": [{"name": "cnil", "type": "webhook", "url": url, "secret_env": "X"}]}
    alerting = alerting_of(cfg)
    db = open_db(None)
    record_finding(db, make_finding([], url="https://p.example/2", sha="b" * 64), config=cfg)

    def quoting_channel(receiver, message, key):
        raise ChannelError(f"cannot POST {url} (token {TOKENS['echo']})")

    def buggy_channel(receiver, message, key):
        raise RuntimeError(f"unexpected: {url}")

    now = clock.now()
    with caplog.at_level(logging.DEBUG):
        assert deliver_due(db, alerting, now=now, sender=quoting_channel).failed == 1
        assert deliver_due(db, alerting, now=now + timedelta(hours=2), sender=buggy_channel).failed == 1
    (error,) = [e for (e,) in db.execute("SELECT last_error FROM alert_notifications")]
    assert error.startswith("RuntimeError: unexpected: https://hooks.example/…#")
    stored = " ".join(e for (e,) in db.execute("SELECT last_error FROM alert_receivers"))
    assert not _leaks(stored) and not _leaks(caplog.text)
    assert "unexpected error sending message" in caplog.text and "buggy_channel" in caplog.text  # the frames


def test_errors_stored_by_an_earlier_version_are_redacted_by_a_migration(tmp_path):
    url = f"https://hooks.example/services/{TOKENS['slack']}"
    db = open_db(tmp_path / "dumpwatch.db")
    db.execute("INSERT INTO alert_receivers (receiver, consecutive_failures, last_error) VALUES (?, 1, ?)",
               ["ops", f"receiver ops: POST {url} failed: ConnectError"])
    db.execute("DELETE FROM _migrations WHERE name = '105_receiver_urls_redacted'")
    db.conn.commit()
    db.close()
    db = open_db(tmp_path / "dumpwatch.db")
    (error,) = [e for (e,) in db.execute("SELECT last_error FROM alert_receivers")]
    assert error == f"receiver ops: POST {redact_url(url)} failed: ConnectError"


def test_the_example_configuration_keeps_the_chat_url_out_of_the_file():
    text = (REPO / "deploy" / "dumpwatch.example.toml").read_text()
    slack = text.split('name = "ops"', 1)[1].split("[[receivers]]", 1)[0]
    assert 'format = "slack"' in slack and "url_file" in slack and "\nurl =" not in slack


def test_base_config_helper_is_unchanged():  # the other alert tests rely on literal urls still loading
    cfg = base_config(cnil_url="http://127.0.0.1:9/hook", secret_file=Path("/x"), smtp_port=9, labs=[])
    assert load(cfg).receivers["cnil"].endpoint() == "http://127.0.0.1:9/hook"


def test_a_chat_url_in_a_configuration_every_user_can_read_is_a_warning(tmp_path, monkeypatch):
    from dumpwatch.home import Home

    monkeypatch.setenv("DW_TEST_SECRET", "s")
    path = tmp_path / "dumpwatch.toml"
    path.write_text(f'[[receivers]]\nname = "ops"\ntype = "webhook"\nurl = "https://chat.example/hooks/{TOKENS["lit"]}"'
                    '\nsecret_env = "DW_TEST_SECRET"\nformat = "slack"\n')
    path.chmod(0o644)
    _, warnings = preflight(load(Home(tmp_path).load_config(path)), None)
    assert len(warnings) == 1 and "[receivers.ops.url]" in warnings[0] and "url_env or url_file" in warnings[0]
    assert not _leaks(warnings[0])
    path.chmod(0o640)
    assert preflight(load(Home(tmp_path).load_config(path)), None)[1] == []

"""`dumpwatch scan` never calls an input it could not read clean (issue 8, case 4).

An input that could not be read at all has verdict ``error`` with its reason; one read only in part
keeps its verdict with ``complete: false``; the exit status says so (0 all read, 1 not all read,
2 usage, 3 with ``--fail-on``). Servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.devkit import synth
from dumpwatch.cli.main import cli, main
from dumpwatch.devkit.localsites import SiteServer, free_port


def run(home: Path, *args: str):
    """The servers of these tests are on 127.0.0.1: every scan has the network policy's opt-in."""
    if "scan" in args:
        args = (*args, "--allow-private")
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def objects(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def leak_home(tmp_path_factory, people) -> Path:
    root = tmp_path_factory.mktemp("scan-unreadable")
    leak = synth.write_csv(people, root / "leak.csv")
    home = root / "home"
    result = CliRunner().invoke(cli, ["--home", str(home), "enroll", str(leak), "--leak", "labos-2021"],
                                env={"DUMPWATCH_KEY": "", "DUMPWATCH_KEY_FILE": ""})
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture(autouse=True)
def _own_key(monkeypatch):
    monkeypatch.delenv("DUMPWATCH_KEY", raising=False)
    monkeypatch.delenv("DUMPWATCH_KEY_FILE", raising=False)


@pytest.fixture(scope="module")
def site(people):
    srv = SiteServer().start()
    body = synth.render(*synth.transform(people[:20]), "csv").encode()
    srv.add("/raw/repost", body, headers={"Content-Type": "text/plain"})
    srv.add("/raw/gone", "not found", status=404)
    srv.add("/raw/boom", "internal error", status=500)
    srv.add("/raw/busy", "try later", status=503)
    srv.add("/raw/slow", body, delay=3.0)
    srv.add("/raw/empty", b"", headers={"Content-Type": "text/plain"})
    yield srv
    srv.stop()


@pytest.mark.parametrize("path, reason", [("/raw/gone", "HTTP 404 Not Found"),
                                          ("/raw/boom", "HTTP 500 Internal Server Error"),
                                          ("/raw/busy", "HTTP 503 Service Unavailable")])
def test_http_error_is_an_error_not_clean(leak_home, site, path, reason):
    result = run(leak_home, "scan", site.base + path, site.base + "/raw/repost", "--json")
    bad, good = objects(result)
    assert bad["verdict"] == "error" and bad["complete"] is False
    assert bad["errors"] == [f"{site.base}{path}: {reason}"]
    assert bad["matched_records"] == 0 and bad["sha256"] is None
    assert good["verdict"] == "repost" and good["matched_records"] == 20 and good["complete"] is True
    assert result.exit_code == 1
    assert "1 error (could not be read)" in result.stderr  # said where a script's operator looks


def test_refused_connection_timeout_and_dns_failure(leak_home, site, monkeypatch):
    refused = f"http://127.0.0.1:{free_port()}/raw/x"  # bound once, closed: nothing listens
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # a resolver that knows no such host (no network needed)
        if host == "leak-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    result = run(leak_home, "scan", refused, site.base + "/raw/slow", "http://leak-host.invalid/raw/x",
                 "--timeout", "0.5", "--json")
    out = objects(result)
    assert [o["verdict"] for o in out] == ["error", "error", "error"]
    assert "connection refused" in out[0]["errors"][0]
    assert "no answer within 0.5 s" in out[1]["errors"][0]
    assert "host not found (DNS" in out[2]["errors"][0]
    assert result.exit_code == 1


@pytest.mark.parametrize("url, reason", [("http://", "malformed URL (no host name)"),
                                         ("http://[::1/raw", "malformed URL"),
                                         ("http://127.0.0.1:1:2/x", "malformed URL"),
                                         ("https://exa mple.com/x", "malformed URL (a space in the host name)"),
                                         ("htps://paste.example/raw/x", "not an http:// or https:// URL")])
def test_malformed_url_is_an_error_without_a_traceback(leak_home, url, reason):
    result = CliRunner().invoke(cli, ["--home", str(leak_home), "scan", url, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    (o,) = objects(result)
    assert o["verdict"] == "error" and reason in o["errors"][0] and o["errors"][0].startswith(url)
    assert result.exit_code == 1


def test_missing_file_special_file_and_unlistable_directory(leak_home, people, tmp_path, monkeypatch):
    good = tmp_path / "in" / "ok" / "repost.csv"
    good.parent.mkdir(parents=True)
    synth.write_repost(people[:5], good)
    locked = tmp_path / "in" / "locked"
    locked.mkdir()
    synth.write_repost(people[5:10], locked / "hidden.csv")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it would block the scan forever
    real_scandir = os.scandir

    def scandir(path="."):  # as for a directory of another user (the tests run as root: no chmod)
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = run(leak_home, "scan", str(tmp_path / "in"), str(tmp_path / "nope.csv"), str(fifo), "--json")
    by_input = {o["input"]: o for o in objects(result)}
    assert by_input[str(good)]["verdict"] == "repost"
    assert by_input[str(locked)]["verdict"] == "error"
    assert "cannot list this directory (Permission denied)" in by_input[str(locked)]["errors"][0]
    assert by_input[str(tmp_path / "nope.csv")]["errors"] == [f"{tmp_path / 'nope.csv'}: no such file or directory"]
    assert by_input[str(fifo)]["verdict"] == "error" and "not a regular file" in by_input[str(fifo)]["errors"][0]
    assert {o["verdict"] for o in by_input.values()} == {"repost", "error"}
    assert result.exit_code == 1


def test_unreadable_file_is_an_error(leak_home, tmp_path, monkeypatch):
    target = tmp_path / "secret.csv"
    target.write_text("nir;email\n")
    real_open = open

    def deny(file, *args, **kwargs):  # EACCES as for a file of another user (root can read any)
        if os.fspath(file) == str(target):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: deny(self, *a, **k))
    result = run(leak_home, "scan", str(target), "--json")
    (o,) = objects(result)
    assert o["verdict"] == "error" and o["errors"] == [f"{target}: cannot read (Permission denied)"]
    assert result.exit_code == 1


def _cut_server(body: bytes, send: int) -> tuple[str, threading.Thread, socket.socket]:
    """A server that announces ``body`` whole, sends its first ``send`` bytes, and hangs up."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:send])

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}/raw/cut", t, srv


def test_download_cut_off_keeps_its_verdict_but_is_incomplete(leak_home, people):
    body = synth.render(*synth.transform(people[:200]), "csv").encode()
    url, thread, srv = _cut_server(body, len(body) // 2)
    try:
        result = run(leak_home, "scan", url, "--json")
    finally:
        thread.join(10)
        srv.close()
    (o,) = objects(result)
    assert o["verdict"] == "repost" and o["complete"] is False
    assert 50 <= o["matched_records"] < 200  # a lower bound: what the first half holds
    assert f"download cut off after {len(body) // 2} bytes" in o["errors"][-1]
    assert result.exit_code == 1


def test_larger_than_max_bytes_scans_the_first_part(leak_home, site, people, tmp_path):
    config = tmp_path / "dumpwatch.toml"
    config.write_text("[limits]\nmax_bytes = 2000\n")
    result = run(leak_home, "--config", str(config), "scan", site.base + "/raw/repost", "--json")
    (o,) = objects(result)
    assert o["complete"] is False and o["size"] <= 2000
    assert any("larger than limits.max_bytes=2000" in e for e in o["errors"])
    assert o["verdict"] == "repost" and 3 <= o["matched_records"] < 20
    assert result.exit_code == 1


def test_text_output_says_error_and_incomplete(leak_home, site):
    result = run(leak_home, "scan", site.base + "/raw/gone", site.base + "/raw/repost")
    assert f"ERROR        {site.base}/raw/gone" in result.stdout
    assert f"error: {site.base}/raw/gone: HTTP 404 Not Found" in result.stdout
    assert "2 input(s): 1 repost, 0 schema-match, 0 none, 1 error (could not be read)" in result.stdout
    assert result.exit_code == 1


def test_exit_status(leak_home, site, people, strangers, tmp_path):
    synth.write_repost(strangers[:40], tmp_path / "other.csv")
    (tmp_path / "notes.txt").write_text("rien à voir ici\n")
    repost = site.base + "/raw/repost"
    assert run(leak_home, "scan", str(tmp_path / "notes.txt"), repost).exit_code == 0  # all read
    assert run(leak_home, "scan", repost, "--fail-on", "repost").exit_code == 3
    assert run(leak_home, "scan", str(tmp_path / "notes.txt"), "--fail-on", "repost").exit_code == 0
    other = str(tmp_path / "other.csv")
    assert run(leak_home, "scan", other, "--fail-on", "repost").exit_code == 0
    assert run(leak_home, "scan", other, "--fail-on", "schema-match").exit_code == 3
    # A repost found wins over an unreadable input; the error is still printed.
    result = run(leak_home, "scan", repost, site.base + "/raw/gone", "--fail-on", "repost", "--json")
    assert result.exit_code == 3 and [o["verdict"] for o in objects(result)] == ["repost", "error"]
    assert run(leak_home, "scan", repost, "--timeout", "0").exit_code == 2  # usage


def test_enrolled_index_without_its_key_is_a_usage_error(leak_home, tmp_path, capsys):
    """The key file gone: scanning with a throwaway key would find nothing; refuse (2) instead."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(leak_home, home)
    (home / "secret" / "key").unlink()
    (tmp_path / "notes.txt").write_text("rien\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--home", str(home), "scan", str(tmp_path / "notes.txt"), "--json"])
    assert exit_.value.code == 2
    assert "no fingerprint key" in capsys.readouterr().err


def test_empty_page_reads_like_an_empty_file(leak_home, site, tmp_path):
    """Read, and empty: nothing in it, wholly read (size 0 says it is empty)."""
    (tmp_path / "empty.txt").write_bytes(b"")
    result = run(leak_home, "scan", site.base + "/raw/empty", str(tmp_path / "empty.txt"), "--json")
    page, file = objects(result)
    for o in (page, file):
        assert o["verdict"] == "none" and o["size"] == 0 and o["sha256"] is not None
        assert o["complete"] is True and o["errors"] == []
    assert result.exit_code == 0


def test_engine_incomplete_result_is_said_and_exits_1(leak_home, people, tmp_path, monkeypatch):
    """When the engine skips part of an input (``complete=False``, e.g. records it failed on), the
    command reports the verdict of the part read, marks it, and exits 1."""
    import dataclasses

    from matchers.scan import Scanner

    real = Scanner.scan_stream

    def partial(self, *args, **kwargs):
        return dataclasses.replace(real(self, *args, **kwargs), complete=False)

    monkeypatch.setattr(Scanner, "scan_stream", partial)
    synth.write_repost(people[:5], tmp_path / "r.csv")
    result = run(leak_home, "scan", str(tmp_path / "r.csv"), "--workers", "1")
    assert "REPOST" in result.stdout and "INCOMPLETE" in result.stdout and "lower bound" in result.stdout
    assert "1 read only in part" in result.stdout and result.exit_code == 1

"""`dumpwatch scan URL` under the network policy and within bounds (issue 10, cases 3 and 4).

Loopback and private addresses are refused unless opted in, on the first request and on every
redirect; the whole download has a time limit (a server sending one byte a second is stopped) and a
size limit. Servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.devkit import synth
from dumpwatch.cli.main import cli, main
from dumpwatch.devkit.localsites import SiteServer


def run(home: Path, *args: str, config: str | None = None):
    pre = ["--config", config] if config else []
    return CliRunner().invoke(cli, ["--home", str(home), *pre, "scan", *args, "--json"], catch_exceptions=False)


def objects(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DUMPWATCH_KEY", "ab" * 32)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def site(people):
    srv = SiteServer().start()
    port = srv.base.rsplit(":", 1)[1]
    srv.add("/raw/csv", synth.render(*synth.transform(people[:30]), "csv"), headers={"Content-Type": "text/plain"})
    srv.add("/to/v6", b"", status=302, headers={"Location": f"http://[::1]:{port}/raw/csv"})
    srv.add("/to/other-loopback", b"", status=301, headers={"Location": f"http://127.0.0.2:{port}/raw/csv"})
    srv.add("/to/metadata", b"", status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    srv.add("/to/file", b"", status=302, headers={"Location": "file:///etc/passwd"})
    srv.add("/to/self", b"", status=302, headers={"Location": "/to/self"})
    srv.add("/to/csv", b"", status=303, headers={"Location": "/raw/csv"})
    yield srv
    srv.stop()


@pytest.fixture
def only_127_0_0_1(tmp_path) -> str:
    """A configuration that allows 127.0.0.1 and nothing else that is not global."""
    path = tmp_path / "dumpwatch.toml"
    path.write_text('[network]\nallowed_networks = ["127.0.0.1/32"]\n')
    return str(path)


@pytest.mark.parametrize("path, target, kind", [
    ("/to/v6", "http://[::1]:", "::1 is a loopback address"),
    ("/to/other-loopback", "http://127.0.0.2:", "127.0.0.2 is a loopback address"),
    ("/to/metadata", "http://169.254.169.254/", "169.254.169.254 is a link-local address"),
])
def test_a_redirect_to_a_forbidden_address_is_refused(home, site, only_127_0_0_1, path, target, kind):
    result = run(home, site.base + path, config=only_127_0_0_1)
    (o,) = objects(result)
    assert o["verdict"] == "error" and o["complete"] is False
    (error,) = o["errors"]
    assert error.startswith(f"{site.base}{path}: redirected to {target}")
    assert f"refused by the network policy: {kind}" in error
    assert result.exit_code == 1  # could not be read (README, "scan" exit status)


def test_a_redirect_within_the_policy_is_followed(home, site, only_127_0_0_1):
    (o,) = objects(run(home, site.base + "/to/csv", config=only_127_0_0_1))
    assert o["verdict"] == "schema-match" and o["errors"] == []


def test_redirect_loops_and_other_schemes_are_errors(home, site):
    loop, other = objects(run(home, site.base + "/to/self", site.base + "/to/file", "--allow-private"))
    assert loop["verdict"] == "error" and "more than 5 redirects" in loop["errors"][0]
    assert other["verdict"] == "error"
    assert "redirected to file:///etc/passwd: not an http:// or https:// URL" in other["errors"][0]


@pytest.mark.parametrize("url, reason", [
    ("http://[::1]:9/raw", "refused by the network policy: ::1 is a loopback address"),
    ("http://127.0.0.1:9/raw", "refused by the network policy: 127.0.0.1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]:9/raw", "is a loopback address"),
    ("http://10.0.0.1:9/raw", "10.0.0.1 is a private address"),
    ("http://localhost:9/raw", "localhost resolves to "),
])
def test_loopback_and_private_urls_are_refused_by_default(home, url, reason):
    result = run(home, url)
    (o,) = objects(result)
    assert o["verdict"] == "error" and reason in o["errors"][0] and o["errors"][0].startswith(url)
    assert "allow_private_networks = true" in o["errors"][0]
    assert result.exit_code == 1


def test_the_opt_ins_allow_the_loopback_site(home, site, tmp_path):
    (o,) = objects(run(home, site.base + "/raw/csv", "--allow-private"))
    assert o["verdict"] == "schema-match"
    config = tmp_path / "open.toml"
    config.write_text("[network]\nallow_private_networks = true\n")
    (o,) = objects(run(home, site.base + "/raw/csv", config=str(config)))
    assert o["verdict"] == "schema-match"


def test_a_bad_network_table_is_a_usage_error(home, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('[network]\nallowed_networks = ["10.0.0.0/33"]\n')
    with pytest.raises(SystemExit) as exit_:
        main(["--home", str(home), "--config", str(config), "scan", "http://x.example/"])
    assert exit_.value.code == 2 and "[network.allowed_networks]" in capsys.readouterr().err


class TrickleServer:
    """Answers every request one byte a second (headers and all, or only the body), until the
    client hangs up or ``limit`` seconds pass."""

    def __init__(self, *, slow_headers: bool, limit: float = 30.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(limit)
        self.slow_headers, self.limit = slow_headers, limit
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/raw/slow"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
            data = head + b"x" * 100000
            if not self.slow_headers:
                conn.sendall(head)
                data = data[len(head):]
            end = time.monotonic() + self.limit
            try:
                for i in range(len(data)):
                    if time.monotonic() > end:
                        return
                    conn.sendall(data[i:i + 1])
                    time.sleep(1)
            except OSError:  # the client hung up: what the test waits for
                return

    def close(self) -> None:
        self.thread.join(self.limit + 5)
        self.sock.close()


@pytest.mark.parametrize("slow_headers", [False, True])
def test_a_server_sending_one_byte_a_second_is_stopped_by_the_total_time_limit(home, slow_headers):
    server = TrickleServer(slow_headers=slow_headers)
    try:
        result = run(home, server.url, "--allow-private", "--max-time", "2", "--timeout", "5")
    finally:
        server.close()
    assert not server.thread.is_alive()  # the client hung up (else the server gives up after 30 s)
    (o,) = objects(result)
    assert o["verdict"] == "error" and o["complete"] is False
    assert "took longer than --max-time=2 s" in o["errors"][0] and "nothing scanned" in o["errors"][0]
    assert result.exit_code == 1


def test_max_size_stops_the_download_and_scans_the_first_part(home, site):
    (o,) = objects(run(home, site.base + "/raw/csv", "--allow-private", "--max-size", "1500"))
    assert o["size"] <= 1500 and o["complete"] is False
    assert any("larger than --max-size=1500 bytes" in e for e in o["errors"])


def test_https_goes_through_the_checked_connection(home, people, tmp_path, monkeypatch):
    """TLS is started on the connection the policy checked (certificates as httpx checks them)."""
    import http.server
    import ssl

    import trustme

    ca = trustme.CA()
    body = synth.render(*synth.transform(people[:30]), "csv").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    try:
        url = f"https://127.0.0.1:{srv.server_address[1]}/raw"
        (refused,) = objects(run(home, url))
        (o,) = objects(run(home, url, "--allow-private"))
    finally:
        srv.shutdown()
        srv.server_close()
    assert "refused by the network policy" in refused["errors"][0]
    assert o["verdict"] == "schema-match" and o["errors"] == [] and o["complete"] is True

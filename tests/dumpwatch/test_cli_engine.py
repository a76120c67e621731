"""`dumpwatch enroll` / `scan` / `leaks` as a user runs them, and the privacy promise."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpwatch.devkit import synth
from dumpwatch.cli.main import cli


def run(home: Path, *args: str) -> "click.testing.Result":  # noqa: F821
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    return result


@pytest.fixture
def enrolled(home, people, tmp_path):
    leak = synth.write_csv(people, tmp_path / "leak.csv")
    result = run(home.root, "enroll", str(leak), "--leak", "labos-2021", "--lab-column", "laboratoire")
    assert result.exit_code == 0, result.output
    return home


def test_enroll_keeps_key_apart_with_0600(enrolled):
    key = enrolled.key_path
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert key.read_text().strip() not in enrolled.db_path.read_bytes().hex()
    result = run(enrolled.root, "leaks", "--json")
    leaks = json.loads(result.output)
    assert leaks[0]["name"] == "labos-2021" and leaks[0]["records"] == 600
    assert len(leaks[0]["labs"]) == len(synth.LABS)


def test_scan_json_contract(enrolled, people, strangers, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    synth.write_repost(people[:80], tmp_path / "in" / "repost.json", fmt="json", english=True, spaced=True)
    synth.write_repost(strangers[:80], tmp_path / "in" / "sub" / "other.csv", fmt="csv")
    (tmp_path / "in" / "notes.txt").write_text("rien à voir ici\n")
    result = run(enrolled.root, "scan", str(tmp_path / "in"), str(tmp_path / "missing.csv"), "--json")
    assert result.exit_code == 1, result.output  # one input could not be read
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {Path(o["input"]).name: o for o in lines}
    assert set(by_name) == {"repost.json", "other.csv", "notes.txt", "missing.csv"}
    for o in lines:
        assert {"input", "verdict", "leak", "matched_records", "records_seen", "schema_score",
                "identifiers", "labs", "categories", "errors", "complete"} <= set(o)
        assert 0.0 <= o["schema_score"] <= 1.0
        assert o["complete"] is (not o["errors"])
    rp = by_name["repost.json"]
    assert rp["verdict"] == "repost" and rp["leak"] == "labos-2021" and rp["matched_records"] == 80
    assert rp["records_seen"] == 80 and sum(rp["labs"].values()) == 80
    assert rp["identifiers"]["nir"] == 80 and set(rp["categories"]) >= {"identity", "contact", "nir"}
    assert by_name["other.csv"]["verdict"] == "schema-match"
    assert by_name["notes.txt"]["verdict"] == "none"
    assert by_name["missing.csv"]["verdict"] == "error"
    assert by_name["missing.csv"]["errors"] == [f"{tmp_path / 'missing.csv'}: no such file or directory"]
    # Without the missing file, everything was read in full: exit 0.
    assert run(enrolled.root, "scan", str(tmp_path / "in"), "--json").exit_code == 0


def test_scan_url(enrolled, people, tmp_path):
    import http.server
    import threading

    body = synth.render(*synth.transform(people[:10]), "csv").encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = 200 if self.path == "/raw/abc" else 404
            self.send_response(code)
            self.end_headers()
            if code == 200:
                self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        result = run(enrolled.root, "scan", f"{base}/raw/abc", f"{base}/gone", "--json",
                     "--allow-private")  # the server is on 127.0.0.1: refused without the opt-in
    finally:
        srv.shutdown()
        srv.server_close()
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["verdict"] == "repost" and out[0]["matched_records"] == 10 and out[0]["complete"]
    assert out[1]["verdict"] == "error" and "HTTP 404" in out[1]["errors"][0]
    assert result.exit_code == 1


def test_human_summary_and_threshold(enrolled, people, tmp_path):
    synth.write_repost(people[:3], tmp_path / "three.csv")
    result = run(enrolled.root, "scan", str(tmp_path / "three.csv"))
    assert "REPOST" in result.output and "3 confirmed records" in result.output
    result = run(enrolled.root, "scan", str(tmp_path / "three.csv"), "--threshold", "4")
    assert "REPOST" not in result.output


def test_usage_errors_exit_2(home, tmp_path):
    assert run(home.root, "scan").exit_code == 2
    assert run(home.root, "enroll", str(tmp_path / "nope.csv"), "--leak", "x").exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a;b\n1;2\n")
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home.root), "enroll", str(bad),
                           "--leak", "bad name!"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid leak name" in proc.stderr


def test_every_command_has_help_with_an_example():
    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, path + [name])

    for path, cmd in walk(cli, []):
        result = CliRunner().invoke(cli, path + ["--help"])
        assert result.exit_code == 0, path
        if not getattr(cmd, "commands", None):
            assert "Example" in result.output or "example" in result.output, f"dumpwatch {' '.join(path)}"


def test_nothing_under_home_holds_a_cleartext_identifier(enrolled, people, tmp_path):
    """Enroll and scan, then search every byte under the home directory for the leak's identifiers."""
    synth.write_repost(people[:100], tmp_path / "r.csv", spaced=True, intl=True)
    synth.write_repost(people[100:150], tmp_path / "r.html", fmt="html")
    result = run(enrolled.root, "scan", str(tmp_path / "r.csv"), str(tmp_path / "r.html"), "--json")
    assert '"repost"' in result.output
    needles = set()
    for p in people:
        digits = p["telephone"].replace(" ", "")
        needles |= {p["nir"], p["nir"][:13], synth.spaced_nir(p["nir"]), p["email"], digits, digits[1:],
                    p["telephone"]}
    # Nor in what the scan printed (the redacted sample is all it shows).
    for n in needles:
        assert n not in result.output
    blobs = []
    for f in enrolled.root.rglob("*"):
        if f.is_file():
            blobs.append((f, f.read_bytes()))
    assert blobs
    for f, data in blobs:
        for n in needles:
            assert n.encode() not in data, f"{n!r} found in {f}"
            assert n.encode("utf-16-le") not in data, f"{n!r} (utf-16) found in {f}"


def test_wrong_key_is_refused(enrolled, people, tmp_path, monkeypatch):
    monkeypatch.setenv("DUMPWATCH_KEY", os.urandom(32).hex())
    synth.write_repost(people[:10], tmp_path / "r.csv")
    result = CliRunner().invoke(cli, ["--home", str(enrolled.root), "scan", str(tmp_path / "r.csv")])
    assert result.exit_code != 0
    assert "another key" in str(result.exception) + result.output


def test_key_from_the_environment_never_touches_disk(home, people, tmp_path, monkeypatch):
    monkeypatch.setenv("DUMPWATCH_KEY", os.urandom(32).hex())
    leak = synth.write_csv(people[:50], tmp_path / "leak.csv")
    assert run(home.root, "enroll", str(leak), "--leak", "env").exit_code == 0
    assert not home.key_path.exists()
    synth.write_repost(people[:5], tmp_path / "r.csv")
    assert '"repost"' in run(home.root, "scan", str(tmp_path / "r.csv"), "--json").output

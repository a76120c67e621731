"""`dumpwatch daemon --check` (and the daemon's start) checks the configuration whole, with the loaders
the crawls, scans and deliveries run: each mistake here once passed the check, then made every crawl
fail or cut a lab's DPO off. Errors exit 2 naming the file and the key; warnings do not fail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dumpwatch.devkit import synth
from dumpwatch.cli.main import main

LEAK = "labos-2021"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_HOME", "DUMPWATCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(enrolled_root, tmp_path) -> Path:
    root = tmp_path / "home"
    shutil.copytree(enrolled_root, root)
    return root


def config(tmp_path: Path, extra: str = "", *, contacts: dict[str, str] | None = None,
           source: str = "") -> str:
    """A valid configuration: one paste source, the CNIL by webhook, a contact for every lab."""
    secret = tmp_path / "hook.secret"
    secret.write_text("a-signing-secret-for-the-test\n")
    if contacts is None:
        contacts = {lab: "dpo" for lab in synth.LABS}
    lines = "\n".join(f'"{lab}" = "{receiver}"' for lab, receiver in contacts.items())
    source = source or 'kind = "paste-api"\nstart_urls = ["http://127.0.0.1:9/recent.json"]\n'
    return f"""
[[sources]]
name = "pastes"
{source}
[alerts]
authority_receiver = "cnil"

[[receivers]]
name = "cnil"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_file = "{secret}"

[[receivers]]
name = "dpo"
type = "email"
to = ["dpo@labs.example"]
smtp_host = "127.0.0.1"
security = "none"

[contacts]
{lines}
{extra}
"""


def run(home: Path, toml: str, capsys, *, check: bool = True) -> tuple[int, str, str]:
    """`dumpwatch --home HOME daemon --check` (or `daemon`) as the installed command runs it:
    its exit status, stdout and stderr."""
    (home / "dumpwatch.toml").write_text(toml)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(home), "daemon", *(["--check"] if check else [])])
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_a_valid_configuration_passes(home, tmp_path, capsys):
    code, out, err = run(home, config(tmp_path), capsys)
    assert code == 0, err
    assert "configuration ok: 1 crawl jobs" in out and "crawl:pastes" in out
    assert "warning" not in err


def test_a_misspelt_lab_is_an_error_with_a_did_you_mean(home, tmp_path, capsys):
    contacts = {lab: "dpo" for lab in synth.LABS if lab != "Biolab Vannes"} | {"Biolab Vanes": "dpo"}
    code, out, err = run(home, config(tmp_path, contacts=contacts), capsys)
    assert code == 2, out + err
    assert f"{home / 'dumpwatch.toml'} [contacts.Biolab Vanes]" in err
    assert "did you mean 'Biolab Vannes'?" in err
    assert "configuration ok" not in out


def test_a_contact_in_the_wrong_case_is_a_misspelling_too(home, tmp_path, capsys):
    contacts = {lab: "dpo" for lab in synth.LABS if lab != "LBM Rance"} | {"lbm rance": "dpo"}
    code, _, err = run(home, config(tmp_path, contacts=contacts), capsys)
    assert code == 2 and "[contacts.lbm rance]" in err and "did you mean 'LBM Rance'?" in err


def test_an_enrolled_lab_without_a_contact_is_a_warning_naming_who_is_still_told(home, tmp_path, capsys):
    contacts = {lab: "dpo" for lab in synth.LABS if lab not in ("Bio Pontivy", "LBM Rance")}
    code, out, err = run(home, config(tmp_path, contacts=contacts), capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, err
    assert all("has no contact" in w and "(cnil still receives them)" in w for w in warnings)
    assert "'Bio Pontivy'" in warnings[0] and "'LBM Rance'" in warnings[1]
    assert "configuration ok: 1 crawl jobs, 2 warnings" in out


def test_a_contact_for_a_lab_of_no_enrolled_leak_is_a_warning(home, tmp_path, capsys):
    contacts = {lab: "dpo" for lab in synth.LABS} | {"Centre Hospitalier de Morlaix": "dpo"}
    code, _, err = run(home, config(tmp_path, contacts=contacts), capsys)
    assert code == 0, err
    assert "[contacts.Centre Hospitalier de Morlaix]: no enrolled leak has a lab" in err


@pytest.mark.parametrize("extra, key, words", [
    ("[limits]\nmax_bytes = -1\n", "[limits.max_bytes]", "positive number"),
    ("[limits]\nmax_byte = 1000\n", "[limits.max_byte]", "unknown key"),
    ("[scan]\nthreshold = 2\n", "[scan]", "unknown key(s) threshold"),
    ("[scan]\nrepost_threshold = 0\n", "[scan.repost_threshold]", ">= 1"),
])
def test_a_limits_or_scan_table_every_crawl_would_reject_is_an_error(home, tmp_path, capsys, extra, key, words):
    code, out, err = run(home, config(tmp_path, extra), capsys)
    assert code == 2, out + err
    assert f"{home / 'dumpwatch.toml'} {key}" in err and words in err


def test_an_unknown_table_is_an_error_with_a_did_you_mean(home, tmp_path, capsys):
    code, out, err = run(home, config(tmp_path, "[limit]\nmax_bytes = 1000\n"), capsys)
    assert code == 2, out + err
    assert "[limit]: unknown table; did you mean [limits]?" in err


def test_a_source_whose_selector_every_crawl_would_reject_is_an_error(home, tmp_path, capsys):
    source = ('kind = "paste-archive"\nstart_urls = ["http://127.0.0.1:9/archive"]\n'
              'listing_selector = "table.maintable a::attr(href"\n')
    code, out, err = run(home, config(tmp_path, source=source), capsys)
    assert code == 2, out + err
    assert "[sources.pastes.listing_selector]" in err and "not a valid CSS selector" in err


def test_every_error_is_reported_at_once(home, tmp_path, capsys):
    contacts = {lab: "dpo" for lab in synth.LABS} | {"Biolab Vanes": "dpo"}
    source = 'kind = "paste-api"\nstart_urls = ["ftp://127.0.0.1/recent.json"]\n'
    code, _, err = run(home, config(tmp_path, "[limits]\nmax_depth = 0\n", contacts=contacts, source=source),
                       capsys)
    assert code == 2
    assert "3 configuration errors" in err
    for key in ("[limits.max_depth]", "[sources.pastes.start_urls]", "[contacts.Biolab Vanes]"):
        assert key in err


def test_an_unreadable_ca_file_is_an_error(home, tmp_path, capsys):
    toml = config(tmp_path).replace('secret_file =', f'ca_file = "{tmp_path / "no-ca.pem"}"\nsecret_file =', 1)
    code, _, err = run(home, toml, capsys)
    assert code == 2 and "[receivers.cnil.ca_file]" in err and "cannot load its CA file" in err


def test_an_index_built_with_another_key_is_an_error(home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DUMPWATCH_KEY", "ab" * 32)
    code, _, err = run(home, config(tmp_path), capsys)
    assert code == 2 and "was built with another key" in err


def test_an_enrolled_leak_without_its_key_is_an_error(home, tmp_path, capsys):
    (home / "secret" / "key").unlink()
    code, _, err = run(home, config(tmp_path), capsys)
    assert code == 2 and "no fingerprint key" in err and LEAK in err


def test_a_malformed_key_file_is_an_error(home, tmp_path, capsys):
    (home / "secret" / "key").write_text("not hexadecimal\n")
    code, _, err = run(home, config(tmp_path), capsys)
    assert code == 2 and "is not hexadecimal" in err and "Traceback" not in err


def test_no_leak_enrolled_is_a_warning(tmp_path, capsys):
    home = tmp_path / "empty"
    home.mkdir()
    code, _, err = run(home, config(tmp_path), capsys)
    assert code == 0, err
    assert "no leak enrolled" in err and "every crawl will fail" in err


def test_the_daemon_refuses_to_start_on_an_error(home, tmp_path):
    import subprocess
    import sys

    (home / "dumpwatch.toml").write_text(config(tmp_path, "[limits]\nmax_bytes = -1\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPWATCH_")}
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "daemon"], env=env,
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "[limits.max_bytes]" in proc.stderr, proc.stderr[-2000:]
    assert not (home / "daemon.json").exists() and not (home / "daemon.lock").exists()  # nothing started

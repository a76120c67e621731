"""`dumpwatch demo` end to end, as `make demo` runs it: real servers, the real daemon, then nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dumpwatch.devkit import synth

ROOT = Path(__file__).resolve().parent.parent.parent


def test_demo_runs_the_pipeline_and_stops_everything(tmp_path):
    work = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_HOME", "DUMPWATCH_CONFIG")}
    proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "demo", "--rows", "2000", "--keep", str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    # the three reposts were crawled from the two sites, found, and alerted through both channels
    assert out.count("repost   labos-2021") == 3, out
    assert "crawled pastes" in out and "crawled forum" in out
    hooks = re.findall(r"webhook → cnil: (alert|update) \w+, signature (\w+), (\d+) new copies", out)
    assert hooks and sum(int(n) for *_, n in hooks) == 3, out  # each copy once, in one message or more
    assert all(sig == "valid" for _, sig, _ in hooks)
    mails = list((work / "received").glob("mail-*.eml"))
    assert len(mails) >= 3 and len(list((work / "received").glob("webhook-*.json"))) >= 1
    # the labs' DPOs got French mail, through [smtp], each draft naming its own DPO (issue 13)
    import email
    import email.policy

    for path in mails:
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert "enregistrement" in mail["Subject"] and "de patients de" in mail["Subject"], mail["Subject"]
        [draft] = [p.get_content() for p in mail.walk() if p.get_filename() == "article33-draft.md"]
        lab = mail["Subject"].split("de patients de ")[1].split(" trouvé")[0]
        assert f"DPO {lab}" in draft and "À compléter par le responsable de traitement" in draft
    assert "dumpwatch@demo.example" in mails[0].read_text(errors="replace")  # the sender of [smtp]
    assert "daemon stopped cleanly (exit 0)" in out and "Where to look next" in out
    # the real daemon ran (its log) and stopped
    log = (work / "daemon.log").read_text()
    assert "daemon started" in log and "daemon stopped" in log
    # every server it started is stopped
    pastebin = re.search(r"pastebin (http://127\.0\.0\.1:\d+)", out).group(1)
    forum = re.search(r"forum (http://127\.0\.0\.1:\d+)", out).group(1)
    for base in (pastebin, forum):
        try:
            httpx.get(base, timeout=2)
        except httpx.TransportError:
            pass
        else:
            raise AssertionError(f"{base} still answers after the demo")
    # no cleartext identifier of the synthetic leak in the home, the logs or what receivers got
    people = synth.generate(2000, seed=2021)
    nirs = {p["nir"] for p in people}
    emails = {p["email"].lower() for p in people}
    phones = {re.sub(r"\D", "", p["telephone"])[-9:] for p in people}
    for path in [*(work / "home").rglob("*"), *(work / "received").rglob("*"), work / "daemon.log"]:
        if not path.is_file() or path.parent.name == "index":
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        assert not nirs & set(re.findall(r"\d{13,15}", re.sub(r"[ .]", "", text))), path
        assert not emails & {m.lower() for m in re.findall(r"[\w.+-]+@[\w.-]+", text)}, path
        assert not phones & {re.sub(r"\D", "", m)[-9:] for m in re.findall(r"(?:\+33|0)[1-9](?:[ .]?\d{2}){4}", text)}, path


def test_synthetic_data_without_faker_says_which_extra_to_install(monkeypatch):
    """Faker is in the demo and test extras only: without it, one clear line, not an ImportError."""
    import builtins

    from dumpwatch.devkit import synth
    from dumpwatch.errors import DumpwatchError

    real_import = builtins.__import__

    def no_faker(name, *args, **kwargs):
        if name == "faker" or name.startswith("faker."):
            raise ImportError("No module named 'faker'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faker)
    with pytest.raises(DumpwatchError, match=r"dumpwatch\[demo\]"):
        synth.generate(3, seed=1)


def test_the_demo_and_test_extras_are_imported_only_inside_devkit_functions():
    """Faker, pinnwand and aiosmtpd come with the demo and test extras only: no product module imports
    them, and devkit/ imports them inside the functions that use them (importing it needs none)."""
    import ast

    extras = {"faker", "pinnwand", "aiosmtpd"}
    offending = []
    for package in ("dumpwatch", "matchers", "crawler", "alerts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            nodes = _run_at_import(tree) if path.parent.name == "devkit" else ast.walk(tree)
            for node in nodes:
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(name.split(".")[0] in extras for name in names):
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offending, offending


def _run_at_import(node):
    """The nodes of a module that run when it is imported (function bodies are left out)."""
    import ast

    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _run_at_import(child)

"""The pipeline of `dumpwatch demo` (:func:`run`): the whole pipeline, offline, on synthetic data, with
real local servers (the command itself is :mod:`dumpwatch.cli.demo`).

1. generates a synthetic leak (no real person) and enrolls it with the real `dumpwatch enroll`;
2. starts, on 127.0.0.1 only: a real pastebin (pinnwand) with a listing, a small phpBB-style forum,
   a real SMTP server (aiosmtpd) for the labs' DPOs and a webhook receiver for the authority that
   checks each signature;
3. posts a few reposts of the leak there, hidden among ordinary pastes and forum posts;
4. writes a dumpwatch.toml (two sources, [smtp], the CNIL's webhook, one line per lab contact, a short
   [daemon] schedule; messages in French) and runs
   the real daemon (`dumpwatch daemon`, in a child process) until both sources were crawled and
   every alert was delivered, then stops it with SIGTERM as systemd would;
5. shows the findings, the messages the SMTP server and the webhook receiver got (saved under
   WORK/received/), `dumpwatch status`, stops everything it started and says where to look next.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path
from typing import Any

import click

from dumpwatch.devkit import synth
from dumpwatch.filemodes import private_dir, private_file, write_private

LEAK = "labos-2021"
ROOT = Path(__file__).resolve().parents[2]

NOISE_PASTES = [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(30))\n",
    "sku;designation;prix;stock\nA-1001;Vis inox 4x40;0.12;5000\nA-1002;Cheville 6mm;0.05;12000\n"
    "B-2001;Perceuse 18V;89.90;14\n",
    "2021-02-24 10:12:01 ERROR [worker-3] connection reset by peer (retry 2/5)\n"
    "2021-02-24 10:12:03 INFO  [worker-3] reconnected to 10.0.0.12:5432\n",
    "[server]\nlisten = 0.0.0.0:8080\nworkers = 4\nlog_level = info\n",
]


def _slug(lab: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", lab).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_name).split())


def _step(n: int, text: str) -> None:
    click.secho(f"\n{n}. {text}", bold=True)


def _repost(people: list[dict[str, str]], fmt: str, seed: int, **changes: Any) -> str:
    header, rows = synth.transform(people, seed=seed, **changes)
    return synth.render(header, rows, fmt, seed=seed)


def _config(pastes_url: str, forum_url: str, hook_url: str, secret_file: Path, smtp_port: int) -> str:
    contacts = [f'"{lab}" = {{ name = "DPO {lab}", email = "dpo@{_slug(lab)}.example", '
                f'phone = "+33 2 00 00 00 {i:02d}" }}' for i, lab in enumerate(synth.LABS, 1)]
    return f"""# Written by `dumpwatch demo`: every server below is local (127.0.0.1) and stops with the demo.
[network]
allow_private_networks = true   # the demo's sites are on 127.0.0.1; refused by default (docs/security.md)

[crawler]
delay = 0                 # politeness: real sites want 1 s or more
autothrottle = false
obey_robots = true
timeout = 10
retry_times = 1
retry_backoff = 0.2

[[sources]]
name = "pastes"
kind = "paste-api"         # a JSON scraping API listing the newest pastes
start_urls = ["{pastes_url}"]
interval = "20s"

[[sources]]
name = "forum"
kind = "forum"
preset = "phpbb"
start_urls = ["{forum_url}"]
interval = "20s"

[daemon]
jitter = "1s"
delivery_interval = "1s"
crawl_timeout = "90s"
shutdown_grace = "20s"

[alerts]
authority_receiver = "cnil"
group_wait = "0s"          # real use: 30s, to batch the first copies of an incident
group_interval = "0s"
repeat_interval = "0s"
contact_point = "DPO of the demo labs, dpo@labs.example"  # in the CNIL's drafts; a lab's draft names its own
language = "fr"            # of every receiver that does not say its own ("en" also spoken)
timezone = "Europe/Paris"  # of the dates in messages

# What every email receiver inherits: a lab is then one line of [contacts].
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"          # a local test server; real use: starttls or tls, with user and password_env
from = "dumpwatch@demo.example"

[[receivers]]
name = "cnil"
type = "webhook"
url = "{hook_url}"
secret_file = "{secret_file}"

# Each lab's DPO: its alerts go to its email through [smtp]; its Article 33 draft names them.
[contacts]
{chr(10).join(contacts)}
"""


def run(rows: int = 5000, keep: str | Path | None = None, timeout: float = 90.0) -> None:
    """The demo: ``rows`` synthetic patients, files and home kept in ``keep`` (else a temporary
    directory), at most ``timeout`` seconds for the crawls and alerts. It says each step on stdout
    and stops every server and process it started; a failure is a :class:`click.ClickException`.
    """
    from dumpwatch.devkit.localsites import (SiteServer, WebhookReceiver, code_block, phpbb_forum, start_pinnwand,
                                             start_smtp)

    missing = [m for m in ("pinnwand", "aiosmtpd") if importlib.util.find_spec(m) is None]
    if missing:
        raise click.ClickException(f"the demo needs {', '.join(missing)}: pip install -e '.[demo]' (make demo does)")
    started = time.monotonic()
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="dumpwatch-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_HOME", "DUMPWATCH_CONFIG")}

    def dw(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        if not quiet and proc.stdout.strip():
            click.echo("   " + proc.stdout.rstrip().replace("\n", "\n   "))
        if check and proc.returncode != 0:
            raise click.ClickException(f"dumpwatch {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        return proc

    _step(1, f"Generating {rows} synthetic patients of {len(synth.LABS)} labs, enrolling them (keyed fingerprints only)")
    people = synth.generate(rows, seed=2021)
    leak = synth.write_csv(people, work / "leak_labos_2021.csv")
    click.echo(f"   $ dumpwatch --home {home} enroll {leak.name} --leak {LEAK} --lab-column laboratoire")
    dw("enroll", str(leak), "--leak", LEAK, "--lab-column", "laboratoire", "--replace", quiet=True)
    leak.unlink()  # as in real use: the cleartext file is not kept
    click.echo(f"   enrolled; {leak.name} deleted: {home} holds no cleartext identifier")

    servers: list[Any] = []
    daemon_proc: subprocess.Popen | None = None
    try:
        _step(2, "Starting local servers on 127.0.0.1: pastebin (pinnwand), forum (phpBB structure), "
                 "SMTP (aiosmtpd), webhook receiver")
        pinnwand = start_pinnwand(work / "pinnwand")
        servers.append(pinnwand)
        site = SiteServer().start()
        servers.append(site)
        smtp = start_smtp()
        servers.append(smtp)
        secret = secrets.token_hex(24)
        secret_file = work / "cnil-webhook.secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        hook = WebhookReceiver(secret.encode()).start()
        servers.append(hook)
        click.echo(f"   pastebin {pinnwand.base}   forum {site.base}/forum   SMTP 127.0.0.1:{smtp.port}   "
                   f"webhook {hook.url}")

        _step(3, "Posting reposts of the leak, hidden among ordinary content")
        reposts = []
        for text in NOISE_PASTES[:2]:
            pinnwand.paste(text)
        reposts.append(pinnwand.paste(_repost(people[0:40], "csv", 1, english=True, shuffle_columns=True)))
        pinnwand.paste(NOISE_PASTES[2])
        reposts.append(pinnwand.paste(_repost(people[100:112], "kv", 2, spaced=True)))
        pinnwand.paste(NOISE_PASTES[3])
        forum_url = phpbb_forum(site, [
            ("Recette du far breton", [("mamie29", "<p>250 g de farine, 200 g de sucre, 4 oeufs, 1 l de lait.</p>"),
                                       ("breizh", "<p>avec des pruneaux sinon rien</p>")]),
            ("Base labos Bretagne 2021", [
                ("anon", "<p>quelqu'un a la suite ? le premier lien est mort</p>"),
                ("dumper", "voici un extrait :<br />" + code_block(_repost(people[200:230], "csv", 3, typos=0.05))),
                ("anon", "<p>merci</p>")]),
            ("Problème de proxy", [("n00b", "<p>mon proxy renvoie 407, une idée ?</p>")]),
        ])
        click.echo(f"   {len(NOISE_PASTES)} ordinary pastes and 2 reposts (40 and 12 patients) on the pastebin; "
                   "3 forum topics, one with 30 patients in a [code] block")

        _step(4, "Configuring sources, receivers and lab contacts; running the real daemon")
        private_dir(home)
        cfg = write_private(home / "dumpwatch.toml",  # it names the webhook URL and the secret file: 0600
                            _config(f"{pinnwand.base}/dw/recent.json", forum_url, hook.url, secret_file, smtp.port))
        click.echo(f"   wrote {cfg}")
        click.echo(f"   $ dumpwatch --home {home} daemon")
        log_path = work / "daemon.log"
        with open(private_file(log_path), "wb") as log:
            daemon_proc = subprocess.Popen([sys.executable, "-m", "dumpwatch.cli", "--home", str(home), "daemon"],
                                           cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _wait_for_pipeline(home, daemon_proc, log_path, timeout)
        click.echo("   both sources crawled, every alert delivered; stopping the daemon (SIGTERM)")
        daemon_proc.send_signal(signal.SIGTERM)
        code = daemon_proc.wait(timeout=60)
        daemon_proc = None
        click.echo(f"   daemon stopped cleanly (exit {code}); its log: {log_path}")

        _step(5, "What was found (dumpwatch findings list)")
        dw("findings", "list")
        _step(6, "What the receivers got")
        received = work / "received"
        received.mkdir(exist_ok=True)
        _show_received(hook, smtp, received)
        _step(7, "dumpwatch status")
        dw("status")
    finally:
        if daemon_proc is not None and daemon_proc.poll() is None:
            daemon_proc.send_signal(signal.SIGTERM)
            try:
                daemon_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon_proc.kill()
        for server in reversed(servers):
            server.stop()
    click.secho(f"\nDone in {time.monotonic() - started:.0f} s; every server the demo started is stopped.", bold=True)
    click.secho("Where to look next:", bold=True)
    for cmd, why in ((f"dumpwatch --home {home} findings show 1", "one finding and the alerts it caused"),
                     (f"dumpwatch --home {home} alerts list", "the outbox: messages and their delivery"),
                     (f"dumpwatch --home {home} alerts show 1 --draft", "an Article 33 notification draft"),
                     (f"ls {work}/received/", "the webhook bodies and emails as received"),
                     (f"cat {home}/dumpwatch.toml", "the configuration the demo wrote"),
                     ("deploy/dumpwatch.example.toml, deploy/dumpwatch.service", "to run it for real")):
        click.echo(f"  {cmd}\n      # {why}")
    click.echo("  README.md: enrolling, sources, receivers and routes, the daemon, the privacy model")


def _wait_for_pipeline(home: Path, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Until both sources have a finished run and the outbox has nothing left to send (bounded)."""
    from alerts import delivery, grouping
    from crawler import health
    from dumpwatch.store import open_db

    deadline = time.monotonic() + timeout
    shown: set[str] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the daemon exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        db = open_db(home / "dumpwatch.db")
        try:
            runs = [(r.source, r.pages, r.documents, r.findings, r.ok) for r in health.finished_runs(db)]
            waiting = grouping.pending_alerts(db) + delivery.messages_waiting(db)
        finally:
            db.close()
        for source, pages, documents, findings, ok in runs:
            if source not in shown:
                shown.add(source)
                click.echo(f"   crawled {source}: {pages} pages, {documents} documents scanned, {findings} findings"
                           + ("" if ok else " (FAILED: see the daemon log)"))
        if {"pastes", "forum"} <= shown and waiting == 0:
            return
        time.sleep(0.3)
    raise click.ClickException(f"the pipeline did not finish within {timeout:.0f} s; daemon log: {log_path}")


def _show_received(hook: Any, smtp: Any, out: Path) -> None:
    for i, h in enumerate(hook.hooks, 1):
        data = h.json()
        (out / f"webhook-{i}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
        a33 = data.get("article33") or {}
        click.echo(f"   webhook → cnil: {data['kind']} {data['severity']}, signature {'valid' if h.signature_ok else 'INVALID'}"
                   f", {len(data['new_alerts'])} new copies, ~{a33.get('people_approx', 0)} people, "
                   f"categories {', '.join(a33.get('categories', []))}")
        for a in data["alerts"]:
            if a["alert_key"] in data["new_alerts"]:
                click.echo(f"       {a['url']}  {a['records']['matched']} records, sample {', '.join(a.get('sample', [])[:2])}")
    for i, m in enumerate(smtp.mails, 1):
        (out / f"mail-{i}.eml").write_bytes(m.content)
        msg = message_from_bytes(m.content, policy=email_policy)
        click.echo(f"   email → {', '.join(m.rcpt_tos)}: {msg['Subject']}")
    click.echo(f"   {len(hook.hooks)} webhook messages and {len(smtp.mails)} emails saved in {out}")

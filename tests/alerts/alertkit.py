"""Helpers of the alerts tests (fixtures in conftest.py): real receivers on 127.0.0.1: an SMTP server (aiosmtpd) and an HTTP webhook
receiver that verifies signatures; plus synthetic findings built from dumpwatch.synth people."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


from alerts.channels.webhook import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from matchers.finding import Finding

SECRET = "test-signing-secret-0123456789abcdef"
LEAK = "labos-2021"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- SMTP ------------------------------------------------------------------------------------------

@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class _Recorder:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content
                                                                                 or envelope.content)))
        return "250 OK"


@dataclass
class SMTPServer:
    port: int
    recorder: _Recorder
    controller: Any

    @property
    def mails(self) -> list[Mail]:
        return self.recorder.mails


def start_smtp(**kwargs: Any) -> SMTPServer:
    from aiosmtpd.controller import Controller

    recorder = _Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return SMTPServer(port=port, recorder=recorder, controller=controller)


# -- webhook receiver ------------------------------------------------------------------------------

@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def key(self) -> str:
        return self.headers.get(KEY_HEADER.lower(), "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server in a thread; it checks each signature with :func:`verify` (what a user does)."""

    secret: bytes = SECRET.encode()
    status: int = 200
    port: int = field(default_factory=free_port)
    hooks: list[Hook] = field(default_factory=list)
    slow: bool = False  # hold each request until ``release`` is set (a sender can be killed meanwhile)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    ssl_context: Any = None  # an ssl.SSLContext: serve HTTPS
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}/hook"

    def keys(self) -> Counter:
        return Counter(h.key for h in self.hooks)

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verify(receiver.secret, headers.get(TIMESTAMP_HEADER.lower(), ""), body,
                            headers.get(SIGNATURE_HEADER.lower(), ""))
                receiver.hooks.append(Hook(self.path, headers, body, ok))
                receiver.arrived.set()
                if receiver.slow:
                    receiver.release.wait(60)
                status = receiver.status if ok else 401
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"ok": %s}' % (b"true" if status < 300 else b"false"))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender was killed while we held its request

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.ssl_context is not None:
            self.server.socket = self.ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# -- configuration and findings --------------------------------------------------------------------

def base_config(*, cnil_url: str, secret_file: Path, smtp_port: int, labs: list[str],
                ops_url: str | None = None, alerts: dict | None = None, extra: dict | None = None) -> dict:
    """CNIL by webhook, operators by webhook, one email receiver per lab (contacts table)."""
    receivers = [
        {"name": "cnil", "type": "webhook", "url": cnil_url, "secret_file": str(secret_file)},
        {"name": "ops", "type": "webhook", "url": ops_url or cnil_url.replace("/hook", "/ops"),
         "secret_file": str(secret_file)},
    ]
    contacts = {}
    for i, lab in enumerate(labs):
        receivers.append({"name": f"lab{i}", "type": "email", "to": [f"dpo{i}@lab{i}.example"],
                          "from": "dumpwatch@monitor.example", "smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                          "security": "none", "timeout": 5})
        contacts[lab] = f"lab{i}"
    cfg = {"alerts": {"authority_receiver": "cnil", "operators_receiver": "ops", "group_wait": 0,
                      "group_interval": "5m", "repeat_interval": 0, **(alerts or {})},
           "receivers": receivers, "contacts": contacts, "_path": "test.toml"}
    cfg.update(extra or {})
    return cfg


def redacted(person: dict[str, str]) -> list[str]:
    nir, mail = person["nir"], person["email"]
    return [f"{nir[0]} {nir[1:3]} {nir[3:5]} ** *** *** **", f"{mail[0]}***@{mail.split('@')[1]}"]


def make_finding(people: list[dict[str, str]], *, url: str, leak: str = LEAK, verdict: str = "repost",
                 sha: str | None = None, categories: tuple[str, ...] = ("identity", "contact", "nir", "health"),
                 sample_people: int = 2) -> Finding:
    """A Finding as the engine reports it for a copy holding ``people`` (redacted sample only)."""
    labs = Counter(p["laboratoire"] for p in people)
    import hashlib

    sample: list[str] = []
    for p in people[:sample_people]:
        sample += redacted(p)
    return Finding(
        input=url, verdict=verdict, leak=leak if verdict == "repost" else None,
        matched_records=len(people) if verdict == "repost" else 0, records_seen=len(people) + 3,
        schema_score=0.9, identifiers={"nir": len(people), "email": len(people), "phone": len(people)},
        labs=dict(labs) if verdict == "repost" else {}, categories=categories,
        sha256=sha or hashlib.sha256(url.encode()).hexdigest(), size=1000 + len(people), sample=tuple(sample),
        leaks={leak: len(people)} if verdict == "repost" else {},
    )


def identifiers_of(people: list[dict[str, str]]) -> list[str]:
    """Every cleartext form of the people's identifiers that must never appear anywhere."""
    from dumpwatch import synth

    out = []
    for p in people:
        digits = "".join(c for c in p["telephone"] if c.isdigit())
        out += [p["nir"], synth.spaced_nir(p["nir"]), p["email"], digits,
                " ".join(digits[i:i + 2] for i in range(0, 10, 2)), f"{p['prenom']} {p['nom']}",
                f"{p['nom']} {p['prenom']}"]
        if digits.startswith(("06", "07")):
            out.append(synth.intl_phone(digits))
    return out


def assert_no_identifier(blob: bytes, people: list[dict[str, str]], where: str) -> None:
    text = blob.decode("utf-8", errors="replace")
    lowered = text.lower()
    for ident in identifiers_of(people):
        assert ident.lower() not in lowered, f"cleartext identifier found in {where}"


class Capture:
    """A sender that keeps what it is given (the channels themselves are tested with real servers)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object, str]] = []

    def __call__(self, receiver, message, key):
        self.sent.append((receiver.name, message, key))
        return "captured"

    def to(self, name: str) -> list:
        return [m for r, m, _ in self.sent if r == name]

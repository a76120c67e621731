"""Local stand-ins for the outside world, on 127.0.0.1 only: for `dumpwatch demo` and the tests.

- :func:`start_pinnwand`: a real pastebin (pinnwand, PyPI) in a child process, bound to loopback,
  plus the listings real paste sites offer (pinnwand has none): ``/dw/recent.json`` (a scraping API
  shaped like Pastebin's) and ``/dw/archive`` (an HTML archive page);
- :class:`SiteServer`: a static web server (stdlib, threaded) serving routes registered in memory,
  with delays and response sequences for tests; :func:`phpbb_forum` fills one with a small forum in
  the structure of phpBB's default theme;
- :func:`start_smtp`: a real SMTP server (aiosmtpd) in a thread, keeping what it receives;
- :class:`WebhookReceiver`: an HTTP server that checks each webhook signature, as a user's would.

pinnwand and aiosmtpd come with the ``demo`` (and ``test``) extra. Every server listens on a free
port of 127.0.0.1 (a :class:`SiteServer` may take another loopback address, 127.0.0.2 …, to stand
for another domain) and is stopped by its ``stop()``.
"""

from __future__ import annotations

import asyncio
import html
import json
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- pinnwand --------------------------------------------------------------------------------------

PINNWAND_CONFIG = """database_uri = "sqlite:///{db}"
paste_size = 1048576
spamscore = 101
expiries = {{ "1day" = 86400 }}
[ratelimit.read]
capacity = 100000
consume = 1
refill = 100000
[ratelimit.create]
capacity = 100000
consume = 1
refill = 100000
[ratelimit.delete]
capacity = 100000
consume = 1
refill = 100000
"""


@dataclass
class Pinnwand:
    """A running pinnwand: its base URL, and how to paste into it."""

    base: str
    proc: subprocess.Popen
    log_path: Path

    def paste(self, content: str, name: str = "paste.txt") -> str:
        """Create a paste through pinnwand's API; return the raw URL of its file."""
        r = httpx.post(f"{self.base}/api/v1/paste", json={
            "expiry": "1day", "files": [{"name": name, "lexer": "text", "content": content}]}, timeout=10)
        r.raise_for_status()
        slug = r.json()["link"].rstrip("/").rsplit("/", 1)[-1]
        page = httpx.get(f"{self.base}/{slug}", timeout=10).text
        fslug = page.split('class="file-show', 1)[0].rsplit('id="', 1)[1].split('"', 1)[0]
        return f"{self.base}/raw/{fslug}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def start_pinnwand(workdir: Path, port: int | None = None, *, wait: float = 15.0) -> Pinnwand:
    """Start pinnwand on 127.0.0.1 (its database and log in ``workdir``); return once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "pinnwand.toml"
    cfg.write_text(PINNWAND_CONFIG.format(db=workdir / "pinnwand.db"))
    port = port or free_port()
    log_path = workdir / "pinnwand.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dumpwatch.devkit.localsites", "pinnwand", str(cfg), str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:  # bounded
        try:
            if httpx.get(f"{base}/dw/recent.json", timeout=1).status_code == 200:
                return Pinnwand(base, proc, log_path)
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"pinnwand exited: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"pinnwand did not answer within {wait:.0f} s (log: {log_path})")


def serve_pinnwand(config_path: str, port: int) -> None:
    """The child process: pinnwand's app on 127.0.0.1 only, with the two listings added."""
    import pinnwand.configuration as configuration

    with open(config_path, "rb") as fh:
        for key, value in tomllib.load(fh).items():
            setattr(configuration, key, value)

    import tornado.routing
    import tornado.web
    from pinnwand import database
    from pinnwand.http import make_application

    database.Base.metadata.create_all(database._engine)

    def newest(limit: int) -> list[tuple]:
        with database.session() as session:
            pastes = session.query(database.Paste).order_by(database.Paste.id.desc()).limit(limit).all()
            return [(p.slug, p.pub_date.isoformat() if p.pub_date else "",
                     [(f.slug, len((f.raw or "").encode("utf-8"))) for f in p.files]) for p in pastes]

    class Recent(tornado.web.RequestHandler):
        def get(self) -> None:
            base = f"http://{self.request.host}"
            items = []
            for slug, date, files in newest(int(self.get_argument("limit", "100"))):
                for fslug, size in files:
                    items.append({"key": fslug, "date": date, "size": size, "title": "",
                                  "scrape_url": f"{base}/raw/{fslug}", "full_url": f"{base}/{slug}"})
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(items))

    class Archive(tornado.web.RequestHandler):
        def get(self) -> None:
            rows = "".join(f'<tr><td><a href="/{slug}">paste {slug}</a></td><td>{date}</td></tr>'
                           for slug, date, _ in newest(int(self.get_argument("limit", "100"))))
            self.write(f"<html><body><h1>Pastes Archive</h1><table class=\"maintable\"><tr><th>Name</th>"
                       f"<th>Posted</th></tr>{rows}</table></body></html>")

    app = make_application(False)
    for pattern, handler in ((r"/dw/recent\.json", Recent), (r"/dw/archive", Archive)):
        app.wildcard_router.rules.insert(0, tornado.routing.Rule(tornado.routing.PathMatches(pattern), handler))

    async def serve() -> None:
        app.listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- a static site server --------------------------------------------------------------------------

@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    delay: float = 0.0
    then: list["Route"] = field(default_factory=list)  # served on later requests, in turn (last repeats)


class SiteServer:
    """Routes map a path with its query (``/viewforum.php?f=2``, or ``/path?*`` for any query) to a
    :class:`Route`. Every request is logged with its time, so tests can check what was fetched."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[float, str, str]] = []  # (time, path, user agent)
        self.headers: list[dict[str, str]] = []
        self.proxied: list[str] = []
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("http://"):  # asked as a proxy: serve our own page, note it
                    self.path = "/" + self.path.split("/", 3)[3]
                    with server._lock:
                        server.proxied.append(self.path)
                with server._lock:
                    server.log.append((time.monotonic(), self.path, self.headers.get("User-Agent", "")))
                    server.headers.append(dict(self.headers))
                    route = server.routes.get(self.path) or server.routes.get(self.path.split("?", 1)[0] + "?*")
                    if route is not None and route.then:
                        n = server._served.get(self.path, 0)
                        server._served[self.path] = n + 1
                        seq = [route, *route.then]
                        route = seq[min(n, len(seq) - 1)]
                if route is None:
                    route = Route(b"<html><body>not found</body></html>", status=404)
                if route.delay:
                    time.sleep(min(route.delay, 5.0))
                try:
                    self.send_response(route.status)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up on a slow page

        if not host.startswith("127."):
            raise ValueError(f"a local site listens on the loopback (127/8) only, not {host}")
        self.httpd = Server((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "SiteServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, body: bytes | str = b"", **kw: Any) -> Route:
        route = Route(body.encode("utf-8") if isinstance(body, str) else body, **kw)
        self.routes[path] = route
        return route

    def hits(self, path: str) -> list[float]:
        with self._lock:
            return [t for t, p, _ in self.log if p == path]

    def paths(self) -> list[str]:
        with self._lock:
            return [p for _, p, _ in self.log]

    def clear_log(self) -> None:
        """Forget the requests seen, and start every sequence of responses (``then``) again."""
        with self._lock:
            self.log.clear()
            self.headers.clear()
            self.proxied.clear()
            self._served.clear()


_PHPBB_PAGE = """<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8" /><title>{title} - Forum</title></head>
<body id="phpbb" class="section-{section}"><div id="wrap" class="wrap"><div id="page-body" class="page-body">
<h2>{title}</h2><div class="action-bar bar-top"><div class="pagination"><ul></ul></div></div>
{body}
</div><div class="copyright">Powered by phpBB® Forum Software © phpBB Limited</div></div></body></html>"""

_PHPBB_ROW = """<li class="row bg1"><dl class="row-item topic_read"><dt><div class="list-inner">
<a href="./viewtopic.php?t={tid}" class="topictitle">{title}</a></div></dt>
<dd class="posts">{replies} <dfn>Réponses</dfn></dd><dd class="lastpost"><span>par anon
<a href="./viewtopic.php?p={last}#p{last}">&rarr;</a></span></dd></dl></li>"""

_PHPBB_POST = """<div id="p{pid}" class="post has-profile bg2"><div class="inner">
<dl class="postprofile"><dt><a class="username">{author}</a></dt></dl>
<div class="postbody"><div id="post_content{pid}"><h3><a href="./viewtopic.php?p={pid}#p{pid}">Re: {title}</a></h3>
<div class="content">{content}</div></div></div></div></div><hr class="divider" />"""


def phpbb_forum(server: SiteServer, topics: list[tuple[str, list[tuple[str, str]]]], prefix: str = "/forum") -> str:
    """Serve a one-board forum in phpBB's default-theme structure: ``topics`` is a list of
    ``(title, [(author, post HTML), ...])``. Returns the board URL (a ``forum`` source with
    ``preset = "phpbb"`` crawls it)."""
    rows = []
    pid = 100
    for tid, (title, posts) in enumerate(topics, start=1):
        body = []
        for author, content in posts:
            pid += 1
            body.append(_PHPBB_POST.format(pid=pid, author=html.escape(author), title=html.escape(title),
                                           content=content))
        server.add(f"{prefix}/viewtopic.php?t={tid}", _PHPBB_PAGE.format(
            title=html.escape(title), section="viewtopic", body="".join(body)))
        rows.append(_PHPBB_ROW.format(tid=tid, title=html.escape(title), replies=len(posts) - 1, last=pid))
    board = f"{prefix}/viewforum.php?f=2"
    server.add(board, _PHPBB_PAGE.format(title="Bases de données", section="viewforum", body=(
        '<div class="forumbg"><ul class="topiclist topics">' + "".join(rows) + "</ul></div>")))
    return server.base + board


def code_block(text: str) -> str:
    """How phpBB renders a [code] block."""
    return f'<div class="codebox"><p>Code : </p><pre><code>{html.escape(text, quote=False)}</code></pre></div>'


# -- SMTP ------------------------------------------------------------------------------------------

@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class _Recorder:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos),
                               bytes(envelope.original_content or envelope.content)))
        return "250 OK"


@dataclass
class SMTPServer:
    port: int
    recorder: _Recorder
    controller: Any

    @property
    def mails(self) -> list[Mail]:
        return self.recorder.mails

    def stop(self) -> None:
        self.controller.stop()


def start_smtp(**kwargs: Any) -> SMTPServer:
    """A real SMTP server (aiosmtpd) on a free port of 127.0.0.1, in a thread."""
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
        from alerts.channels.webhook import KEY_HEADER

        return self.headers.get(KEY_HEADER.lower(), "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server in a thread; it checks each signature with the receiver-side ``verify``."""

    secret: bytes
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
        from alerts.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

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
                    pass

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


if __name__ == "__main__":  # python -m dumpwatch.devkit.localsites pinnwand CONFIG.toml PORT
    if len(sys.argv) != 4 or sys.argv[1] != "pinnwand":
        sys.exit("usage: python -m dumpwatch.devkit.localsites pinnwand CONFIG.toml PORT")
    serve_pinnwand(sys.argv[2], int(sys.argv[3]))

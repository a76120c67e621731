"""A local web server (127.0.0.1, stdlib, threaded) serving saved page structures and test behaviours.

Routes map a path with its query string (``/phpbb/viewforum.php?f=2``, or ``/path?*`` for any query)
to a :class:`Route`: status,
headers, body, an optional delay (for timeouts) and an optional list of responses served in turn
(``then``: e.g. a 429 with Retry-After, then the page). Every request is logged with its time so
tests can check what was fetched, how often and when.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template

SITES = Path(__file__).parent / "sites"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    delay: float = 0.0
    then: list["Route"] = field(default_factory=list)  # served on later requests, in turn (last repeats)


def template(relpath: str, **values: str) -> bytes:
    """A saved page structure under sites/, with ``$name`` placeholders filled in."""
    text = (SITES / relpath).read_text(encoding="utf-8")
    return Template(text).substitute(values).encode("utf-8")


class SiteServer:
    def __init__(self) -> None:
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

            def do_GET(self) -> None:
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
                pass  # a client that gave up on a slow page: expected in these tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "SiteServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, body: bytes | str = b"", **kw: object) -> Route:
        route = Route(body.encode("utf-8") if isinstance(body, str) else body, **kw)  # type: ignore[arg-type]
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

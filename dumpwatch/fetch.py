"""Fetch one URL for ``dumpwatch scan URL``: under the network policy, within a total time and a size.

- every hop is checked: the host is resolved, every address it has is checked by the
  :class:`~dumpwatch.netpolicy.NetworkPolicy`, and the connection goes to an address that was
  checked (the resolution and the connection are one step: no second DNS answer in between);
- redirects (301, 302, 303, 307, 308) are followed by hand, at most ``max_redirects``, each to an
  http(s) URL and each checked as the first;
- ``max_time`` bounds the whole download, from the first connection to the last byte, whatever
  the server does (every read waits at most the time left: a server sending one byte a second is
  stopped); past it the input is unread (verdict ``error``) with the reason;
- ``max_bytes`` bounds the body: past it the download stops, and the first part is scanned and
  reported incomplete (``[limits] max_bytes``, or ``scan --max-size``);
- ``timeout`` is the wait for a server to connect, or between two reads.

The body is spooled to a temporary file (in memory up to 16 MiB). The connection is direct: proxy
environment variables are not used (a proxy would resolve and connect out of the policy's sight).
Built on httpcore (httpx's transport), whose network backend is the place where it connects.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import tempfile
import time
import urllib.parse
from typing import Any

import httpcore

from dumpwatch.errors import DumpwatchError
from dumpwatch.netpolicy import NetworkPolicy

USER_AGENT = "dumpwatch (leak monitor)"
REDIRECTS = (301, 302, 303, 307, 308)
SPOOL_IN_MEMORY = 16 * 1024 * 1024


class Refused(DumpwatchError):
    """The network policy refused an address (the message says which, and how to allow it)."""


class OverTime(DumpwatchError):
    """The total time limit of a download passed."""

    @staticmethod
    def message(max_time: float) -> str:
        return f"took longer than --max-time={max_time:g} s"


@dataclasses.dataclass
class Download:
    """What :func:`fetch` got: the bytes (possibly only a first part) and what went wrong."""

    body: Any = None  # a file positioned at 0 (maybe empty), or None when nothing can be scanned
    error: str | None = None
    url: str = ""  # the URL the body came from (after redirects)


class _Deadline:
    def __init__(self, max_time: float):
        self.max_time = max_time
        self.end = time.monotonic() + max_time

    def cap(self, timeout: float | None) -> float:
        """``timeout`` capped by the time left; :class:`OverTime` once none is left."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise OverTime(OverTime.message(self.max_time))
        return left if timeout is None else min(timeout, left)

    def passed(self) -> bool:
        return time.monotonic() >= self.end


class _Stream(httpcore.NetworkStream):
    """A socket stream whose every operation waits at most the time left."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline):
        self.inner, self.deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self.deadline.cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self.deadline.cap(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, self.deadline.cap(timeout)), self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    """Resolve, check every address with the policy, connect to a checked one, within the deadline."""

    def __init__(self, policy: NetworkPolicy, deadline: _Deadline):
        self.policy, self.deadline = policy, deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        reason = self.policy.check_addresses(host, addresses)
        if reason:
            raise Refused(reason)
        last: Exception | None = None
        for address in addresses:
            try:
                stream = super().connect_tcp(address, port, self.deadline.cap(timeout), local_address,
                                             socket_options)
            except httpcore.ConnectError as exc:  # the next address (IPv6 then IPv4, say)
                last = exc
                continue
            return _Stream(stream, self.deadline)
        assert last is not None
        raise last


def ssl_context() -> ssl.SSLContext:
    """Certificates checked as httpx checks them: ``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's."""
    cafile, capath = os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def check_url(url: str) -> str | None:
    """Why ``url`` cannot be fetched as written, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"malformed URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"not an http:// or https:// URL ({parts.scheme}:)"
    if not host:
        return "malformed URL (no host name)"
    if any(c.isspace() for c in parts.netloc):
        return "malformed URL (a space in the host name)"
    if port is not None and not 0 < port < 65536:
        return f"malformed URL (port {port})"
    return None


def network_reason(exc: BaseException, timeout: float) -> str:
    """A short cause for a failed download, in the words a user searches for."""
    if isinstance(exc, httpcore.TimeoutException):
        return f"no answer within {timeout:g} s ({type(exc).__name__}; raise --timeout to wait longer)"
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 10:  # httpcore wraps the socket error
        if isinstance(cause, socket.gaierror):
            return f"host not found (DNS: {cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (nothing listens on that port)"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    if isinstance(exc, httpcore.ConnectError):
        return f"cannot connect ({exc})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def fetch(url: str, *, policy: NetworkPolicy, max_bytes: int, max_time: float, timeout: float,
          max_redirects: int = 5, size_limit: str = "limits.max_bytes") -> Download:
    """Download ``url`` into a spooled temporary file (see the module docstring).

    An error before the first byte of the body leaves ``body`` None (the input is unreadable), as
    does the total time limit; an error after the first byte (connection cut, too large) keeps what
    was received, so the part read is still scanned, and reported incomplete.
    """
    bad = check_url(url)
    if bad:
        return Download(error=f"{url}: {bad}", url=url)
    deadline = _Deadline(max_time)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    error, n, current, hops = None, 0, url, []
    ext = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
    try:
        with httpcore.ConnectionPool(ssl_context=ssl_context(), network_backend=_Backend(policy, deadline),
                                     retries=0) as pool:
            while True:
                with pool.stream("GET", current, headers=[(b"User-Agent", USER_AGENT.encode()),
                                                          (b"Accept-Encoding", b"identity")],
                                 extensions=ext) as resp:
                    location = _header(resp, b"Location")
                    if resp.status in REDIRECTS and location is not None:
                        target = urllib.parse.urljoin(current, location).split("#", 1)[0]
                        hops.append(target)
                        if len(hops) > max_redirects:
                            error = f"{url}: more than {max_redirects} redirects (last to {target[:200]})"
                        elif (bad := check_url(target)) is not None:
                            error = f"{url}: redirected to {target[:200]}: {bad}"
                        else:
                            current = target
                            continue
                    elif resp.status >= 400:
                        phrase = resp.extensions.get("reason_phrase", b"").decode("latin-1", "replace")
                        error = f"{url}: HTTP {resp.status} {phrase}".rstrip()
                    else:
                        for chunk in resp.iter_stream():
                            room = max_bytes - n
                            spool.write(chunk[:room])
                            n += min(len(chunk), room)
                            if len(chunk) > room:
                                error = (f"{url}: larger than {size_limit}={max_bytes} bytes; only the first "
                                         f"{n} bytes were scanned (raise {size_limit} to read it all)")
                                break
                            deadline.cap(None)  # the time limit, even for a server that never pauses
                    break
    except Refused as exc:
        where = f"redirected to {current[:200]}: " if hops else ""
        error, n = f"{url}: {where}{exc}", 0
    except OverTime as exc:
        error, n = f"{url}: {exc} (after {n} bytes; stopped, nothing scanned)", 0
    except httpcore.TimeoutException as exc:
        if deadline.passed():
            error, n = f"{url}: {OverTime.message(max_time)} (after {n} bytes; stopped, nothing scanned)", 0
        else:
            error = _cut(url, n, network_reason(exc, timeout))
    except (httpcore.ProtocolError, httpcore.NetworkError, httpcore.UnsupportedProtocol) as exc:
        error = _cut(url, n, network_reason(exc, timeout))
    if error and not n:
        spool.close()
        return Download(error=error, url=current)
    spool.seek(0)  # an empty body is scanned like an empty file: its verdict says it is empty
    return Download(spool, error, current)


def _cut(url: str, n: int, reason: str) -> str:
    return f"{url}: download cut off after {n} bytes ({reason}); the rest was not scanned" if n else f"{url}: {reason}"


def _header(resp: httpcore.Response, name: bytes) -> str | None:
    for key, value in resp.headers:
        if key.lower() == name.lower():
            return value.decode("latin-1")
    return None

"""A real ``redis-server`` (the Debian package; Makefile ``DEBS``) on 127.0.0.1, for the distributed mode's tests.

Started on a free port, in its own temporary directory, persistence off (``--save ""
--appendonly no``) unless a test asks for AOF; ready once it answers PING; stopped (SIGTERM, then
SIGKILL) by :meth:`RedisServer.stop`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from dumpwatch.devkit.localsites import free_port

READY_TIMEOUT = 20.0


class RedisServer:
    def __init__(self, workdir: Path, *, port: int | None = None, appendonly: bool = False,
                 password: str | None = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed: `make test` installs it (Makefile DEBS), "
                               "or apt-get install -y redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir),
               "--daemonize", "no", "--logfile", str(self.workdir / "redis.log")]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its log: redis.log
        self._wait_ready()
        return self

    def client(self, **kw):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, decode_responses=True, **kw)

    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = self.workdir / "redis.log"
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: "
                                   f"{log.read_text()[-1000:] if log.exists() else ''}")
            try:
                if self.client(socket_connect_timeout=1).ping():
                    return
            except redis.exceptions.ConnectionError:
                pass
            except redis.exceptions.AuthenticationError:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING in {READY_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

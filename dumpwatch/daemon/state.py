"""What the daemon leaves in its home: the lock (one daemon per home) and the state file.

``HOME/daemon.lock`` is held (``flock``) by the running daemon: :func:`acquire_lock` takes it or
says which daemon has it, :func:`is_running` asks without taking it. ``HOME/daemon.json`` (jobs, next
runs, counters, running crawls) is written atomically by the daemon's own thread
(:func:`write_state`) and read by ``dumpwatch status`` (:func:`read_state`), while the daemon runs
and after it stopped. :class:`JobStats` are the counters of one job in that file.
"""

from __future__ import annotations

import fcntl
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dumpwatch.errors import DumpwatchError
from dumpwatch.filemodes import write_private
from dumpwatch.home import Home

STATE_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"


@dataclass
class JobStats:
    runs: int = 0
    errors: int = 0
    missed: int = 0
    last_run: str | None = None
    last_error: str | None = None


def state_path(home: Home) -> Path:
    return home.root / STATE_FILE


def read_state(home: Home) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(home).read_text())
    except (OSError, ValueError):
        return None


def write_state(home: Home, state: dict[str, Any]) -> None:
    """Replace ``HOME/daemon.json`` atomically (a reader sees the previous file or this one)."""
    path = state_path(home)
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    write_private(tmp, json.dumps(state, indent=1, sort_keys=True, default=str))  # 0600, whatever the umask
    tmp.replace(path)


def is_running(home: Home) -> bool:
    """True when a daemon holds this home's lock."""
    path = home.root / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def acquire_lock(home: Home) -> IO[str]:
    """Take this home's daemon lock (held until :func:`release_lock`); an error if a daemon has it."""
    home.ensure()
    fh = open(home.root / LOCK_FILE, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        state = read_state(home) or {}
        raise DumpwatchError(f"another daemon (pid {state.get('pid', '?')}) already runs on {home.root}; "
                             "stop it first (one daemon per home)") from None
    return fh


def release_lock(fh: IO[str]) -> None:
    fcntl.flock(fh, fcntl.LOCK_UN)
    fh.close()

"""Private files: what dumpwatch keeps is readable by its own user only, whatever the umask.

The home holds the database (repost URLs, evidence, the outbox), the configuration (receivers, whose
webhook URLs may be credentials), the crawl logs and often the fingerprint key: directories are
created 0700 and files 0600, the mode set explicitly at creation (``os.open`` with the mode, then
``fchmod``/``chmod``, since the umask only ever removes bits and a umask of 022 would leave them
readable by every user of the machine). :func:`tighten` brings an existing path created by an older
version, by hand or under another umask back to that mode, with a warning that says what it was.
It imports nothing of the project (the ground floor).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create the directory ``path`` (and its missing parents) with mode 0700 for itself; an
    existing one looser than that is tightened (:func:`tighten`)."""
    path = Path(path)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        tighten(path)
        return path
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # created in between by another process
            tighten(path)
            return path
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: str | Path) -> Path:
    """Make sure the file ``path`` exists with mode 0600 (created empty if missing; an existing one
    looser than that is tightened), so whatever writes it next (SQLite, a log handler, a child
    process opening it for append) writes into a private file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        tighten(path)
        return path
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def write_private(path: str | Path, text: str) -> Path:
    """Write ``text`` to the file ``path`` (replaced if it exists), mode 0600."""
    path = private_file(path)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def tighten(path: str | Path, mode: int | None = None) -> bool:
    """Remove from ``path`` every permission bit beyond ``mode`` (default 0700 for a directory,
    0600 for a file) and warn that it was looser; ``False`` when nothing had to change. A path that
    does not exist, or a symbolic link, is left alone; a failure to change it is a warning too."""
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        return False
    wanted = mode if mode is not None else (PRIVATE_DIR if stat.S_ISDIR(st.st_mode) else PRIVATE_FILE)
    current = stat.S_IMODE(st.st_mode)
    if not current & ~wanted:
        return False
    try:
        os.chmod(path, current & wanted)
    except OSError as exc:
        log.warning("%s is readable by others (mode %o) and cannot be made private (%s): run chmod %o %s",
                    path, current, exc.strerror, wanted, path)
        return False
    log.warning("%s was readable by others (mode %o): made private (mode %o)", path, current, current & wanted)
    return True

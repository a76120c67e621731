"""Where dumpwatch keeps its state, its secret key and its configuration.

Everything lives under one home directory (``--home DIR``, ``DUMPWATCH_HOME``, or the user's data
directory), except the fingerprint key when it is given by the environment:

    HOME/dumpwatch.db        findings, leaks, outbox (SQLite, no cleartext identifier of a leak)
    HOME/index/LEAK/         keyed fingerprint index of each enrolled leak
    HOME/secret/key          the fingerprint key (mode 0600, directory 0700), never in the database
    HOME/dumpwatch.toml      configuration (sources, receivers, routes), optional; loaded as a
                             read-only Config (dumpwatch.tables), each table checked by its owner
    HOME/logs/               the crawl logs

``DUMPWATCH_KEY`` (64 hex characters) or ``DUMPWATCH_KEY_FILE`` take precedence over the key file,
so the key can live on another volume or in a secret manager.

The home is its user's only (:mod:`dumpwatch.filemodes`): :meth:`Home.ensure` creates it, its index
and logs directories 0700, and tightens what an older version or another umask left looser (the
database and its ``-wal``/``-shm``, the configuration, the logs), with a warning. A key file that
other users can read is a warning at every load; a key readable by its group is not, when that
group is the process's own (``root:dumpwatch 0640`` as deploy/ installs it, for a service running
as group dumpwatch: the service reads it, cannot change it, and nobody else reads it).
"""

from __future__ import annotations

import grp
import logging
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from dumpwatch.errors import ConfigError, SecretKeyError
from dumpwatch.filemodes import private_dir, private_file, tighten
from dumpwatch.tables import Config

log = logging.getLogger(__name__)

KEY_BYTES = 32


def default_home() -> Path:
    env = os.environ.get("DUMPWATCH_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("dumpwatch"))


@dataclass(frozen=True)
class Home:
    """The paths of one dumpwatch home directory."""

    root: Path

    @classmethod
    def resolve(cls, root: str | Path | None = None) -> "Home":
        return cls(Path(root).expanduser() if root else default_home())

    @property
    def db_path(self) -> Path:
        return self.root / "dumpwatch.db"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def key_path(self) -> Path:
        return self.root / "secret" / "key"

    @property
    def config_path(self) -> Path:
        return self.root / "dumpwatch.toml"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def ensure(self) -> "Home":
        """Create the home (0700) and its directories; tighten what is there and looser than private."""
        private_dir(self.root)
        private_dir(self.index_dir)
        for path in (self.db_path, *_sqlite_companions(self.db_path), self.config_path, self.key_path.parent,
                     self.key_path):
            tighten(path)
        if self.logs_dir.is_dir():
            tighten(self.logs_dir)
            for path in self.logs_dir.iterdir():
                tighten(path)
        return self

    def log_file(self, name: str) -> Path:
        """``HOME/logs/NAME``, created private (0600) if missing: a crawl log written by a child process."""
        private_dir(self.logs_dir)
        return private_file(self.logs_dir / name)

    # -- the fingerprint key -------------------------------------------------------------------
    def load_key(self, *, create: bool = False) -> bytes:
        """Return the fingerprint key: from the environment, else from the key file.

        With ``create=True`` a missing key file is made (32 random bytes, mode 0600); otherwise a
        missing key is an error that says how to provide one.
        """
        env_hex = os.environ.get("DUMPWATCH_KEY")
        if env_hex:
            try:
                key = bytes.fromhex(env_hex.strip())
            except ValueError:
                raise SecretKeyError("DUMPWATCH_KEY must be hexadecimal (64 characters for 32 bytes)") from None
            return _checked_key(key, "DUMPWATCH_KEY")
        path = Path(os.environ.get("DUMPWATCH_KEY_FILE") or self.key_path)
        if path.exists():
            _warn_if_shared(path)
            try:
                key = bytes.fromhex(path.read_text().strip())
            except ValueError:
                raise SecretKeyError(f"key file {path} is not hexadecimal: restore it from its backup "
                                     "(the indexes were built with it)") from None
            return _checked_key(key, str(path))
        if not create:
            raise SecretKeyError(
                f"no fingerprint key at {path}: enroll a leak first (it creates one), or set "
                "DUMPWATCH_KEY / DUMPWATCH_KEY_FILE to the key the index was built with"
            )
        private_dir(path.parent)
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex() + "\n")
        log.info("created fingerprint key %s (mode 0600); back it up apart from the database", path)
        return key

    # -- configuration -------------------------------------------------------------------------
    def load_config(self, path: str | Path | None = None) -> Config:
        """Read the TOML configuration (``path``, else HOME/dumpwatch.toml, else empty): a read-only
        :class:`~dumpwatch.tables.Config` that knows its file; its tables are parsed where they enter."""
        cfg_path = Path(path) if path else self.config_path
        if not cfg_path.exists():
            if path:
                raise ConfigError("configuration file not found", path=cfg_path)
            return Config()
        try:
            with cfg_path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=cfg_path) from None
        return Config(data, path=cfg_path)


def _sqlite_companions(db: Path) -> tuple[Path, Path]:
    return db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")


def _warn_if_shared(path: Path) -> None:
    """Warn when users other than this process's can read the key: its mode gives "others" any
    right, or gives its group any right and that group is not the process's own group."""
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o007 or (mode & 0o070 and st.st_gid != os.getegid()):
        log.warning("key file %s is readable by other users (mode %o, group %s); run: chmod 600 %s, or "
                    "chmod 640 with the service's own group (see deploy/dumpwatch.service)",
                    path, mode, _group_name(st.st_gid), path)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _checked_key(key: bytes, where: str) -> bytes:
    if len(key) < 16:
        raise SecretKeyError(f"{where}: key too short ({len(key)} bytes, at least 16 needed)")
    return key


"""Where dumpwatch keeps its state, its secret key and its configuration.

Everything lives under one home directory (``--home DIR``, ``DUMPWATCH_HOME``, or the user's data
directory), except the fingerprint key when it is given by the environment:

    HOME/dumpwatch.db        findings, leaks, outbox (SQLite, no cleartext identifier of a leak)
    HOME/index/LEAK/         keyed fingerprint index of each enrolled leak
    HOME/secret/key          the fingerprint key (mode 0600, directory 0700), never in the database
    HOME/dumpwatch.toml      configuration (sources, receivers, routes), optional; loaded as a
                             read-only Config (dumpwatch.tables), each table checked by its owner

``DUMPWATCH_KEY`` (64 hex characters) or ``DUMPWATCH_KEY_FILE`` take precedence over the key file,
so the key can live on another volume or in a secret manager.
"""

from __future__ import annotations

import logging
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from dumpwatch.errors import ConfigError, SecretKeyError
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

    def ensure(self) -> "Home":
        self.root.mkdir(parents=True, exist_ok=True)
        self.index_dir.mkdir(exist_ok=True)
        return self

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
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                log.warning("key file %s is readable by others (mode %o); run: chmod 600 %s", path, mode, path)
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
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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


def _checked_key(key: bytes, where: str) -> bytes:
    if len(key) < 16:
        raise SecretKeyError(f"{where}: key too short ({len(key)} bytes, at least 16 needed)")
    return key


"""Where a receiver's credentials come from: the environment or a file, never the configuration.

An SMTP password (``password_env`` / ``password_file``), a webhook signing secret (``secret_env`` /
``secret_file``) and a webhook URL (``url_env`` / ``url_file``: for Slack and Mattermost the URL is
the credential) are read here, at each use, so a rotated secret is picked up by the next delivery.
Errors name the receiver and the key, and never the value. :func:`urls_in_a_shared_file` is the
warning for a chat URL written in a configuration file that every user can read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dumpwatch.errors import ConfigError


def credential(receiver: str, what: str, env: str | None, file: str | None) -> str | None:
    """The value of ``env`` (an environment variable) or of ``file``, stripped; ``None`` when neither is given."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"receiver {receiver!r}: environment variable {env} (its {what}) is not set; "
                              f"export it or use {what}_file", key=f"receivers.{receiver}.{what}_env")
        return value.strip()
    if file:
        p = Path(file).expanduser()
        try:
            return p.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"receiver {receiver!r}: cannot read its {what} file {p} ({exc.strerror}); "
                              f"create it (mode 0600) or use {what}_env", path=p,
                              key=f"receivers.{receiver}.{what}_file") from None
    return None


def webhook_url(receiver: str, env: str | None, file: str | None) -> str:
    """A webhook URL read from ``url_env`` or ``url_file``: one http(s) URL, or an error that does not quote it."""
    value = credential(receiver, "url", env, file) or ""
    if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
        where = f"environment variable {env}" if env else f"file {file}"
        raise ConfigError(f"receiver {receiver!r}: its {where} does not hold one http:// or https:// URL "
                          "(the value is not shown: it is a credential)",
                          key=f"receivers.{receiver}.{'url_env' if env else 'url_file'}")
    return value


def urls_in_a_shared_file(path: str | Path | None, receivers: Iterable[str]) -> list[str]:
    """Warnings for the chat webhooks ``receivers`` whose ``url`` is written in the configuration file
    ``path`` when every user of the machine can read it."""
    if not path:
        return []
    try:
        shared = Path(path).stat().st_mode & 0o004
    except OSError:
        return []
    return [f"{path} [receivers.{name}.url]: this chat webhook's URL is a credential and the file is readable "
            "by every user; move it to url_env or url_file (mode 0600), or chmod o-r the file"
            for name in receivers if shared]

"""The ``[cluster]`` table and the Redis client of the distributed mode.

::

    [cluster]
    redis_url = "rediss://redis.internal:6380/0"   # rediss:// = TLS; redis:// on a private network only
    username = "dumpwatch"                         # an ACL user (optional)
    password_env = "DUMPWATCH_REDIS_PASSWORD"      # or password_file = "/etc/dumpwatch/redis.pass" (0600)
    claim_idle = "5m"                              # findings of a consumer silent this long are taken over
    metrics = "127.0.0.1:9464"                     # Prometheus /metrics (off unless set; loopback unless
                                                   # metrics_public = true)
    index_check = "30s"                            # a worker checks its index against the control node's

The password is never written in the URL nor in the configuration: a URL that holds one is refused
(it would show in ``ps``, the logs and the configuration file). ``--redis URL`` on the command line
replaces ``redis_url`` and keeps the other keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dumpwatch.errors import ConfigError
from dumpwatch.tables import Key, Section, path_of

CLUSTER = Section("cluster", {
    "redis_url": Key("str"),
    "username": Key("str"),
    "password_env": Key("str"),
    "password_file": Key("str"),
    "claim_idle": Key("duration", 300.0, above=0),
    "consumer": Key("str", "control"),
    # crawler/cluster/metrics.py: the Prometheus endpoint, HOST:PORT, off unless set; loopback only
    # unless metrics_public = true (the page has no authentication)
    "metrics": Key("str"),
    "metrics_public": Key("bool", False),
    # crawler/cluster/reload.py: how often a worker checks its index against the control node's
    "index_check": Key("duration", 30.0, above=0),
})

SCHEMES = ("redis", "rediss")


@dataclass(frozen=True)
class ClusterSettings:
    redis_url: str
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    claim_idle: float = 300.0
    consumer: str = "control"
    metrics: tuple[str, int] | None = None  # (host, port) of the Prometheus endpoint
    metrics_public: bool = False
    index_check: float = 30.0

    def password(self) -> str | None:
        """The password from ``password_env`` or ``password_file``, read at each connection (never shown)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"environment variable {self.password_env} (the Redis password) is not set; "
                                  "export it or use password_file", key="cluster.password_env")
            return value.strip()
        if self.password_file:
            p = Path(self.password_file).expanduser()
            try:
                return p.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the Redis password file {p} ({exc.strerror}); create it "
                                  "(mode 0600) or use password_env", path=p, key="cluster.password_file") from None
        return None


def cluster_settings(config: Mapping[str, Any] | None, redis_url: str | None = None) -> ClusterSettings | None:
    """The ``[cluster]`` table with ``redis_url`` replaced by ``--redis``; ``None`` in single-machine mode."""
    path = path_of(config)
    values = CLUSTER.read((config or {}).get("cluster"), path=path)
    url = redis_url or values["redis_url"]
    if not url:
        return None
    check_url(url, path=None if redis_url else path)
    from crawler.cluster.metrics import parse_address

    metrics = values["metrics"] and parse_address(values["metrics"], public=values["metrics_public"], path=path)
    return ClusterSettings(url, values["username"], values["password_env"], values["password_file"],
                           values["claim_idle"], values["consumer"], metrics or None, values["metrics_public"],
                           values["index_check"])


def check_url(url: str, *, path: Any = None) -> None:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ConfigError("must be redis://HOST[:PORT][/DB] or rediss://… (TLS)", path=path, key="cluster.redis_url")
    if parts.password is not None or parts.username:
        raise ConfigError("the URL holds a user or password; put the user in [cluster] username and the "
                          "password in password_env or password_file (the URL shows in logs and ps)",
                          path=path, key="cluster.redis_url")


def client(settings: ClusterSettings, *, timeout: float = 30.0) -> Any:
    """A :class:`redis.Redis` client (TLS with the system's CAs for ``rediss://``), responses as text."""
    import redis

    return redis.Redis.from_url(settings.redis_url, username=settings.username, password=settings.password(),
                                decode_responses=True, socket_connect_timeout=min(10.0, timeout),
                                socket_timeout=timeout, health_check_interval=30)


def scrapy_params(settings: ClusterSettings) -> dict[str, Any]:
    """``REDIS_URL`` and ``REDIS_PARAMS`` for scrapy-redis's connection (the same client options)."""
    return {"REDIS_URL": settings.redis_url,
            "REDIS_PARAMS": {"username": settings.username, "password": settings.password(),
                             "socket_connect_timeout": 10, "socket_timeout": 30, "retry_on_timeout": True,
                             "health_check_interval": 30}}

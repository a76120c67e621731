"""Fixtures of the distributed mode: a real redis-server on 127.0.0.1 (tests/helpers/redissrv.py).

The crawler's fixtures (an enrolled home, the local sites) are reused from tests/crawler/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.helpers.redissrv import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for the session, persistence off; each test gets it emptied (``redis_url``)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def rds(redis_server, redis_url):
    """A client of the emptied server (responses as text)."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def enrolled(enrolled_root):
    """A home with the synthetic leak enrolled (tests/conftest.py): the worker's and the control
    node's homes are copies of it (the same key and index)."""
    return enrolled_root


@pytest.fixture
def homes(enrolled, tmp_path, monkeypatch):
    """Two copies of the enrolled home: the control node's and a worker's."""
    import shutil

    from dumpwatch.home import Home

    for var in ("DUMPWATCH_KEY", "DUMPWATCH_KEY_FILE", "DUMPWATCH_CONFIG", "DUMPWATCH_HOME"):
        monkeypatch.delenv(var, raising=False)
    made = {}
    for name in ("control", "worker", "worker2"):
        shutil.copytree(enrolled, tmp_path / name)
        made[name] = Home.resolve(tmp_path / name)
    return made

"""What goes into Redis is JSON only (never pickle), and how the cluster connects (password from
the environment or a file, never in the URL; rediss:// accepted)."""

from __future__ import annotations

import pickle

import pytest
import scrapy

from crawler.cluster import redis_json
from crawler.cluster.connect import cluster_settings, client
from dumpwatch.errors import ConfigError, ConfigErrors
from tests.helpers.redissrv import RedisServer


class _Spider(scrapy.Spider):
    name = "t"

    def parse(self, response):
        pass

    def on_error(self, failure):
        pass


def test_a_request_round_trips_as_json():
    from scrapy.utils.request import request_from_dict

    spider = _Spider()
    req = scrapy.Request("https://p.example/raw/AB", callback=spider.parse, errback=spider.on_error,
                         method="POST", body=b"\x00\xffq=1", headers={"X-Token": "v"}, cookies={"s": "1"},
                         meta={"dw_seen_key": "https://p.example/raw/AB", "dw_hops": 2}, priority=3)
    text = redis_json.dumps(req.to_dict(spider=spider))
    assert isinstance(text, str) and text.startswith("{")
    back = request_from_dict(redis_json.loads(text.encode()), spider=spider)
    assert (back.url, back.method, back.body, back.priority) == (req.url, "POST", b"\x00\xffq=1", 3)
    assert back.callback == spider.parse and back.errback == spider.on_error
    assert back.headers.get("X-Token") == b"v" and back.meta["dw_hops"] == 2


@pytest.mark.parametrize("bad", [
    pickle.dumps({"url": "https://p.example/"}),                                     # what scrapy-redis writes by default
    b'{"url": "https://p.example/", "_class": "os.system"}',                          # scrapy would import it
    b'{"url": "file:///etc/passwd"}',
    b'{"url": "https://p.example/", "callback": "__init__"}',
    b'{"url": "https://p.example/", "callback": "os.system"}',
    b'["https://p.example/"]',
    b'{"url": "https://p.example/", "meta": "x"}',
])
def test_loads_refuses_anything_but_a_request_dict(bad):
    with pytest.raises(ValueError):
        redis_json.loads(bad)


def test_dumps_refuses_what_is_not_json():
    spider = _Spider()
    with pytest.raises(ValueError, match="not JSON"):
        redis_json.dumps(scrapy.Request("https://p.example/", meta={"obj": object()}).to_dict(spider=spider))
    with pytest.raises(ValueError, match="_class"):
        redis_json.dumps({**scrapy.Request("https://p.example/").to_dict(), "_class": "x.Y"})
    with pytest.raises(ValueError):
        redis_json.dumps(b"pickled")


def test_the_queue_drops_an_entry_that_is_not_a_request(rds, caplog):
    from crawler.cluster.queue import JsonPriorityQueue

    spider = _Spider()
    queue = JsonPriorityQueue(rds, spider, "dumpwatch:requests:t", serializer=pickle)  # pickle is ignored
    queue.push(scrapy.Request("https://p.example/1", callback=spider.parse))
    assert rds.zrange("dumpwatch:requests:t", 0, -1)[0].startswith("{")  # JSON, whatever was asked
    rds.zadd("dumpwatch:requests:t", {pickle.dumps({"url": "https://p.example/2"}).hex(): -10})
    assert queue.pop() is None  # the damaged entry, first by priority: dropped, said
    assert "not a dumpwatch request" in caplog.text
    assert queue.pop().url == "https://p.example/1"


def test_cluster_table_and_urls():
    assert cluster_settings({}) is None  # single-machine mode
    s = cluster_settings({"cluster": {"redis_url": "rediss://redis.internal:6380/0", "username": "dw"}})
    assert s.redis_url.startswith("rediss://") and s.username == "dw" and s.claim_idle == 300.0
    assert cluster_settings({}, "redis://10.0.0.5/0").redis_url == "redis://10.0.0.5/0"
    for url in ("redis://:secret@10.0.0.5/0", "redis://dw:secret@10.0.0.5/0", "http://10.0.0.5/", "10.0.0.5"):
        with pytest.raises(ConfigError) as err:
            cluster_settings({}, url)
        assert "secret" not in str(err.value)
    with pytest.raises(ConfigErrors):
        cluster_settings({"cluster": {"redis_url": "redis://h/0", "pasword_env": "X"}})


def test_password_from_the_environment_or_a_file(tmp_path, monkeypatch):
    server = RedisServer(tmp_path / "redis", password="s3cret-for-tests").start()
    try:
        table = {"redis_url": server.url, "password_env": "DW_TEST_REDIS_PASSWORD"}
        monkeypatch.delenv("DW_TEST_REDIS_PASSWORD", raising=False)
        with pytest.raises(ConfigError, match="DW_TEST_REDIS_PASSWORD"):
            client(cluster_settings({"cluster": table})).ping()
        monkeypatch.setenv("DW_TEST_REDIS_PASSWORD", "s3cret-for-tests")
        assert client(cluster_settings({"cluster": table})).ping()
        secret = tmp_path / "redis.pass"
        secret.write_text("s3cret-for-tests\n")
        assert client(cluster_settings({"cluster": {"redis_url": server.url,
                                                    "password_file": str(secret)}})).ping()
        import redis

        with pytest.raises(redis.exceptions.AuthenticationError):
            client(cluster_settings({"cluster": {"redis_url": server.url}})).ping()
    finally:
        server.stop()


def test_the_daemon_check_reads_the_cluster_table(home):
    from dumpwatch.daemon.check import check_configuration

    (home.root / "dumpwatch.toml").write_text('[cluster]\nredis_url = "redis://127.0.0.1:6399/0"\n')
    checked = check_configuration(home, home.load_config())
    assert checked.cluster.redis_url == "redis://127.0.0.1:6399/0"
    assert check_configuration(home, home.load_config(), "rediss://r.example/1").cluster.redis_url == "rediss://r.example/1"
    assert check_configuration(home, {}).cluster is None
    (home.root / "dumpwatch.toml").write_text('[cluster]\nredis_url = "redis://dw:pw@127.0.0.1/0"\n')
    with pytest.raises(ConfigErrors) as err:
        check_configuration(home, home.load_config())
    assert "[cluster.redis_url]" in str(err.value) and "pw@" not in str(err.value)
    (home.root / "dumpwatch.toml").write_text('[cluster]\nredis_url = "redis://127.0.0.1/0"\nclaim_idel = "1m"\n')
    with pytest.raises(ConfigErrors) as err:
        check_configuration(home, home.load_config())
    assert "[cluster.claim_idel]" in str(err.value) and "did you mean 'claim_idle'" in str(err.value)


def test_daemon_check_says_it_is_a_control_node(home):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli

    run = CliRunner().invoke(cli, ["--home", str(home.root), "daemon", "--check", "--redis", "redis://127.0.0.1:6399/0"])
    assert run.exit_code == 0, run.output
    assert "control node of the workers on redis://127.0.0.1:6399/0" in run.output and "findings" in run.output
    run = CliRunner().invoke(cli, ["--home", str(home.root), "daemon", "--check"])
    assert run.exit_code == 0 and "control node" not in run.output and "findings " not in run.output

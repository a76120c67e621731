"""Configuration of sources: parsed into frozen dataclasses, errors naming the source and the key."""

from __future__ import annotations

import dataclasses

import pytest

from crawler.presets import PRESETS, SELECTOR_KEYS
from crawler.sources import KINDS, load_crawl_config
from dumpwatch.tables import Config, parse_duration, parse_size
from dumpwatch.errors import ConfigError


def load(*sources: dict, crawler: dict | None = None):
    return load_crawl_config(Config({"sources": list(sources), "crawler": crawler or {}}, path="dumpwatch.toml"))


def test_defaults_and_overrides():
    cc = load({"name": "p", "kind": "paste-api", "start_urls": ["https://paste.example/api"], "delay": 3,
               "proxy": "http://127.0.0.1:9080", "headers": {"Accept-Language": "fr"}, "obey_robots": False},
              crawler={"recrawl_age": "2d", "max_download_size": "10MiB", "concurrency": 4})
    src = cc.get("p")
    assert src.allowed_domains == ("paste.example",)
    assert src.recrawl_age == 2 * 86400 and src.max_download_size == 10 * 1024**2 and src.concurrency == 4
    assert src.delay == 3.0 and src.proxy == "http://127.0.0.1:9080" and not src.obey_robots
    assert src.headers["Accept-Language"] == "fr"
    assert src.option("url_field") == "scrape_url"
    with pytest.raises(dataclasses.FrozenInstanceError):
        src.name = "x"  # type: ignore[misc]


def test_presets_complete_and_overridable():
    for name, preset in PRESETS.items():
        assert set(preset) == set(SELECTOR_KEYS), name
    cc = load({"name": "f", "kind": "forum", "preset": "MyBB", "start_urls": ["https://f.example/forumdisplay.php?fid=2"],
               "selectors": {"post_body": "div.msg"}})
    sel = cc.get("f").option("selectors")
    assert sel["post_body"] == "div.msg" and sel["post"] == PRESETS["mybb"]["post"]


def test_telegram_channels_make_start_urls():
    src = load({"name": "t", "kind": "telegram", "channels": ["dumps_fr"]}).get("t")
    assert src.start_urls == ("https://t.me/s/dumps_fr",) and src.allowed_domains == ("t.me",)


@pytest.mark.parametrize("source, key, words", [
    ({"kind": "forum", "start_urls": ["https://x.example/"]}, "sources.s.selectors.topic_links", "preset"),
    ({"kind": "forum", "preset": "vbulletin", "start_urls": ["https://x.example/"]}, "sources.s.preset", "phpbb"),
    ({"kind": "pastes", "start_urls": ["https://x.example/"]}, "sources.s.kind", "paste-archive"),
    ({"kind": "feed"}, "sources.s.start_urls", "at least one"),
    ({"kind": "feed", "start_urls": ["ftp://x.example/"]}, "sources.s.start_urls", "http(s)"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "delay": -1}, "sources.s.delay", ">="),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "interval": "soon"}, "sources.s.interval", "duration"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "proxy": "socks5://127.0.0.1:9050"}, "sources.s.proxy", "HTTP"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "selectors": {}}, "sources.s.selectors", "unknown key"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "enabled": "yes"}, "sources.s.enabled", "true or false"),
    ({"kind": "paste-archive", "start_urls": ["https://x.example/"]}, "sources.s.listing_selector", "listing_regex"),
    ({"kind": "paste-archive", "start_urls": ["https://x.example/"], "listing_regex": "(["}, "sources.s.listing_regex", "regular"),
    ({"kind": "paste-archive", "start_urls": ["https://x.example/"], "listing_selector": "a::attr(href)",
      "raw_url": "https://x.example/raw/"}, "sources.s.raw_url", "{key}"),
    ({"kind": "telegram", "channels": ["no spaces"]}, "sources.s.channels", "channel"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "allowed_domains": ["https://x.example"]},
     "sources.s.allowed_domains", "host names"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "allowed_domains": ["x.example:99999"]},
     "sources.s.allowed_domains", "host:port"),
    ({"kind": "feed", "start_urls": ["https://x.example/"], "allow_private_networks": 1},
     "sources.s.allow_private_networks", "true or false"),
])
def test_errors_name_the_source_and_the_key(source, key, words):
    with pytest.raises(ConfigError) as err:
        load({"name": "s", **source})
    assert err.value.key == key
    assert "dumpwatch.toml" in str(err.value) and f"[{key}]" in str(err.value) and words in str(err.value)


def test_whole_file_errors():
    with pytest.raises(ConfigError, match=r"\[\[sources\]\]"):
        load_crawl_config({"sources": {"name": "x"}})
    with pytest.raises(ConfigError, match="used twice"):
        load({"name": "a", "kind": "feed", "start_urls": ["https://x.example/"]},
             {"name": "a", "kind": "feed", "start_urls": ["https://y.example/"]})
    with pytest.raises(ConfigError, match=r"crawler\.recrawl"):
        load(crawler={"recrawl": "1d"})
    with pytest.raises(ConfigError, match="no source named 'b'.*sources: a"):
        load({"name": "a", "kind": "feed", "start_urls": ["https://x.example/"]}).get("b")
    assert set(KINDS) == {"paste-archive", "paste-api", "forum", "discourse", "feed", "telegram"}


def test_durations_and_sizes():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration(7) == 7
    assert parse_size("50MB") == 50_000_000 and parse_size("512KiB") == 524288 and parse_size(10) == 10
    for bad in ("-1", "1y", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_allowed_domains_keep_ports_and_the_network_policy_is_read():
    """The default allowed domain of a start URL on another port keeps that port (issue 10)."""
    from dumpwatch.netpolicy import NetworkPolicy

    cc = load_crawl_config({"sources": [
        {"name": "a", "kind": "feed", "start_urls": ["http://127.0.0.1:8123/feed", "https://x.example/f"]},
        {"name": "b", "kind": "feed", "start_urls": ["https://x.example/"], "allow_private_networks": True,
         "allowed_domains": ["x.example", "files.example:8080", "[::1]:81"]}],
        "network": {"allowed_networks": ["10.1.0.0/16"]}})
    assert cc.get("a").allowed_domains == ("127.0.0.1:8123", "x.example")
    assert cc.get("b").allowed_domains == ("x.example", "files.example:8080", "[::1]:81")
    assert cc.get("a").allow_private_networks is None and cc.get("b").allow_private_networks is True
    assert cc.network == NetworkPolicy.from_table({"allowed_networks": ["10.1.0.0/16"]})
    with pytest.raises(ConfigError) as err:
        load_crawl_config({"network": {"allow_private": True}})
    assert err.value.key == "network.allow_private"


def test_network_errors_are_reported_with_the_source_errors():
    from dumpwatch.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as err:
        load_crawl_config({"sources": [{"name": "s", "kind": "feed", "start_urls": ["ftp://x.example/"]}],
                           "network": {"allowed_networks": ["10.0.0.0/33"]}})
    assert {e.key for e in err.value.errors} == {"sources.s.start_urls", "network.allowed_networks"}

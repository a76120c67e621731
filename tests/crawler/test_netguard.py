"""Hostile links and responses in a crawl (issue 10, cases 3 and 5): another port of an allowed host,
redirects to loopback and metadata addresses, a gzip bomb sent as ``Content-Encoding``.

Two local sites on 127.0.0.1: the watched one, and another on another port that must never be
reached from it. A feed's entries link to each trap.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.helpers.crawlkit import repost, run_crawl, write_config
from dumpwatch.devkit.localsites import SiteServer

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>dumps</title><link>{base}/</link><description>d</description>
{items}
</channel></rss>"""
ITEM = "<item><title>entry {i}</title><link>{link}</link><guid>g-{i}</guid></item>"


@pytest.fixture(scope="module")
def other(people):
    """A server on another port of the same host: what a hostile link points to."""
    srv = SiteServer().start()
    srv.add("/leak.csv", repost(people[:20], "csv", 7), headers={"Content-Type": "text/csv"})
    yield srv
    srv.stop()


@pytest.fixture
def site(other):
    srv = SiteServer().start()
    srv.add("/robots.txt", "User-agent: *\n", headers={"Content-Type": "text/plain"})
    yield srv
    srv.stop()


def feed(site: SiteServer, links: list[str]) -> str:
    items = "\n".join(ITEM.format(i=i, link=link) for i, link in enumerate(links, start=1))
    site.add("/feed.xml", FEED.format(base=site.base, items=items), headers={"Content-Type": "application/rss+xml"})
    return site.base + "/feed.xml"


def test_a_link_to_another_port_of_the_allowed_host_is_not_followed(crawl_home, site, other):
    other.clear_log()
    site.add("/page.html", "<html><body>rien</body></html>")
    url = feed(site, [f"{other.base}/leak.csv", f"{site.base}/page.html"])
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n')
    result = run_crawl(crawl_home, "f")
    assert result.ok, result
    assert other.paths() == []  # 127.0.0.1, but not the port of the source
    assert "/page.html" in site.paths()  # the same port is followed
    assert result.detail["offsite_skipped"] == 1


def test_another_port_is_followed_when_listed_as_host_port(crawl_home, site, other):
    other.clear_log()
    url = feed(site, [f"{other.base}/leak.csv"])
    host_port = site.base.split("//", 1)[1]
    other_port = other.base.split("//", 1)[1]
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n'
                             f'allowed_domains = ["{host_port}", "{other_port}"]\n')
    result = run_crawl(crawl_home, "f")
    assert "/leak.csv" in other.paths() and result.findings == 1, result


def test_redirects_to_forbidden_addresses_are_refused_and_counted(crawl_home, site, other):
    """Only 127.0.0.1 is allowed (allowed_networks); the redirects go to other loopback addresses, a
    link-local metadata address, and another port of 127.0.0.1; none is connected to."""
    other.clear_log()
    port = site.base.rsplit(":", 1)[1]
    site.add("/r/v6", b"", status=302, headers={"Location": f"http://[::1]:{port}/x"})
    site.add("/r/v6-again", b"", status=307, headers={"Location": f"http://[::1]:{port}/y"})
    site.add("/r/mapped", b"", status=302, headers={"Location": f"http://[::ffff:127.0.0.2]:{port}/x"})
    site.add("/r/metadata", b"", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    site.add("/r/port", b"", status=301, headers={"Location": f"{other.base}/leak.csv"})
    url = feed(site, [f"{site.base}/r/{name}" for name in ("v6", "v6-again", "mapped", "metadata", "port")])
    write_config(crawl_home, f"""
[[sources]]
name = "f"
kind = "feed"
start_urls = ["{url}"]
allowed_domains = ["127.0.0.1:{port}", "[::1]:{port}", "[::ffff:127.0.0.2]:{port}", "169.254.169.254"]
""", network='[network]\nallowed_networks = ["127.0.0.1/32"]\n')
    result = run_crawl(crawl_home, "f")
    assert result.ok, result  # the feed itself was read: 127.0.0.1 is allowed
    reasons = result.detail["refused_reasons"]
    assert reasons.get("loopback", 0) >= 3 and reasons.get("link-local", 0) >= 1, reasons
    assert reasons.get("off limits", 0) >= 1, reasons  # the redirect to another port of 127.0.0.1
    assert result.detail["refused"] == sum(reasons.values())
    assert other.paths() == []
    assert {"/r/v6", "/r/mapped", "/r/metadata", "/r/port"} <= set(site.paths())
    log = Path(result.log_path).read_text()
    assert log.count("refused http://169.254.169.254/latest/meta-data/: refused by the network policy") == 1
    assert log.count("refused http://[::1]") == 1  # two refusals, logged once per host


def test_the_loopback_site_itself_is_refused_without_the_opt_in(crawl_home, site):
    url = feed(site, [])
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n', network="")
    result = run_crawl(crawl_home, "f")
    assert not result.ok and site.paths() == []
    assert result.detail["refused_reasons"] == {"loopback": 1}


def test_the_crawl_summary_says_what_was_refused(crawl_home, site):
    from click.testing import CliRunner

    from dumpwatch.cli.main import cli

    url = feed(site, [])
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n', network="")
    res = CliRunner().invoke(cli, ["--home", str(crawl_home.root), "crawl", "f"])
    assert "f (feed): FAILED" in res.output
    assert "refused by the network policy (loopback) ×1" in res.output, res.output


def test_a_host_name_is_resolved_checked_and_crawled(crawl_home, site):
    """A name (not an IP literal) goes through the guard's resolution, its pin and Scrapy's checking
    resolver: ``localhost`` is loopback, allowed here by the opt-in, refused without it."""
    site.add("/page.html", "<html><body>rien</body></html>")
    url = feed(site, ["/page.html"]).replace("127.0.0.1", "localhost")
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n')
    site.clear_log()
    result = run_crawl(crawl_home, "f")
    assert result.ok and "/page.html" in site.paths(), result
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n', network="")
    site.clear_log()
    result = run_crawl(crawl_home, "f")
    assert not result.ok and site.paths() == [] and result.detail["refused_reasons"] == {"loopback": 1}


def test_the_per_source_opt_in(crawl_home, site):
    url = feed(site, [])
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n'
                             'allow_private_networks = true\n', network="")
    assert run_crawl(crawl_home, "f").ok


def test_a_gzip_bomb_is_an_error_of_the_run_and_a_health_problem(crawl_home, site):
    bomb = gzip.compress(b"\0" * (3 * 1024 * 1024))  # 3 KiB that decode to 3 MiB
    site.add("/files/dump.csv", bomb, headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"})
    url = feed(site, [f"{site.base}/files/dump.csv"])
    write_config(crawl_home, f'[[sources]]\nname = "f"\nkind = "feed"\nstart_urls = ["{url}"]\n'
                             'max_download_size = "1MB"\n')
    result = run_crawl(crawl_home, "f")
    assert "/files/dump.csv" in site.paths()
    assert result.errors == 1 and result.detail["bombs"] == 1, result
    assert any("decompression bomb" in reason for reason in result.detail["error_reasons"])
    assert "hostile" in result.health
    # the page is not fetched again while fresh
    site.clear_log()
    again = run_crawl(crawl_home, "f")
    assert "/files/dump.csv" not in site.paths() and again.errors == 0


class _Stats:
    def __init__(self):
        self.values: dict[str, int] = {}

    def inc_value(self, key, n=1):
        self.values[key] = self.values.get(key, 0) + n


def test_the_guard_pins_the_address_it_checked_in_scrapys_dns_cache(monkeypatch):
    """Scrapy then connects to the address that was checked, not to a second DNS answer."""
    import asyncio
    import socket
    from types import SimpleNamespace

    from scrapy import Request
    from scrapy.resolver import dnscache

    from crawler.netguard import NetworkGuardMiddleware, PolicyRefused
    from dumpwatch.netpolicy import NetworkPolicy

    answers = {"public.example": ["93.184.215.14"], "rebound.example": ["93.184.215.14", "127.0.0.1"]}

    def getaddrinfo(host, port, *a, **kw):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)) for addr in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    crawler = SimpleNamespace(stats=_Stats(), spider=None)
    guard = NetworkGuardMiddleware(crawler, NetworkPolicy(), pin_dns=True)
    dnscache.pop("public.example", None)
    asyncio.run(guard.process_request(Request("http://public.example/x")))
    assert dnscache["public.example"] == "93.184.215.14"
    with pytest.raises(PolicyRefused, match="rebound.example resolves to 127.0.0.1"):
        asyncio.run(guard.process_request(Request("http://rebound.example/x")))
    assert "rebound.example" not in dnscache
    assert crawler.stats.values == {"dumpwatch/refused": 1, "dumpwatch/refused_reasons/loopback": 1}


@pytest.mark.parametrize("url, ok", [
    ("https://forum.example/t/1", True), ("http://forum.example/t/1", True),
    ("https://cdn.forum.example/a.zip", True),  # a subdomain
    ("https://forum.example:8443/t/1", False),  # another port of a bare domain
    ("http://forum.example:443/t/1", False),  # https's port, but http
    ("http://files.example:8080/a.csv", True), ("https://files.example:8080/a.csv", True),
    ("http://files.example/a.csv", False),  # listed with a port: that port only
    ("http://127.0.0.1:5000/", True), ("http://127.0.0.1:5001/", False),
    ("ftp://forum.example/", False), ("http://forum.example:bad/", False),
])
def test_allowed_checks_host_and_port(url, ok):
    from types import SimpleNamespace

    from crawler.spiders.base import SourceSpider
    from dumpwatch.netpolicy import split_host_port

    spider = SimpleNamespace(allowed_hosts=[split_host_port(e) for e in
                                            ("forum.example", "files.example:8080", "127.0.0.1:5000")])
    assert SourceSpider.allowed(spider, url) is ok


def test_scrapys_resolver_checks_the_address_it_answers(monkeypatch):
    """Behind the guard: an answer Scrapy would connect to (here from its DNS cache, as a rebinding
    server's second answer would be) is checked against the policy too."""
    from scrapy.resolver import dnscache
    from twisted.internet.error import DNSLookupError

    from crawler.netguard import PolicyResolver
    from dumpwatch.netpolicy import NetworkPolicy

    resolver = PolicyResolver(reactor=object(), cache_size=100, timeout=1.0)
    monkeypatch.setattr(PolicyResolver, "policy", NetworkPolicy())
    dnscache["rebound.example"] = "127.0.0.1"
    dnscache["public.example"] = "93.184.215.14"
    outcomes = []
    for name in ("rebound.example", "public.example"):
        resolver.getHostByName(name).addCallbacks(outcomes.append, outcomes.append)
    refused, answered = outcomes
    assert refused.check(DNSLookupError) and "rebound.example resolves to 127.0.0.1: refused" in str(refused.value)
    assert answered == "93.184.215.14"
    monkeypatch.setattr(PolicyResolver, "exempt", frozenset({"rebound.example"}))  # the source's proxy
    resolver.getHostByName("rebound.example").addCallback(outcomes.append)
    assert outcomes[-1] == "127.0.0.1"
    monkeypatch.setattr(PolicyResolver, "exempt", frozenset())
    monkeypatch.setattr(PolicyResolver, "policy", None)  # not a dumpwatch crawl: Scrapy's resolver as it is
    resolver.getHostByName("rebound.example").addCallback(outcomes.append)
    assert outcomes[-1] == "127.0.0.1"
    dnscache.pop("rebound.example")
    dnscache.pop("public.example")

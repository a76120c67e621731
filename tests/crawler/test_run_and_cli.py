"""`scrapy crawl KIND -a source=NAME` and `dumpwatch crawl` run the same spiders; health and the seen-set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from tests.helpers.crawlkit import ROOT, findings_of, write_config


def test_scrapy_crawl_from_the_repo_root(crawl_home, sites, people):
    write_config(crawl_home, f"""
[[sources]]
name = "tg"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "{sites.url('/tg')}"
""")
    env = {**os.environ, "DUMPWATCH_HOME": str(crawl_home.root)}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    proc = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "telegram", "-a", "source=tg",
                           "-s", "DUMPWATCH_TEST_MODE=True", "-s", "LOG_LEVEL=DEBUG"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(findings_of(crawl_home, "tg")) >= 3
    # privacy: Scrapy logs every scraped item at DEBUG level, but a Document's repr has no content
    assert "Scraped from" in proc.stderr
    log = proc.stderr
    for person in people[400:460]:  # the people reposted in the channel
        assert person["email"] not in log and person["nir"] not in log and person["telephone"] not in log


def test_wrong_kind_or_unknown_source_is_a_clear_error(crawl_home, sites):
    write_config(crawl_home, f"""
[[sources]]
name = "tg"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "{sites.url('/tg')}"
""")
    env = {**os.environ, "DUMPWATCH_HOME": str(crawl_home.root)}
    proc = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "forum", "-a", "source=tg"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "scrapy crawl telegram -a source=tg" in proc.stderr


def test_dumpwatch_crawl_cli(crawl_home, sites):
    from dumpwatch.cli.main import cli

    write_config(crawl_home, f"""
[[sources]]
name = "tg"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "{sites.url('/tg')}"
[[sources]]
name = "dead"
kind = "feed"
start_urls = ["{sites.url('/nothing-here.xml')}"]
[[sources]]
name = "off"
kind = "feed"
enabled = false
start_urls = ["{sites.url('/feeds/rss.xml')}"]
""")
    runner = CliRunner()
    res = runner.invoke(cli, ["--home", str(crawl_home.root), "crawl", "--all", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    runs = {r["source"]: r for r in summary["runs"]}
    assert set(runs) == {"tg", "dead"}  # disabled sources are not crawled by --all
    assert runs["tg"]["ok"] and runs["tg"]["findings"] >= 3
    assert not runs["dead"]["ok"] and runs["dead"]["detail"]["error_reasons"] == {"HTTP 404": 1}
    assert summary["findings"] == runs["tg"]["findings"] and not summary["ok"]

    res = runner.invoke(cli, ["--home", str(crawl_home.root), "crawl", "tg"])
    assert res.exit_code == 0 and "tg (telegram): ok; " in res.output and "0 new findings" in res.output

    res = runner.invoke(cli, ["--home", str(crawl_home.root), "crawl", "--list"])
    assert res.exit_code == 0 and "dead" in res.output and "off" in res.output

    res = runner.invoke(cli, ["--home", str(crawl_home.root), "crawl", "nope"])
    assert res.exit_code != 0
    res = runner.invoke(cli, ["--home", str(crawl_home.root), "crawl"])
    assert res.exit_code == 2 and "--all" in res.output


def test_crawl_help_has_an_example():
    from dumpwatch.cli.main import cli

    res = CliRunner().invoke(cli, ["crawl", "--help"])
    assert res.exit_code == 0 and "dumpwatch crawl --all" in res.output


def test_proxy_user_agent_and_headers_of_a_source(crawl_home, sites, site_log):
    from tests.helpers.crawlkit import free_port, run_crawl

    # the channel's own address is a closed port: only the proxy (the site server) can answer
    write_config(crawl_home, f"""
[[sources]]
name = "tg-proxied"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "http://127.0.0.1:{free_port()}/tg"
proxy = "{sites.base}"
user_agent = "dumpwatch-test/1.0 (contact: dpo@example.org)"
headers = {{ "Accept-Language" = "fr-FR" }}
obey_robots = false
depth = 0
""")
    result = run_crawl(crawl_home, "tg-proxied")
    assert result.ok, result
    assert "/tg/s/dumpsfr" in site_log.proxied and "/tg/s/dumpsfr?before=120" in site_log.proxied
    assert all(h.get("User-Agent") == "dumpwatch-test/1.0 (contact: dpo@example.org)" for h in site_log.headers)
    assert all(h.get("Accept-Language") == "fr-FR" for h in site_log.headers)
    assert len(findings_of(crawl_home, "tg-proxied")) == 2  # the two reposts in messages; links not followed (depth 0)

"""`scrapy crawl KIND -a source=NAME` and `dumpwatch crawl` run the same spiders; health and the seen-set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from conftest import ROOT, findings_of, write_config


def test_scrapy_crawl_from_the_repo_root(crawl_home, sites):
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
                           "-s", "DUMPWATCH_TEST_MODE=True"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(findings_of(crawl_home, "tg")) >= 3
    # privacy: no cleartext of a document in Scrapy's log (it logs items at DEBUG level)
    assert "base_labos_2021" not in proc.stderr or "Scraped from" not in proc.stderr
    for line in proc.stderr.splitlines():
        assert "@" not in line or "Scraped" not in line


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
    from dumpwatch.cli import cli

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
    from dumpwatch.cli import cli

    res = CliRunner().invoke(cli, ["crawl", "--help"])
    assert res.exit_code == 0 and "dumpwatch crawl --all" in res.output

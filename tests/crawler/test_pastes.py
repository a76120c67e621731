"""Against a real pinnwand on 127.0.0.1: pastes made through its API are found by both paste spiders."""

from __future__ import annotations

from tests.helpers.crawlkit import findings_of, run_crawl, write_config


def test_paste_api_finds_reposts_not_noise(crawl_home, pinnwand, pastes):
    write_config(crawl_home, f"""
[[sources]]
name = "pw-api"
kind = "paste-api"
start_urls = ["{pinnwand}/dw/recent.json"]
""")
    result = run_crawl(crawl_home, "pw-api", scan_processes=1)
    assert result.ok, result
    found = {f["url"] for f in findings_of(crawl_home, "pw-api")}
    assert set(pastes["repost"]) <= found
    assert not set(pastes["noise"]) & {f["url"] for f in findings_of(crawl_home, verdict=None)}
    assert result.documents >= 6 and result.listed >= 6


def test_paste_archive_listing_paste_page_raw_link(crawl_home, pinnwand, pastes):
    write_config(crawl_home, f"""
[[sources]]
name = "pw-archive"
kind = "paste-archive"
start_urls = ["{pinnwand}/dw/archive"]
listing_selector = "table.maintable a::attr(href)"
raw_link_selector = "div.file-show a[href^='/raw/']::attr(href)"
""")
    result = run_crawl(crawl_home, "pw-archive")
    assert result.ok, result
    found = findings_of(crawl_home, "pw-archive")
    assert set(pastes["repost"]) <= {f["url"] for f in found}
    assert all(f["verdict"] == "repost" and f["leak"] == "labos-2021" for f in found)


def test_paste_archive_regex_and_raw_url_template(crawl_home, pinnwand, pastes):
    # pinnwand serves a zip of every paste at /download-archive/SLUG: a raw-URL template on the key
    write_config(crawl_home, f"""
[[sources]]
name = "pw-regex"
kind = "paste-archive"
start_urls = ["{pinnwand}/dw/archive"]
listing_regex = 'href="/(?P<key>[A-Z2-7]+)"'
raw_url = "{{base}}/download-archive/{{key}}"
""")
    result = run_crawl(crawl_home, "pw-regex")
    assert result.ok, result
    assert len(findings_of(crawl_home, "pw-regex")) >= len(pastes["repost"])

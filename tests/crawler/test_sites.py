"""Crawls of the local sites (saved page structures): reposts become findings, noise does not."""

from __future__ import annotations

import pytest

from tests.helpers.crawlkit import findings_of, run_crawl, write_config


def forum_source(sites, forum: str) -> str:
    board = {"phpbb": "/phpbb/viewforum.php?f=2", "mybb": "/mybb/forumdisplay.php?fid=2",
             "xenforo": "/xf/forums/bases.2/"}[forum]
    return f"""
[[sources]]
name = "{forum}"
kind = "forum"
preset = "{forum}"
start_urls = ["{sites.url(board)}"]
max_download_size = "1MB"
"""


def urls(findings: list[dict]) -> set[str]:
    return {f["url"] for f in findings}


@pytest.mark.parametrize("forum", ["phpbb", "mybb", "xenforo"])
def test_forum_preset_finds_reposts_in_posts_attachments_links_and_later_pages(forum, crawl_home, sites, site_log):
    write_config(crawl_home, forum_source(sites, forum))
    result = run_crawl(crawl_home, forum)
    assert result.ok, result
    found = findings_of(crawl_home, forum)
    expected = {u for u in sites.reposts[forum] if "/phpbb/files/" not in u}
    assert expected <= urls(found), expected - urls(found)
    assert not (urls(findings_of(crawl_home, verdict=None)) & sites.noise[forum])
    assert all(f["leak"] == "labos-2021" and f["matched_records"] >= 3 for f in found)
    assert all(f["sha256"] and f["source"] == forum for f in found)
    # pagination: the second board page and the second page of topic 3 were read
    assert result.listed >= 3 and result.documents >= 6


def test_bad_pages_are_recorded_and_never_stop_the_crawl(crawl_home, sites, site_log):
    from crawler.seen import bad_pages
    from dumpwatch.store import open_db

    write_config(crawl_home, forum_source(sites, "phpbb"))
    result = run_crawl(crawl_home, "phpbb")
    assert result.ok
    found = urls(findings_of(crawl_home, "phpbb"))
    base = sites.url("/phpbb/files")
    # redirect followed, 429 waited for, declared-UTF-8 Latin-1 page read: all become findings
    assert {f"{base}/moved-here.txt", f"{base}/limited.csv", f"{base}/latin1.txt"} <= found
    # the other reposts of the same crawl were found despite 404/500/timeout/binary/too large
    assert sites.url("/phpbb/download/file.php?id=1") in found
    bad = {r["url"]: r for r in bad_pages(open_db(crawl_home.db_path), "phpbb")}
    assert bad[f"{base}/boom"]["reason"] == "HTTP 500"
    assert bad[f"{base}/slow.txt"]["status"] == "error"
    assert bad[f"{base}/huge.csv"]["reason"] == "larger than max_download_size"
    assert bad[f"{base}/binary.bin"]["status"] == "bad"
    assert result.detail["error_reasons"]["HTTP 500"] == 1
    assert result.detail["bad_reasons"]["too large"] == 1
    # robots.txt obeyed: the disallowed file was never fetched
    assert "/private/all.csv" not in site_log.paths()
    assert result.detail["robots_forbidden"] == 1


def test_retry_after_is_honoured(crawl_home, sites, site_log):
    write_config(crawl_home, forum_source(sites, "phpbb"))
    run_crawl(crawl_home, "phpbb")
    hits = site_log.hits("/phpbb/files/limited.csv")
    assert len(hits) == 2
    assert hits[1] - hits[0] >= 0.95  # Retry-After: 1


def test_discourse_api_latest_topics_posts_chunks_and_uploads(crawl_home, sites, site_log):
    write_config(crawl_home, f"""
[[sources]]
name = "disc"
kind = "discourse"
start_urls = ["{sites.url('/disc')}"]
""")
    result = run_crawl(crawl_home, "disc")
    assert result.ok
    assert sites.reposts["discourse"] <= urls(findings_of(crawl_home, "disc"))
    assert any(p.startswith("/disc/t/1/posts.json?") for p in site_log.paths())  # posts past the first chunk
    assert "/disc/latest.json?page=1" in site_log.paths()
    assert len(findings_of(crawl_home, "disc")) == len(sites.reposts["discourse"])


def test_rss_and_atom_entries_links_enclosures_and_paging(crawl_home, sites, site_log):
    write_config(crawl_home, f"""
[[sources]]
name = "feeds"
kind = "feed"
start_urls = ["{sites.url('/feeds/rss.xml')}", "{sites.url('/feeds/atom.xml')}"]
""")
    result = run_crawl(crawl_home, "feeds")
    assert result.ok
    found = urls(findings_of(crawl_home, "feeds"))
    base = sites.base
    # entry contents (the RSS content:encoded table, the Atom kv block) are attributed to the entry link
    assert {f"{base}/blog/base-labos-2021/", f"{base}/blog/files/extrait.csv.gz",
            f"{base}/blog/dump-1/", f"{base}/blog/files/dump-2.zip"} <= found
    assert f"{base}/blog/far-breton/" not in found
    assert "/feeds/atom.xml?page=2" in site_log.paths()


def test_telegram_preview_messages_links_and_paging_back(crawl_home, sites, site_log):
    write_config(crawl_home, f"""
[[sources]]
name = "tg"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "{sites.url('/tg')}"
""")
    result = run_crawl(crawl_home, "tg")
    assert result.ok
    assert sites.reposts["telegram"] <= urls(findings_of(crawl_home, "tg"))
    assert f"{sites.url('/tg')}/dumpsfr/120" not in urls(findings_of(crawl_home, verdict=None))
    assert "/tg/s/dumpsfr?before=120" in site_log.paths()
    assert result.listed == 5

"""The seen-set makes a second crawl fetch nothing new; a dead or silent source raises a health finding."""

from __future__ import annotations

from tests.helpers.crawlkit import findings_of, free_port, run_crawl, write_config


def test_second_crawl_fetches_nothing_new_and_makes_no_new_finding(crawl_home, sites, site_log):
    write_config(crawl_home, f"""
[[sources]]
name = "xf"
kind = "forum"
preset = "xenforo"
start_urls = ["{sites.url('/xf/forums/bases.2/')}"]
[[sources]]
name = "tg"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "{sites.url('/tg')}"
""")
    first = {name: run_crawl(crawl_home, name) for name in ("xf", "tg")}
    assert all(r.findings >= 3 for r in first.values()), first
    before = len(findings_of(crawl_home, verdict=None))
    site_log.clear_log()
    second = {name: run_crawl(crawl_home, name) for name in ("xf", "tg")}
    assert all(r.ok and r.documents == 0 and r.findings == 0 for r in second.values()), second
    assert len(findings_of(crawl_home, verdict=None)) == before
    fetched = set(site_log.paths())
    # only the listing pages again: no topic, attachment, linked file or older preview page
    assert fetched <= {"/robots.txt", "/xf/forums/bases.2/", "/tg/s/dumpsfr"}, fetched
    assert second["xf"].skipped >= 2 and second["tg"].listed == 3


def test_same_content_elsewhere_makes_no_second_finding(crawl_home, sites, site_log):
    from crawler.seen import SeenSet
    from dumpwatch.store import open_db

    write_config(crawl_home, f"""
[[sources]]
name = "tg"
kind = "telegram"
channels = ["dumpsfr"]
base_url = "{sites.url('/tg')}"
recrawl_age = 0
""")
    first = run_crawl(crawl_home, "tg")
    assert first.findings >= 3
    # recrawl_age = 0: every page is fetched again, but known contents are not matched again
    second = run_crawl(crawl_home, "tg")
    assert second.documents == 0 and second.findings == 0
    assert second.detail["duplicate_content"] >= 3
    seen = SeenSet(open_db(crawl_home.db_path), "tg", 0)
    assert all(seen.content_seen(f["sha256"]) for f in findings_of(crawl_home, "tg"))


def test_dead_source_raises_a_failing_health_finding(crawl_home):
    url = f"http://127.0.0.1:{free_port()}/api_scraping.php"
    write_config(crawl_home, f"""
[[sources]]
name = "dead"
kind = "paste-api"
start_urls = ["{url}"]
""")
    first = run_crawl(crawl_home, "dead")
    assert not first.ok and first.health == ()
    second = run_crawl(crawl_home, "dead")  # failing_runs = 2 in the test configuration
    assert not second.ok and "failing" in second.health
    health = findings_of(crawl_home, "dead", verdict="source-health")
    assert len(health) == 1 and health[0]["detail"]["problem"] == "failing"
    assert health[0]["detail"]["failed_runs"] == 2
    assert health[0]["detail"]["urls"] == [url]  # the operators' alert names the source's address
    from alerts.render import alert_view, render

    alert = {"alert_key": "k", "severity": "info", "created_at": health[0]["detected_at"], "lab": ""}
    text = render(receiver="ops", kind="alert", idempotency_key="dw", views=[alert_view(alert, health[0])],
                  incident=None, leaks={}).text
    assert f"La source dead ({url}) a échoué à ses 2 dernières collectes" in text and "Que faire" in text
    assert "connexion refusée" in text and "{" not in text  # a sentence, not a Python dict


def test_source_that_suddenly_lists_nothing_raises_a_silent_health_finding(crawl_home, sites):
    srv = sites.server
    srv.add("/silent/archive", '<table class="maintable"><tr><td><a href="/silent/AAAA1">x</a></td></tr></table>')
    srv.add("/silent/AAAA1", "hello", headers={"Content-Type": "text/plain"})
    write_config(crawl_home, f"""
[[sources]]
name = "quiet"
kind = "paste-archive"
start_urls = ["{sites.url('/silent/archive')}"]
listing_selector = "table.maintable a::attr(href)"
""")
    assert run_crawl(crawl_home, "quiet").health == ()
    # nothing new: a quiet source, not a silent one
    again = run_crawl(crawl_home, "quiet")
    assert again.ok and again.listed == 1 and again.health == ()
    srv.add("/silent/archive", "<html><body><p>Nouveau design !</p></body></html>")  # selectors broke
    third = run_crawl(crawl_home, "quiet")
    assert third.ok and third.listed == 0 and "silent" in third.health
    health = findings_of(crawl_home, "quiet", verdict="source-health")
    assert [h["detail"]["problem"] for h in health] == ["silent"]


def test_crawl_killed_by_timeout_is_a_failed_run(crawl_home, sites):
    sites.server.add("/stuck/feed.xml", "<rss/>", delay=5.0)
    write_config(crawl_home, f"""
[[sources]]
name = "stuck"
kind = "feed"
start_urls = ["{sites.url('/stuck/feed.xml')}"]
timeout = 30
""")
    result = run_crawl(crawl_home, "stuck", timeout=2)
    assert not result.ok
    assert result.close_reason in ("shutdown",) or "timeout" in result.close_reason


def test_topic_with_a_new_post_is_fetched_again_pages_and_all(crawl_home, sites, site_log, people):
    from tests.helpers.crawlkit import code_block, repost
    from tests.helpers.sitesrv import template

    srv = sites.server
    board, page2 = "/xf/forums/bases.2/", "/xf/threads/topic.3/page-2"
    saved = {p: srv.routes[p].body for p in (board, page2)}
    write_config(crawl_home, f"""
[[sources]]
name = "xf"
kind = "forum"
preset = "xenforo"
start_urls = ["{sites.url(board)}"]
""")
    try:
        first = run_crawl(crawl_home, "xf")
        assert first.ok and first.findings >= 3
        # someone posts a repost in topic 3: the forum bumps it to the first board page, new date
        row = template("xenforo/topic_row.html", tid="3", title="La suite", uid="7", author="anon", replies="3",
                       root="/xf").replace(b'datetime="2021-02-24T18:40:00+0100"', b'datetime="2021-03-01T09:00:00+0100"')
        srv.routes[board].body = saved[board].replace(b'js-threadList">', b'js-threadList">' + row, 1)
        new_post = template("xenforo/post.html", pid="33", author="anon", attachments="", root="/xf",
                            content=code_block(repost(people[560:580], "csv", 99))).decode()
        srv.routes[page2].body = saved[page2].replace(b"</article>\n\n\t\t</div>", b"</article>\n" + new_post.encode()
                                                      + b"\n\t\t</div>", 1)
        assert srv.routes[page2].body != saved[page2]
        site_log.clear_log()
        second = run_crawl(crawl_home, "xf")
        fetched = set(site_log.paths())
        assert {"/xf/threads/topic.3/", page2} <= fetched
        assert not fetched & {"/xf/threads/topic.1/", "/xf/threads/topic.2/"}
        assert second.findings == 1
        assert sites.url(page2) + "#post-33" in {f["url"] for f in findings_of(crawl_home, "xf")}
    finally:
        for path, body in saved.items():
            srv.routes[path].body = body

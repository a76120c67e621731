"""A page is marked seen only once what it held is stored (issue 8, case 3).

The store failure is real: a trigger in the crawl's own database makes the insert of a repost
finding fail in the crawl process, as a full disk or a database locked past the write timeout
would; then it is dropped and the next run must fetch the lost pages again and record them.
"""

from __future__ import annotations

from tests.helpers.crawlkit import findings_of, run_crawl, write_config

FAIL_REPOSTS = ("CREATE TRIGGER dw_test_fail BEFORE INSERT ON findings WHEN NEW.verdict = 'repost' "
                "BEGIN SELECT RAISE(ABORT, 'injected store failure'); END")


def _sql(home, statement: str) -> None:
    from dumpwatch.store import open_db

    db = open_db(home.db_path)
    db.execute(statement)
    db.close()


def _pastes_source(home, pinnwand) -> None:
    write_config(home, f"""
[[sources]]
name = "pw"
kind = "paste-api"
start_urls = ["{pinnwand}/dw/recent.json"]
""")


def test_page_whose_finding_could_not_be_stored_is_fetched_again_and_recorded(crawl_home, pinnwand, pastes):
    _pastes_source(crawl_home, pinnwand)
    _sql(crawl_home, FAIL_REPOSTS)
    first = run_crawl(crawl_home, "pw")
    assert findings_of(crawl_home, "pw") == []
    reposts = len(pastes["repost"])
    # the run says what it lost: never "ok, 0 errors"
    assert not first.ok and first.errors >= reposts and first.detail["lost"] >= reposts, first
    assert any(r.startswith("store") for r in first.detail["error_reasons"]), first.detail
    from crawler.seen import bad_pages
    from dumpwatch.store import open_db

    errored = {p["url"] for p in bad_pages(open_db(crawl_home.db_path), "pw") if p["status"] == "error"}
    assert set(pastes["repost"]) <= errored

    _sql(crawl_home, "DROP TRIGGER dw_test_fail")
    second = run_crawl(crawl_home, "pw")
    assert second.ok and second.errors == 0 and second.detail["lost"] == 0, second
    assert set(pastes["repost"]) <= {f["url"] for f in findings_of(crawl_home, "pw")}
    assert second.findings >= reposts and second.documents >= reposts  # fetched again and scanned
    assert second.skipped >= len(pastes["noise"])  # what was stored the first time (noise) is not

    third = run_crawl(crawl_home, "pw")
    assert third.ok and third.documents == 0 and third.findings == 0  # now all are seen


def test_source_whose_runs_keep_losing_pages_raises_a_losing_health_finding(crawl_home, pinnwand, pastes):
    _pastes_source(crawl_home, pinnwand)
    _sql(crawl_home, FAIL_REPOSTS)
    first = run_crawl(crawl_home, "pw")
    assert first.health == ()
    second = run_crawl(crawl_home, "pw")  # failing_runs = 2 in the test configuration
    assert not second.ok and second.detail["lost"] >= len(pastes["repost"])  # fetched again, lost again
    assert second.health == ("losing",)
    health = findings_of(crawl_home, "pw", verdict="source-health")
    assert [h["detail"]["problem"] for h in health] == ["losing"]
    assert health[0]["detail"]["runs_losing_pages"] == 2
    assert all(n >= len(pastes["repost"]) for n in health[0]["detail"]["lost_pages"])


# -- the page ledger, without a crawl --------------------------------------------------------------

def _seen(tmp_path):
    from crawler.seen import SeenSet
    from dumpwatch.store import open_db

    db = open_db(tmp_path / "d.db")
    return db, SeenSet(db, "s", 3600)


def _status(db, key):
    row = db.execute("SELECT status FROM crawl_seen_urls WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def test_topic_page_is_ok_only_when_its_callback_ended_and_every_post_is_stored(tmp_path):
    db, seen = _seen(tmp_path)
    seen.expect("t1")
    seen.expect("t1")
    seen.processed("t1")  # one post stored; the callback still runs and the other post is pending
    seen.flush()
    assert _status(db, "t1") is None and not seen.is_fresh("t1")
    seen.parsed("t1", "http://f/t1")
    seen.flush()
    assert _status(db, "t1") is None  # the second post is not stored yet
    seen.processed("t1", status="bad", reason="binary content")
    seen.flush()
    assert _status(db, "t1") == "bad"  # the worse news of its documents


def test_a_failed_post_makes_its_page_an_error_whatever_comes_after(tmp_path):
    db, seen = _seen(tmp_path)
    seen.expect("t2")
    seen.expect("t2")
    assert seen.failed("t2", url="http://f/t2", reason="not recorded: store StorageError")
    assert not seen.failed("t2", reason="again")  # counted once
    seen.processed("t2")
    seen.parsed("t2", "http://f/t2")
    seen.flush()
    assert _status(db, "t2") == "error" and not seen.is_fresh("t2")


def test_a_page_downloaded_but_not_done_when_the_crawl_stops_is_not_marked(tmp_path):
    db, seen = _seen(tmp_path)
    seen.expect("p1")  # its document is still in the pipeline
    seen.parsed("p2", "http://f/p2")  # no document: done
    assert seen.unfinished() == ["p1"]
    seen.flush()
    assert _status(db, "p1") is None and _status(db, "p2") == "ok"


def test_disk_full_in_the_pipeline_is_one_clear_error_line_and_loses_nothing(crawl_home, pinnwand, pastes):
    """The crawl's store write answers "database or disk is full" (raised by a trigger with SQLite's
    own message; a really full disk is tested in tests/dumpwatch/test_storage_errors.py)."""
    from pathlib import Path

    _pastes_source(crawl_home, pinnwand)
    _sql(crawl_home, FAIL_REPOSTS.replace("injected store failure", "database or disk is full"))
    run = run_crawl(crawl_home, "pw")
    assert not run.ok and run.detail["lost"] >= len(pastes["repost"])
    assert run.detail["error_reasons"].get("store StorageError", 0) >= len(pastes["repost"]), run.detail
    log = Path(run.log_path).read_text(errors="replace")
    assert "database or disk is full" in log and "free space" in log and str(crawl_home.root) in log
    assert "Traceback" not in log
    _sql(crawl_home, "DROP TRIGGER dw_test_fail")
    again = run_crawl(crawl_home, "pw")
    assert again.ok and set(pastes["repost"]) <= {f["url"] for f in findings_of(crawl_home, "pw")}


def test_topic_page_with_one_post_not_stored_is_fetched_again_with_all_its_posts(crawl_home, sites, site_log):
    """A topic page holds several documents: it is seen only when every one of them is stored."""
    topic = sites.url("/xf/threads/topic.1/")
    write_config(crawl_home, f"""
[[sources]]
name = "xf"
kind = "forum"
preset = "xenforo"
start_urls = ["{sites.url('/xf/forums/bases.2/')}"]
""")
    _sql(crawl_home, FAIL_REPOSTS.replace("WHEN NEW.verdict = 'repost'",
                                          f"WHEN NEW.verdict = 'repost' AND NEW.url = '{topic}#post-12'"))
    first = run_crawl(crawl_home, "xf")
    assert not first.ok and first.detail["lost"] == 1, first
    urls = {f["url"] for f in findings_of(crawl_home, "xf")}
    assert f"{topic}#post-12" not in urls and urls  # the other copies (attachment, other topics) are stored
    _sql(crawl_home, "DROP TRIGGER dw_test_fail")
    site_log.clear_log()
    second = run_crawl(crawl_home, "xf")
    fetched = set(site_log.paths())
    assert "/xf/threads/topic.1/" in fetched  # the topic page again, for its lost post
    assert "/xf/threads/topic.2/" not in fetched  # a topic whose posts were all stored is not
    assert second.ok and second.findings == 1, second
    assert f"{topic}#post-12" in {f["url"] for f in findings_of(crawl_home, "xf")}

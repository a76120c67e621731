"""A forum post id holding terminal escape sequences (issue 10, case 2): the crawl log shows them
escaped, the finding keeps the value, and the commands that print it show it escaped."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from dumpwatch.devkit.localsites import SiteServer
from tests.helpers.crawlkit import code_block, findings_of, repost, run_crawl, write_config
from tests.helpers.sitesrv import template

PID = "12\x1b]0;pwned\x07\x1b[31m\u202e"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile_forum(people):
    srv = SiteServer().start()
    prefix = "/phpbb"
    post = template("phpbb/post.html", pid=PID, author="anon", root=prefix, attachments="",
                    content="voici :<br />" + code_block(repost(people[0:20], "csv", 7))).decode()
    row = template("phpbb/topic_row.html", tid="1", title="Base", uid="7", author="anon", replies="1",
                   root=prefix).decode()
    srv.add(f"{prefix}/viewforum.php?f=2", template("phpbb/viewforum.html", count="1", topics=row, pagination="",
                                                    root=prefix))
    srv.add(f"{prefix}/viewtopic.php?t=1", template("phpbb/viewtopic.html", tid="1", title="Base", count="1",
                                                    posts=post, pagination="", root=prefix))
    try:
        yield srv
    finally:
        srv.stop()


def test_escape_sequences_in_a_post_id_are_shown_escaped(crawl_home, hostile_forum):
    write_config(crawl_home, f"""
[[sources]]
name = "hostile"
kind = "forum"
preset = "phpbb"
start_urls = ["{hostile_forum.base}/phpbb/viewforum.php?f=2"]
""")
    result = run_crawl(crawl_home, "hostile")
    assert result.ok, result
    [finding] = findings_of(crawl_home, "hostile")
    assert finding["url"].endswith("#p" + PID)  # the database keeps the value as it was found

    with open(result.log_path, encoding="utf-8") as fh:
        log = fh.read()
    assert "#p12\\x1b]0;pwned\\x07\\x1b[31m\\u202e" in log  # the finding's line names it, escaped
    assert not RAW.search(log), RAW.search(log)

    from dumpwatch.cli.main import cli

    for args in (["findings", "list"], ["findings", "show", str(finding["id"])], ["findings", "list", "--json"]):
        out = CliRunner().invoke(cli, ["--home", str(crawl_home.root), *args], catch_exceptions=False).output
        assert not RAW.search(out), (args, out)
    line = CliRunner().invoke(cli, ["--home", str(crawl_home.root), "findings", "list", "--json"]).output
    assert json.loads(line.splitlines()[0])["url"] == finding["url"]

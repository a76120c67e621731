"""dumpwatch.escape: one rule per output kind, fed the hostile corpus and arbitrary text (Hypothesis).

Markdown is checked with a real CommonMark + GFM renderer (markdown-it-py, tables and linkify on):
no link, image or HTML tag comes out of content, and a table row keeps its cells.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from dumpwatch.escape import (ONE_LINE_LIMIT, EscapingFilter, escape_logs, json_line, markdown, mrkdwn,
                              mrkdwn_markdown, plain, terminal)

SLACK_BAIT = ("<!channel> <http://evil.example/login|CNIL: verify here> [Click](http://evil.example/phish) "
              "<img src=x onerror=alert(1)> @channel")
HOSTILE = [
    SLACK_BAIT,
    "\x1b]0;title\x07",
    "\x1b[31mred\x1b[0m",
    "invoice\u202etxt.exe and \u2066isolated\u2069 \u202aembedded\u202c",
    "nul\x00byte",
    "line one\r\nforged: CRITICAL line two\rthree\nfour",
    "http://evil.example/" + "a" * 100_000,
    "<!here> <!everyone> <@U024BE7LH> <#C024BE7LR> <!subteam^SAZ94GDB8> @here @everyone @all ＠channel",
    "![pixel](http://evil.example/p.png) <http://evil.example> www.evil.example x@evil.example",
    "a | b | c `code` *bold* _it_ ~strike~ \\ # not a heading",
    "\x9b31m C1 CSI \x85 NEL \x7f DEL \u2028 LS \u2029 PS",
    "http://x@channel/`<!here>`|y and `@all` and [a](`http://e`)",
]
# What a terminal obeys or reorders: C0, DEL, C1, bidi controls, line/paragraph separators.
RAW = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MENTION = re.compile(r"[@＠](?:channel|here|everyone|all)\b|[@＠]\w", re.IGNORECASE)
# Arbitrary text, and text made of the pieces that matter to the renderers (found by Hypothesis:
# "@_", "_http://<@channel", "\n.http://", "`http://](" each broke a first version).
TOKENS = [*"<>&[]()!@`*_~#|-+=.:/\\ \n\r\x1bhtpswx1aA", "://", "http://", "www.", "](", "@channel", "\u202e"]
TEXT = st.one_of(st.text(), st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
MD = MarkdownIt("gfm-like")  # CommonMark + raw HTML, GFM tables, strikethrough, linkify (autolinks)
MD.linkify.set({"fuzzy_link": False})  # as GFM: a bare name autolinks with www. or a scheme only


def render_md(text: str) -> str:
    return MD.render(text)


# -- terminal and plain ---------------------------------------------------------------------------

@pytest.mark.parametrize("escape", [terminal, plain])
@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_and_plain_leave_no_raw_control(escape, text):
    out = escape(text)
    assert not RAW.search(out), repr(out[:200])
    assert "\n" not in out and "\r" not in out  # a one-line field forges no line


def test_terminal_shows_what_it_escaped():
    assert terminal("\x1b]0;title\x07") == "\\x1b]0;title\\x07"
    assert terminal("\x1b[31m") == "\\x1b[31m"
    assert terminal("a\u202eb\u2066c") == "a\\u202eb\\u2066c"
    assert terminal("a\r\nb\x00") == "a\\r\\nb\\x00"
    assert terminal("\x9b\x7f") == "\\x9b\\x7f"
    assert terminal("café ✓ 𝔸") == "café ✓ 𝔸"  # printable text is left alone


def test_multiline_keeps_line_feeds_only():
    assert terminal("a\nb\x1b[2J\rc", multiline=True) == "a\nb\\x1b[2J\\rc"


def test_long_one_line_value_is_cut_with_a_marker():
    url = "http://evil.example/" + "a" * 100_000
    out = terminal(url)
    assert len(out) < ONE_LINE_LIMIT + 50 and out.endswith(f"… [{len(url) - ONE_LINE_LIMIT} more characters]")
    assert terminal(url, multiline=True) == url  # multi-line text (a stored message) is not cut
    assert len(markdown(url)) < ONE_LINE_LIMIT + 80 and len(mrkdwn(url)) < ONE_LINE_LIMIT + 80


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_terminal_property(text):
    out = terminal(text, limit=None)
    assert not RAW.search(out)
    assert terminal(out, limit=None) == out  # nothing left to escape
    if not RAW.search(text):
        assert out == text  # and nothing else changed


@given(TEXT)
@settings(max_examples=200, deadline=None)
def test_json_line_is_the_same_json_without_raw_controls(text):
    value = {"url": text, "nested": [text]}
    out = json_line(value, sort_keys=True, indent=1)
    assert json.loads(out) == value
    assert not RAW.search(out.replace("\n", ""))


# -- markdown -------------------------------------------------------------------------------------

LIVE = re.compile(r"<a |<img|<script|<b>|<i>|<em>|<strong>|<del>|<s>|<h\d|<li|<blockquote|<hr|<table|<pre", re.I)
# In chat, emphasis from content (*, _, ~) only changes how text looks: what must never come out of
# content is a link, an image or HTML.
CHAT_LIVE = re.compile(r"<a |<img|<script|<iframe|<b>|<h\d|<table", re.I)


def _cell(text: str) -> str:
    return MD.render(f"| a | b | c |\n|---|---|---|\n| {markdown(text)} | 2 | `x` |\n")


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_renders_inert(text):
    out = markdown(text)
    assert not RAW.search(out) and "\n" not in out
    html = render_md(f"Location: {out}")
    assert not LIVE.search(html), html[:500]
    assert not MENTION.search(_text_of(html))


def _text_of(html: str) -> str:
    """The visible text of rendered HTML outside code (where no renderer looks for mentions)."""
    html = re.sub(r"<code>.*?</code>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_table_keeps_its_columns(text):
    html = _cell(text)
    body = html.split("<tbody>")[1]
    assert body.count("<td") == 3, body[:500]
    assert not LIVE.search(body.replace("<table", "")), body[:500]


def test_markdown_shows_urls_as_code_and_content_as_text():
    out = markdown(SLACK_BAIT)
    html = render_md(out)
    assert "<code>http://evil.example/phish</code>" in html and "<a " not in html
    assert "[Click]" in _text_of(html) and "<!channel>" in _text_of(html)  # shown, not obeyed
    assert "@\u2060channel" in out


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_markdown_property(text):
    out = markdown(text, limit=None)
    assert not RAW.search(out) and "\n" not in out
    html = _cell(text if len(text) < 500 else text[:500])
    assert html.split("<tbody>")[1].count("<td") == 3
    assert not LIVE.search(html.split("<tbody>")[1]), (text, html)
    assert not MENTION.search(_text_of(render_md(out)))


# -- mrkdwn (Slack, Mattermost) -------------------------------------------------------------------

def _outside_code(text: str) -> str:
    return re.sub(r"`[^`]*`", " ", text)  # as Mattermost does before it looks for mentions


def assert_chat_inert(out: str) -> None:
    assert not RAW.search(out.replace("\n", "")), repr(out[:200])
    assert "<" not in out and ">" not in out  # Slack: no <!channel>, <url|text>, <@U…>; Mattermost too
    outside = _outside_code(out)
    assert not re.search(r"&(?!amp;|lt;|gt;)", outside)  # every & is an entity Slack decodes
    # Mattermost mentions every @word outside code (it strips code first); Slack with link_names
    assert not MENTION.search(outside), out
    assert "](" not in outside  # Mattermost renders [text](url) and ![](url)
    # Mattermost's Markdown: no link, image or HTML from it (a value is always inside a line)
    assert not CHAT_LIVE.search(render_md("at " + out)), render_md("at " + out)[:500]


@pytest.mark.parametrize("text", HOSTILE)
def test_mrkdwn_is_inert_in_slack_and_mattermost(text):
    out = mrkdwn(text)
    assert "\n" not in out
    assert_chat_inert(out)


def test_mrkdwn_escapes_per_slack_spec():
    out = mrkdwn(SLACK_BAIT)
    assert out.startswith("&lt;!channel&gt; &lt;`http://evil.example/login%7CCNIL`")
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert mrkdwn("a & b") == "a &amp; b"
    assert mrkdwn("run `rm`") == "run ˋrmˋ"  # content cannot open or close a code span


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_mrkdwn_property(text):
    assert_chat_inert(mrkdwn(text, limit=None))


@given(TEXT)
@settings(max_examples=200, deadline=None)
def test_a_markdown_draft_is_inert_in_chat_and_unchanged(text):
    md = markdown(text, limit=None)
    assert mrkdwn_markdown(md) == md
    out = mrkdwn_markdown("legacy draft: " + text)
    assert not RAW.search(out.replace("\n", "")) and "<" not in out and ">" not in out
    assert not MENTION.search(_outside_code(out)) and "](" not in _outside_code(out)


# -- logs -----------------------------------------------------------------------------------------

def test_log_filter_escapes_message_arguments_and_traceback():
    import io

    stream = io.StringIO()
    handler = escape_logs(logging.StreamHandler(stream))
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test_escape.filter")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("finding at %s", "http://f.example/t#p\x1b]0;title\x07\x1b[31m\nFAKE CRITICAL")
        try:
            raise ValueError("bad id \x1b[2J")
        except ValueError:
            log.exception("post %s failed", "\u202eevil")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "#p\\x1b]0;title\\x07\\x1b[31m\n    FAKE CRITICAL" in out  # no line of its own
    assert "ValueError: bad id \\x1b[2J" in out and "\\u202eevil" in out
    assert sum(isinstance(f, EscapingFilter) for f in escape_logs(handler).filters) == 1


def test_the_front_door_escapes_its_log(tmp_path):
    """`dumpwatch -v …` logs through a handler with the filter (a child process: pytest owns this one's)."""
    code = ("import logging, sys\n"
            "from dumpwatch.cli.main import cli\n"
            "@cli.command('hostile-log')\n"
            "def _hostile():\n"
            "    logging.getLogger('dumpwatch.test').warning('post %s', 'p\\x1b]0;pwned\\x07\\x1b[31m')\n"
            f"cli.main(args=['--home', {str(tmp_path / 'home')!r}, '-v', 'hostile-log'], standalone_mode=False)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "post p\\x1b]0;pwned\\x07\\x1b[31m" in proc.stderr
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_scan_errors_naming_a_zip_member_print_no_raw_escape(home, tmp_path):
    """A zip member named with ESC]0;…BEL and ESC[31m, whose data is corrupt: the error names it."""
    import io
    import zipfile

    from click.testing import CliRunner

    from dumpwatch.cli.main import cli

    member = "p\x1b]0;pwned\x07\x1b[31m\u202e.csv"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ok.txt", "hello\n")
        zf.writestr(member, "a;b\n" * 1000)
    data = bytearray(buf.getvalue())
    at = data.find(member.encode("utf-8")) + len(member.encode("utf-8")) + 5
    data[at:at + 20] = b"\xff" * 20  # corrupt the member's compressed data
    (tmp_path / "dump.zip").write_bytes(bytes(data))
    for args in ([], ["--json"]):
        result = CliRunner().invoke(cli, ["--home", str(home.root), "scan", str(tmp_path / "dump.zip"), *args])
        assert result.exit_code == 1, result.output
        assert "p\\x1b]0;pwned\\x07\\x1b[31m\\u202e.csv" in result.output or (
            args and "p\\u001b]0;pwned\\u0007\\u001b[31m\\u202e.csv" in result.output), result.output
        assert not RAW.search(result.output.replace("\n", "")), repr(result.output)

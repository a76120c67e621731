"""Hostile page content through every alert output (issue 10, cases 1 and 2).

A feed entry's link, a post id or a zip member name is written by the people who trade stolen
databases. Fed through the renderers (subject, plain text, Article 33 Markdown draft with its
evidence table, HTML), the channel payloads (Slack/Mattermost text, JSON webhook, email) and the
commands that print stored text, nothing of it may act: no mention, live link, image or tag, no
broken table, no raw control character.
"""

from __future__ import annotations

import dataclasses
import json
import re

from click.testing import CliRunner
from markdown_it import MarkdownIt

from tests.helpers.alertkit import Capture, base_config, make_finding
from alerts import record_finding
from alerts.channels import email, webhook
from alerts.delivery import deliver_due
from alerts.outbox import alerting_of
from alerts.render import alert_view, render
from dumpwatch import store
from dumpwatch.cli.main import cli

BAIT = ("<!channel> <http://evil.example/login|CNIL: verify here> [Click](http://evil.example/phish) "
        "<img src=x onerror=alert(1)> @channel")
HOSTILE_URL = ("http://forum.example/t/1#p" + BAIT + " \x1b]0;pwned\x07\x1b[31m red \u202eexe.txt\u202c"
               "\x00 <@U024BE7LH> \r\nFORGED: CRITICAL line ![px](http://evil.example/p.png) a|b|c")
LONG_URL = "http://evil.example/" + "a" * 100_000
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MENTION = re.compile(r"[@＠](?:channel|here|everyone|all)\b|[@＠]\w", re.IGNORECASE)
MD = MarkdownIt("gfm-like")
MD.linkify.set({"fuzzy_link": False})
LIVE_HTML = re.compile(r"<a |<img|<script", re.I)


def _cfg(**kw):
    return base_config(cnil_url="http://127.0.0.1:9/hook", secret_file="/nonexistent", smtp_port=9, labs=[], **kw)


def _hostile(people):
    f = make_finding(people[:12], url=HOSTILE_URL, sha="a" * 64)
    return dataclasses.replace(f, sample=(*f.sample, "\x1b[2J" + BAIT))


def _messages(people):
    cfg = _cfg()
    db = store.open_db(None)
    record_finding(db, _hostile(people), source="feeds", config=cfg)
    record_finding(db, make_finding(people[20:30], url=LONG_URL, sha="b" * 64), source="feeds", config=cfg)
    cap = Capture()
    deliver_due(db, alerting_of(cfg), sender=cap)
    return cfg, cap


def assert_no_raw_control(text: str, where: str) -> None:
    assert not RAW.search(text), f"raw control character in {where}: {RAW.search(text)!r}"


def test_plain_text_and_subject(people):
    _, cap = _messages(people)
    [message] = cap.to("cnil")
    head = message.text.split("\n" + "-" * 72 + "\n")[0]
    assert_no_raw_control(message.text, "the text")
    assert "\r" not in message.text and "\n" not in message.subject
    assert not any(line.startswith("FORGED") for line in message.text.splitlines())
    assert "\\x1b]0;pwned\\x07\\x1b[31m" in head and "\\u202eexe.txt" in head  # shown, escaped
    assert len(message.text) < 20_000  # the 100 KB URL is cut, with a marker
    assert "more characters]" in head


def test_article33_draft_renders_no_link_image_or_html_and_keeps_its_table(people):
    _, cap = _messages(people)
    [message] = cap.to("cnil")
    draft = message.markdown
    assert_no_raw_control(draft, "the draft")
    html = MD.render(draft)
    assert not LIVE_HTML.search(html), LIVE_HTML.search(html)
    assert not MENTION.search(re.sub(r"<[^>]+>", "", re.sub(r"<code>.*?</code>", "", html)))
    table = html.split("<table>")[1].split("</table>")[0]
    head, body = table.split("<tbody>")
    assert head.count("<th>") == 4
    rows = body.split("<tr>")[1:]
    assert len(rows) == 2 and all(r.count("<td>") == 4 for r in rows), body[:2000]
    assert "<code>http://forum.example/t/1#p" in html  # URLs shown as code
    assert "\\x1b]0;pwned" in re.sub(r"<[^>]+>", "", html)  # shown, escaped


def test_html_email_stays_escaped(people):
    _, cap = _messages(people)
    [message] = cap.to("cnil")
    body = message.html.split("<body>")[1]
    assert "<img" not in body and "<a " not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert_no_raw_control(message.html, "the HTML")


def test_email_parts_decoded_hold_no_raw_control(people):
    cfg, cap = _messages(people)
    [message] = cap.to("cnil")
    receiver = dataclasses.replace(alerting_of(cfg).receivers["cnil"], type="email", to=("dpo@lab.example",))
    from email import message_from_bytes, policy

    mail = message_from_bytes(email.build(receiver, message, "dw-test").as_bytes(), policy=policy.default)
    assert "FORGED" not in "".join(f"{k}: {v}\n" for k, v in mail.items())
    parts = {p.get_content_type(): p.get_content() for p in mail.walk() if not p.is_multipart()}
    assert set(parts) == {"text/plain", "text/html", "text/markdown"}
    for kind, content in parts.items():  # decoded, as the reader's mail client shows them
        content = content.decode() if isinstance(content, bytes) else content
        assert_no_raw_control(content.replace("\r\n", "\n"), kind)


def test_slack_and_mattermost_payload_is_inert(people):
    cfg, cap = _messages(people)
    receiver = dataclasses.replace(alerting_of(cfg).receivers["ops"], format="slack")
    for message in cap.to("cnil") + cap.to("ops"):
        text = json.loads(webhook.body_of(receiver, message))["text"]
        assert_no_raw_control(text, "the Slack text")
        assert "<" not in text and ">" not in text, "a Slack control sequence (<!channel>, <url|text>) survived"
        assert not MENTION.search(re.sub(r"`[^`]*`", " ", text)), text  # Mattermost skips code
        assert "](" not in re.sub(r"`[^`]*`", " ", text)  # Mattermost renders Markdown links and images
        assert "&lt;!channel&gt;" in text and "@\u2060channel" in text  # shown, inert
        assert not LIVE_HTML.search(MD.render(text))  # Mattermost renders Markdown


def test_json_webhook_is_data(people):
    cfg, cap = _messages(people)
    [message] = cap.to("cnil")
    body = webhook.body_of(alerting_of(cfg).receivers["cnil"], message)
    data = json.loads(body)
    assert HOSTILE_URL in {a["url"] for a in data["alerts"]}  # the value itself, JSON-escaped on the wire
    assert b"\x1b" not in body


def test_source_health_detail_and_names_are_escaped():
    finding = {"id": 1, "verdict": "source-health", "source": "feed\x1b[31m", "url": "",
               "detail": {"problem": "blocked\x1b]0;x\x07", "error": BAIT}, "detected_at": "2021-02-24T10:00:00+00:00"}
    alert = {"alert_key": "k", "severity": "medium", "created_at": "2021-02-24T10:00:00+00:00", "lab": ""}
    message = render(receiver="ops", kind="alert", idempotency_key="dw-x", views=[alert_view(alert, finding)],
                     incident=None, leaks={})
    assert_no_raw_control(message.subject + message.text, "a health message")
    receiver = dataclasses.replace(alerting_of(_cfg()).receivers["ops"], format="slack")
    text = json.loads(webhook.body_of(receiver, message))["text"]
    assert "<" not in text and not MENTION.search(re.sub(r"`[^`]*`", " ", text))


# -- the commands that print stored text -------------------------------------------------------------

def test_findings_and_alerts_commands_print_no_raw_escape(home, people, secret_file, webhook):
    home.config_path.write_text(
        "[alerts]\ngroup_wait = 0\n\n"
        f'[[receivers]]\nname = "cnil"\ntype = "webhook"\nurl = "{webhook.url}"\nsecret_file = "{secret_file}"\n')
    db = store.open_db(home.db_path)
    fid = record_finding(db, _hostile(people), source="feeds", config=home.load_config())
    db.close()

    def run(*args):
        result = CliRunner().invoke(cli, ["--home", str(home.root), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "delivered 1" in run("alerts", "send")
    outputs = {
        "findings list": run("findings", "list"),
        "findings show": run("findings", "show", str(fid)),
        "findings list --json": run("findings", "list", "--json"),
        "alerts list": run("alerts", "list"),
        "alerts show": run("alerts", "show", "1"),
        "alerts show --draft": run("alerts", "show", "1", "--draft"),
        "alerts show --json": run("alerts", "show", "1", "--json"),
    }
    for name, out in outputs.items():
        assert_no_raw_control(out.replace("\n", ""), name)
        assert "\r" not in out, name
    assert "\\x1b]0;pwned\\x07\\x1b[31m" in outputs["findings show"]  # the value is there, shown escaped
    assert "\\x1b]0;pwned" in outputs["alerts show"]
    assert json.loads(outputs["findings list --json"].splitlines()[0])["url"] == HOSTILE_URL

"""Crawler fixtures: an enrolled home, a real pinnwand, a local site server with saved page structures.

Every server listens on 127.0.0.1 on a free port and is stopped by its fixture. Repost content is
synthetic (dumpwatch.devkit.synth), made here at fixture time; the saved page structures under sites/ hold
only the pages' markup.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import httpx
import pytest

from dumpwatch.devkit import synth
from dumpwatch.devkit.localsites import Route, SiteServer, start_pinnwand  # shared with `dumpwatch demo`
from tests.helpers.sitesrv import template
from tests.helpers.crawlkit import LEAK, NOISE, ROOT, code_block, compressed, free_port, repost  # noqa: F401


def html_escape(text: str) -> str:
    return html.escape(text, quote=False)


# -- the enrolled leak ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def enrolled_home(enrolled_root) -> Path:
    """A home with the synthetic leak (600 people) enrolled through the CLI (tests/conftest.py)."""
    return enrolled_root


@pytest.fixture
def crawl_home(enrolled_home, tmp_path, monkeypatch):
    """A fresh copy of the enrolled home for one test."""
    from dumpwatch.home import Home

    root = tmp_path / "home"
    shutil.copytree(enrolled_home, root)
    monkeypatch.delenv("DUMPWATCH_KEY", raising=False)
    monkeypatch.delenv("DUMPWATCH_KEY_FILE", raising=False)
    monkeypatch.delenv("DUMPWATCH_CONFIG", raising=False)
    monkeypatch.setenv("DUMPWATCH_HOME", str(root))
    return Home.resolve(root)


# -- pinnwand ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pinnwand(tmp_path_factory):
    """A real pinnwand on 127.0.0.1 with raised rate limits, and its listing handlers."""
    server = start_pinnwand(tmp_path_factory.mktemp("pinnwand"))
    try:
        yield server.base
    finally:
        server.stop()


def create_paste(base: str, content: str, name: str = "paste.txt") -> dict:
    r = httpx.post(f"{base}/api/v1/paste", json={
        "expiry": "1day", "files": [{"name": name, "lexer": "text", "content": content}]}, timeout=10)
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="session")
def pastes(pinnwand, people, strangers) -> dict[str, list[str]]:
    """Reposts and noise created through pinnwand's API; returns their raw URLs by category."""
    made: dict[str, list[str]] = {"repost": [], "noise": []}
    bodies = [
        ("repost", repost(people[0:25], "csv", 1)),
        ("repost", repost(people[30:50], "json", 2, english=True, spaced=True)),
        ("repost", repost(people[60:75], "kv", 3)),
        ("noise", NOISE[0]),
        ("noise", NOISE[1]),
        ("noise", NOISE[2]),
    ]
    for kind, body in bodies:
        link = create_paste(pinnwand, body)["link"]
        slug = link.rstrip("/").rsplit("/", 1)[-1]
        page = httpx.get(f"{pinnwand}/{slug}", timeout=10).text
        fslug = page.split('class="file-show', 1)[0].rsplit('id="', 1)[1].split('"', 1)[0]
        made[kind].append(f"{pinnwand}/raw/{fslug}")
    return made


# -- the local sites -----------------------------------------------------------------------------

FORUMS = {
    # name: (path prefix, board URL, page-2 board URL, topic URL pattern, topic page-2 suffix)
    "phpbb": ("/phpbb", "/phpbb/viewforum.php?f=2", "/phpbb/viewforum.php?f=2&start=25",
              "/phpbb/viewtopic.php?t={tid}", "&start=10"),
    "mybb": ("/mybb", "/mybb/forumdisplay.php?fid=2", "/mybb/forumdisplay.php?fid=2&page=2",
             "/mybb/showthread.php?tid={tid}", "&page=2"),
    "xenforo": ("/xf", "/xf/forums/bases.2/", "/xf/forums/bases.2/page-2", "/xf/threads/topic.{tid}/", "page-2"),
}


class Sites:
    """The site server plus what was put where (for assertions)."""

    def __init__(self, server: SiteServer):
        self.server = server
        self.base = server.base
        self.reposts: dict[str, set[str]] = {}  # site -> URLs whose documents are reposts
        self.noise: dict[str, set[str]] = {}

    def url(self, path: str) -> str:
        return self.base + path


def _forum(sites: Sites, forum: str, people: list[dict[str, str]], seed: int) -> None:
    srv = sites.server
    prefix, board1, board2, topic_pat, page2 = FORUMS[forum]
    href = {"phpbb": lambda u: "." + u[len(prefix):], "mybb": lambda u: u[len(prefix) + 1:],
            "xenforo": lambda u: u}[forum]
    reposts, noise = sites.reposts.setdefault(forum, set()), sites.noise.setdefault(forum, set())

    def topic_url(tid: int, page: int = 1) -> str:
        url = topic_pat.format(tid=tid)
        return url + page2 if page == 2 else url

    def nxt(url: str) -> str:
        return template(f"{forum}/pagination_next.html", href=href(url).replace("&", "&amp;")).decode()

    def post(pid: int, content: str, attachments: str = "") -> str:
        return template(f"{forum}/post.html", pid=str(pid), author="anon", content=content,
                        attachments=attachments, root=prefix).decode()

    def attach(aid: int, filename: str, body: bytes) -> str:
        path = {"phpbb": f"{prefix}/download/file.php?id={aid}", "mybb": f"{prefix}/attachment.php?aid={aid}",
                "xenforo": f"{prefix}/attachments/{filename}.{aid}/"}[forum]
        srv.add(path, body, headers={"Content-Type": "application/octet-stream",
                                     "Content-Disposition": f'attachment; filename="{filename}"'})
        reposts.add(sites.url(path))
        return template(f"{forum}/attachbox.html", aid=str(aid), filename=filename, root=prefix).decode()

    def topic_page(tid: int, title: str, posts: str, page: int = 1, has_next: bool = False) -> None:
        url = topic_url(tid, page)
        page_tpl = {"phpbb": "viewtopic.html", "mybb": "showthread.html", "xenforo": "thread.html"}[forum]
        srv.add(url, template(f"{forum}/{page_tpl}", tid=str(tid), title=title, count="3", posts=posts,
                              pagination=nxt(topic_url(tid, 2)) if has_next else "", root=prefix))

    def row(tid: int, title: str) -> str:
        return template(f"{forum}/topic_row.html", tid=str(tid), title=title, uid="7", author="anon",
                        replies="2", root=prefix).decode()

    board_tpl = {"phpbb": "viewforum.html", "mybb": "forumdisplay.html", "xenforo": "forum.html"}[forum]
    srv.add(board1, template(f"{forum}/{board_tpl}", count="3", topics=row(1, "Base labos Bretagne 2021") + row(2, "Recette"),
                             pagination=nxt(board2), root=prefix))
    srv.add(board2, template(f"{forum}/{board_tpl}", count="3", topics=row(3, "La suite"), pagination="", root=prefix))

    # Topic 1: a noise post, a repost in a [code] block, an attached zip.
    zipped = compressed(repost(people[20:50], "csv", seed + 1), "zip")
    topic_page(1, "Base labos Bretagne 2021",
               post(11, f"<p>{html_escape(NOISE[4])}</p>")
               + post(12, "voici un extrait :<br />" + code_block(repost(people[0:20], "csv", seed)),
                      attach(1, "base_labos.zip", zipped)))
    reposts.add(sites.url(topic_url(1)) + "#" + {"phpbb": "p12", "mybb": "post_12", "xenforo": "post-12"}[forum])
    noise.add(sites.url(topic_url(1)) + "#" + {"phpbb": "p11", "mybb": "post_11", "xenforo": "post-11"}[forum])
    # Topic 2: noise, with a link to a file host (another page of the same site).
    link_path = f"{prefix}/files/partie2.json.gz"
    srv.add(link_path, compressed(repost(people[50:70], "json", seed + 2, english=True), "gzip"),
            headers={"Content-Type": "application/gzip"})
    reposts.add(sites.url(link_path))
    link_cls = {"phpbb": 'class="postlink"', "mybb": 'target="_blank" rel="noopener" class="mycode_url"',
                "xenforo": 'target="_blank" class="link link--external" rel="nofollow ugc noopener"'}[forum]
    topic_page(2, "Recette", post(21, f"<p>{html_escape(NOISE[3])}</p> la suite ici : "
                                      f'<a href="{sites.url(link_path)}" {link_cls}>{sites.url(link_path)}</a>'))
    # Topic 3 (board page 2): two pages, the repost on the second.
    topic_page(3, "La suite", post(31, f"<p>{html_escape(NOISE[4])}</p>"), has_next=True)
    topic_page(3, "La suite", post(32, code_block(repost(people[70:90], "kv", seed + 3))), page=2)
    reposts.add(sites.url(topic_url(3, 2)) + "#" + {"phpbb": "p32", "mybb": "post_32", "xenforo": "post-32"}[forum])


def _bad_pages(sites: Sites, people: list[dict[str, str]]) -> None:
    """phpBB topic 4 links to everything that goes wrong on the web (404, 500, timeouts, 429, …)."""
    srv = sites.server
    reposts = sites.reposts["phpbb"]
    f = "/phpbb/files"
    srv.add(f"{f}/moved", b"", status=302, headers={"Location": f"{f}/moved-here.txt"})
    srv.add(f"{f}/moved-here.txt", repost(people[100:120], "kv", 41), headers={"Content-Type": "text/plain"})
    reposts.add(sites.url(f"{f}/moved"))
    srv.add(f"{f}/boom", "<h1>Internal Server Error</h1>", status=500)
    srv.add(f"{f}/slow.txt", NOISE[0], delay=3.0, headers={"Content-Type": "text/plain"})
    limited = srv.add(f"{f}/limited.csv", "slow down", status=429,
                      headers={"Retry-After": "1", "Content-Type": "text/plain"})
    limited.then.append(Route(repost(people[120:140], "csv", 42).encode(), headers={"Content-Type": "text/csv"}))
    reposts.add(sites.url(f"{f}/limited.csv"))
    srv.add(f"{f}/latin1.txt", repost(people[140:160], "kv", 43).encode("latin-1", "replace"),
            headers={"Content-Type": "text/plain; charset=utf-8"})  # declared UTF-8, bytes in Latin-1
    reposts.add(sites.url(f"{f}/latin1.txt"))
    srv.add(f"{f}/binary.bin", bytes(range(256)) * 64, headers={"Content-Type": "application/octet-stream"})
    srv.add(f"{f}/huge.csv", b"a;b\n" * 300_000, headers={"Content-Type": "text/csv"})  # 1.2 MB > limit
    srv.add("/private/all.csv", repost(people[160:180], "csv", 44), headers={"Content-Type": "text/csv"})
    srv.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"})
    links = [f"{f}/missing.csv", f"{f}/boom", f"{f}/slow.txt", f"{f}/moved", f"{f}/limited.csv", f"{f}/latin1.txt",
             f"{f}/binary.bin", f"{f}/huge.csv", "/private/all.csv"]
    body = "<p>liens :</p>" + "".join(f'<a href="{sites.url(u)}" class="postlink">{u}</a><br />' for u in links)
    page = template("phpbb/viewtopic.html", tid="4", title="Liens", count="1", pagination="",
                    posts=template("phpbb/post.html", pid="41", author="anon", content=body,
                                   attachments="").decode())
    srv.add("/phpbb/viewtopic.php?t=4", page)
    # listed on the second board page
    board2 = FORUMS["phpbb"][2]
    route = srv.routes[board2]
    row = template("phpbb/topic_row.html", tid="4", title="Liens", uid="7", author="anon", replies="0").decode()
    route.body = route.body.replace(b'<ul class="topiclist topics">', b'<ul class="topiclist topics">' + row.encode())


def _discourse(sites: Sites, people: list[dict[str, str]]) -> None:
    srv = sites.server
    reposts = sites.reposts.setdefault("discourse", set())
    p = "/disc"

    def post(pid: int, number: int, tid: int, cooked: str) -> dict:
        return {"id": pid, "name": None, "username": "anon", "avatar_template": "/user_avatar/anon/{size}/3_2.png",
                "created_at": "2021-02-24T10:12:00.000Z", "cooked": cooked, "post_number": number, "post_type": 1,
                "updated_at": "2021-02-24T10:12:00.000Z", "reply_count": 0, "topic_id": tid,
                "topic_slug": f"topic-{tid}", "yours": False, "can_edit": False}

    def topic(tid: int, posts: list[dict], last: str = "2021-02-24T18:40:00.000Z", shown: int = 20) -> dict:
        srv.add(f"{p}/t/topic-{tid}/{tid}.json", template(
            "discourse/topic.json", posts=json.dumps(posts[:shown]), stream=json.dumps([x["id"] for x in posts]),
            id=str(tid), title=json.dumps(f"Sujet {tid}"), posts_count=str(len(posts)), last_posted_at=last,
            slug=f"topic-{tid}"), headers={"Content-Type": "application/json"})
        if len(posts) > shown:
            srv.add(f"{p}/t/{tid}/posts.json?*", json.dumps({"post_stream": {"posts": posts[shown:]}}),
                    headers={"Content-Type": "application/json"})
        return {"id": tid, "title": f"Sujet {tid}", "slug": f"topic-{tid}", "posts_count": len(posts),
                "last_posted_at": last, "bumped_at": last, "category_id": 5}

    table = synth.render(*synth.transform(people[200:220], seed=51), "html")
    body = table.split("<table>", 1)[1].split("</table>", 1)[0]
    t1 = [post(100, 1, 1, f"<p>extrait :</p><table>{body}</table>")]
    t1 += [post(100 + i, i, 1, "<p>merci</p>") for i in range(2, 26)]
    t1[22] = post(123, 23, 1, "<pre><code>" + html_escape(repost(people[220:240], "csv", 52)) + "</code></pre>")
    upload = f"{p}/uploads/default/original/1X/3f2a9c.csv"
    srv.add(upload, repost(people[240:260], "csv", 53, english=True), headers={"Content-Type": "text/csv"})
    t2 = [post(200, 1, 2, f'<p>le fichier complet : <a href="{upload}">base.csv</a> (1,2 Mo)</p>'),
          post(201, 2, 2, "<p>" + html_escape(NOISE[3]) + "</p>")]
    t3 = [post(300, 1, 3, "<p>" + html_escape(NOISE[0]) + "</p>")]
    topics1 = [topic(1, t1), topic(2, t2)]
    topics2 = [topic(3, t3)]
    srv.add(f"{p}/latest.json", template("discourse/latest.json", topics=json.dumps(topics1),
                                         more='"more_topics_url":"/latest?page=1",'),
            headers={"Content-Type": "application/json"})
    srv.add(f"{p}/latest.json?page=1", template("discourse/latest.json", topics=json.dumps(topics2), more=""),
            headers={"Content-Type": "application/json"})
    reposts.update({sites.url(f"{p}/t/topic-1/1/1"), sites.url(f"{p}/t/topic-1/1/23"), sites.url(upload)})


def _feeds(sites: Sites, people: list[dict[str, str]]) -> None:
    srv = sites.server
    reposts = sites.reposts.setdefault("feeds", set())
    base = sites.base
    table = synth.render(*synth.transform(people[300:320], seed=61), "html")
    entry = "<p>Extrait :</p><table>" + table.split("<table>", 1)[1].split("</table>", 1)[0] + "</table>"
    srv.add("/feeds/rss.xml", template("feeds/rss.xml", base=base, entry_content=entry, noise=NOISE[3]),
            headers={"Content-Type": "application/rss+xml; charset=utf-8"})
    srv.add("/blog/base-labos-2021/", f"<html><body><article>{html_escape(NOISE[4])}</article></body></html>")
    srv.add("/blog/far-breton/", f"<html><body><article>{html_escape(NOISE[3])}</article></body></html>")
    srv.add("/blog/files/extrait.csv.gz", compressed(repost(people[320:340], "csv", 62), "gzip"),
            headers={"Content-Type": "application/gzip"})
    reposts.update({f"{base}/blog/base-labos-2021/", f"{base}/blog/files/extrait.csv.gz"})

    def atom_entry(i: int, content: str, enclosure: str) -> str:
        return template("feeds/atom_entry.xml", title=f"Dump {i}", link=f"{base}/blog/dump-{i}/",
                        enclosure=f"{base}{enclosure}", id=f"1225c695-cfb8-4ebb-aaaa-80da344efa6{i}",
                        summary="partage", content=html_escape(content)).decode()

    srv.add("/blog/dump-1/", f"<html><body><p>{html_escape(NOISE[0])}</p></body></html>")
    srv.add("/blog/dump-2/", f"<html><body><p>{html_escape(NOISE[2])}</p></body></html>")
    srv.add("/blog/files/dump-1.zip", b"PK\x05\x06" + b"\0" * 18, headers={"Content-Type": "application/zip"})
    srv.add("/blog/files/dump-2.zip", compressed(repost(people[360:380], "json", 64), "zip", "dump/patients.json"),
            headers={"Content-Type": "application/zip"})
    kv = "<pre>" + html_escape(repost(people[340:360], "kv", 63)) + "</pre>"
    srv.add("/feeds/atom.xml", template("feeds/atom.xml", base=base, entries=atom_entry(1, kv, "/blog/files/dump-1.zip"),
                                        next=f'<link rel="next" href="{base}/feeds/atom.xml?page=2" />'),
            headers={"Content-Type": "application/atom+xml"})
    srv.add("/feeds/atom.xml?page=2", template("feeds/atom.xml", base=base, next="",
                                               entries=atom_entry(2, "<p>rien</p>", "/blog/files/dump-2.zip")),
            headers={"Content-Type": "application/atom+xml"})
    reposts.update({f"{base}/blog/dump-1/", f"{base}/blog/files/dump-2.zip"})


def _telegram(sites: Sites, people: list[dict[str, str]]) -> None:
    srv = sites.server
    reposts = sites.reposts.setdefault("telegram", set())
    base, ch = f"{sites.base}/tg", "dumpsfr"

    def msg(i: int, text: str, document: str = "") -> str:
        doc = template("telegram/document.html", base=base, channel=ch, id=str(i), filename=document).decode() if document else ""
        return template("telegram/message.html", base=base, channel=ch, id=str(i), text=text, document=doc).decode()

    def br(text: str) -> str:
        return html_escape(text).replace("\n", "<br/>")

    srv.add("/tg-files/part2.txt", repost(people[400:420], "chatter", 71), headers={"Content-Type": "text/plain"})
    page1 = (msg(120, br(NOISE[4])) + msg(121, f'partie 2 : <a href="{sites.base}/tg-files/part2.txt" target="_blank">lien</a>',
                                           "base_labos_2021.csv")
             + msg(122, br(repost(people[420:440], "kv", 72))))
    srv.add(f"/tg/s/{ch}", template("telegram/channel.html", base=base, channel=ch, messages=page1,
                                    prev_link=f'<link rel="prev" href="/tg/s/{ch}?before=120">',
                                    more=f'<a href="/tg/s/{ch}?before=120" class="tme_messages_more js-messages_more" data-before="120"></a>'))
    page2 = msg(118, br(NOISE[0])) + msg(119, br(repost(people[440:460], "csv", 73)))
    srv.add(f"/tg/s/{ch}?before=120", template("telegram/channel.html", base=base, channel=ch, messages=page2,
                                               prev_link="", more=""))
    reposts.update({f"{base}/{ch}/122", f"{base}/{ch}/119", f"{sites.base}/tg-files/part2.txt"})


@pytest.fixture(scope="session")
def sites(people) -> Sites:
    server = SiteServer().start()
    s = Sites(server)
    for i, forum in enumerate(FORUMS):
        _forum(s, forum, people[i * 200:(i + 1) * 200] if forum != "phpbb" else people[0:100], seed=10 * (i + 1))
    # phpBB's people[0:90] are used above; its bad pages use people[100:180]
    _bad_pages(s, people)
    _discourse(s, people)
    _feeds(s, people)
    _telegram(s, people)
    yield s
    server.stop()


@pytest.fixture
def site_log(sites):
    sites.server.clear_log()
    return sites.server

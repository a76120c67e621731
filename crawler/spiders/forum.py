"""``forum``: board pages → topics → posts, with pagination, attachments and the links posts give.

Driven by CSS selectors (see crawler/presets.py): a preset for phpBB, MyBB or XenForo, any of whose
selectors a source may override, so a new forum is configuration, not code::

    [[sources]]
    name = "forum-x"
    kind = "forum"
    preset = "phpbb"
    start_urls = ["https://forum.example/viewforum.php?f=12"]
    max_pages = 5            # board pages per board, and pages per topic
    depth = 1                # links in posts are followed one hop (within allowed_domains)
    [sources.selectors]      # optional overrides
    post_body = "div.postbody div.content"

Each post is its own document (its content hash is stable when a topic grows); attachments and
linked pages are documents of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from scrapy.http import Response

from crawler.spiders.base import SourceSpider, text_of


class ForumSpider(SourceSpider):
    name = "forum"

    @property
    def sel(self) -> Any:
        return self.src.options["selectors"]

    def topics(self, response: Response) -> list[tuple[str, str]]:
        """``(topic URL, marker)`` of each topic listed on a board page (marker "" when unknown)."""
        sel = self.sel
        found: dict[str, str] = {}
        if sel.get("topic_row") and sel.get("topic_row_link") and sel.get("topic_row_marker"):
            for row in response.css(sel["topic_row"]):
                href = row.css(sel["topic_row_link"]).get()
                if href:
                    marker = " ".join(t.strip() for t in row.css(sel["topic_row_marker"]).getall()).strip()
                    found.setdefault(urljoin(response.url, href.strip()).split("#", 1)[0], marker)
        for href in response.css(sel["topic_links"]).getall():
            found.setdefault(urljoin(response.url, href.strip()).split("#", 1)[0], "")
        return list(found.items())

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if text_of(response) is None:
            self.listing_broken(response, "board page is not HTML")
            return
        self.listing_ok(response)
        topics = self.topics(response)
        self.inc("dumpwatch/listed", len(topics))
        new = 0
        for url, marker in topics:
            req = self.item_request(url, self.parse_topic, seen_key=f"{url}@{marker}" if marker else url,
                                    meta={"dw_page": 1, "dw_marker": marker})
            if req is not None:
                new += 1
                yield req
        page = int(response.meta.get("dw_page", 1))
        nxt = response.css(self.sel["board_next"]).get() if self.sel.get("board_next") else None
        # Boards list the newest topics first: a page with nothing new means older pages are known too.
        if nxt and new and page < self.src.max_pages:
            yield self.listing_request(urljoin(response.url, nxt), self.parse, page=page + 1)

    def parse_topic(self, response: Response) -> Iterator[Any]:
        if text_of(response) is None:
            yield self.document(response, "page")
            return
        sel = self.sel
        for i, post in enumerate(response.css(sel["post"]), start=1):
            pid = (post.css(sel["post_id"]).get() if sel.get("post_id") else None) or f"post{i}"
            pid = pid.strip().replace(" ", "_")
            body = post.css(sel["post_body"]).get()
            if body:
                yield self.document(response, "post", body=body.encode("utf-8"), url=f"{response.url}#{pid}",
                                    name=f"{pid}.html", seen_key="")
                if sel.get("post_links"):
                    links = post.css(sel["post_links"]).getall()
                    yield from self.follow(response.url, links, hops=1)
            if sel.get("attachment_links"):
                yield from self.follow(response.url, post.css(sel["attachment_links"]).getall(), hops=1,
                                       kind="attachment")
        page = int(response.meta.get("dw_page", 1))
        nxt = response.css(sel["topic_next"]).get() if sel.get("topic_next") else None
        if nxt and page < self.src.max_pages:
            url = urljoin(response.url, nxt)
            marker = response.meta.get("dw_marker") or ""
            req = self.item_request(url, self.parse_topic, seen_key=f"{url}@{marker}" if marker else url,
                                    meta={"dw_page": page + 1, "dw_marker": marker})
            if req is not None:
                yield req

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

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if text_of(response) is None:
            self.listing_broken(response, "board page is not HTML")
            return
        self.listing_ok(response)
        topics = [urljoin(response.url, h.strip()) for h in response.css(self.sel["topic_links"]).getall()]
        topics = list(dict.fromkeys(t.split("#", 1)[0] for t in topics))
        self.inc("dumpwatch/listed", len(topics))
        new = 0
        for url in topics:
            req = self.item_request(url, self.parse_topic, meta={"dw_page": 1})
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
            req = self.item_request(urljoin(response.url, nxt), self.parse_topic, meta={"dw_page": page + 1})
            if req is not None:
                yield req

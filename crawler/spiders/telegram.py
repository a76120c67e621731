"""``telegram``: public channel previews (``https://t.me/s/CHANNEL``), newest first, back in time.

::

    [[sources]]
    name = "tg-dumps"
    kind = "telegram"
    channels = ["some_public_channel"]     # or start_urls = ["https://t.me/s/some_public_channel"]
    max_pages = 5                          # preview pages back in time ("?before=ID")

Each message (its text and the names of the documents it carries) is a document; links in the text
are followed within ``allowed_domains`` and ``depth`` (the files themselves are not downloadable
from a preview). Paging back stops at the first page whose messages were all seen before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy.http import Response

from crawler.spiders.base import SourceSpider, text_of


class TelegramSpider(SourceSpider):
    name = "telegram"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if text_of(response) is None:
            self.listing_broken(response, "preview page is not HTML")
            return
        messages = response.css("div.tgme_widget_message[data-post]")
        if not messages and not response.css(".tgme_channel_info, .tgme_widget_message_wrap, .tgme_page"):
            self.listing_broken(response, "not a Telegram channel preview")
            return
        self.listing_ok(response)
        self.inc("dumpwatch/listed", len(messages))
        parts = urlsplit(response.url)
        base = f"{parts.scheme}://{parts.netloc}{parts.path.split('/s/', 1)[0]}"
        new = 0
        for m in messages:
            post = m.attrib["data-post"].strip("/")
            key = f"{base}/{post}"
            if self.state.seen.is_fresh(key):
                self.inc("dumpwatch/skipped_seen")
                continue
            new += 1
            text_html = m.css(".tgme_widget_message_text").get() or ""
            docs = [" ".join(d.css("::text").getall()).strip()
                    for d in m.css(".tgme_widget_message_document")]
            body = "\n".join([text_html, *[f"<p>document: {d}</p>" for d in docs if d]])
            if not re.sub(r"<[^>]+>", "", body).strip():
                self.state.seen.mark(key, status="ok", reason="no text")
                continue
            yield self.document(response, "message", body=body.encode("utf-8"), url=key,
                                name=f"{post.replace('/', '-')}.html", seen_key=key)
            links = m.css(".tgme_widget_message_text a::attr(href)").getall()
            yield from self.follow(response.url, links, hops=1)
        page = int(response.meta.get("dw_page", 1))
        if new and page < self.src.max_pages:
            more = (response.css("a.tme_messages_more[data-before]::attr(href)").get()
                    or response.css("link[rel=prev]::attr(href)").get())
            if more:
                yield self.listing_request(urljoin(response.url, more), self.parse, page=page + 1)

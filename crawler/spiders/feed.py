"""``feed``: RSS 2.0 and Atom entries, the pages they link to and their enclosures.

::

    [[sources]]
    name = "leaks-feed"
    kind = "feed"
    start_urls = ["https://blog.example/feed.xml"]
    follow_links = true      # fetch each entry's link (within allowed_domains)
    max_pages = 3            # Atom paging (rel="next")

Each entry (title, summary and content) is a document; its link and enclosures are documents too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from scrapy.http import Response
from scrapy.selector import Selector

from crawler.spiders.base import SourceSpider, text_of


class FeedSpider(SourceSpider):
    name = "feed"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        text = text_of(response)
        sel = None
        if text is not None:
            try:
                sel = Selector(text=text.lstrip("\ufeff").lstrip(), type="xml")
                sel.remove_namespaces()
            except ValueError:
                sel = None
        entries = (sel.xpath("//item") or sel.xpath("//entry")) if sel is not None else []
        if sel is None or not (entries or sel.xpath("/rss|/feed|/RDF")):
            self.listing_broken(response, "not an RSS or Atom feed")
            return
        self.listing_ok(response)
        self.inc("dumpwatch/listed", len(entries))
        for i, entry in enumerate(entries, start=1):
            ident = (entry.xpath("guid/text()").get() or entry.xpath("id/text()").get() or "").strip()
            link = (entry.xpath("link[not(@rel) or @rel='alternate']/@href").get()
                    or entry.xpath("link/text()").get() or "").strip()
            title = entry.xpath("title/text()").get() or ""
            parts = [entry.xpath(f"{tag}/text()").get() or "" for tag in ("encoded", "content", "description", "summary")]
            body = "\n".join(p for p in [title, *parts] if p.strip())
            if body.strip():
                url = urljoin(response.url, link) if link else f"{response.url}#entry-{ident or i}"
                yield self.document(response, "entry", body=body.encode("utf-8"), url=url,
                                    name=f"entry-{i}.html", seen_key="")
            if link and self.src.options["follow_links"]:
                yield from self.follow(response.url, [link], hops=1)
            enclosures = entry.xpath("enclosure/@url").getall() + entry.xpath("link[@rel='enclosure']/@href").getall()
            yield from self.follow(response.url, enclosures, hops=1, kind="attachment")
        page = int(response.meta.get("dw_page", 1))
        nxt = sel.xpath("/feed/link[@rel='next']/@href").get()
        if nxt and page < self.src.max_pages:
            yield self.listing_request(urljoin(response.url, nxt), self.parse, page=page + 1)

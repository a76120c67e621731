"""``paste-archive``: a listing page of recent pastes → each paste → its raw content.

Describes a paste site in a few lines, the way paste-monitoring tools do::

    [[sources]]
    name = "pastes"
    kind = "paste-archive"
    start_urls = ["https://paste.example/archive"]
    listing_selector = "table.maintable td a::attr(href)"   # or listing_regex = 'href="/(?P<key>[A-Za-z0-9]{8})"'
    raw_url = "{base}/raw/{key}"                            # else raw_link_selector or content_selector
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy.http import Response

from crawler.spiders.base import SourceSpider, text_of


def base_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PasteArchiveSpider(SourceSpider):
    name = "paste-archive"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        text = text_of(response)
        if text is None:
            self.listing_broken(response, "listing is not text")
            return
        self.listing_ok(response)
        opts = self.src.options
        base = base_of(response.url)
        entries: list[tuple[str | None, str | None]] = []  # (paste page URL, key)
        if opts["listing_regex"]:
            for m in re.finditer(opts["listing_regex"], text):
                key = m.groupdict().get("key") or (m.group(1) if m.groups() else m.group(0))
                page = urljoin(response.url, key) if not opts["raw_url"] else None
                entries.append((page, key))
        else:
            key_re = re.compile(opts["key_regex"])
            for href in response.css(opts["listing_selector"]).getall():
                url = urljoin(response.url, href.strip())
                m = key_re.search(urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else ""))
                entries.append((url, m.group(1) if m and m.groups() else None))
        for page_url, key in dict.fromkeys(entries):
            self.inc("dumpwatch/listed")
            if opts["raw_url"] and key:
                raw = opts["raw_url"].format(key=key, base=base)
                req = self.item_request(raw, self.parse_raw, meta={"dw_key": key})
            elif page_url:
                req = self.item_request(page_url, self.parse_paste, meta={"dw_key": key})
            else:
                continue
            if req is not None:
                yield req

    def parse_paste(self, response: Response) -> Iterator[Any]:
        opts = self.src.options
        key = response.meta.get("dw_key") or "paste"
        if opts["raw_link_selector"]:
            for href in response.css(opts["raw_link_selector"]).getall():
                req = self.item_request(urljoin(response.url, href), self.parse_raw, meta={"dw_key": key})
                if req is not None:
                    yield req
            return
        if opts["content_selector"] and text_of(response) is not None:
            parts = response.css(opts["content_selector"]).getall()
            body = "\n".join(parts).encode("utf-8")
            yield self.document(response, "paste", body=body, name=f"{key}.txt")
            return
        yield self.document(response, "paste", name=f"{key}.html")

    def parse_raw(self, response: Response) -> Iterator[Any]:
        yield self.document(response, "paste")

"""``paste-api``: a JSON listing of recent pastes (key, date, size, raw URL), as paste sites offer.

The defaults read a scraping API shaped like Pastebin's (a list of objects with ``key``, ``date``,
``size``, ``scrape_url``)::

    [[sources]]
    name = "paste-api"
    kind = "paste-api"
    start_urls = ["https://paste.example/api_scraping.php?limit=100"]
    items_path = ""                 # dotted path to the list ("" = the document is the list)
    url_field = "scrape_url"        # or raw_url = "{base}/raw/{key}" when items carry only a key
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawler.spiders.base import SourceSpider
from crawler.spiders.paste_archive import base_of


def dig(data: Any, path: str) -> Any:
    for part in [p for p in path.split(".") if p]:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


class PasteApiSpider(SourceSpider):
    name = "paste-api"

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        opts = self.src.options
        try:
            data = json.loads(response.body)
        except ValueError:
            self.listing_broken(response, "listing is not JSON")
            return
        items = dig(data, opts["items_path"])
        if not isinstance(items, list):
            self.listing_broken(response, f"no list at items_path {opts['items_path']!r}")
            return
        self.listing_ok(response)
        base = base_of(response.url)
        for it in items:
            if not isinstance(it, dict):
                continue
            key = str(it.get(opts["key_field"]) or "")
            url = it.get(opts["url_field"])
            if not url and opts["raw_url"] and key:
                url = opts["raw_url"].format(key=key, base=base)
            if not isinstance(url, str) or not url:
                continue
            url = response.urljoin(url)
            self.inc("dumpwatch/listed")
            size = it.get(opts["size_field"])
            try:
                size = int(size) if size is not None else None
            except (TypeError, ValueError):
                size = None
            if size is not None and size > self.src.max_download_size:
                self.inc("dumpwatch/bad")
                self.inc("dumpwatch/bad_reasons/too large (listed size)")
                self.state.seen.mark(url, status="bad", reason=f"listed size {size} > max_download_size")
                continue
            req = self.item_request(url, self.parse_raw, meta={"dw_key": key})
            if req is not None:
                yield req

    def parse_raw(self, response: Response) -> Iterator[Any]:
        key = response.meta.get("dw_key") or "paste"
        yield self.document(response, "paste", name=f"{key}.txt")

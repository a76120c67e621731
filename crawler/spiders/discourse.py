"""``discourse``: a Discourse forum through its JSON API (latest topics, then each topic's posts).

::

    [[sources]]
    name = "disc"
    kind = "discourse"
    start_urls = ["https://discourse.example"]     # the forum's base URL
    max_pages = 3                                  # pages of /latest.json

A topic is fetched again only when its ``last_posted_at`` changed (the seen-set key carries it);
posts beyond the first chunk come from ``/t/ID/posts.json?post_ids[]=…``; links in posts (uploads,
file hosts, paste sites) are followed within ``allowed_domains`` and ``depth``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response
from scrapy.selector import Selector

from crawler.spiders.base import SourceSpider

CHUNK = 20


class DiscourseSpider(SourceSpider):
    name = "discourse"

    def start_requests_for(self, url: str) -> Iterable[scrapy.Request]:
        base = url.rstrip("/")
        yield self.listing_request(base + self.src.options["latest_path"], self.parse, meta={"dw_base": base})

    def _json(self, response: Response) -> Any:
        try:
            return json.loads(response.body)
        except ValueError:
            return None

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        base = response.meta["dw_base"]
        data = self._json(response)
        topics = data.get("topic_list", {}).get("topics") if isinstance(data, dict) else None
        if not isinstance(topics, list):
            self.listing_broken(response, "not a Discourse topic list")
            return
        self.listing_ok(response)
        self.inc("dumpwatch/listed", len(topics))
        new = 0
        for t in topics:
            if not isinstance(t, dict) or "id" not in t:
                continue
            url = f"{base}/t/{t.get('slug') or 'topic'}/{t['id']}.json"
            marker = t.get("last_posted_at") or t.get("bumped_at") or t.get("posts_count") or ""
            req = self.item_request(url, self.parse_topic, seen_key=f"{url}@{marker}", meta={"dw_base": base})
            if req is not None:
                new += 1
                yield req
        more = data["topic_list"].get("more_topics_url")
        page = int(response.meta.get("dw_page", 1))
        if more and new and page < self.src.max_pages:
            path, _, query = more.partition("?")
            if not path.endswith(".json"):
                path += ".json"
            yield self.listing_request(f"{base}{path}" + (f"?{query}" if query else ""), self.parse,
                                       page=page + 1, meta={"dw_base": base})

    def parse_topic(self, response: Response) -> Iterator[Any]:
        base = response.meta["dw_base"]
        data = self._json(response)
        stream = data.get("post_stream") if isinstance(data, dict) else None
        if not isinstance(stream, dict):
            self.inc("dumpwatch/errors")
            self.inc("dumpwatch/error_reasons/not a Discourse topic")
            return
        posts = stream.get("posts") or []
        yield from self._posts(response, base, data, posts)
        loaded = {p.get("id") for p in posts if isinstance(p, dict)}
        missing = [i for i in stream.get("stream") or [] if i not in loaded]
        for start in range(0, len(missing), CHUNK):
            ids = missing[start:start + CHUNK]
            query = urlencode([("post_ids[]", i) for i in ids])
            yield scrapy.Request(f"{base}/t/{data.get('id')}/posts.json?{query}", callback=self.parse_more,
                                 errback=self.on_item_error, cookies=dict(self.src.cookies),
                                 meta={"dw_base": base, "dw_topic": data})

    def parse_more(self, response: Response) -> Iterator[Any]:
        data = self._json(response)
        posts = (data or {}).get("post_stream", {}).get("posts") if isinstance(data, dict) else None
        if isinstance(posts, list):
            yield from self._posts(response, response.meta["dw_base"], response.meta["dw_topic"], posts)

    def _posts(self, response: Response, base: str, topic: dict, posts: list) -> Iterator[Any]:
        slug, tid = topic.get("slug") or "topic", topic.get("id")
        for p in posts:
            if not isinstance(p, dict) or not p.get("cooked"):
                continue
            cooked = p["cooked"]
            number = p.get("post_number") or p.get("id")
            yield self.document(response, "post", body=cooked.encode("utf-8"), url=f"{base}/t/{slug}/{tid}/{number}",
                                name=f"post-{p.get('id')}.html", seen_key="")
            links = Selector(text=cooked).css("a::attr(href)").getall()
            uploads = [h for h in links if "/uploads/" in h]
            yield from self.follow(base + "/", uploads, hops=1, kind="attachment")
            yield from self.follow(base + "/", [h for h in links if h not in uploads], hops=1)

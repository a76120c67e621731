"""CSS selectors for common forum software, so a new forum is a few lines of configuration.

A ``forum`` source names a preset (``preset = "phpbb"``) and may override any selector in its
``[sources.selectors]`` table. Selectors are Scrapy CSS selectors; those ending in ``::attr(href)``
give links, the others give elements.

Keys:

- ``topic_links``: on a board page, the links to topics;
- ``board_next``: on a board page, the link to the next (older) page of topics;
- ``post``: on a topic page, one element per post;
- ``post_id``: inside a post, the post's identifier (an attribute), used in the document name;
- ``post_body``: inside a post, the element whose HTML is the post's content;
- ``attachment_links``: inside a post, links to attached files;
- ``post_links``: inside a post body, links the post gives (file hosts, paste sites), followed
  within the source's ``allowed_domains`` and ``depth``;
- ``topic_next``: on a topic page, the link to the next page of posts;
- ``topic_row``, ``topic_row_link``, ``topic_row_marker`` (optional, together): on a board page, one
  element per topic, the topic link inside it, and what changes when someone posts (the last
  post's link or date). With them a topic already seen is fetched again, pages and all, as soon as
  its marker changes, instead of waiting for ``recrawl_age``.

The structures are those of the default themes: phpBB 3.3 *prosilver*, MyBB 1.8 *default*,
XenForo 2.2 *default style* (see ``tests/crawler/sites/`` for saved page structures).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

SELECTOR_KEYS = (
    "topic_links", "board_next", "post", "post_id", "post_body", "attachment_links", "post_links",
    "topic_next", "topic_row", "topic_row_link", "topic_row_marker",
)

PRESETS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "phpbb": MappingProxyType({
        "topic_links": "ul.topiclist.topics dl.row-item a.topictitle::attr(href)",
        "board_next": ".action-bar .pagination li.next a::attr(href)",
        "post": "div.post",
        "post_id": "::attr(id)",
        "post_body": "div.postbody div.content",
        "attachment_links": "dl.attachbox dl.file a.postlink::attr(href)",
        "post_links": "div.content a.postlink::attr(href)",
        "topic_next": ".action-bar .pagination li.next a::attr(href)",
        "topic_row": "ul.topiclist.topics li.row",
        "topic_row_link": "a.topictitle::attr(href)",
        "topic_row_marker": "dd.lastpost a[href*='#p']::attr(href)",
    }),
    "mybb": MappingProxyType({
        "topic_links": "tr.inline_row span[id^='tid_'] a::attr(href)",
        "board_next": "div.pagination a.pagination_next::attr(href)",
        "post": "div.post",
        "post_id": "::attr(id)",
        "post_body": "div.post_body",
        "attachment_links": "div.post_content fieldset a[href*='attachment.php']::attr(href)",
        "post_links": "div.post_body a[href]::attr(href)",
        "topic_next": "div.pagination a.pagination_next::attr(href)",
        "topic_row": "tr.inline_row",
        "topic_row_link": "span[id^='tid_'] a::attr(href)",
        "topic_row_marker": "span.lastpost::text",
    }),
    "xenforo": MappingProxyType({
        "topic_links": "div.structItem--thread div.structItem-title a[href*='threads/']::attr(href)",
        "board_next": "nav.pageNavWrapper a.pageNav-jump--next::attr(href)",
        "post": "article.message--post",
        "post_id": "::attr(data-content)",
        "post_body": "div.message-userContent div.bbWrapper",
        "attachment_links": "section.message-attachments ul.attachmentList a.file-preview::attr(href)",
        "post_links": "div.bbWrapper a.link--external::attr(href)",
        "topic_next": "nav.pageNavWrapper a.pageNav-jump--next::attr(href)",
        "topic_row": "div.structItem--thread",
        "topic_row_link": "div.structItem-title a[href*='threads/']::attr(href)",
        "topic_row_marker": "time.structItem-latestDate::attr(datetime)",
    }),
})

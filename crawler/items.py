"""What a spider hands to the pipelines: one fetched document, its bytes untouched.

The body is never part of the item's repr, so Scrapy's logs (``Scraped from …``) show where a
document came from and its size, never its content (a repost holds cleartext identifiers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# What a document is, for the evidence: a raw paste, a forum post, an attached file, a feed entry,
# a Telegram message, or a page a post or entry linked to.
DOCUMENT_KINDS = ("paste", "post", "attachment", "entry", "message", "page")


@dataclass(frozen=True)
class Document:
    source: str
    url: str
    name: str  # a file name for extraction (its extension is a hint, never trusted)
    kind: str
    fetched_at: str
    body: bytes = field(repr=False)
    seen_key: str = ""  # seen-set key of the page that IS this document ("" for a post of a topic page)
    content_type: str = ""
    # seen-set key of the page this document came from (set by crawler.middlewares.PageLedgerMiddleware):
    # that page is marked seen only once its documents are stored
    page_key: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def size(self) -> int:
        return len(self.body)

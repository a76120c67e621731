"""Is this text a web page? Cheap checks, kept apart from htmldoc.py so that deciding costs
no BeautifulSoup import (about 90 ms of every scan's start-up): the parser loads only for pages."""

from __future__ import annotations

import re

LOOKS_HTML = re.compile(
    r"^\s*(?:<!doctype\s+html|<\?xml|<!--|<(?:html|head|body|meta|title|table|div|p|pre|span|br|"
    r"ul|ol|li|article|section|main|blockquote|code|a|b|strong|em|h[1-6])[\s>/])", re.IGNORECASE)
# A post body's HTML that starts with text: "Voici la base<br>Nom: …<br>…"
_BREAKS = re.compile(r"<br\s*/?>|</p>|</div>|</td>|</li>", re.IGNORECASE)


def looks_html(sample: str) -> bool:
    if LOOKS_HTML.match(sample.lstrip("\ufeff")):
        return True
    head = sample[:4096]
    return len(_BREAKS.findall(head)) >= 3


def is_xml(sample: str) -> bool:
    """An XML document (an office file's part, a feed) rather than a web page."""
    head = sample.lstrip("\ufeff \t\r\n")[:2000].lower()
    return head.startswith("<?xml") and "<html" not in head

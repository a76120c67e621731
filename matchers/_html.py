"""HTML → tables: each data ``<table>``, then the visible text of the page as text tables.

* A data table (no nested table, no ``<pre>``/``<textarea>``/list in it, at least one row with
  two non-empty cells) becomes ``Table(kind="html")``: header = the ``<th>`` texts of its first
  row (or that row's cells when they look like a header), rows = tuples of cell texts.
* A code listing (a table whose rows carry one non-empty cell, e.g. a pastebin's highlighted
  source with line numbers) is read as a ``<pre>`` block; layout tables are read as text.
* The visible text (minus script, style, nav, header, footer, aside, form, the tables taken
  above) goes through the text layer, so a CSV or key-value dump in a ``<pre>``, a
  ``<textarea>`` or a post body is recognised. A block shown twice (a paste's highlighted code
  and its raw copy in a textarea) is read once.

The page is parsed by lxml's HTML parser, the parser BeautifulSoup's "lxml" builder drives,
used directly: the tree is the same, but building BeautifulSoup's own tree ran at ~1 MB/s here
and took ten times the memory, which a 100 MB HTML export of a leak cannot afford.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import lxml.html
from lxml import etree

from matchers._model import Table
from matchers._text import looks_like_header

DROP = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template",
        "head", "svg", "iframe", "object", "select", "button")
BLOCK = frozenset((
    "address", "article", "blockquote", "body", "center", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "html",
    "li", "main", "ol", "p", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul", "caption",
))
VERBATIM = frozenset(("pre", "textarea", "xmp", "listing", "plaintext"))
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLANKS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")

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


def _parse(page: str) -> Any:
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    # bytes: lxml refuses a str that carries an XML encoding declaration
    return lxml.html.document_fromstring(page.encode("utf-8", "surrogatepass"), parser=parser)


def _text_of(el: Any) -> str:
    return _SPACES.sub(" ", " ".join(el.itertext())).strip()


def _cells(tr: Any) -> list[Any]:
    return [c for c in tr if c.tag in ("td", "th")]


def _classify(table: Any) -> tuple[str, list[list[Any]]]:
    """``data``, ``listing`` (code with line numbers) or ``layout``, and the rows."""
    if next(table.iterdescendants("table"), None) is not None:
        return "layout", []
    rows = [_cells(tr) for tr in table.iter("tr")]
    if not rows or next(table.iter("pre", "textarea", "ul", "ol", "blockquote"), None) is not None:
        return "layout", rows
    for row in rows:
        filled = 0
        for cell in row:
            if "".join(cell.itertext()).strip():
                filled += 1
                if filled == 2:
                    return "data", rows
    return ("listing" if any(rows) else "layout"), rows


def html_tables(page: str, source: str, encoding: str | None) -> tuple[list[Table], str]:
    """The data tables of a page, and its visible text (to be read by the text layer).

    XML (``<?xml`` without ``<html``: sharedStrings.xml of an xlsx, an RSS feed) is read the
    same way, every element on its own line since no tag is known to be inline.
    """
    xml = is_xml(page)
    try:
        root = _parse(page)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return [], ""
    for el in list(root.iter(*DROP)):
        el.drop_tree()                        # keeps the text that follows the element
    tables: list[Table] = []
    for table in list(root.iter("table")):
        kind, rows = _classify(table)
        if kind == "data":
            tables.append(_data_table(rows, f"{source}#table{len(tables) + 1}", encoding))
            table.drop_tree()
        elif kind == "listing":
            lines = []
            for row in rows:
                texts = ["".join(c.itertext()) for c in row]
                texts = [t for t in texts if t.strip()]
                lines.append(texts[0].rstrip("\r\n") if texts else "")
            pre = lxml.html.Element("pre")
            pre.text = "\n".join(lines)
            pre.tail = table.tail
            table.getparent().replace(table, pre)
    return tables, visible_text(root, xml=xml)


def _data_table(rows: list[list[Any]], source: str, encoding: str | None) -> Table:
    header: tuple[str, ...] | None = None
    texts = [tuple(_text_of(c) for c in row) for row in rows if row]
    if rows and rows[0] and all(c.tag == "th" for c in rows[0]):
        header = texts.pop(0)
    elif texts and looks_like_header(texts[0], texts[1:20]):
        header = texts.pop(0)
    return Table(source, "html", header, iter(texts), encoding)


def visible_text(root: Any, *, xml: bool = False) -> str:
    """Text as a reader sees it: blocks on their own lines, ``<br>`` breaks, ``<pre>`` kept
    (``xml``: every element is a block)."""
    out: list[str] = []
    seen_blocks: set[bytes] = set()
    # explicit stack (deep pages must not hit the recursion limit): (element, closing?)
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        el, closing = stack.pop()
        tag = el.tag if isinstance(el.tag, str) else ""
        block = xml or tag in BLOCK
        if closing:
            if block:
                out.append("\n")
            if el.tail and el is not root:
                out.append(_SPACES.sub(" ", el.tail))
            continue
        if tag == "br":
            out.append("\n")
        elif tag in VERBATIM:
            text = "".join(el.itertext())
            if _first_time(text, seen_blocks):
                out.append("\n" + text.replace("\r\n", "\n") + "\n")
        else:
            if block:
                out.append("\n")
            elif tag in ("td", "th"):
                out.append(" ")
            if el.text and tag:
                out.append(_SPACES.sub(" ", el.text))
            stack.append((el, True))
            stack.extend((child, False) for child in reversed(el))
            continue
        if el.tail and el is not root:
            out.append(_SPACES.sub(" ", el.tail))
    text = "".join(out)
    lines = [line.strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def _first_time(text: str, seen: set[bytes]) -> bool:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return True
    digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).digest()
    if digest in seen:
        return False
    seen.add(digest)
    return True

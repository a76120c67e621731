"""HTML → tables: each data ``<table>``, then the visible text of the page as text tables.

* A data table (no nested table, cells without ``<pre>``/``<textarea>``, at least one row with
  two non-empty cells) becomes ``Table(kind="html")``: header = the ``<th>`` texts of its first
  row (or that row's cells when they look like a header), rows = tuples of cell texts.
* A code listing (a table whose rows carry one non-empty cell, e.g. a pastebin's highlighted
  source with line numbers) is read as a ``<pre>`` block; layout tables are read as text.
* The visible text (minus script, style, nav, header, footer, aside, form, the tables taken
  above) goes through the text layer, so a CSV or key-value dump in a ``<pre>``, a
  ``<textarea>`` or a post body is recognised. A block shown twice (a paste's highlighted code
  and its raw copy in a textarea) is read once.
"""

from __future__ import annotations

import hashlib
import re
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

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
_SKIP_STRINGS = (Comment, CData, Declaration, Doctype, ProcessingInstruction)

LOOKS_HTML = re.compile(
    r"^\s*(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<table[\s>]|<div[\s>]|<meta\s"
    r"|<title[\s>]|<!--|<p[\s>]|<pre[\s>]|<\?xml)", re.IGNORECASE)


def looks_html(sample: str) -> bool:
    return bool(LOOKS_HTML.match(sample.lstrip("\ufeff")))


def _cell_text(cell: Tag) -> str:
    return _SPACES.sub(" ", cell.get_text(" ")).strip()


def _rows_of(table: Tag) -> list[list[Tag]]:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        rows.append(tr.find_all(("td", "th"), recursive=False))
    return rows


def _classify(table: Tag) -> str:
    """``data``, ``listing`` (code with line numbers) or ``layout``."""
    if table.find("table") is not None:
        return "layout"
    rows = _rows_of(table)
    if not rows:
        return "layout"
    for row in rows:
        for cell in row:
            if cell.find(("pre", "textarea", "ul", "ol", "blockquote")) is not None:
                return "layout"
    wide = sum(1 for row in rows if sum(1 for c in row if _cell_text(c)) >= 2)
    if wide == 0:
        return "listing" if any(row for row in rows) else "layout"
    return "data"


def html_tables(page: str, source: str, encoding: str | None) -> tuple[list[Table], str]:
    """The data tables of a page, and its visible text (to be read by the text layer)."""
    soup = BeautifulSoup(page, "lxml")
    for tag in soup.find_all(DROP):
        if not tag.decomposed:
            tag.decompose()
    tables: list[Table] = []
    for table in soup.find_all("table"):
        if table.decomposed:
            continue
        kind = _classify(table)
        if kind == "data":
            tables.append(_data_table(table, f"{source}#table{len(tables) + 1}", encoding))
            table.decompose()
        elif kind == "listing":
            lines = []
            for row in _rows_of(table):
                texts = [c.get_text() for c in row]
                texts = [t for t in texts if t.strip()]
                lines.append(texts[0].rstrip("\r\n") if texts else "")
            pre = soup.new_tag("pre")
            pre.string = "\n".join(lines)
            table.replace_with(pre)
    return tables, visible_text(soup)


def _data_table(table: Tag, source: str, encoding: str | None) -> Table:
    rows = _rows_of(table)
    header: tuple[str, ...] | None = None
    texts = [tuple(_cell_text(c) for c in row) for row in rows if row]
    if rows and rows[0] and all(c.name == "th" for c in rows[0]):
        header = texts.pop(0)
    elif texts and looks_like_header(texts[0], texts[1:20]):
        header = texts.pop(0)
    return Table(source, "html", header, iter(texts), encoding)


def visible_text(soup: BeautifulSoup) -> str:
    """Text as a reader sees it: blocks on their own lines, ``<br>`` breaks, ``<pre>`` kept."""
    out: list[str] = []
    seen_blocks: set[bytes] = set()
    # explicit stack (deep pages must not hit the recursion limit): (node, closing?)
    stack: list[tuple[object, bool]] = [(soup, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            out.append("\n")
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, _SKIP_STRINGS):
                out.append(_SPACES.sub(" ", str(node)))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if name == "br":
            out.append("\n")
            continue
        if name in VERBATIM:
            text = node.get_text()
            if _first_time(text, seen_blocks):
                out.append("\n" + text.replace("\r\n", "\n") + "\n")
            continue
        block = name in BLOCK
        if block:
            out.append("\n")
            stack.append((node, True))
        elif name in ("td", "th"):
            out.append(" ")
        stack.extend((child, False) for child in reversed(node.contents))
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


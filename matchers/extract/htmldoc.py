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

The page is parsed by BeautifulSoup with its "lxml" builder (libxml2's HTML parser, forgiving
of broken markup). BeautifulSoup's tree costs 30 to 50 times the page's size in memory and builds
at about 1 MB/s, so a page is parsed only when it is under ``Limits.max_html_bytes`` (checked
here, reported by :mod:`matchers.extract`). Comments, processing instructions and the doctype are
removed from the tree and the text they separated joined again, so a cell or a line reads as the
browser shows it. :mod:`matchers.extract.htmlsniff` decides whether a text is a page at all.
"""

from __future__ import annotations

import hashlib
import re

from bs4 import BeautifulSoup, NavigableString, ParserRejectedMarkup, Tag
from bs4.element import PageElement

from matchers.extract.delimited import looks_like_header
from matchers.extract.htmlsniff import is_xml
from matchers.extract.model import LimitExceededError, Table

DROP = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template",
        "head", "svg", "iframe", "object", "select", "button")
BLOCK = frozenset((
    "address", "article", "blockquote", "body", "center", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "html",
    "li", "main", "ol", "p", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul", "caption",
))
# Elements a browser lays out inline (their text runs on: ``a<b>c</b>`` reads ``ac``). Any other
# element that is not a block (``<nom>PICARD</nom><tel>06…</tel>`` in XML-ish records pasted into a
# page) separates its text from its neighbours' by a space, so fields are not glued together.
INLINE = frozenset((
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i", "ins",
    "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup",
    "time", "tt", "u", "var", "wbr", "img", "big", "nobr", "output", "ruby", "rt", "rp",
))
_SPACE = NavigableString(" ")
_DROP = frozenset(DROP)
VERBATIM = frozenset(("pre", "textarea", "xmp", "listing", "plaintext"))
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLANKS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")

def _parse(data: bytes) -> BeautifulSoup:
    # from_encoding: the page was decoded already; a <meta charset> must not re-decode it.
    # multi_valued_attributes=None: no class splitting (unused, and it costs). string_containers
    # empty: every text is a plain NavigableString (no Script/RubyText subclasses to special-case).
    # A leading space: the "lxml" builder warns (XMLParsedAsHTMLWarning) about markup starting
    # with "<?xml"; reading office parts and feeds as HTML is deliberate here, and the parser skips
    # blanks before the first tag, so the tree is the same.
    markup = b" " + data if data.startswith(b"<?xml") else data
    return BeautifulSoup(markup, "lxml", from_encoding="utf-8", multi_valued_attributes=None,
                         string_containers={})


def _is_text(node: PageElement | None) -> bool:
    return type(node) is NavigableString


def _remove(node: PageElement) -> None:
    """Take ``node`` out of the tree; the texts before and after it become one text again (as the
    browser reads ``a<!-- x -->b`` or ``a<script>…</script>b``: ``ab``)."""
    before, after = node.previous_sibling, node.next_sibling
    node.decompose()
    if _is_text(before) and _is_text(after):
        assert before is not None and after is not None
        before.replace_with(NavigableString(str(before) + str(after)))
        after.extract()


def _prune(soup: BeautifulSoup) -> list[Tag]:
    """Drop the elements no reader sees and every string that is not text (comments, processing
    instructions, the doctype); the tables left, in document order.

    One walk that does not enter the dropped elements (``find_all`` and ``decomposed`` checks
    cost several times more on a big page)."""
    doomed: list[PageElement] = []
    tables: list[Tag] = []
    stack: list[PageElement] = list(reversed(soup.contents))
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is Tag:
            name = node.name                  # type: ignore[attr-defined]
            if name in _DROP:
                doomed.append(node)
                continue
            if name == "table":
                tables.append(node)           # type: ignore[arg-type]
            stack.extend(reversed(node.contents))    # type: ignore[attr-defined]
        elif kind is not NavigableString:
            doomed.append(node)
    for node in doomed:
        _remove(node)
    return tables


def _raw_text(el: Tag) -> str:
    return "".join(el.strings)


def _text_of(el: Tag) -> str:
    """The text of a cell, one space where a tag separated two texts (``a<b>c</b>`` → ``a c``)."""
    contents = el.contents
    if len(contents) == 1 and type(contents[0]) is NavigableString:     # most cells
        return _SPACES.sub(" ", contents[0]).strip()
    parts: list[str] = []
    stack: list[PageElement | None] = list(reversed(el.contents))   # None: the end of a tag
    while stack:
        node = stack.pop()
        if node is None:
            parts.append(" ")
        elif isinstance(node, Tag):
            parts.append(" ")
            stack.append(None)
            stack.extend(reversed(node.contents))
        else:
            parts.append(node)          # type: ignore[arg-type]  (a NavigableString, a str)
    return _SPACES.sub(" ", "".join(parts)).strip()


def _cells(tr: Tag) -> list[Tag]:
    return [c for c in tr.contents if type(c) is Tag and c.name in ("td", "th")]


_NOT_DATA = frozenset(("pre", "textarea", "ul", "ol", "blockquote"))


def _classify(table: Tag) -> tuple[str, list[list[Tag]]]:
    """``data``, ``listing`` (code with line numbers) or ``layout``, and the rows."""
    trs: list[Tag] = []
    not_data = False
    for node in table.descendants:
        if type(node) is Tag:
            name = node.name
            if name == "tr":
                trs.append(node)
            elif name == "table":
                return "layout", []
            elif name in _NOT_DATA:
                not_data = True
    rows = [_cells(tr) for tr in trs]
    if not rows or not_data:
        return "layout", rows
    for row in rows:
        filled = 0
        for cell in row:
            if _raw_text(cell).strip():
                filled += 1
                if filled == 2:
                    return "data", rows
    return ("listing" if any(rows) else "layout"), rows


def html_tables(page: str, source: str, encoding: str | None, *,
                max_bytes: int | None = None) -> tuple[list[Table], str]:
    """The data tables of a page, and its visible text (to be read by the text layer).

    XML (``<?xml`` without ``<html``: sharedStrings.xml of an xlsx, an RSS feed) is read the
    same way, every element on its own line since no tag is known to be inline.

    A page of more than ``max_bytes`` bytes (UTF-8) raises :class:`LimitExceededError` before it
    is parsed: its tree would need 30 to 50 times that in memory.
    """
    xml = is_xml(page)
    data = page.encode("utf-8", "surrogatepass")
    if max_bytes is not None and len(data) > max_bytes:
        at_least = "at least " if len(page) > max_bytes else ""   # the reader may have cut it
        raise LimitExceededError(
            f"HTML page too large ({at_least}{len(data)} bytes > max_html_bytes={max_bytes}): not "
            "parsed, its BeautifulSoup tree would need 30 to 50 times that in memory (raise "
            "Limits.max_html_bytes to read it)")
    try:
        soup = _parse(data)
    except ParserRejectedMarkup:
        return [], ""
    del data
    found = _prune(soup)
    if not any(type(c) is Tag for c in soup.contents):   # nothing but comments: an empty document
        return [], ""
    tables: list[Table] = []
    for table in found:
        kind, rows = _classify(table)
        if kind == "data":
            tables.append(_data_table(rows, f"{source}#table{len(tables) + 1}", encoding))
            table.decompose()                 # the text after it stays in place
        elif kind == "listing":
            lines = []
            for row in rows:
                texts = [t for t in (_raw_text(c) for c in row) if t.strip()]
                lines.append(texts[0].rstrip("\r\n") if texts else "")
            pre = soup.new_tag("pre")
            pre.string = "\n".join(lines)
            table.replace_with(pre)
    return tables, visible_text(soup, xml=xml)


def _data_table(rows: list[list[Tag]], source: str, encoding: str | None) -> Table:
    header: tuple[str, ...] | None = None
    texts = [tuple(_text_of(c) for c in row) for row in rows if row]
    if rows and rows[0] and all(c.name == "th" for c in rows[0]):
        header = texts.pop(0)
    elif texts and looks_like_header(texts[0], texts[1:20]):
        header = texts.pop(0)
    return Table(source, "html", header, iter(texts), encoding)


def visible_text(soup: BeautifulSoup, *, xml: bool = False) -> str:
    """Text as a reader sees it: blocks on their own lines, ``<br>`` breaks, ``<pre>`` kept
    (``xml``: every element is a block). ``soup`` is pruned (see :func:`_prune`)."""
    out: list[str] = []
    seen_blocks: set[bytes] = set()
    # explicit stack (deep pages must not hit the recursion limit); None closes a block
    stack: list[PageElement | None] = [c for c in reversed(soup.contents) if isinstance(c, Tag)]
    while stack:
        node = stack.pop()
        if node is None:
            out.append("\n")
        elif not isinstance(node, Tag):
            out.append(_SPACES.sub(" ", node))      # type: ignore[arg-type]
        elif node.name == "br":
            out.append("\n")
        elif node.name in VERBATIM:
            text = _raw_text(node)
            if _first_time(text, seen_blocks):
                out.append("\n" + text.replace("\r\n", "\n") + "\n")
        else:
            if xml or node.name in BLOCK:
                out.append("\n")
                stack.append(None)
            elif node.name in ("td", "th"):
                out.append(" ")
            elif node.name not in INLINE:
                if out and not out[-1].endswith((" ", "\n")):
                    out.append(" ")
                stack.append(_SPACE)
            stack.extend(reversed(node.contents))
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

"""One escaping rule per output kind: what a hostile page wrote never acts on who reads our output.

dumpwatch shows text written by the people who trade stolen databases: URLs, post ids, file and
zip member names, error messages that quote them. Each output kind has one function, applied where
such content enters that output (never to our own templates, never twice):

``terminal(text)``
    logs and command-line output. Every C0 and C1 control character (ESC, BEL, NUL, CR, LF, DEL …),
    the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, LRM/RLM/ALM), the line
    and paragraph separators and lone surrogates are shown escaped (``\\x1b``, ``\\n``, ``\\u202e``):
    no terminal title, colour or cursor movement, no forged log line, no text reordered on screen.
    In logs (:class:`EscapingFilter`) a multi-line message keeps its line feeds, each further line
    indented, so that no value starts a line that looks like a log record.
``plain(text)``
    plain-text email: the same rule (a reader may copy it into a terminal); CR and LF of a one-line
    field are shown as ``\\r`` and ``\\n``, so a value cannot forge a line of the message.
``markdown(text)``
    the Article 33 draft. Markdown and HTML specials are escaped (``\\[``, ``\\|``, ``&lt;`` …), so no
    link, image, HTML tag or table cell comes from content; URLs are shown as inline code, never as
    live links; ``@`` before a word gets a word joiner (no mention where the draft is pasted).
``mrkdwn(text)``
    Slack and Mattermost messages (``format = "slack"``). ``&``, ``<`` and ``>`` are escaped per
    Slack's rules, so ``<!channel>``, ``<http://…|…>`` and ``<@U…>`` are inert in both (Mattermost
    translates only the raw forms); ``@`` before a word gets a word joiner (U+2060), which ends the word
    for Mattermost's mention parser and for Slack's ``link_names``, so ``@channel``/``@here``/``@all``
    and user mentions from content notify nobody; ``](`` is broken the same way, so Mattermost
    renders no Markdown link or image; URLs are shown as inline code (no link preview fetched);
    backticks from content become ``ˋ`` so content cannot open or close a code span.
HTML (the HTML email) is escaped with :func:`html.escape` after :func:`plain`.
JSON sent to machines (generic webhooks, ``--json``) is data: :func:`json.dumps` escapes it; for a
terminal, :func:`json_line` also escapes the C1 and bidi characters JSON allows raw.

A one-line field longer than ``limit`` (default :data:`ONE_LINE_LIMIT` characters) is cut, with a
marker saying how much was left out; multi-line text (``multiline=True``) keeps its line breaks.
The full value stays in the database and in the JSON outputs.

This module is on the ground floor: it imports nothing of the project.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

ONE_LINE_LIMIT = 2048
LOG_LIMIT = 8192  # a log message (the URLs it names included)
LOG_CONTINUATION = "    "  # before each further line of a multi-line log message
WORD_JOINER = "\u2060"

# C0, DEL, C1, Arabic letter mark, LRM/RLM, line/paragraph separators, bidi embeddings/overrides,
# bidi isolates, lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_KEEP_LF = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                             "\u2066-\u2069\ud800-\udfff]")
# what json.dumps leaves raw with ensure_ascii=False (it escapes C0 in strings; C0 outside is indentation)
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# What renderers turn into links: scheme://…, www.…, mailto:/xmpp:/javascript:/data:… (GFM autolinks
# and more), wherever it starts (a renderer may see a word boundary we do not); it ends before a
# space, '<', '>' or a backtick; trailing punctuation is left out, as GFM does.
_URL = re.compile(r"(?i)(?:[a-z][a-z0-9+.\-]*://|www\.|(?:mailto|xmpp|javascript|data|tel):)[^\s<>`]*")
_URL_TRAIL = ".,;:!?'\")]}>*_~"
_MENTION = re.compile(r"([@＠])(?=\w)")  # also the fullwidth commercial at


def _show(match: re.Match[str]) -> str:
    c = match.group()
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def cut(text: str, limit: int | None = ONE_LINE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how many were left out."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def visible(text: Any, *, multiline: bool = False) -> str:
    """Control, bidi and separator characters shown as escapes (line feeds kept if ``multiline``)."""
    return (_UNSAFE_KEEP_LF if multiline else _UNSAFE).sub(_show, _text(text))


def terminal(text: Any, *, multiline: bool = False, limit: int | None = ONE_LINE_LIMIT) -> str:
    """For logs and the command line: no character that moves, colours, retitles or reorders."""
    text = _text(text)
    return visible(text, multiline=True) if multiline else visible(cut(text, limit))


def plain(text: Any, *, multiline: bool = False, limit: int | None = ONE_LINE_LIMIT) -> str:
    """For plain-text email: the terminal rule; a one-line field's CR/LF are shown, not obeyed."""
    return terminal(text, multiline=multiline, limit=limit)


def _split_urls(text: str) -> list[tuple[bool, str]]:
    """``text`` as (is_url, part) pieces."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _URL.finditer(text):
        url = m.group().rstrip(_URL_TRAIL)
        if m.start() > pos:
            parts.append((False, text[pos:m.start()]))
        parts.append((True, url))
        pos = m.start() + len(url)
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# what starts a block when it starts a line: heading, list item, thematic break, setext underline
_MD_BLOCK = re.compile(r"^(\s*)([#+\-=]|\d+(?=[.)]))")


def _md_text(s: str, *, first: bool) -> str:
    s = _MENTION.sub(lambda m: m.group(1) + WORD_JOINER, s)  # before '_' of "@_x" is escaped
    s = _MD_SPECIAL.sub(r"\\\1", s)
    if first:
        s = _MD_BLOCK.sub(lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit()
                                                  else "\\" + m.group(2)), s, count=1)
    return "".join(_MD_HTML.get(c, c) for c in s).replace("](", "]" + WORD_JOINER + "(")


def _url_code(url: str, *, also: str = "") -> str:
    """A URL as one inline code span: the characters that could end or break it percent-encoded."""
    for c in "`|" + also:
        url = url.replace(c, f"%{ord(c):02X}")
    return f"`{url}`"


def markdown(text: Any, *, limit: int | None = ONE_LINE_LIMIT) -> str:
    """For Markdown (the Article 33 draft): inert text, a table cell included; URLs as inline code."""
    text = visible(cut(_text(text), limit))
    # a joiner after a text part ending with a backslash: no backslash ever stands before a code span
    return "".join(_url_code(part, also="<>") if is_url else
                   _md_text(part, first=i == 0) + (WORD_JOINER if part.endswith("\\") else "")
                   for i, (is_url, part) in enumerate(_split_urls(text)))


_SLACK = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "`": "ˋ"}


def _mrkdwn_text(s: str) -> str:
    s = "".join(_SLACK.get(c, c) for c in s)
    s = s.replace("](", "]" + WORD_JOINER + "(")
    return _MENTION.sub(lambda m: m.group(1) + WORD_JOINER, s)


def mrkdwn(text: Any, *, limit: int | None = ONE_LINE_LIMIT) -> str:
    """For Slack/Mattermost messages: no mention, link, image or control sequence from content.

    For a value inside a line (as every value of our messages is): a value at the start of a line
    could still make a Mattermost heading or list item (formatting only).
    """
    text = visible(cut(_text(text), limit))
    # '&' stays raw inside a URL's code span: with '<' and '>' encoded it cannot start a control
    # sequence, and Mattermost would show "&amp;" literally there.
    # a backslash just before a code span would escape its backtick (Mattermost): a joiner between
    return "".join(_url_code(part, also="<>") if is_url else
                   _mrkdwn_text(part) + (WORD_JOINER if part.endswith("\\") else "")
                   for is_url, part in _split_urls(text))


_CODE_SPAN = re.compile(r"(?<!\\)(`[^`\n]*`)")  # a backslash before a backtick escapes it


def mrkdwn_markdown(text: Any) -> str:
    """Markdown made by :func:`markdown` (the Article 33 draft), made inert in a chat message too.

    Output of :func:`markdown` is already: this changes nothing in it. It makes older text safe
    (a draft rendered before escaping existed): raw ``<`` and ``>``, mentions, ``](`` and control
    characters (line breaks kept) are escaped as :func:`mrkdwn` does.
    """
    s = visible(text, multiline=True).replace("<", "&lt;").replace(">", "&gt;")
    parts = _CODE_SPAN.split(s)  # code spans (odd indexes) are inert but for '<' and '>'
    for i in range(0, len(parts), 2):
        parts[i] = _MENTION.sub(lambda m: m.group(1) + WORD_JOINER, parts[i].replace("](", "]" + WORD_JOINER + "("))
    return "".join(parts)


def json_line(value: Any, **kwargs: Any) -> str:
    """``json.dumps(value)`` for a terminal: C1, DEL, bidi and separators as ``\\uXXXX`` escapes too.

    The result is the same JSON (those characters only occur inside strings, where the escape means
    the same character); ``json.dumps`` already escapes C0 controls.
    """
    kwargs.setdefault("ensure_ascii", False)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, **kwargs))


def _log_lines(text: str) -> str:
    return visible(text, multiline=True).replace("\n", "\n" + LOG_CONTINUATION)


class EscapingFilter(logging.Filter):
    """A handler filter: the formatted message, traceback and stack shown with :func:`terminal`.

    Line feeds are kept (Scrapy and tracebacks write multi-line messages) but every continuation
    line is indented by :data:`LOG_CONTINUATION`, so a value cannot forge a line that starts like a
    log record; CR and every other control character are shown escaped. Installed on a handler by
    :func:`escape_logs`: the front door's stderr handler, the crawl log of Scrapy
    (crawler/extensions.py).
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_dumpwatch_escaped", False):
            record.msg = _log_lines(cut(record.getMessage(), LOG_LIMIT))
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = _log_lines(record.exc_text)
            if record.stack_info:
                record.stack_info = _log_lines(record.stack_info)
            record._dumpwatch_escaped = True
        return True


def escape_logs(handler: logging.Handler) -> logging.Handler:
    """``handler`` with an :class:`EscapingFilter` (once), returned."""
    if not any(isinstance(f, EscapingFilter) for f in handler.filters):
        handler.addFilter(EscapingFilter())
    return handler

"""Saved page structures of the local test sites (served by :class:`dumpwatch.devkit.localsites.SiteServer`).

Pages under ``sites/`` (phpBB, MyBB, XenForo, Discourse JSON, RSS/Atom feeds, Telegram previews)
carry ``$name`` placeholders that the tests fill in.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

SITES = Path(__file__).resolve().parents[1] / "crawler" / "sites"


def template(relpath: str, **values: str) -> bytes:
    """A saved page structure under sites/, with ``$name`` placeholders filled in."""
    text = (SITES / relpath).read_text(encoding="utf-8")
    return Template(text).substitute(values).encode("utf-8")

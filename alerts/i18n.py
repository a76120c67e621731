"""The languages of the alerts: gettext catalogues (Babel), dates and numbers in the receiver's language.

Every string a receiver reads is a msgid in English, marked in the code with :func:`_`,
:func:`ngettext`, :func:`pgettext`, :func:`npgettext` (or :func:`N_` where a table of strings is
declared before any language is chosen), extracted with ``pybabel extract`` (``babel.cfg``) into
``alerts/locale/{fr,en}/LC_MESSAGES/dumpwatch.po`` and compiled to ``.mo`` by the build (``make
locales``; ``setup.py`` compiles them when the package is built or installed). French is the default
(``[alerts] language``), each receiver may ask for ``language = "en"``.

A message is rendered inside ``with use("fr", "Europe/Paris"):``; the helpers read the language and
the time zone of the render in progress (a :class:`contextvars.ContextVar`, so two renders in two
threads do not mix). Outside of any ``use`` block they speak English in UTC.

A catalogue whose ``.mo`` is missing or older than its ``.po`` (a source checkout where the build step
has not run yet, or a translator's edit) is compiled in memory from the ``.po``, with a warning that
says how to compile it; a language without any catalogue is an error.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from dumpwatch import clock

log = logging.getLogger(__name__)

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
DEFAULT_TIMEZONE = "Europe/Paris"
DOMAIN = "dumpwatch"
LOCALE_DIR = Path(__file__).resolve().with_name("locale")


@dataclass(frozen=True)
class Speech:
    """The language and time zone of the render in progress, and its catalogue."""

    language: str
    timezone: ZoneInfo
    translations: NullTranslations


def catalogue_paths(language: str) -> tuple[Path, Path]:
    """The ``.po`` and the ``.mo`` of ``language``."""
    base = LOCALE_DIR / language / "LC_MESSAGES" / DOMAIN
    return base.with_suffix(".po"), base.with_suffix(".mo")


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (cached for the process)."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; dumpwatch speaks {', '.join(LANGUAGES)}")
    po, mo = catalogue_paths(language)
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if not po.exists():
        raise FileNotFoundError(f"no message catalogue for {language!r} ({po}); reinstall dumpwatch")
    log.warning("message catalogue %s is not compiled (or older than its .po): compiled in memory; "
                "run `make locales` (or reinstall) to compile it", po)
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Paris``); ValueError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as \"Europe/Paris\" or \"UTC\"") \
            from None


_ENGLISH = Speech("en", ZoneInfo("UTC"), NullTranslations())
_current: ContextVar[Speech] = ContextVar("dumpwatch_speech", default=_ENGLISH)


@contextmanager
def use(language: str, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Speech]:
    """Render in ``language`` (``fr`` or ``en``) with dates in ``timezone`` inside the block."""
    token = _current.set(Speech(language, zone(timezone), translations(language)))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def current() -> Speech:
    return _current.get()


# -- the gettext functions (pybabel's default keywords) -----------------------------------------------

def _(message: str) -> str:
    return _current.get().translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get().translations.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return _current.get().translations.pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return _current.get().translations.npgettext(context, singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for extraction only; translate it with :func:`_` where it is used."""
    return message


# -- dates and numbers --------------------------------------------------------------------------------

def date(value: str | datetime | None) -> str:
    """An ISO 8601 time (or a datetime) in the current language and time zone, e.g.
    ``30 novembre 2026 à 17:30:00 UTC+1``; an empty or unreadable value is shown as it is."""
    if not value:
        return ""
    try:
        dt = clock.parse(value) if isinstance(value, str) else value
    except (TypeError, ValueError):
        return str(value)
    speech = _current.get()
    return format_datetime(dt, "long", tzinfo=speech.timezone, locale=Locale.parse(speech.language))


def number(n: int | float) -> str:
    """A count in the current language: ``1 234`` (narrow space) in French, ``1,234`` in English."""
    return format_decimal(n, locale=Locale.parse(_current.get().language))

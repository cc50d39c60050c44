"""Interface languages: the six UN languages through gettext catalogues (``web/locale/LANG.po`` for the
templates, ``web/static/i18n/LANG.json`` for the ES modules, the same msgids).

The language is the ``forumlive_lang`` cookie when set (``/language`` sets it), else the best match in
the browser's ``Accept-Language``, else English. Catalogues are read once, when the templates are made;
the PO files are compiled in memory (no build step). Forum content (session titles) stays in the
language it was entered in.
"""

from __future__ import annotations

import json
import re
import unicodedata
from contextvars import ContextVar
from datetime import date, datetime, tzinfo
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from markupsafe import Markup

from web import STATIC_DIR, WEB_DIR

LANGUAGES = {"en": "English", "fr": "Français", "es": "Español", "ar": "العربية", "zh": "中文", "ru": "Русский"}
DEFAULT = "en"
RIGHT_TO_LEFT = {"ar"}
COOKIE = "forumlive_lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
LOCALE_DIR = WEB_DIR / "locale"

# A page that carries its scripts' messages in its HTML (page_catalogue) rather than fetching the whole
# LANG.json: the scripts it loads (base.html's too), their imports and what they import on demand (media.js,
# sentences.js).
PAGE_SCRIPTS = {"lite": ("lite.js", "common.js", "sentences.js", "captionprefs.js", "media.js", "localtime.js")}
# Messages in the ES modules: t("…"), tn("…", …) and sentences.js's templates of the server's sentences.
_SCRIPT_MESSAGE = re.compile(r"""\b(?:t|tn|sentence)\(\s*"((?:[^"\\]|\\.)*)\"""")

# The language of the page being rendered (set by pages.render before the template runs).
current: ContextVar[str] = ContextVar("forumlive_language", default=DEFAULT)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The page's language: a known cookie value, else the browser's best match, else English."""
    if cookie in LANGUAGES:
        return cookie
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            wanted.append((-quality, index, tag.strip().lower()))
    for quality, _index, tag in sorted(wanted):
        primary = tag.split("-")[0]
        if quality < 0 and primary in LANGUAGES:
            return primary
    return DEFAULT


def load_po(path: Path) -> Translations:
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=path.stem)
    buffer = BytesIO()
    write_mo(buffer, catalogue)
    buffer.seek(0)
    return Translations(buffer)


class Catalogues:
    """Every language's translations, read once."""

    def __init__(self, directory: Path = LOCALE_DIR) -> None:
        self.translations: dict[str, NullTranslations] = {DEFAULT: NullTranslations()}
        for code in LANGUAGES:
            path = directory / f"{code}.po"
            if code != DEFAULT and path.exists():
                self.translations[code] = load_po(path)

    def gettext(self, message: str) -> str:
        return self.translations.get(current.get(), self.translations[DEFAULT]).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.get(current.get(), self.translations[DEFAULT]).ngettext(singular, plural, n)


@cache
def catalogues() -> Catalogues:
    """The catalogues, read once per process (templates and server-side messages share them)."""
    return Catalogues()


def N_(message: str) -> str:  # noqa: N802 - gettext's name for a marker
    """Marks a message to translate where it is shown (pages translate errors and notices through the
    catalogue); the message itself stays English for the API."""
    return message


def gettext(message: str) -> str:
    """A message (from the server's Python code) in the current language; no formatting applied."""
    return catalogues().gettext(message)


# Validation reasons (pydantic's and server/schemas.py's, English, with a number inside) and the message
# each is shown as: "at least" or "at most" so many characters, or empty.
_AT_LEAST = re.compile(r"^(?:must be|String should have|Value should have) at least (\d+) (?:characters?|items?)")
_AT_MOST = re.compile(r"^(?:must be|String should have|Value should have) at most (\d+) (?:characters?|items?)")


def field_reason(reason: str) -> str:
    """Why a form field was refused, in the current language (the API keeps the English reason)."""
    translations = catalogues()
    if reason == "Field required":
        return translations.gettext("is required")
    if found := _AT_LEAST.match(reason):
        count = int(found.group(1))
        if count == 1:
            return translations.gettext("must not be empty")
        text = translations.ngettext("must be at least %(num)s character", "must be at least %(num)s characters", count)
        return text % {"num": count}
    if found := _AT_MOST.match(reason):
        count = int(found.group(1))
        text = translations.ngettext("must be at most %(num)s character", "must be at most %(num)s characters", count)
        return text % {"num": count}
    return translations.gettext(reason)


def format_number(value: int | float) -> str:
    """A number with the page language's grouping (``12 345``, ``12,345``)."""
    return format_decimal(value, locale=Locale.parse(current.get()))


def country_label(code: str, english: str) -> str:
    """A country's name in the page's language (CLDR), else the given English name."""
    return english if current.get() == DEFAULT else Locale.parse(current.get()).territories.get(code, english)


def direction(code: str) -> str:
    return "rtl" if code in RIGHT_TO_LEFT else "ltr"


def format_when(value: datetime, zone: tzinfo | None = None) -> str:
    """A day and time in the page's language (``mar. 1 déc. 2026 09:00``, ``Tue, Dec 1, 2026 9:00 AM``)."""
    locale = Locale.parse(current.get())
    return f"{format_skeleton('yMMMEd', value, tzinfo=zone, locale=locale)} {format_hour(value, zone)}"


def format_hour(value: datetime, zone: tzinfo | None = None) -> str:
    """A time of day in the page's language."""
    return format_time(value, format="short", tzinfo=zone, locale=Locale.parse(current.get()))


def format_day(value: date, form: str = "long") -> str:
    """A date in the page's language (``1 décembre 2026``, ``2026年12月1日``)."""
    return format_date(value, format=form, locale=Locale.parse(current.get()))


def language_name(code: str) -> str | None:
    """A language's name in the page's language (``arabe``, ``阿拉伯语``), None when CLDR has none."""
    return Locale.parse(current.get()).languages.get(code)


def country_names(english: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(code, name) of each country in the page's language (CLDR's names; the given English name where it
    has none), sorted by name ignoring accents. English keeps the given names and order."""
    return list(english) if current.get() == DEFAULT else _country_names(current.get(), tuple(english))


@cache
def _country_names(language: str, english: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    territories = Locale.parse(language).territories
    named = [(code, territories.get(code, name)) for code, name in english]

    def key(pair: tuple[str, str]) -> str:
        return "".join(c for c in unicodedata.normalize("NFKD", pair[1]) if not unicodedata.combining(c)).casefold()

    return sorted(named, key=key)


@cache
def _script_messages(name: str) -> frozenset[str]:
    return frozenset(_SCRIPT_MESSAGE.findall((STATIC_DIR / name).read_text()))


@cache
def page_messages(page: str, code: str) -> dict[str, object]:
    """The part of ``web/static/i18n/CODE.json`` a page needs: what its scripts (``PAGE_SCRIPTS``) show, and
    the server's sentences (socket errors, which no script names and any page may be sent); what only other
    pages' scripts use is left out."""
    catalogue = json.loads((STATIC_DIR / "i18n" / f"{code}.json").read_text())
    wanted = frozenset().union(*(_script_messages(name) for name in PAGE_SCRIPTS[page]))
    others = frozenset().union(*(_script_messages(p.name) for p in STATIC_DIR.glob("*.js"))) - wanted
    return {key: text for key, text in catalogue.items() if key not in others}


def page_catalogue(page: str) -> Markup:
    """``page_messages`` in the current language as JSON for a ``<script type="application/json">`` in the
    page (common.js reads it instead of fetching the whole catalogue); empty in English. UTF-8, with ``<``,
    ``>``, ``&`` and ``'`` escaped as Jinja's ``tojson`` does, so the text cannot close the element."""
    code = current.get()
    if code == DEFAULT or not (STATIC_DIR / "i18n" / f"{code}.json").exists():
        return Markup("")
    text = json.dumps(page_messages(page, code), ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escaped)
    return Markup(text)  # noqa: S704 - JSON with the characters that could end the element escaped

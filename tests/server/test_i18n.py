"""Interface languages: every marked string in every catalogue, the language chosen from the browser and
remembered in a cookie, Arabic right to left, dates per locale."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from starlette.testclient import TestClient

from server import i18n
from web import STATIC_DIR, TEMPLATES_DIR

TEMPLATE_MESSAGE = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
SCRIPT_MESSAGE = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)\"""")
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")
TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.DEFAULT]


def template_messages() -> set[str]:
    found = set()
    for path in TEMPLATES_DIR.glob("*.html"):
        for double, single in TEMPLATE_MESSAGE.findall(path.read_text()):
            found.add(double or single)
    return found


def script_messages() -> set[str]:
    return {m for path in STATIC_DIR.glob("*.js") for m in SCRIPT_MESSAGE.findall(path.read_text())}


def test_the_extractors_find_the_marked_strings() -> None:
    """The completeness check below reads what the pages mark (a broken pattern would pass vacuously)."""
    assert {"Skip to content", "Live captions", "Ask"} <= template_messages()
    assert {"Reconnecting…", "Vote (votes so far: {count})"} <= script_messages()


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_marked_string_is_in_every_catalogue(code: str) -> None:
    """Each template string has a translation in LANG.po and each script string in LANG.json, with the
    same placeholders; a string added to a page without its translations fails here."""
    translations = i18n.load_po(i18n.LOCALE_DIR / f"{code}.po")
    catalogue = translations._catalog  # noqa: SLF001 - the messages as read, to tell missing from identical
    missing = [m for m in sorted(template_messages()) if not catalogue.get(m)]
    assert missing == [], f"{code}.po lacks {missing}"
    scripts = json.loads((STATIC_DIR / "i18n" / f"{code}.json").read_text())
    missing = [m for m in sorted(script_messages()) if not scripts.get(m)]
    assert missing == [], f"i18n/{code}.json lacks {missing}"
    for message in template_messages():
        assert set(PLACEHOLDER.findall(catalogue[message])) == set(PLACEHOLDER.findall(message)), (code, message)
    for message in script_messages():
        assert set(PLACEHOLDER.findall(scripts[message])) == set(PLACEHOLDER.findall(message)), (code, message)


def test_language_from_cookie_then_accept_language_then_english() -> None:
    """The cookie wins; else the browser's best-weighted language that forumlive has; else English."""
    assert i18n.negotiate(None, "ar-EG,ar;q=0.9,en;q=0.5") == "ar"
    assert i18n.negotiate(None, "de-DE,de;q=0.9,ru;q=0.8,fr;q=0.7") == "ru"
    assert i18n.negotiate(None, "fr;q=0.2, zh-CN") == "zh"
    assert i18n.negotiate(None, "de, it") == "en"
    assert i18n.negotiate("es", "ar") == "es"
    assert i18n.negotiate("xx", "ar") == "ar"


def test_pages_follow_the_browser_and_the_switch(client: TestClient) -> None:
    """Accept-Language picks the page's language; /language remembers another in a cookie; Arabic is RTL."""
    page = client.get("/signin", headers={"accept-language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr" dir="ltr">' in page.text and "Aller au contenu" in page.text
    switched = client.get("/language?lang=ar&next=/signin", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/signin"
    page = client.get("/signin", headers={"accept-language": "fr"})
    assert '<html lang="ar" dir="rtl">' in page.text and "انتقل إلى المحتوى" in page.text
    elsewhere = client.get("/language?lang=ru&next=https://evil.example/", follow_redirects=False)
    assert elsewhere.headers["location"] == "/"


def test_dates_are_written_in_the_page_language() -> None:
    """Month names and order follow the language."""
    day = date(2026, 12, 1)
    written = {}
    for code in ("en", "fr", "ru", "zh"):
        token = i18n.current.set(code)
        written[code] = i18n.format_day(day)
        i18n.current.reset(token)
    assert written["en"] == "December 1, 2026"
    assert written["fr"] == "1 décembre 2026"
    assert "декабря" in written["ru"]
    assert written["zh"] == "2026年12月1日"


def test_sign_in_and_error_pages_are_translated(client: TestClient) -> None:
    """The sign-in form and error pages speak the browser's language."""
    signin = client.get("/signin", headers={"accept-language": "zh-CN"})
    assert '<label for="password">密码</label>' in signin.text
    missing = client.get("/no-such-page", headers={"accept-language": "ru"})
    assert missing.status_code == 404 and "Не найдено" in missing.text and "Вернуться к программе" in missing.text


def test_session_times_are_written_in_the_page_language() -> None:
    """The programme's times (before the page's script rewrites them in the viewer's zone) follow the language."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    written = {}
    for code in ("en", "fr", "zh"):
        token = i18n.current.set(code)
        written[code] = i18n.format_when(start, ZoneInfo("Europe/Zurich"))
        i18n.current.reset(token)
    assert written["en"].startswith("Tue, Dec 1, 2026") and "9:00" in written["en"]
    assert written["fr"].startswith("mar. 1 déc. 2026") and "09:00" in written["fr"]
    assert written["zh"].startswith("2026年12月1日")


def test_session_page_in_french(app, client: TestClient) -> None:  # noqa: ANN001
    """The session page's labels, places and buttons come from the French catalogue; the title stays as entered."""
    from tests.conftest import make_forum, make_session, sign_in_organizer

    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"], title="E-health workshop", capacity=40)
    page = client.get(f"/sessions/{session['id']}", headers={"accept-language": "fr"})
    assert "E-health workshop" in page.text
    assert "<dt>Format</dt>" in page.text and "0 sur 40 prises" in page.text
    assert "Ajouter à mon agenda" in page.text and "Page légère" in page.text

"""Interface languages: every marked string in every catalogue, the language chosen from the browser and
remembered in a cookie, Arabic right to left, dates per locale."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from babel import Locale
from starlette.testclient import TestClient

from server import i18n
from web import STATIC_DIR, TEMPLATES_DIR

TEMPLATE_MESSAGE = re.compile(r"""\b_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
SCRIPT_MESSAGE = re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)\"""")
# Messages with a count: ngettext("…", "…", n) in templates, tn("…", "…", n) in scripts.
TEMPLATE_PLURAL = re.compile(r"""\bngettext\(\s*"((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)\"""")
SCRIPT_PLURAL = re.compile(r"""\btn\(\s*"((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)\"""")
# Errors the room socket sends (in English, with a code); the pages' scripts show them through the JSON catalogue.
SOCKET_ERROR = re.compile(r"""\b(?:RoomError|_error|protocol\.error)\(\s*"\w+",\s*"((?:[^"\\]|\\.)*)\"""")
# The same with values in them (f-strings), and the templates sentences.js matches them with.
SOCKET_ERROR_WITH_VALUES = re.compile(r"""\b(?:RoomError|_error|protocol\.error)\(\s*"\w+",\s*f"((?:[^"\\]|\\.)*)\"""")
SENTENCE = re.compile(r"""\bsentence\(\s*"((?:[^"\\]|\\.)*)\"""")
# Sentences whose values are a few known words or another sentence: the sentences that can be sent.
SPELLED_OUT = {
    "the poll is {state}": {"the poll is draft", "the poll is open", "the poll is closed"},
    "{what} between rounds, not during one": {
        f"{what} between rounds, not during one" for what in ("seat people", "rotate", "start a round")
    },
    # realtime/cafe.py's NotEnoughSeats: "{count} people but only {seats} seats".
    "cannot seat everyone: {exc}": {"cannot seat everyone: {count} people but only {seats} seats"},
    "cannot rotate: {exc}": {"cannot rotate: {count} people but only {seats} seats"},
}
# Left in English: rate limits are shown from their code and retry_after_s; the others answer frames that
# only a broken client sends (framing, JSON, unknown types, media signaling).
UNTRANSLATED = {
    "too fast; try again in {wait} s",
    "key {key} appears twice",
    "frame of {size} bytes is over the {max_frame_bytes}-byte limit",
    "not valid JSON: {exc}",
    "unknown message type {kind}",
    "{type} failed: {exc}",
    "no {pc} connection to add a candidate to",
    "the {kind} is not a valid SDP",
    "the {kind} has no media",
}
# Messages the server's Python code translates: i18n.gettext("…"), and N_("…") marking errors and notices
# that pages show translated (the API keeps them in English).
SERVER_MESSAGE = re.compile(r"""\b(?:gettext|N_)\(\s*"((?:[^"\\]|\\.)*)\"""")
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")
TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.DEFAULT]


def vocabulary_messages() -> set[str]:
    """Labels of the forum's vocabularies that templates translate as values (``_(s.type_label)``)."""
    from server.geo import REGION_LABELS
    from server.vocab import ACTION_LINES, GENDER_LABELS, SDGS, SESSION_TYPE_LABELS, STAKEHOLDER_LABELS, TRACK_LABELS

    labels: list[dict] = [SESSION_TYPE_LABELS, TRACK_LABELS, STAKEHOLDER_LABELS, GENDER_LABELS, REGION_LABELS,
                          ACTION_LINES, SDGS]
    return {label for vocabulary in labels for label in vocabulary.values()}


def server_messages() -> set[str]:
    root = TEMPLATES_DIR.parent.parent / "server"
    return {m for path in root.rglob("*.py") for m in SERVER_MESSAGE.findall(path.read_text())}


def template_messages() -> set[str]:
    """What LANG.po must hold: the templates' marked strings, vocabulary labels and the server's messages."""
    found = set(vocabulary_messages()) | server_messages()
    for path in TEMPLATES_DIR.glob("*.html"):
        for double, single in TEMPLATE_MESSAGE.findall(path.read_text()):
            found.add(double or single)
    return found


def socket_errors() -> set[str]:
    root = TEMPLATES_DIR.parent.parent
    paths = [*(root / "realtime").glob("*.py"), *(root / "server").rglob("*.py")]
    return {m for path in paths for m in SOCKET_ERROR.findall(path.read_text())}


def _template(sentence: str) -> str:
    """An f-string's text with each replacement field named by its last attribute: ``{poll.state.value}`` →
    ``{state}``, ``{wait:.0f}`` → ``{wait}``, ``{MIN_LEFT_S}`` → ``{min_left_s}``."""

    def name(found: re.Match[str]) -> str:
        expression = re.split(r"[!:\[]", found.group(1))[0]
        parts = [p for p in expression.split(".") if p != "value"]
        return "{" + parts[-1].lower() + "}"

    return re.sub(r"\{([^{}]+)\}", name, sentence)


def socket_error_templates() -> set[str]:
    """The socket's error sentences with values in them, as templates (``no question {question_id} in this room``)."""
    root = TEMPLATES_DIR.parent.parent
    paths = [*(root / "realtime").glob("*.py"), *(root / "server").rglob("*.py")]
    return {_template(m) for path in paths for m in SOCKET_ERROR_WITH_VALUES.findall(path.read_text())}


def sentence_templates() -> set[str]:
    """The templates sentences.js translates the server's sentences with (``sentence("…")``)."""
    return set(SENTENCE.findall((STATIC_DIR / "sentences.js").read_text()))


def script_messages() -> set[str]:
    """What LANG.json must hold: the scripts' t("…") strings, the socket's fixed error sentences and the
    templates of its sentences with values."""
    scripts = {m for path in STATIC_DIR.glob("*.js") for m in SCRIPT_MESSAGE.findall(path.read_text())}
    return scripts | socket_errors() | sentence_templates()


def template_plurals() -> set[tuple[str, str]]:
    """Counted messages of LANG.po: the templates' ngettext and the server's (i18n.field_reason)."""
    paths = [*TEMPLATES_DIR.glob("*.html"), *(TEMPLATES_DIR.parent.parent / "server").rglob("*.py")]
    return {pair for path in paths for pair in TEMPLATE_PLURAL.findall(path.read_text())}


def script_plurals() -> set[tuple[str, str]]:
    return {pair for path in STATIC_DIR.glob("*.js") for pair in SCRIPT_PLURAL.findall(path.read_text())}


def plural_categories(code: str) -> set[str]:
    """CLDR's plural categories of a language (what Intl.PluralRules.select returns in the browser)."""
    return set(Locale.parse(code).plural_form.tags) | {"other"}


def test_the_extractors_find_the_marked_strings() -> None:
    """The completeness check below reads what the pages mark (a broken pattern would pass vacuously)."""
    assert {"Skip to content", "Live captions", "Ask"} <= template_messages()
    assert {"Reconnecting…", "Vote (votes so far: {count})"} <= script_messages()
    assert ("Vote, {count} vote", "Vote, {count} votes") in script_plurals()
    assert "Not disclosed" in server_messages()
    assert {"this session has ended", "sit at a table first", "not saved; please try again"} <= socket_errors()


def test_every_socket_error_with_values_has_its_template() -> None:
    """Each sentence with values the room socket sends (f-strings in realtime/ and server/) has its template in
    sentences.js, so pages can show it translated (the catalogues' check above covers the templates); a new one
    fails here until it is added there or, for frames only a broken client causes, to UNTRANSLATED."""
    templates = sentence_templates()
    sent = socket_error_templates()
    assert {"no question {question_id} in this room", "table {id} ({topic}) is full"} <= sent
    missing = []
    for template in sorted(sent - UNTRANSLATED):
        if not SPELLED_OUT.get(template, {template}) <= templates:
            missing.append(template)
    assert missing == [], f"web/static/sentences.js has no sentence() for {missing}"
    # Sent with a value built beside the raise (realtime/cafe_room.py's round_ended), so not found above.
    assert {"round {round} has ended", "no round has started"} <= templates


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


def lite_page_scripts() -> set[str]:
    """The scripts the lite page loads: lite.html's and base.html's, their imports and their import()s."""
    pattern = r'(?:src="|from "|import\(")/static/([\w.]+\.js)"'
    pages = ("base.html", "lite.html")
    pending = [m for name in pages for m in re.findall(pattern, (TEMPLATES_DIR / name).read_text())]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending += re.findall(pattern, (STATIC_DIR / name).read_text())
    return seen


def test_the_lite_page_names_the_scripts_it_loads() -> None:
    """The lite page's inline catalogue is cut to the messages of i18n.PAGE_SCRIPTS["lite"]: every script it
    can load must be there."""
    assert {"lite.js", "common.js", "media.js"} <= lite_page_scripts()
    assert lite_page_scripts() == set(i18n.PAGE_SCRIPTS["lite"])


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_lite_page_carries_every_message_it_can_show(code: str) -> None:
    """The lite page's messages (inlined in it, server/i18n.py's page_catalogue) hold every string its scripts
    show and every sentence the socket may send, as the whole catalogue has them, and are a real cut of it."""
    subset = i18n.page_messages("lite", code)
    full = json.loads((STATIC_DIR / "i18n" / f"{code}.json").read_text())
    shown: set[str] = set()
    for name in lite_page_scripts():
        text = (STATIC_DIR / name).read_text()
        shown |= set(SCRIPT_MESSAGE.findall(text)) | {s for s, _ in SCRIPT_PLURAL.findall(text)}
    missing = sorted(m for m in shown | socket_errors() | sentence_templates() if m not in subset)
    assert missing == [], f"the lite page's {code} messages lack {missing}"
    assert all(full[key] == text for key, text in subset.items())
    assert "Lower hand" in full and "Lower hand" not in subset  # the room page's, not the lite page's
    assert len(json.dumps(subset, ensure_ascii=False)) < 0.75 * len(json.dumps(full, ensure_ascii=False))


def test_the_lite_page_catalogue_is_json_that_cannot_close_its_element() -> None:
    """The lite page's messages as the page carries them: none in English; in French, JSON with ``<`` escaped."""
    text = i18n.page_catalogue("lite")
    assert text == ""
    token = i18n.current.set("fr")
    try:
        text = str(i18n.page_catalogue("lite"))
    finally:
        i18n.current.reset(token)
    assert "<" not in text and json.loads(text)["No questions yet."] == json.loads(
        (STATIC_DIR / "i18n" / "fr.json").read_text()
    )["No questions yet."]


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_message_with_a_count_has_all_its_plural_forms(code: str) -> None:
    """A counted message has every plural form of the language: msgstr[0..n-1] in LANG.po (n from its
    Plural-Forms header), one per CLDR category in LANG.json, each with the placeholders of the English."""
    translations = i18n.load_po(i18n.LOCALE_DIR / f"{code}.po")
    catalogue = translations._catalog  # noqa: SLF001
    forms = len({translations.plural(n) for n in range(200)})
    for singular, plural in sorted(template_plurals()):
        wanted = set(PLACEHOLDER.findall(singular)) | set(PLACEHOLDER.findall(plural))
        for index in range(forms):
            text = catalogue.get((singular, index))
            assert text, f"{code}.po lacks form {index} of {singular!r}"
            assert set(PLACEHOLDER.findall(text)) <= wanted, (code, singular, index)
    scripts = json.loads((STATIC_DIR / "i18n" / f"{code}.json").read_text())
    for singular, plural in sorted(script_plurals()):
        entry = scripts.get(singular)
        assert isinstance(entry, dict), f"i18n/{code}.json lacks the plural forms of {singular!r}"
        assert plural_categories(code) <= {k for k, v in entry.items() if v}, (code, singular, sorted(entry))
        wanted = set(PLACEHOLDER.findall(singular)) | set(PLACEHOLDER.findall(plural))
        for text in entry.values():
            assert set(PLACEHOLDER.findall(text)) <= wanted, (code, singular, text)


def test_plural_forms_follow_the_language() -> None:
    """Russian picks one, few or many by the number's ending; Arabic has six forms; Chinese one."""
    russian = i18n.load_po(i18n.LOCALE_DIR / "ru.po")
    assert [russian.plural(n) for n in (1, 2, 5, 11, 21, 22, 25)] == [0, 1, 2, 2, 0, 1, 2]
    arabic = i18n.load_po(i18n.LOCALE_DIR / "ar.po")
    assert [arabic.plural(n) for n in (0, 1, 2, 3, 11, 100)] == [0, 1, 2, 3, 4, 5]
    assert i18n.load_po(i18n.LOCALE_DIR / "zh.po").plural(7) == 0


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


def test_room_page_in_russian(app, client: TestClient) -> None:  # noqa: ANN001
    """The live room's panels, moderator controls and the viewer's role come from the Russian catalogue."""
    from tests.conftest import make_forum, make_session, sign_in_organizer

    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"], title="E-health workshop")
    page = client.get(f"/sessions/{session['id']}/room", headers={"accept-language": "ru"})
    assert page.status_code == 200 and "E-health workshop" in page.text
    for text in ("Управление модератора", "Начать эфир", "Поднять руку", "Опросы", "Присутствующие", "организатор"):
        assert text in page.text, text
    assert "Moderator controls" not in page.text and "Raise hand" not in page.text


def test_programme_in_spanish_with_its_count(app, client: TestClient) -> None:  # noqa: ANN001
    """The programme's filters, formats and count (with its plural) in Spanish; day names from CLDR."""
    from tests.conftest import make_forum, make_session, sign_in_organizer

    sign_in_organizer(app, client)
    forum = make_forum(client)
    make_session(client, forum["id"], title="E-health workshop")
    page = client.get("/", headers={"accept-language": "es"})
    for text in ("Todos los formatos", "Todas las líneas de acción", "Filtrar", "1 sesión", "Taller temático",
                 "Las horas se muestran en Europe/Zurich.", "1. Fin de la pobreza", "Creación de capacidad"):
        assert text in page.text, text
    make_session(client, forum["id"], title="Second workshop")
    assert "2 sesiones" in client.get("/", headers={"accept-language": "es"}).text
    assert "2 сессии" in client.get("/", headers={"accept-language": "ru"}).text


def test_profile_in_arabic_with_country_names(app, client: TestClient) -> None:  # noqa: ANN001
    """The registration and profile forms in Arabic, with countries named and sorted in Arabic."""
    from tests.conftest import register

    page = client.get("/register", headers={"accept-language": "ar"})
    assert "أنشئ حسابك" in page.text and "الاسم الكامل" in page.text and "أوافق على حفظ بلدي واحتسابه" in page.text
    assert '<option value="FR">فرنسا</option>' in page.text and "France" not in page.text
    register(client)
    profile = client.get("/profile", headers={"accept-language": "ar"})
    assert "ملفك الشخصي" in profile.text and "حذف حسابي" in profile.text
    english = client.get("/profile").text
    assert '<option value="FR">France</option>' in english


def test_cafe_floor_in_chinese(app, client: TestClient) -> None:  # noqa: ANN001
    """The café floor's panels and the moderator's controls come from the Chinese catalogue."""
    from tests.conftest import make_forum, make_session, sign_in_organizer

    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"], title="Digital skills café", type="knowledge_cafe")
    page = client.get(f"/sessions/{session['id']}/cafe", headers={"accept-language": "zh-CN"})
    assert page.status_code == 200 and "Digital skills café" in page.text
    for text in ("咖啡馆大厅", "为所有人安排座位", "每轮时长（分钟）", "本桌笔记", "全体会议：关键见解", "组织者"):
        assert text in page.text, text
    assert "Seat everyone" not in page.text


def test_report_transcripts_and_invitation_pages_translated(app, client: TestClient) -> None:  # noqa: ANN001
    """The key figures (headings, chart titles and vocabulary labels), the transcript search and a session's
    transcript (with its counted captions) and the organizer's invitation panel in French."""
    from tests.conftest import make_forum, make_session, sign_in_organizer

    sign_in_organizer(app, client)
    forum = make_forum(client)
    session = make_session(client, forum["id"], title="E-health workshop")
    fr = {"accept-language": "fr"}
    report = client.get(f"/forums/{forum['id']}/report", headers=fr)
    assert report.status_code == 200
    for text in ("Chiffres clés", "Qui a participé", "Répartition régionale", "Sessions par format", "Restés ≥ 80 %"):
        assert text in report.text, text
    assert "« &lt;5 »" in report.text, "the hidden-cell marker is escaped"
    search = client.get("/transcripts?q=health", headers=fr)
    assert "Rechercher ce qui a été dit" in search.text and "0 sous-titre trouvé" in search.text
    transcript = client.get(f"/sessions/{session['id']}/transcript", headers=fr)
    assert "Transcription" in transcript.text and "0 sous-titre" in transcript.text
    assert "Rien n’a encore été sous-titré dans cette session." in transcript.text
    page = client.get(f"/sessions/{session['id']}", headers=fr)
    assert "Créer un lien d’intervenant" in page.text


def test_server_errors_and_notices_in_the_page_language(app, client: TestClient) -> None:  # noqa: ANN001
    """A failed sign-in, a field error, an error page and a notice after an action speak the page's language;
    the API keeps the English message."""
    from tests.conftest import PASSWORD, csrf, register

    register(client, email="pat@example.org")
    token = client.get("/signin").text.split('name="csrf_token" value="')[1].split('"')[0]
    wrong = {"email": "pat@example.org", "password": "wrong-password!", "csrf_token": token}
    failed = client.post("/signin", data=wrong, headers={"accept-language": "es"})
    assert "Correo electrónico o contraseña incorrectos." in failed.text
    api = client.post("/api/auth/signin", json={"email": "pat@example.org", "password": "nope-nope-nope"},
                      headers=csrf(client))
    assert "wrong email or password" in api.text
    again = client.post("/register", headers={"accept-language": "ru"}, data={
        "name": "Pat", "email": "pat@example.org", "password": "long-enough-password", "csrf_token": token})
    assert "уже зарегистрирован" in again.text
    expired = client.get("/invitations/no-such-token", headers={"accept-language": "zh"})
    assert "此邀请链接无效。" in expired.text
    signed_in = client.post("/signin", data={"email": "pat@example.org", "password": PASSWORD, "csrf_token": token},
                            headers={"accept-language": "ar"})  # followed to the programme, which shows the notice
    assert "تم تسجيل الدخول باسم Pat Participant." in signed_in.text


def test_form_field_reasons_in_the_page_language(client: TestClient) -> None:
    """The registration form's refusals (empty name, short password, bad email) name the reason in French,
    with the count in its plural form."""
    token = client.get("/register").text.split('name="csrf_token" value="')[1].split('"')[0]
    page = client.post("/register", headers={"accept-language": "fr"},
                       data={"name": "", "email": "nope", "password": "short", "csrf_token": token})
    assert "n’est pas une adresse e-mail" in page.text
    assert "doit comporter au moins 10 caractères" in page.text
    assert "ne doit pas être vide" in page.text or "est obligatoire" in page.text
    token = i18n.current.set("ru")
    try:
        assert i18n.field_reason("String should have at most 21 characters") == "должно содержать не более 21 символа"
        assert i18n.field_reason("must be at least 5 characters") == "должно содержать не менее 5 символов"
    finally:
        i18n.current.reset(token)

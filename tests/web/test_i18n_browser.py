"""The Arabic interface in Chromium: chosen from the browser's language, laid out right to left, the
page's script messages from the JSON catalogue, and the switch back to English remembered."""

from __future__ import annotations

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import DemoServer
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_arabic_lite_page_is_right_to_left(browser: Browser, demo_server: DemoServer) -> None:
    """With Accept-Language ar the lite page is lang=ar dir=rtl, its header starts on the right, its
    script writes Arabic from the messages the page carries (no catalogue fetched), and choosing English in
    the footer keeps English on the next page."""
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    session_id = next(s["id"] for s in sessions if s["type"] != "knowledge_cafe")
    context = browser.new_context(base_url=demo_server.url, locale="ar", viewport={"width": 800, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/signin")  # in Arabic already: the form's labels and button from ar.po
    page.get_by_label("البريد الإلكتروني").fill("participant@demo.forumlive.org")
    page.get_by_label("كلمة المرور").fill(demo_server.accounts["participant@demo.forumlive.org"]["password"])
    page.get_by_role("button", name="تسجيل الدخول").click()
    page.wait_for_url("**/")
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"/sessions/{session_id}/lite")
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "ar")
    expect(html).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", name="ترجمة نصية مباشرة")).to_be_visible()
    expect(page.locator("#room-state")).to_have_text("مباشر")  # written by lite.js from ar.json
    brand = page.locator("header.site .brand").bounding_box()
    nav = page.locator("header.site nav").bounding_box()
    assert brand and nav and brand["x"] > nav["x"], "in Arabic the brand starts the header on the right"
    heading = page.locator("#qa-h").bounding_box()
    panel = page.locator("section.qa").bounding_box()
    assert heading and panel
    assert panel["x"] + panel["width"] - (heading["x"] + heading["width"]) < 40, "headings align to the right"
    assert page.evaluate("getComputedStyle(document.querySelector('#ask-text')).direction") == "rtl"
    assert not [url for url in fetched if "/static/i18n/" in url], "the lite page carries its messages"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lite-ar.png"), full_page=True)

    page.get_by_label("اللغة").select_option("en")
    page.get_by_role("button", name="تغيير اللغة").click()
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    expect(page.get_by_role("heading", name="Live captions")).to_be_visible()
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    context.close()
    assert errors == []


def test_russian_room_page_from_both_catalogues(browser: Browser, demo_server: DemoServer) -> None:
    """The room page in Russian: the template's labels from ru.po, what room.js writes from ru.json, a
    counted message in the right plural form (0 → «голосов») and a socket error with a value in it."""
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    # Not the session whose questions the room tests put under pre-approval (Lucas Moreau moderates it).
    session_id = next(s["id"] for s in sessions if s["type"] != "knowledge_cafe"
                      and not any(m["name"] == "Lucas Moreau" for m in s["moderators"]))
    context = browser.new_context(base_url=demo_server.url, locale="ru")
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/signin")
    page.get_by_label("Электронная почта").fill("participant@demo.forumlive.org")
    page.get_by_label("Пароль").fill(demo_server.accounts["participant@demo.forumlive.org"]["password"])
    page.locator("main").get_by_role("button", name="Войти").click()
    page.wait_for_url("**/")
    page.goto(f"/sessions/{session_id}/room")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#room-state")).to_have_text("В эфире")  # room.js, from ru.json
    expect(page.get_by_role("heading", name="Опросы", exact=True)).to_be_visible()  # the template, from ru.po
    expect(page.get_by_role("button", name="Поднять руку")).to_be_visible()
    page.get_by_label("Ваш вопрос").fill("Вопрос о цифровом здравоохранении")
    page.get_by_role("button", name="Спросить", exact=True).click()
    item = page.locator("#question-list li", has_text="Вопрос о цифровом здравоохранении")
    expect(item.get_by_role("button", name="Голосовать, 0 голосов")).to_be_visible()
    # A socket error with a value in it: the server's English sentence, shown through its template in ru.json.
    shown = page.evaluate(
        """async (sessionId) => {
          const { errorText } = await import("/static/common.js");
          const socket = new WebSocket(`ws://${location.host}/ws/sessions/${sessionId}`);
          const error = await new Promise((resolve, reject) => {
            socket.onmessage = (event) => {
              const message = JSON.parse(event.data);
              const vote = {type: "question.vote", question_id: 99999, ref: "x1"};
              if (message.type === "welcome") socket.send(JSON.stringify(vote));
              if (message.type === "error") resolve(message);
            };
            socket.onopen = () => socket.send(JSON.stringify({type: "hello", v: 1}));
            setTimeout(() => reject(new Error("no error frame")), 5000);
          });
          socket.close();
          return [error.message, await errorText(error)];
        }""",
        session_id,
    )
    assert shown == ["no question 99999 in this room", "В этом зале нет вопроса 99999."]
    context.close()
    assert errors == []

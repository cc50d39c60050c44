"""A keyboard-only journey in Chromium (Tab, Enter, Space, arrow keys; no mouse): sign in, open a live
session from the programme, enter its room, ask a question, upvote another, turn captions off and on,
choose the human track and a larger caption size, which is remembered. Every stop shows its focus."""

from __future__ import annotations

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import DemoServer
from tests.web.conftest import open_page, sign_in

pytestmark = pytest.mark.browser

TAB_LIMIT = 250


def tab_to(page: Page, selector: str, text: str = "") -> None:
    """Press Tab until the focused element matches ``selector`` (and, inside its list item, ``text``);
    the focus must be visible there (the site's :focus-visible outline)."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        found = page.evaluate(
            """([selector, text]) => {
              const el = document.activeElement;
              if (!el || !el.matches(selector)) return null;
              if (text && !(el.closest("li") || el).textContent.includes(text)) return null;
              const style = getComputedStyle(el);
              return {outline: style.outlineStyle, width: style.outlineWidth};
            }""",
            [selector, text],
        )
        if found:
            assert found["outline"] != "none" and found["width"] != "0px", f"focus on {selector} is not visible"
            return
    raise AssertionError(f"Tab never reached {selector} {text}")


def press_until(page: Page, key: str, selector: str, value: str) -> None:
    """Press arrow keys on a focused select until it shows ``value``: ``key`` first, the other way when the
    value lies before the current one (a choice saved in the profile by an earlier page may start it there)."""
    options = page.locator(selector).evaluate("(s) => [...s.options].map((o) => o.value)")
    current = page.locator(selector).input_value()
    if options.index(value) < options.index(current):
        key = "ArrowUp" if key == "ArrowDown" else "ArrowDown"
    for _ in range(len(options) + 1):
        if page.locator(selector).input_value() == value:
            return
        page.keyboard.press(key)
    assert page.locator(selector).input_value() == value


def test_keyboard_only_journey(browser: Browser, demo_server: DemoServer) -> None:
    """Join a session, ask, upvote and turn captions on with the keyboard alone."""
    accounts = demo_server.accounts
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    session_id = next(
        s["id"]
        for s in sessions
        if s["type"] != "knowledge_cafe" and not any(m["name"] == "Lucas Moreau" for m in s["moderators"])
    )
    errors: list[str] = []
    organizer = open_page(browser, demo_server, errors)
    sign_in(organizer, "organizer@demo.forumlive.org", accounts["organizer@demo.forumlive.org"]["password"])
    organizer.goto(f"/sessions/{session_id}/room")
    expect(organizer.locator("#room-state")).to_have_text("Live")
    if organizer.get_by_label("Approve questions before they are shown").is_checked():
        organizer.get_by_label("Approve questions before they are shown").uncheck()
    organizer.get_by_label("Your question").fill("Keyboard journey: which languages are offered?")
    organizer.get_by_role("button", name="Ask").click()

    page = open_page(browser, demo_server, errors)
    page.goto("/signin")
    tab_to(page, "#email")
    page.keyboard.type("olena@demo.forumlive.org")
    tab_to(page, "#password")
    page.keyboard.type(accounts["olena@demo.forumlive.org"]["password"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/")

    tab_to(page, f'a[href="/sessions/{session_id}"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/sessions/{session_id}")
    tab_to(page, f'a[href="/sessions/{session_id}/room"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/sessions/{session_id}/room")
    expect(page.locator("#room-state")).to_have_text("Live")

    tab_to(page, "#ask-text")
    page.keyboard.type("Asked with the keyboard alone?")
    tab_to(page, "#ask-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("li.question", has_text="Asked with the keyboard alone?")).to_be_visible()

    tab_to(page, "button.vote", "Keyboard journey: which languages are offered?")
    page.keyboard.press("Space")
    vote = page.locator("li.question", has_text="Keyboard journey: which languages are offered?").locator("button.vote")
    expect(vote).to_have_attribute("aria-pressed", "true")
    expect(vote).to_be_focused()  # the redrawn list keeps the keyboard user's place

    tab_to(page, "#captions-on")
    page.keyboard.press("Space")
    expect(page.locator("#captions")).to_be_hidden()
    page.keyboard.press("Space")
    expect(page.locator("#captions")).to_be_visible()
    organizer.get_by_label("Type human captions").fill("Typed for the keyboard journey")
    organizer.get_by_label("Type human captions").press("Enter")
    expect(page.locator("#caption-track option[value=human]")).to_have_count(1)
    tab_to(page, "#caption-track")
    press_until(page, "ArrowDown", "#caption-track", "human")
    expect(page.locator("#captions")).to_contain_text("Typed for the keyboard journey")

    tab_to(page, ".caption-settings summary")
    page.keyboard.press("Enter")
    tab_to(page, "#caption-size")
    press_until(page, "ArrowDown", "#caption-size", "large")
    expect(page.locator(".captions-box")).to_have_attribute("data-size", "large")
    page.reload()
    expect(page.locator("#caption-size")).to_have_value("large")
    expect(page.locator(".captions-box")).to_have_attribute("data-size", "large")
    assert errors == []

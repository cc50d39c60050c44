"""The pages in a real Chromium (Debian's, driven by Playwright) against a real demo server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_register_sign_in_filter_and_open_a_session(page: Page) -> None:
    """A visitor registers, signs out and in, filters the programme and adds a session to their agenda."""
    page.goto("/register")
    page.get_by_label("Full name").fill("Grace Mensah")
    page.get_by_label("Email", exact=True).fill("grace@example.org")
    page.locator("#password").fill(PASSWORD)
    page.get_by_label("Country", exact=True).select_option("GH")
    page.get_by_label("I consent to my country being stored and counted").check()
    page.get_by_label("Stakeholder type", exact=True).select_option("civil_society")
    page.get_by_label("I consent to my stakeholder type being stored and counted").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("p.flash")).to_contain_text("Welcome, Grace Mensah")
    expect(page.get_by_role("link", name="Grace Mensah")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("p.flash")).to_contain_text("Signed out")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email", exact=True).fill("grace@example.org")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("p.flash")).to_contain_text("Signed in as Grace Mensah")

    # Times are shown in the viewer's zone, and the day filter is told that zone.
    expect(page.get_by_text("Times are shown in your time zone, America/New_York.")).to_be_visible()
    assert page.locator("input[name=tz]").input_value() == "America/New_York"

    total = int(re.search(r"(\d+) sessions", page.locator("p.count").inner_text()).group(1))
    assert total >= 40
    page.get_by_label("Special track").select_option("youth")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"track=youth"))
    cards = page.locator("li.session")
    count = cards.count()
    assert 0 < count < total
    for i in range(count):
        expect(cards.nth(i).locator(".track")).to_have_text("Youth")

    page.get_by_label("Search").fill("hackathon")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("li.session")).to_have_count(1)
    title = page.locator("li.session h2 a").inner_text()
    assert "Hackathon" in title

    page.locator("li.session h2 a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator("dl.facts")).to_contain_text("Youth")
    page.get_by_role("button", name="Add to my agenda").click()
    expect(page.get_by_text("This session is in your agenda.")).to_be_visible()
    page.get_by_role("link", name="Grace Mensah").click()
    expect(page.get_by_role("region", name="Your agenda")).to_contain_text(title)


def test_programme_page_screenshot_and_phone_layout(page: Page) -> None:
    """The programme renders with live badges; on a phone nothing scrolls sideways. Screenshots kept."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("WSIS Forum")
    expect(page.locator(".badge.live").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "programme.png"), full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
    page.screenshot(path=str(ARTIFACTS / "programme-phone.png"), full_page=False)


def test_keyboard_reaches_the_skip_link_and_filters(page: Page) -> None:
    """The first Tab focuses 'Skip to content'; the filter form is reachable by keyboard alone."""
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_label("Search").focus()
    page.keyboard.type("Prize")
    page.keyboard.press("Enter")
    expect(page.locator("li.session h2 a")).to_contain_text(["WSIS Prizes ceremony"])

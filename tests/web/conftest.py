"""Shared browser fixtures: Debian's Chromium driven by Playwright (no browser downloads here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import DemoServer

CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium tries to reach outside hosts, which this network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run make test as root, or apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _close_contexts(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's pages are closed when it ends: left open, room pages kept their sockets and WebRTC
    subscriptions for the rest of the session, and a later test's live captions lost words under that load."""
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()


@pytest.fixture
def page(browser: Browser, demo_server: DemoServer) -> Iterator[Page]:
    context = browser.new_context(base_url=demo_server.url, timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def open_page(browser: Browser, demo_server: DemoServer, errors: list[str]) -> Page:
    """A page in its own browser context (its own cookies); JavaScript errors are collected in ``errors``."""
    context = browser.new_context(base_url=demo_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/signin")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def organizer_room_with_captions(page: Page, accounts: dict, session_id: int, caption: str, question: str) -> None:
    """Sign the page in as the demo organizer, open the session's room, type a human caption and ask a
    question (the room's states that matter to the audits: captions on, a question listed)."""
    from playwright.sync_api import expect

    email = "organizer@demo.forumlive.org"
    sign_in(page, email, accounts[email]["password"])
    page.goto(f"/sessions/{session_id}/room")
    expect(page.locator("#room-state")).not_to_have_text("connecting…")
    page.get_by_label("Type human captions").fill(caption)
    page.get_by_label("Type human captions").press("Enter")
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("li.question", has_text=question)).to_be_visible()

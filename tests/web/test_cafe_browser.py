"""A knowledge café in five real Chromium pages: an organizer lays three tables, seats everyone, runs two
rounds with rotation and opens the plenary; participants take notes and the host marks a key insight."""

from __future__ import annotations

import re

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import DemoServer
from tests.web.conftest import ARTIFACTS, open_page, sign_in

pytestmark = pytest.mark.browser
PARTICIPANTS = [
    "ana@demo.forumlive.org",
    "olena@demo.forumlive.org",
    "participant@demo.forumlive.org",
    "daniyar@demo.forumlive.org",
]


def _cafe_session(demo_server: DemoServer) -> int:
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?type=knowledge_cafe").json()["sessions"]
    return sessions[0]["id"]


def _table_of(page: Page) -> str:
    topic = page.locator("#my-table-topic")
    expect(topic).not_to_have_text("Choose a table to join.")
    return topic.inner_text()


def test_two_rounds_with_rotation_notes_and_plenary(browser: Browser, demo_server: DemoServer) -> None:
    """Seating fills both tables, the countdown runs on every page, a note reaches the table live and shows
    as text, rotation moves everyone but the host, and the plenary board shows the key insight."""
    accounts = demo_server.accounts
    sid = _cafe_session(demo_server)
    errors: list[str] = []
    organizer = open_page(browser, demo_server, errors)
    sign_in(organizer, "organizer@demo.forumlive.org", accounts["organizer@demo.forumlive.org"]["password"])
    organizer.goto(f"/sessions/{sid}/room")
    expect(organizer.locator("#room-state")).not_to_have_text("connecting…")
    go_live = organizer.get_by_role("button", name="Go live")
    if go_live.is_enabled():
        go_live.click()
    expect(organizer.locator("#room-state")).to_have_text("Live")
    organizer.get_by_role("link", name="go to the café floor").click()
    expect(organizer.locator("#cafe-phase")).to_have_text("Setting up")

    pages = []
    for email in PARTICIPANTS:
        page = open_page(browser, demo_server, errors)
        sign_in(page, email, accounts[email]["password"])
        page.goto(f"/sessions/{sid}/cafe")
        expect(page.locator("#cafe-phase")).to_have_text("Setting up")
        pages.append(page)
    ana = pages[0]

    expect(organizer.locator("#table-host option", has_text="Ana Lima")).to_have_count(1)
    organizer.get_by_label("Table topic").fill("Community networks")
    organizer.get_by_label("Number of seats").fill("3")
    organizer.get_by_label("Host").select_option(label="Ana Lima")
    organizer.get_by_role("button", name="Add table").click()
    expect(ana.locator(".cafe-table", has_text="Community networks")).to_contain_text("Host: Ana Lima")
    organizer.get_by_label("Table topic").fill("Digital <b>skills</b>")
    organizer.get_by_label("Number of seats").fill("3")
    organizer.get_by_role("button", name="Add table").click()
    expect(ana.locator(".cafe-table h3", has_text="Digital <b>skills</b>")).to_have_count(1)
    organizer.get_by_label("Table topic").fill("Open data")
    organizer.get_by_role("button", name="Add table").click()
    expect(ana.locator(".cafe-table")).to_have_count(3)

    organizer.get_by_role("button", name="Seat everyone").click()
    first = [_table_of(page) for page in pages]
    assert first[0] == "Community networks", "the host sits at her table"
    assert first.count("Community networks") == 2 and len(set(first)) == 3, "four people at three tables: 2, 1, 1"

    organizer.get_by_label("Round length (minutes)").fill("5")
    expect(organizer.locator("#countdown")).to_be_hidden()
    organizer.get_by_role("button", name="Start round").click()
    for page in [organizer, *pages]:
        expect(page.locator("#countdown")).to_have_text(re.compile(r"^[45]:\d\d left$"))
        expect(page.locator("#round-label")).to_have_text("Round 1")

    # A note from Ana's table-mate reaches Ana live, as text; Ana, the host, marks it a key insight.
    mate = next(p for p, t in zip(pages[1:], first[1:], strict=True) if t == "Community networks")
    evil = 'Local ownership <img src=x onerror="window.__pwned = 1">'
    mate.get_by_label("New card").fill(evil)
    mate.get_by_role("button", name="Add card").click()
    card = ana.locator("#notes li.note", has_text="Local ownership")
    expect(card.locator(".note-text")).to_have_text(evil)
    card.get_by_role("button", name="Mark key insight").click()
    expect(mate.locator("#notes li.note.insight")).to_have_count(1)
    others = [p for p, t in zip(pages, first, strict=True) if t != "Community networks"]
    expect(others[0].locator("#notes li")).to_have_count(0)  # another table's notes stay with that table

    organizer.get_by_role("button", name="End round").click()
    for page in pages:
        expect(page.locator("#cafe-phase")).to_have_text("Between rounds")
        expect(page.locator("#countdown")).to_be_hidden()  # no empty timer between rounds
    second = [_table_of(page) for page in pages]
    assert second[0] == "Community networks", "the host stays"
    assert all(b != a for a, b in zip(first[1:], second[1:], strict=True)), "everyone else moved"

    organizer.get_by_role("button", name="Start round").click()
    expect(ana.locator("#round-label")).to_have_text("Round 2")
    organizer.get_by_role("button", name="End round").click()
    expect(ana.locator("#cafe-phase")).to_have_text("Between rounds")

    organizer.get_by_role("button", name="Open the plenary").click()
    organizer.get_by_label("Table reporting back").select_option(label="Community networks")
    organizer.get_by_role("button", name="Call to report").click()
    for page in pages:
        expect(page.locator("#cafe-phase")).to_have_text("Plenary")
        expect(page.locator("#board")).to_contain_text("Local ownership")
        expect(page.locator("#reporting")).to_have_text("Reporting back now: Community networks")
    markdown = httpx2.get(
        f"{demo_server.url}/api/sessions/{sid}/cafe/harvest?format=markdown",
        cookies={c["name"]: c["value"] for c in organizer.context.cookies()},
    )
    assert markdown.status_code == 200 and "Local ownership" in markdown.text
    for page in [organizer, *pages]:
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#board img, #notes img").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    organizer.screenshot(path=str(ARTIFACTS / "cafe-organizer.png"), full_page=True)
    ana.screenshot(path=str(ARTIFACTS / "cafe-host.png"), full_page=True)
    assert errors == []

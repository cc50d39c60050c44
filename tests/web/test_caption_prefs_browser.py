"""Caption display settings follow the person to another browser: chosen on the room page in one
browser context, they are there on the lite page in a fresh one (its own, empty localStorage)."""

from __future__ import annotations

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import DemoServer
from tests.web.conftest import open_page, sign_in

pytestmark = pytest.mark.browser


def test_caption_display_follows_the_person(browser: Browser, demo_server: DemoServer) -> None:
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    session_id = next(s["id"] for s in sessions if s["type"] != "knowledge_cafe")
    email = "speaker@demo.forumlive.org"
    password = demo_server.accounts[email]["password"]
    errors: list[str] = []
    first = open_page(browser, demo_server, errors)
    sign_in(first, email, password)
    first.goto(f"/sessions/{session_id}/room")
    first.locator(".caption-settings summary").click()
    with first.expect_response("**/profile/caption-display") as saved:
        first.locator("#caption-size").select_option("larger")
    assert saved.value.ok
    with first.expect_response("**/profile/caption-display") as saved:
        first.locator("#caption-contrast").select_option("yellow")
    assert saved.value.ok

    other = open_page(browser, demo_server, errors)  # another device: nothing in its localStorage
    sign_in(other, email, password)
    other.goto(f"/sessions/{session_id}/lite")
    box = other.locator(".captions-box")
    expect(box).to_have_attribute("data-size", "larger")
    expect(box).to_have_attribute("data-contrast", "yellow")
    expect(box).to_have_attribute("data-position", "page")
    expect(other.locator("#caption-size")).to_have_value("larger")

    # Back to the defaults, for the other tests that sign in as this speaker.
    other.locator(".caption-settings summary").click()
    for name, value in (("size", "normal"), ("contrast", "dark")):
        with other.expect_response("**/profile/caption-display"):
            other.locator(f"#caption-{name}").select_option(value)
    first.context.close()
    other.context.close()
    assert errors == []

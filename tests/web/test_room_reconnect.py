"""The room page survives a server crash: it shows "Reconnecting…", recovers on its own once the
server is back, and keeps working (a real Chromium against a server process killed with SIGKILL)."""

from __future__ import annotations

import json

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import DemoServer, ServerProcess
from tests.web.conftest import open_page, sign_in

pytestmark = pytest.mark.browser


def test_reconnecting_state_recovers_after_kill_9(browser: Browser, server: ServerProcess) -> None:
    """Kill the server under an open room page; it says it is reconnecting, then recovers and works."""
    accounts = {a["email"]: a for a in json.loads((server.data_dir / "demo-accounts.json").read_text())}
    session_id = httpx2.get(f"{server.url}/api/sessions?status=live").json()["sessions"][0]["id"]
    errors: list[str] = []
    page = open_page(browser, DemoServer(server.url, server.data_dir, accounts, server.process), errors)
    sign_in(page, "ana@demo.forumlive.org", accounts["ana@demo.forumlive.org"]["password"])
    page.goto(f"/sessions/{session_id}/room")
    expect(page.locator("#room-state")).to_have_text("Live")
    page.get_by_label("Message").fill("before the crash")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-list")).to_contain_text("before the crash")

    server.kill()
    expect(page.locator("#connection")).to_have_text("Reconnecting…")
    server.start()
    expect(page.locator("#connection")).to_be_hidden(timeout=20_000)
    expect(page.locator("#chat-list")).to_contain_text("before the crash")
    page.get_by_label("Message").fill("after the restart")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-list")).to_contain_text("after the restart")
    assert errors == []

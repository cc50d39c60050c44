"""The lite page on a 360 px wide Chromium page: captions of the chosen track, asking and upvoting, no
video, only the frames it shows, and one attendance visit."""

from __future__ import annotations

import json
import sqlite3

import httpx2
import pytest
from playwright.sync_api import Browser, WebSocket, expect

from tests.conftest import DemoServer
from tests.web.conftest import ARTIFACTS, open_page, sign_in

pytestmark = pytest.mark.browser


def _quiet_live_session(demo_server: DemoServer) -> int:
    """A live session other than the one the room tests change (pre-approval), and not a café."""
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    return next(
        s["id"]
        for s in sessions
        if s["type"] != "knowledge_cafe" and not any(m["name"] == "Lucas Moreau" for m in s["moderators"])
    )


def test_lite_page_captions_questions_votes_on_a_phone(browser: Browser, demo_server: DemoServer) -> None:
    """A participant on the lite page (360 px wide) reads the human caption track, asks a question that the
    organizer's room shows, upvotes another's question, sees markup as text, gets no chat or roster frames,
    and is counted once (the socket's visit)."""
    accounts = demo_server.accounts
    session_id = _quiet_live_session(demo_server)
    errors: list[str] = []
    organizer = open_page(browser, demo_server, errors)
    lite = open_page(browser, demo_server, errors)
    lite.set_viewport_size({"width": 360, "height": 740})
    sign_in(organizer, "organizer@demo.forumlive.org", accounts["organizer@demo.forumlive.org"]["password"])
    sign_in(lite, "daniyar@demo.forumlive.org", accounts["daniyar@demo.forumlive.org"]["password"])
    organizer.goto(f"/sessions/{session_id}/room")
    expect(organizer.locator("#room-state")).to_have_text("Live")
    if organizer.get_by_label("Approve questions before they are shown").is_checked():
        organizer.get_by_label("Approve questions before they are shown").uncheck()

    frames: list[str] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else ""))

    lite.on("websocket", watch)
    lite.goto(f"/sessions/{session_id}/lite")
    expect(lite.locator("#room-state")).to_have_text("Live")
    assert lite.locator("video").count() == 0

    # The spoken-language track, which nobody here has captioned yet: the page says so. (Not the human track: the
    # keyboard journey types into this session's, and the placeholder only flickered there until its welcome came.)
    expect(lite.locator("#caption-lag")).to_have_text("No captions on this track yet.")
    lite.get_by_label("Caption language").select_option("human")
    organizer.get_by_label("Speaking now (optional)").fill("Chair")
    organizer.get_by_label("Type human captions").fill("Welcome to <i>everyone</i> on the lite page")
    organizer.get_by_label("Type human captions").press("Enter")
    expect(lite.locator("#captions")).to_contain_text("Chair: Welcome to <i>everyone</i> on the lite page")
    assert lite.locator("#captions i").count() == 0

    lite.get_by_label("Your question").fill("Can <b>slides</b> be shared as text?")
    lite.get_by_role("button", name="Ask").click()
    expect(organizer.locator("li.question", has_text="Can <b>slides</b> be shared as text?")).to_be_visible()
    assert lite.locator("#question-list b").count() == 0
    organizer.get_by_label("Your question").fill("Which regions are covered?")
    organizer.get_by_role("button", name="Ask").click()
    theirs = lite.locator("li.question", has_text="Which regions are covered?")
    theirs.get_by_role("button", name="Vote (votes so far: 0)").click()
    expect(theirs.get_by_role("button", name="Vote (votes so far: 1)")).to_have_attribute("aria-pressed", "true")
    in_room = organizer.locator("li.question", has_text="Which regions are covered?")
    expect(in_room.get_by_role("button", name="Vote, 1 vote")).to_have_attribute("aria-pressed", "false")

    organizer.get_by_placeholder("Write a message").fill("chat the lite page should not receive")
    organizer.get_by_role("button", name="Send", exact=True).click()
    expect(organizer.locator("#chat-list")).to_contain_text("chat the lite page should not receive")
    lite.get_by_label("Your question").fill("One more, after the chat line")
    lite.get_by_role("button", name="Ask").click()
    expect(lite.locator("li.question", has_text="One more, after the chat line")).to_be_visible()
    kinds = {json.loads(f).get("kind") for f in frames if f}
    assert "question.asked" in kinds and "caption.final" in kinds
    assert not kinds & {"chat.posted", "hand.raised", "stage.joined"}, kinds
    assert all("roster" not in json.loads(f).get("snapshot", {}) for f in frames if f)

    width = lite.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the lite page scrolls sideways on a phone: {width} px"
    ARTIFACTS.mkdir(exist_ok=True)
    lite.screenshot(path=str(ARTIFACTS / "lite-360.png"), full_page=True)
    with sqlite3.connect(demo_server.data_dir / "forumlive.db") as db:
        visits = db.execute(
            "select count(*) from attendance_visit join person on person.id = attendance_visit.person_id "
            "where session_id = ? and person.email = ? and left_at is null and channel = 'lite'",
            (session_id, "daniyar@demo.forumlive.org"),
        ).fetchone()
    assert visits == (1,)  # one visit, the socket's, on the lite channel: no second one counting the same minutes
    assert errors == []

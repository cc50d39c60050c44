"""The live room in two real Chromium pages: a participant and a moderator against a demo server."""

from __future__ import annotations

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import DemoServer
from tests.web.conftest import ARTIFACTS, open_page, sign_in

pytestmark = pytest.mark.browser


def _live_session_moderated_by(demo_server: DemoServer, name: str) -> int:
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    return next(s["id"] for s in sessions if any(m["name"] == name for m in s["moderators"]))


def test_pre_approved_question_answered_and_chat_rendered_as_text(browser: Browser, demo_server: DemoServer) -> None:
    """The participant's question waits for approval (seen only by them), the moderator approves and
    answers it, the participant sees both; a chat message with markup shows as text and runs nothing."""
    accounts = demo_server.accounts
    session_id = _live_session_moderated_by(demo_server, "Lucas Moreau")
    errors: list[str] = []
    moderator = open_page(browser, demo_server, errors)
    participant = open_page(browser, demo_server, errors)
    bystander = open_page(browser, demo_server, errors)
    sign_in(moderator, "moderator@demo.forumlive.org", accounts["moderator@demo.forumlive.org"]["password"])
    sign_in(participant, "ana@demo.forumlive.org", accounts["ana@demo.forumlive.org"]["password"])
    sign_in(bystander, "olena@demo.forumlive.org", accounts["olena@demo.forumlive.org"]["password"])

    moderator.goto(f"/sessions/{session_id}/room")
    expect(moderator.locator("#room-state")).to_have_text("Live")
    moderator.get_by_label("Approve questions before they are shown").check()
    expect(moderator.get_by_label("Approve questions before they are shown")).to_be_checked()

    participant.goto(f"/sessions/{session_id}/room")
    bystander.goto(f"/sessions/{session_id}/room")
    expect(participant.locator("#room-state")).to_have_text("Live")
    expect(bystander.locator("#room-state")).to_have_text("Live")
    question = "How do we connect rural schools?"
    participant.get_by_label("Your question").fill(question)
    participant.get_by_role("button", name="Ask").click()
    mine = participant.locator("li.question", has_text=question)
    expect(mine).to_contain_text("Waiting for approval")

    pending = moderator.locator("li.question", has_text=question)
    expect(pending).to_contain_text("Waiting for approval")
    expect(bystander.locator("li.question", has_text=question)).to_have_count(0)
    pending.get_by_role("button", name="Approve").click()
    expect(bystander.locator("li.question", has_text=question)).to_be_visible()
    approved = moderator.locator("li.question", has_text=question)
    approved.get_by_label("Written answer (optional)").fill("Through the Giga initiative and community networks.")
    # Another question arrives while the moderator is typing: the redrawn list keeps the draft.
    bystander.get_by_label("Your question").fill("And for older persons?")
    bystander.get_by_role("button", name="Ask").click()
    expect(moderator.locator("li.question", has_text="And for older persons?")).to_be_visible()
    expect(approved.get_by_label("Written answer (optional)")).to_have_value(
        "Through the Giga initiative and community networks."
    )
    approved.get_by_role("button", name="Mark answered").click()

    expect(mine).to_contain_text("Answered")
    expect(mine).to_contain_text("Through the Giga initiative and community networks.")
    expect(participant.locator("#announcer")).to_contain_text("Question answered")

    evil = '<img src=x onerror="window.__pwned = 1">'
    participant.get_by_label("Message").fill(evil)
    participant.get_by_role("button", name="Send").click()
    line = moderator.locator("#chat-list li", has_text="onerror")
    expect(line).to_contain_text(evil)
    assert moderator.locator("#chat-list img").count() == 0
    for page in (moderator, participant, bystander):
        assert page.evaluate("window.__pwned") is None
    ARTIFACTS.mkdir(exist_ok=True)
    moderator.screenshot(path=str(ARTIFACTS / "room-moderator.png"), full_page=True)
    participant.screenshot(path=str(ARTIFACTS / "room-participant.png"), full_page=True)
    assert errors == []


def test_moderator_controls_are_not_offered_to_participants(browser: Browser, demo_server: DemoServer) -> None:
    """A participant's room page has no moderator panel (and the server refuses such actions anyway)."""
    errors: list[str] = []
    page = open_page(browser, demo_server, errors)
    sign_in(page, "olena@demo.forumlive.org", demo_server.accounts["olena@demo.forumlive.org"]["password"])
    session_id = _live_session_moderated_by(demo_server, "Lucas Moreau")
    page.goto(f"/sessions/{session_id}/room")
    expect(page.locator("#room-state")).to_have_text("Live")
    assert page.locator("#moderator-panel").count() == 0
    assert page.get_by_role("button", name="Remove").count() == 0
    page.get_by_role("button", name="Raise hand").click()
    expect(page.get_by_role("button", name="Lower hand")).to_be_visible()
    expect(page.locator("#hand-list")).to_contain_text("Olena Kovalenko")
    assert errors == []


def test_viewer_sees_live_captions_of_a_played_talk(browser: Browser, demo_server: DemoServer) -> None:
    """A talk played into a live room shows as captions on a viewer's page, read out by a log region."""
    import re
    from pathlib import Path

    errors: list[str] = []
    organizer = open_page(browser, demo_server, errors)
    viewer = open_page(browser, demo_server, errors)
    sign_in(organizer, "organizer@demo.forumlive.org", demo_server.accounts["organizer@demo.forumlive.org"]["password"])
    sign_in(viewer, "daniyar@demo.forumlive.org", demo_server.accounts["daniyar@demo.forumlive.org"]["password"])
    session_id = _live_session_moderated_by(demo_server, "Lucas Moreau")
    viewer.goto(f"/sessions/{session_id}/room")
    expect(viewer.locator("#room-state")).to_have_text("Live")
    token = organizer.request.get("/api/auth/csrf").json()["csrf_token"]
    wav = (Path(__file__).resolve().parents[1] / "data" / "speech" / "jfk.wav").read_bytes()
    played = organizer.request.post(
        f"/api/sessions/{session_id}/captions/play?speed=4&speaker=Archive",
        data=wav,
        headers={"X-CSRF-Token": token, "Content-Type": "audio/wav"},
    )
    assert played.status == 202, played.text()
    expect(viewer.locator("#captions")).to_contain_text(re.compile("do for your country", re.I), timeout=30_000)
    expect(viewer.locator("#captions")).to_contain_text("Archive:")
    assert viewer.locator("#captions").get_attribute("role") == "log"
    viewer.get_by_label("Show", exact=True).uncheck()
    expect(viewer.locator("#captions")).to_be_hidden()
    assert errors == []


def test_human_captions_are_typed_and_chosen_as_a_track(browser: Browser, demo_server: DemoServer) -> None:
    """The organizer types captions; a viewer who chooses the human track sees the line as it is typed and
    when sent, as text; the choice is remembered after a reload, and the other track does not show it."""
    errors: list[str] = []
    organizer = open_page(browser, demo_server, errors)
    viewer = open_page(browser, demo_server, errors)
    sign_in(organizer, "organizer@demo.forumlive.org", demo_server.accounts["organizer@demo.forumlive.org"]["password"])
    sign_in(viewer, "olena@demo.forumlive.org", demo_server.accounts["olena@demo.forumlive.org"]["password"])
    session_id = _live_session_moderated_by(demo_server, "Lucas Moreau")
    for page in (organizer, viewer):
        page.goto(f"/sessions/{session_id}/room")
        expect(page.locator("#room-state")).to_have_text("Live")
    assert viewer.locator("#caption-form").count() == 0  # participants cannot type captions
    organizer.get_by_label("Speaking now (optional)").fill("Chair")
    organizer.get_by_label("Type human captions").press_sequentially("Welcome <b>all</b>", delay=20)
    choice = viewer.get_by_label("Caption language")
    expect(choice.locator("option[value=human]")).to_have_count(1)
    choice.select_option("human")
    expect(viewer.locator("#caption-partial")).to_have_text("Welcome <b>all</b>")
    organizer.get_by_label("Type human captions").press("Enter")
    expect(viewer.locator("#captions")).to_contain_text("Chair: Welcome <b>all</b>")
    expect(viewer.locator("#caption-partial")).to_have_text("")
    assert viewer.locator("#captions b").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    organizer.locator(".captions-box").screenshot(path=str(ARTIFACTS / "room-captioner.png"))
    viewer.reload()
    expect(viewer.get_by_label("Caption language")).to_have_value("human")
    expect(viewer.locator("#captions")).to_contain_text("Welcome <b>all</b>")
    viewer.get_by_label("Caption language").select_option("machine")
    expect(viewer.locator("#captions")).not_to_contain_text("Welcome")
    assert errors == []

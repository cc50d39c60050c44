"""Accessibility audit: axe-core (npm, tests/web/package.json) in headless Chromium on every page, signed
out, as a participant, as a moderator and organizer, and with live captions on. Fails on any serious or
critical violation of WCAG 2.1 A/AA and axe's best practices."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import DemoServer
from tests.web.conftest import open_page, organizer_room_with_captions, sign_in

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING = {"serious", "critical"}


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's script; installed with npm from the lock file when missing (make test does it first)."""
    if not AXE.exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: run make test (scripts/system-deps.sh installs nodejs and npm as root)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    return AXE.read_text()


def audit(page: Page, axe_source: str, label: str) -> list[str]:
    """axe's serious and critical violations on the page as it is now, one line per rule and element."""
    # Evaluated through the DevTools protocol: the page's CSP (script-src 'self') stays on.
    page.evaluate(f"() => {{ {axe_source}\n; window.axe = axe; }}")
    result = page.evaluate(
        """async (tags) => {
          const found = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
          return found.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" "))}));
        }""",
        TAGS,
    )
    return [
        f"{label}: {v['id']} ({v['impact']}) {v['help']}: {', '.join(v['nodes'][:4])}"
        for v in result
        if v["impact"] in FAILING
    ]


def _ids(demo_server: DemoServer) -> dict[str, int]:
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    live = next(s for s in sessions if s["type"] != "knowledge_cafe")
    cafes = httpx2.get(f"{demo_server.url}/api/sessions?type=knowledge_cafe").json()["sessions"]
    return {"live": live["id"], "cafe": cafes[0]["id"], "forum": live["forum_id"]}


def test_every_page_passes_axe(browser: Browser, demo_server: DemoServer, axe_source: str) -> None:
    """No serious or critical axe violation on any page, in any of the states that matter."""
    ids = _ids(demo_server)
    live, cafe, forum = ids["live"], ids["cafe"], ids["forum"]
    errors: list[str] = []
    found: list[str] = []
    accounts = demo_server.accounts

    anonymous = open_page(browser, demo_server, errors)
    for path in ["/", f"/sessions/{live}", "/signin", "/register", "/transcripts?q=schools",
                 f"/sessions/{live}/transcript", f"/forums/{forum}/report", "/no-such-page"]:  # fmt: skip
        anonymous.goto(path)
        found += audit(anonymous, axe_source, f"signed out {path}")

    participant = open_page(browser, demo_server, errors)
    sign_in(participant, "olena@demo.forumlive.org", accounts["olena@demo.forumlive.org"]["password"])
    participant.goto(f"/sessions/{live}/room")
    expect(participant.locator("#room-state")).not_to_have_text("connecting…")
    found += audit(participant, axe_source, "participant room")
    participant.set_viewport_size({"width": 320, "height": 700})  # WCAG 1.4.10: reflow at 320 CSS px
    for path in (f"/sessions/{live}/room", f"/sessions/{live}/lite"):
        participant.goto(path)
        expect(participant.locator("#room-state")).not_to_have_text("connecting…")
        width = participant.evaluate("document.documentElement.scrollWidth")
        if width > 320:
            found.append(f"participant {path}: scrolls sideways at 320 px ({width} px)")
    participant.set_viewport_size({"width": 1280, "height": 720})
    participant.goto(f"/sessions/{live}/lite")
    expect(participant.locator("#room-state")).not_to_have_text("connecting…")
    found += audit(participant, axe_source, "participant lite")
    participant.goto(f"/sessions/{cafe}/cafe")
    expect(participant.locator("body")).to_contain_text("table", ignore_case=True)
    found += audit(participant, axe_source, "participant café")
    for path in ["/", f"/sessions/{live}", "/profile"]:
        participant.goto(path)
        found += audit(participant, axe_source, f"participant {path}")

    organizer = open_page(browser, demo_server, errors)
    organizer_room_with_captions(
        organizer, accounts, live, "Captions are on for the audit", "A question for the audit?"
    )
    found += audit(organizer, axe_source, "organizer room, captions on")
    participant.goto(f"/sessions/{live}/room")
    participant.get_by_label("Caption language").select_option("human")
    expect(participant.locator("#captions")).to_contain_text("Captions are on for the audit")
    found += audit(participant, axe_source, "participant room, captions on")
    participant.goto(f"/sessions/{live}/lite")
    expect(participant.locator("#captions")).to_contain_text("Captions are on for the audit")
    found += audit(participant, axe_source, "participant lite, captions on")
    participant.locator(".caption-settings summary").click()
    for contrast in ("light", "yellow"):
        participant.get_by_label("Colours").select_option(contrast)
        participant.get_by_label("Text size").select_option("larger")
        found += audit(participant, axe_source, f"participant lite, captions {contrast}, larger")
    organizer.goto(f"/sessions/{cafe}/cafe")
    expect(organizer.locator("body")).to_contain_text("table", ignore_case=True)
    found += audit(organizer, axe_source, "organizer café")
    for path in [f"/sessions/{live}", f"/forums/{forum}/dashboard", f"/forums/{forum}/report?raw=true"]:
        organizer.goto(path)
        found += audit(organizer, axe_source, f"organizer {path}")

    moderator = open_page(browser, demo_server, errors)
    sign_in(moderator, "moderator@demo.forumlive.org", accounts["moderator@demo.forumlive.org"]["password"])
    moderator.goto(f"/sessions/{live}/room")
    expect(moderator.locator("#room-state")).not_to_have_text("connecting…")
    found += audit(moderator, axe_source, "moderator room")
    assert found == [], "axe found serious or critical problems:\n" + "\n".join(found)
    assert errors == []

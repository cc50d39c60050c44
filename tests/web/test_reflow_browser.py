"""Text resize and reflow (WCAG 2.1 1.4.4 and 1.4.10) on every page, in the states of the axe audit:
signed out, as a participant, as the organizer and a moderator, with live captions on.

How text is doubled: the root element's font size is set to 200 % (``document.documentElement.style.fontSize``,
through the DevTools protocol, so the pages' CSP stays on). That is what a browser's "font size: very large"
setting does to a page whose CSS sizes text in rem and em, as site.css does; the test also checks that it
really doubled: every visible text's computed font size must be at least 1.95 times what it was, so a size
fixed in px fails here. Text-only doubling is harder on a layout than full-page zoom (which also shrinks the
viewport, as 1.4.10 checks below), since boxes sized in px keep their size while the text grows.

Checked at 1280 x 800 CSS px with the text doubled, and at 320 x 700 CSS px (1280 px at 400 % zoom) with the
text as it is:
- the page does not scroll sideways (``document.documentElement.scrollWidth``; 1.4.10 allows a scroller of
  its own for data tables, ``.table-scroll``);
- no element that hides its overflow clips its text (its scrollWidth/scrollHeight exceed its clientWidth/
  clientHeight), and no element with text lets it spill out sideways past its own box;
- at 320 px, every visible control (link, button, field, summary) lies inside the viewport, horizontally, with
  a size, so it can be seen and reached.
"""

from __future__ import annotations

import re

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import DemoServer
from tests.web.conftest import open_page, organizer_room_with_captions, sign_in

pytestmark = pytest.mark.browser

WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 700}

# Font sizes of every element with its own visible text, keyed by a path through the tree.
FONT_SIZES = """() => {
  const sizes = {};
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_ELEMENT);
  let index = 0;
  for (let node = walker.currentNode; node; node = walker.nextNode()) {
    index += 1;
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || !node.checkVisibility()) continue;
    node.dataset.reflowIndex = index;
    sizes[index] = parseFloat(getComputedStyle(node).fontSize);
  }
  return sizes;
}"""

# The same elements' font sizes now, with what they are.
AFTER = """(keys) => {
  const now = {};
  for (const key of keys) {
    const node = document.querySelector(`[data-reflow-index='${key}']`);
    if (!node) continue;
    const classes = typeof node.className === "string" && node.className ? `.${node.className}` : "";
    now[key] = [parseFloat(getComputedStyle(node).fontSize), node.tagName.toLowerCase() + classes];
  }
  return now;
}"""

# Problems with the layout as it is now: sideways scrolling, clipped or spilling text, controls out of view.
PROBLEMS = """(controls) => {
  const found = [];
  const root = document.documentElement;
  const width = root.clientWidth;
  const name = (node) => {
    const id = node.id ? `#${node.id}` : "";
    const classes = typeof node.className === "string" ? node.className.trim() : "";
    const cls = classes ? `.${classes.split(/\\s+/).join(".")}` : "";
    const text = (node.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    return `${node.tagName.toLowerCase()}${id}${cls} "${text}"`;
  };
  const scrollsItself = (node) => {
    for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (["auto", "scroll"].includes(style.overflowX) && up.classList.contains("table-scroll")) return true;
    }
    return false;
  };
  if (root.scrollWidth > width + 1) found.push(`the page scrolls sideways: ${root.scrollWidth} px wide in ${width}`);
  for (const node of document.body.querySelectorAll("*")) {
    if (!node.checkVisibility() || node.closest(".visually-hidden, .skip, svg, script, style")) continue;
    const hasText = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim())
      || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(node.tagName);
    const anyText = hasText || (node.textContent || "").trim() !== "";
    if (!anyText) continue;
    const style = getComputedStyle(node);
    const hides = (axis) => ["hidden", "clip"].includes(axis);
    if (hides(style.overflowX) && node.scrollWidth > node.clientWidth + 1 && !scrollsItself(node))
      found.push(`${name(node)} clips its text sideways (${node.scrollWidth} > ${node.clientWidth})`);
    if (hides(style.overflowY) && node.scrollHeight > node.clientHeight + 1)
      found.push(`${name(node)} clips its text (${node.scrollHeight} > ${node.clientHeight} px high)`);
    const field = ["INPUT", "SELECT", "TEXTAREA"].includes(node.tagName);
    if (hasText && !field && style.overflowX === "visible" && style.display !== "inline" && node.clientWidth > 0
        && node.scrollWidth > node.clientWidth + 1 && !scrollsItself(node))
      found.push(`${name(node)}: its text spills out of it (${node.scrollWidth} > ${node.clientWidth} px)`);
  }
  if (controls) {
    const selector = "a[href], button, input:not([type=hidden]), select, textarea, summary";
    for (const node of document.body.querySelectorAll(selector)) {
      if (!node.checkVisibility() || node.closest(".skip, .visually-hidden") || scrollsItself(node)) continue;
      const box = node.getBoundingClientRect();
      if (box.width < 1 || box.height < 1) found.push(`${name(node)} has no size`);
      else if (box.left < -1 || box.right > width + 1)
        found.push(`${name(node)} is out of view (${Math.round(box.left)}–${Math.round(box.right)} px)`);
    }
  }
  return found;
}"""


def check(page: Page, label: str) -> list[str]:
    """The page as it is now, wide with its text doubled, then at 320 px; leaves it at 1280 px, text as set."""
    found: list[str] = []
    page.set_viewport_size(WIDE)
    before = page.evaluate(FONT_SIZES)
    page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    after = page.evaluate(AFTER, list(before))
    for key, (size, what) in after.items():
        if size < before[key] * 1.95:
            found.append(f"{label}, text at 200 %: {what} stays at {size:.0f} px (was {before[key]:.0f})")
    found += [f"{label}, text at 200 %: {p}" for p in page.evaluate(PROBLEMS, False)]
    page.evaluate("() => { document.documentElement.style.fontSize = ''; }")
    page.set_viewport_size(NARROW)
    found += [f"{label}, 320 px: {p}" for p in page.evaluate(PROBLEMS, True)]
    page.set_viewport_size(WIDE)
    return found


def shot(page: Page, name: str) -> None:
    """Screenshots to look at by hand (FORUMLIVE_REFLOW_SHOTS=DIR): 320 px, and 1280 px with the text doubled."""
    import os

    directory = os.environ.get("FORUMLIVE_REFLOW_SHOTS")
    if not directory:
        return
    page.set_viewport_size(NARROW)
    page.screenshot(path=f"{directory}/{name}-320.png", full_page=True)
    page.set_viewport_size(WIDE)
    page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    page.screenshot(path=f"{directory}/{name}-200.png", full_page=True)
    page.evaluate("() => { document.documentElement.style.fontSize = ''; }")


def visit(page: Page, path: str, label: str, ready: str | None = None) -> list[str]:
    page.goto(path)
    if ready:  # the live session's state badge, drawn by the page's script once the socket is in
        expect(page.locator(ready)).to_have_class(re.compile(r"\blive\b"))
    shot(page, label.replace(" ", "-").replace("/", "_"))
    return check(page, label)


def _ids(demo_server: DemoServer) -> dict[str, int]:
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    live = next(s for s in sessions if s["type"] != "knowledge_cafe")
    cafes = httpx2.get(f"{demo_server.url}/api/sessions?type=knowledge_cafe").json()["sessions"]
    # Not the café the café and axe tests use (cafes[0]): this test lays a table in its own.
    return {"live": live["id"], "cafe": cafes[-1]["id"], "forum": live["forum_id"]}


def test_every_page_reflows_and_takes_text_at_200_percent(browser: Browser, demo_server: DemoServer) -> None:
    """No sideways scrolling, clipped text or control out of view, with text at 200 % or at 320 px wide."""
    ids = _ids(demo_server)
    live, cafe, forum = ids["live"], ids["cafe"], ids["forum"]
    accounts = demo_server.accounts
    errors: list[str] = []
    found: list[str] = []

    anonymous = open_page(browser, demo_server, errors)
    for path in ["/", f"/sessions/{live}", "/signin", "/register", "/transcripts?q=schools",
                 f"/sessions/{live}/transcript", f"/forums/{forum}/report", "/no-such-page"]:  # fmt: skip
        found += visit(anonymous, path, f"signed out {path}")

    organizer = open_page(browser, demo_server, errors)
    organizer_room_with_captions(
        organizer,
        accounts,
        live,
        "Captions are on for the reflow test, with a long sentence",
        "A question for the reflow test, long enough to wrap on a phone?",
    )
    found += check(organizer, "organizer room, captions on")
    shot(organizer, "organizer-room")
    organizer.goto(f"/sessions/{cafe}/room")  # a café not live yet: doors open, so participants may come in
    expect(organizer.locator("#room-state")).not_to_have_text("connecting…")
    if organizer.get_by_role("button", name="Open the doors").is_enabled():
        organizer.get_by_role("button", name="Open the doors").click()
    expect(organizer.locator("#room-state")).not_to_have_text("Doors closed")
    organizer.goto(f"/sessions/{cafe}/cafe")
    organizer.get_by_label("Table topic").fill("Connectivity for rural schools and community networks")
    organizer.get_by_role("button", name="Add table").click()
    expect(organizer.locator(".cafe-table", has_text="rural schools").first).to_be_visible()
    found += check(organizer, "organizer café, a table laid")
    shot(organizer, "organizer-cafe")
    for path in [f"/sessions/{live}", f"/forums/{forum}/dashboard", f"/forums/{forum}/report?raw=true"]:
        found += visit(organizer, path, f"organizer {path}")

    participant = open_page(browser, demo_server, errors)
    sign_in(participant, "olena@demo.forumlive.org", accounts["olena@demo.forumlive.org"]["password"])
    participant.goto(f"/sessions/{live}/room")
    participant.get_by_label("Caption language").select_option("human")
    expect(participant.locator("#captions")).to_contain_text("Captions are on for the reflow test")
    found += check(participant, "participant room, captions on")
    shot(participant, "participant-room")
    participant.goto(f"/sessions/{live}/lite")
    expect(participant.locator("#captions")).to_contain_text("Captions are on for the reflow test")
    participant.locator(".caption-settings summary").click()  # the display settings open
    found += check(participant, "participant lite, captions on")
    shot(participant, "participant-lite")
    participant.get_by_label("Text size").select_option("larger")
    found += check(participant, "participant lite, larger captions")
    participant.get_by_label("Text size").select_option("normal")
    participant.goto(f"/sessions/{cafe}/cafe")
    expect(participant.locator(".cafe-table", has_text="rural schools").first).to_be_visible()
    found += check(participant, "participant café")
    shot(participant, "participant-cafe")
    for path in ["/", f"/sessions/{live}", "/profile"]:
        found += visit(participant, path, f"participant {path}")
    # Longer words (Russian, French, Spanish), right to left (Arabic) and no spaces to break at (Chinese): the
    # pages a participant sees.
    pages = ["/", f"/sessions/{live}/room", f"/sessions/{live}/lite", f"/sessions/{cafe}/cafe"]
    for code, paths in {
        "ru": [*pages, f"/sessions/{live}", "/profile", f"/forums/{forum}/report"],
        "ar": pages,
        "fr": [*pages, "/profile"],
        "es": [*pages, f"/forums/{forum}/report"],
        "zh": [*pages, f"/sessions/{live}", f"/forums/{forum}/report"],
    }.items():
        participant.goto(f"/language?lang={code}&next=/")
        for path in paths:
            ready = "#room-state" if path.endswith(("room", "lite")) else None
            found += visit(participant, path, f"participant ({code}) {path}", ready)
    participant.goto("/language?lang=en&next=/")

    moderator = open_page(browser, demo_server, errors)
    sign_in(moderator, "moderator@demo.forumlive.org", accounts["moderator@demo.forumlive.org"]["password"])
    found += visit(moderator, f"/sessions/{live}/room", "moderator room", ready="#room-state")
    assert found == [], "text resize or reflow problems:\n" + "\n".join(found)
    assert errors == []

"""The key-figures report page in Chromium: figures, SVG charts with bars, the sessions table; a screenshot
for people to look at (tests/artifacts/report.png)."""

from __future__ import annotations

import httpx2
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import DemoServer
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_report_page_shows_figures_and_charts(page: Page, demo_server: DemoServer) -> None:
    forums = httpx2.get(f"{demo_server.url}/api/forums").json()
    items = forums["forums"] if isinstance(forums, dict) else forums
    synthetic = next(f for f in items if "synthetic" in f["name"])
    page.goto(f"/forums/{synthetic['id']}/report")
    expect(page.get_by_role("heading", level=1)).to_contain_text("key figures")
    figures = page.locator("dl.figures")
    expect(figures).to_contain_text("Cumulative attendance")
    expect(figures).to_contain_text("Countries engaged")
    charts = page.locator("figure.chart svg")
    assert charts.count() >= 8
    region = page.locator("figure.chart", has_text="Regional distribution")
    assert region.locator("rect.bar").count() >= 5
    widths = [float(w) for w in region.locator("rect.bar").evaluate_all("rs => rs.map(r => r.getAttribute('width'))")]
    assert max(widths) == pytest.approx(160, abs=0.2) and min(widths) >= 0
    assert page.locator("table.sessions-table tbody tr").count() == 250
    page.set_viewport_size({"width": 1280, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1

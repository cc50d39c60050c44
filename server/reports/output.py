"""Key figures as files: JSON, CSV (long format: section, item, value) and the chart geometry the HTML
report draws as SVG."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

# Chromium prints the HTML report to PDF: the same page, charts included. FORUMLIVE_CHROMIUM names it
# where it is not on the PATH as chromium or chromium-browser.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PDF_TIMEOUT_S = 120


class PdfError(Exception):
    """The PDF could not be made (no Chromium, or it failed)."""


CSV_COLUMNS = ("section", "item", "value")
SCALARS = (
    "sessions",
    "sessions_held",
    "cumulative_attendance",
    "live_attendance",
    "external_views",
    "unique_participants",
    "anonymous_viewers",
    "countries_engaged",
    "high_level",
)
DISTRIBUTIONS = (
    "by_region",
    "by_gender",
    "by_stakeholder",
    "by_country",
    "by_channel",
    "sessions_by_type",
    "sessions_by_track",
    "sessions_by_action_line",
    "sessions_by_sdg",
    "sessions_by_tag",
)
SESSION_COLUMNS = (
    "attendees",
    "anonymous",
    "external_views",
    "average_minutes",
    "stayed_share",
    "peak_concurrent",
)


def to_json(figures: dict[str, Any]) -> str:
    return json.dumps(figures, indent=2, ensure_ascii=False) + "\n"


def to_csv(figures: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(("forum", "name", figures["forum"]))
    for key, value in figures["scope"].items():
        writer.writerow(("scope", key, "" if value is None else value))
    for key in SCALARS:
        writer.writerow(("totals", key, figures[key]))
    for section in DISTRIBUTIONS:
        for item, value in figures[section].items():
            writer.writerow((section, item, value))
    for row in figures["per_session"]:
        for column in SESSION_COLUMNS:
            value = row[column]
            writer.writerow((f"session {row['code']}", column, "" if value is None else value))
    return out.getvalue()


def bars(cells: dict[str, Any], labels: dict[str, str] | None = None, limit: int = 12) -> list[dict[str, Any]]:
    """Horizontal bar geometry (share of the largest shown cell) for the SVG charts; hidden cells ("<5")
    get no bar but keep their row, so the chart never hints at their size."""
    shown = [(k, v) for k, v in cells.items() if isinstance(v, int)]
    top = max((v for _, v in shown), default=0) or 1
    rows = []
    for key, value in list(cells.items())[:limit]:
        rows.append(
            {
                "key": key,
                "label": (labels or {}).get(key, key.replace("_", " ")),
                "value": value,
                "share": (value / top) if isinstance(value, int) else 0.0,
            }
        )
    return rows


def find_chromium() -> str | None:
    given = os.environ.get("FORUMLIVE_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def html_to_pdf(html: str, out: Path) -> None:
    """Print a standalone HTML page to ``out`` with headless Chromium.

    Raises:
        PdfError: Chromium is missing, fails or times out.
    """
    chromium = find_chromium()
    if chromium is None:
        raise PdfError("PDF needs Chromium: install the chromium package, or set FORUMLIVE_CHROMIUM to its path")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html)
        target = out.resolve()
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp}/profile",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not finish the PDF within {PDF_TIMEOUT_S} s") from None
        if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            raise PdfError(f"Chromium could not print the PDF: {done.stderr.strip()[-300:]}")

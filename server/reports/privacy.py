"""Publishing key figures without exposing anyone: small cells are hidden, and so is one more cell
wherever a single hidden cell could be worked out from a published total.

- A count of people from 1 to 4 is shown as ``"<5"`` (0 stays 0: it says nothing about anyone).
- In a distribution whose total is published (regions, gender, stakeholder types, countries, channels,
  the per-session table against the cumulative attendance), if exactly one cell is hidden, the next
  smallest non-zero cell is hidden too, so that subtracting the others from the total gives only the
  sum of two hidden cells.
- A distribution whose total is under 5 is hidden whole.
- A session whose attendance is hidden has its averages, share and peak hidden too (``None``).
"""

from __future__ import annotations

from typing import Any

from server.reports.figures import KeyFigures

THRESHOLD = 5
HIDDEN = "<5"

Cell = int | str


def hide_small(n: int) -> Cell:
    return HIDDEN if 0 < n < THRESHOLD else n


def suppress(cells: dict[str, int]) -> dict[str, Cell]:
    """Primary and secondary suppression of one distribution whose total is published."""
    total = sum(cells.values())
    if 0 < total < THRESHOLD:
        return {key: (HIDDEN if n else 0) for key, n in cells.items()}
    hidden = {key for key, n in cells.items() if 0 < n < THRESHOLD}
    if len(hidden) == 1:
        candidates = sorted((n, key) for key, n in cells.items() if n > 0 and key not in hidden)
        if candidates:
            hidden.add(candidates[0][1])
    return {key: (HIDDEN if key in hidden else n) for key, n in cells.items()}


def publish(figures: KeyFigures) -> dict[str, Any]:
    """The figures as anyone may see them."""
    data = figures.as_dict()
    for key in ("unique_participants", "high_level", "anonymous_viewers"):
        data[key] = hide_small(data[key])
    for key in ("by_region", "by_gender", "by_stakeholder", "by_country", "by_channel"):
        data[key] = suppress(data[key])
    attendance = suppress({str(s["id"]): s["attendees"] for s in data["per_session"]})
    for row in data["per_session"]:
        row["attendees"] = attendance[str(row["id"])]
        row["anonymous"] = hide_small(row["anonymous"])
        row["by_channel"] = suppress(row["by_channel"])
        if row["attendees"] == HIDDEN:
            row["average_minutes"] = row["stayed_share"] = row["peak_concurrent"] = None
    data["published"] = True
    return data

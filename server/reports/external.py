"""Views of sessions counted on other platforms (a video site, a social stream), imported from CSV.

Columns: ``session_code`` (or ``session_id``), ``platform``, ``views``. A row replaces the count of
that session and platform (a revised export can be imported again). Like the programme import, every
rejected row is reported with its line and reason, and nothing is written if any row is bad.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session as DbSession
from sqlmodel import select

from server.errors import InvalidInput, NotFound
from server.storage.models import ExternalViews, Forum
from server.storage.models import Session as SessionRow

MAX_ROWS = 20_000
MAX_VIEWS = 10**10


@dataclass
class ExternalReport:
    rows: int = 0
    written: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def import_views(db: DbSession, forum_id: int, content: bytes) -> ExternalReport:
    """Write the counts of a CSV export; raises ``InvalidInput`` (with the report) if any row is bad.

    Raises:
        NotFound: no such forum.
        InvalidInput: not UTF-8 CSV with the columns, too many rows, or bad rows (nothing written).
    """
    if db.get(Forum, forum_id) is None:
        raise NotFound(f"no forum {forum_id}")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.field("file", "is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    if not ({"platform", "views"} <= columns and columns & {"session_code", "session_id"}):
        raise InvalidInput.field("file", "needs the columns session_code (or session_id), platform and views")
    sessions = {
        (row.code, row.id): row.id for row in db.exec(select(SessionRow).where(SessionRow.forum_id == forum_id)).all()
    }
    by_code = {code: sid for (code, sid), _ in sessions.items()}
    by_id = {sid for (_, sid) in sessions}
    report = ExternalReport()
    wanted: dict[tuple[int, str], int] = {}
    for line, row in enumerate(reader, start=2):
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise InvalidInput.field("file", f"has more than {MAX_ROWS} rows")
        problem, key, views = _row(row, by_code, by_id)
        if problem:
            report.errors.append({"line": line, "error": problem})
        else:
            wanted[key] = views  # a later row for the same session and platform wins
    if report.errors:
        raise InvalidInput(f"{len(report.errors)} bad rows; nothing was written", report_fields(report))
    now = datetime.now(UTC)
    for (session_id, platform), views in wanted.items():
        existing = db.exec(
            select(ExternalViews).where(ExternalViews.session_id == session_id, ExternalViews.platform == platform)
        ).first()
        record = existing or ExternalViews(session_id=session_id, platform=platform, views=views)
        record.views, record.imported_at = views, now
        db.add(record)
        report.written += 1
    return report


def _row(row: dict[str, Any], by_code: dict[str, int], by_id: set[int]) -> tuple[str | None, tuple[int, str], int]:
    none = (0, "")
    code, raw_id = (row.get("session_code") or "").strip(), (row.get("session_id") or "").strip()
    if code:
        if code not in by_code:
            return f"no session with code {code!r} in this forum", none, 0
        session_id = by_code[code]
    elif raw_id.isdigit() and int(raw_id) in by_id:
        session_id = int(raw_id)
    else:
        return "session_code or session_id must name a session of this forum", none, 0
    platform = (row.get("platform") or "").strip()
    if not platform or len(platform) > 60:
        return "platform must be 1 to 60 characters", none, 0
    views_text = (row.get("views") or "").strip().replace(",", "").replace("_", "")
    if not views_text.isdigit() or int(views_text) > MAX_VIEWS:
        return f"views must be a whole number from 0, got {row.get('views')!r}", none, 0
    return None, (session_id, platform), int(views_text)


def report_fields(report: ExternalReport) -> list[Any]:
    from server.errors import FieldError

    return [FieldError(f"line {e['line']}", e["error"]) for e in report.errors]

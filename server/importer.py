"""Programme import from CSV and JSON, as organizers keep programmes in spreadsheets.

Each row is validated like an API request. ``all_or_nothing`` writes nothing when any row is bad;
``valid_only`` writes the good rows. Either way the report lists every rejected row and why.
Rows with a ``code`` that already exists in the forum update that session (a revised spreadsheet
can be imported again); rows without a code always create a session.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session as DbSession

from server.accounts import require_organizer
from server.errors import InvalidInput, PayloadTooLarge
from server.programme import get_forum, write_session
from server.schemas import ImportReport, ImportRowError, SessionFields, parse
from server.storage.models import Person
from server.vocab import SESSION_TYPE_LABELS, TRACK_LABELS

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 5_000
LIST_FIELDS = ("action_lines", "sdgs", "tags")
COLUMNS = (
    "code",
    "title",
    "type",
    "starts_at",
    "ends_at",
    "language",
    "action_lines",
    "sdgs",
    "track",
    "tags",
    "capacity",
    "status",
    "description",
)


class ImportMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ONLY = "valid_only"


class ImportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True)
class Row:
    number: int
    values: dict[str, Any]


def _by_label(mapping: dict[Any, str]) -> dict[str, str]:
    table = {str(k.value): str(k.value) for k in mapping}
    table.update({label.lower(): str(k.value) for k, label in mapping.items()})
    return table


TYPE_BY_NAME = _by_label(SESSION_TYPE_LABELS)
TRACK_BY_NAME = _by_label(TRACK_LABELS)


def read_rows(content: bytes, fmt: ImportFormat) -> list[Row]:
    """Split an uploaded file into rows, numbered as the organizer sees them (CSV: line numbers).

    Raises:
        PayloadTooLarge: over 5 MiB or 5,000 rows.
        InvalidInput: the file is not valid CSV/JSON or has no usable header.
    """
    if len(content) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.field("file", "is not UTF-8 text") from None
    rows = _read_csv(text) if fmt is ImportFormat.CSV else _read_json(text)
    if len(rows) > MAX_IMPORT_ROWS:
        raise PayloadTooLarge(f"the file has {len(rows)} rows; at most {MAX_IMPORT_ROWS} per import")
    return rows


def _read_csv(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "title" not in header:
        raise InvalidInput.field("file", "the first line must be a header naming the columns, with at least 'title'")
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise InvalidInput.field("file", f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    reader.fieldnames = header
    rows = []
    for record in reader:
        values = {k: (v or "").strip() for k, v in record.items() if k}
        if None in record:
            values["__extra__"] = "more cells than header columns"
        if any(values.values()):
            rows.append(Row(reader.line_num, values))
    return rows


def _read_json(text: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput.field("file", f"is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and isinstance(data.get("sessions"), list):
        data = data["sessions"]
    if not isinstance(data, list):
        raise InvalidInput.field("file", 'must be a JSON list of sessions, or {"sessions": [...]}')
    return [
        Row(i, item if isinstance(item, dict) else {"__extra__": "not an object"}) for i, item in enumerate(data, 1)
    ]


def _split(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if value in (None, ""):
        return []
    return [part.strip() for part in str(value).replace(",", ";").split(";") if part.strip()]


def _normalise(values: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """Spreadsheet conveniences: labels for codes, lists in one cell, local times in the forum's zone."""
    out: dict[str, Any] = {k: v for k, v in values.items() if v not in ("", None) and k != "code"}
    if isinstance(out.get("type"), str):
        out["type"] = TYPE_BY_NAME.get(out["type"].strip().lower(), out["type"])
    if isinstance(out.get("track"), str):
        out["track"] = TRACK_BY_NAME.get(out["track"].strip().lower(), out["track"])
    for key in LIST_FIELDS:
        if key in out:
            out[key] = _split(out[key])
    for key in ("starts_at", "ends_at"):
        if isinstance(out.get(key), str):
            try:
                moment = datetime.fromisoformat(out[key])
            except ValueError:
                continue  # left for the validator to name
            out[key] = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return out


def _row_errors(row: Row, zone: ZoneInfo) -> tuple[SessionFields | None, list[dict[str, str]]]:
    if "__extra__" in row.values:
        return None, [{"field": "row", "reason": str(row.values["__extra__"])}]
    unknown = [k for k in row.values if k not in COLUMNS]
    if unknown:
        return None, [{"field": k, "reason": "unknown field"} for k in unknown]
    try:
        return parse(SessionFields, _normalise(row.values, zone)), []
    except InvalidInput as exc:
        return None, [{"field": f.field, "reason": f.reason} for f in exc.fields]


def import_programme(
    db: DbSession,
    actor: Person | None,
    forum_id: int,
    content: bytes,
    fmt: ImportFormat,
    mode: ImportMode,
) -> ImportReport:
    """Validate every row, then write all, the valid ones, or none (as ``mode`` says) in one transaction."""
    require_organizer(actor)
    forum = get_forum(db, forum_id)
    zone = ZoneInfo(forum.timezone)
    rows = read_rows(content, fmt)
    good: list[tuple[str | None, SessionFields]] = []
    rejected: list[ImportRowError] = []
    seen_codes: dict[str, int] = {}
    for row in rows:
        code = str(row.values.get("code") or "").strip() or None
        fields, errors = _row_errors(row, zone)
        if code is not None:
            if not all(ch.isalnum() or ch in "._-" for ch in code) or len(code) > 64:
                errors.append({"field": "code", "reason": "must be 1-64 letters, digits, '.', '_' or '-'"})
            elif code in seen_codes:
                errors.append({"field": "code", "reason": f"duplicate of row {seen_codes[code]}"})
            else:
                seen_codes[code] = row.number
        if errors or fields is None:
            rejected.append(ImportRowError(row=row.number, code=code, errors=errors))
        else:
            good.append((code, fields))
    write = not rejected or mode is ImportMode.VALID_ONLY
    created = updated = 0
    if write:
        for code, fields in good:
            _, was_created = write_session(db, forum_id, code, fields)
            created += was_created
            updated += not was_created
    return ImportReport(
        mode=mode.value,
        format=fmt.value,
        rows=len(rows),
        created=created,
        updated=updated,
        written=write and bool(good),
        rejected=rejected,
    )

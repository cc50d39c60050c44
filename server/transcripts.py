"""Transcripts: the final captions of sessions, read back for pages, files and search.

Search is a case-insensitive substring match over caption text (Unicode-aware on SQLite through the
``lower`` function ``Database`` registers), newest sessions first. It scans the caption table of the
chosen forum; at a few hundred sessions' worth of captions that is fast enough, and PostgreSQL can add
a trigram index when it is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from server.storage.models import CaptionRecord
from server.storage.models import Session as SessionRow

SEARCH_LIMIT = 100


@dataclass(frozen=True)
class Hit:
    session_id: int
    session_title: str
    caption_id: int
    speaker: str
    text: str
    at: float
    offset_s: float
    # The text cut around the first match: before, match, after (rendered as text, the match marked).
    parts: tuple[str, str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "session_title": self.session_title,
            "caption_id": self.caption_id,
            "speaker": self.speaker,
            "text": self.text,
            "at": self.at,
            "offset_s": self.offset_s,
        }


def _parts(text: str, query: str) -> tuple[str, str, str]:
    index = text.lower().find(query.lower())
    if index < 0:
        return text, "", ""
    return text[:index], text[index : index + len(query)], text[index + len(query) :]


def search(db: DbSession, query: str, forum_id: int | None = None, limit: int = SEARCH_LIMIT) -> list[Hit]:
    """Captions containing ``query`` (case-insensitive), at most ``limit``, newest sessions first."""
    needle = query.strip().lower()
    if not needle:
        return []
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    statement = (
        select(CaptionRecord, SessionRow.title, SessionRow.starts_at)
        .join(SessionRow, col(SessionRow.id) == col(CaptionRecord.session_id))
        .where(func.lower(CaptionRecord.text).like(pattern, escape="\\"), CaptionRecord.track == "machine")
        .order_by(col(SessionRow.starts_at).desc(), col(CaptionRecord.started_at), col(CaptionRecord.id))
        .limit(limit)
    )
    if forum_id is not None:
        statement = statement.where(SessionRow.forum_id == forum_id)
    rows = db.exec(statement).all()
    origins: dict[int, float] = {}
    hits = []
    for caption, title, _ in rows:
        if caption.session_id not in origins:
            first = db.exec(
                select(func.min(CaptionRecord.started_at)).where(
                    CaptionRecord.session_id == caption.session_id, CaptionRecord.track == "machine"
                )
            ).one()
            origins[caption.session_id] = first.timestamp() if first else caption.started_at.timestamp()
        at = caption.started_at.timestamp()
        hits.append(
            Hit(
                caption.session_id,
                title,
                caption.id or 0,
                caption.speaker_name,
                caption.text,
                at,
                round(at - origins[caption.session_id], 3),
                _parts(caption.text, query.strip()),
            )
        )
    return hits


def blocks(captions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive captions of one speaker joined into one block, for reading."""
    out: list[dict[str, Any]] = []
    for caption in captions:
        if out and out[-1]["speaker"] == caption["speaker"]:
            out[-1]["text"] += " " + caption["text"]
            out[-1]["ids"].append(caption["id"])
        else:
            out.append(
                {
                    "speaker": caption["speaker"],
                    "text": caption["text"],
                    "at": caption["at"],
                    "offset_s": caption["offset_s"],
                    "ids": [caption["id"]],
                }
            )
    return out

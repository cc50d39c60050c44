"""Programme import from CSV and JSON: good rows, bad rows, the two modes, re-import by code."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import csrf, make_forum, sign_in_organizer

CSV_GOOD = """code,title,type,starts_at,ends_at,language,action_lines,sdgs,track,tags,capacity
HL1,Opening high-level session,High-level policy session,2026-03-02 09:00,2026-03-02 10:30,en,C1; C11,17,,,
TW7,E-health workshop,thematic_workshop,2026-03-02T11:00:00+01:00,2026-03-02T12:00:00+01:00,fr,C7,3;5,Youth,covid-19,200
"""

CSV_MIXED = (
    CSV_GOOD
    + """BAD1,Ends before it starts,TalkX,2026-03-02 12:00,2026-03-02 11:00,en,C5,16,,,
BAD2,Too many goals,talkx,2026-03-02 13:00,2026-03-02 14:00,en,C5,18,,,
,Missing type,,2026-03-02 13:00,2026-03-02 14:00,en,,,,,
HL1,Duplicate code,talkx,2026-03-02 15:00,2026-03-02 16:00,en,,,,,
"""
)


@pytest.fixture
def forum(app: Starlette, client: TestClient) -> dict:
    sign_in_organizer(app, client)
    return make_forum(client, tz="Europe/Zurich")


def _import(client: TestClient, forum: dict, content: str, fmt: str = "csv", mode: str | None = None):  # noqa: ANN202
    query = f"format={fmt}" + (f"&mode={mode}" if mode else "")
    return client.post(f"/api/forums/{forum['id']}/import?{query}", content=content.encode(), headers=csrf(client))


def test_good_csv_creates_sessions_with_labels_and_local_times(client: TestClient, forum: dict) -> None:
    """Labels are accepted for codes, lists split on ';', naive times read in the forum's zone."""
    response = _import(client, forum, CSV_GOOD)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["updated"], report["rejected"], report["written"]) == (2, 0, [], True)
    sessions = {s["code"]: s for s in client.get("/api/sessions").json()["sessions"]}
    assert sessions["HL1"]["type"] == "high_level_policy_session"
    assert sessions["HL1"]["action_lines"] == ["C1", "C11"]
    assert sessions["HL1"]["starts_at"] == "2026-03-02T08:00:00Z"  # 09:00 in Geneva (CET)
    assert sessions["TW7"]["track"] == "youth"
    assert sessions["TW7"]["sdgs"] == [3, 5]
    assert sessions["TW7"]["capacity"] == 200


def test_all_or_nothing_writes_none_and_reports_every_bad_row(client: TestClient, forum: dict) -> None:
    """With bad rows and the default mode nothing is written; each bad row is listed with its reasons."""
    response = _import(client, forum, CSV_MIXED)
    assert response.status_code == 422
    report = response.json()
    assert report["written"] is False and report["created"] == 0
    rejected = {r["row"]: r for r in report["rejected"]}
    assert sorted(rejected) == [4, 5, 6, 7]
    assert rejected[4]["errors"][0]["field"] == "ends_at"
    assert "SDG 18" in rejected[5]["errors"][0]["reason"]
    assert rejected[6]["errors"][0]["field"] == "type"
    assert rejected[7]["errors"] == [{"field": "code", "reason": "duplicate of row 2"}]
    assert client.get("/api/sessions").json()["total"] == 0


def test_valid_only_writes_the_good_rows(client: TestClient, forum: dict) -> None:
    """valid_only writes the two good rows and still reports the four bad ones."""
    report = _import(client, forum, CSV_MIXED, mode="valid_only").json()
    assert report["created"] == 2 and len(report["rejected"]) == 4 and report["written"] is True
    assert client.get("/api/sessions").json()["total"] == 2


def test_reimport_updates_by_code(client: TestClient, forum: dict) -> None:
    """Importing a revised sheet updates the sessions with the same codes instead of duplicating them."""
    _import(client, forum, CSV_GOOD)
    revised = CSV_GOOD.replace("Opening high-level session", "Opening (revised)")
    report = _import(client, forum, revised).json()
    assert (report["created"], report["updated"]) == (0, 2)
    titles = sorted(s["title"] for s in client.get("/api/sessions").json()["sessions"])
    assert titles == ["E-health workshop", "Opening (revised)"]


def test_json_import(client: TestClient, forum: dict) -> None:
    """JSON takes a list (or {"sessions": [...]}) with lists as arrays; bad items are reported by position."""
    rows = [
        {
            "code": "J1",
            "title": "TalkX on AI",
            "type": "talkx",
            "starts_at": "2026-03-03T10:00:00+00:00",
            "ends_at": "2026-03-03T10:30:00+00:00",
            "action_lines": ["C10"],
            "sdgs": [9],
            "tags": ["ai"],
        },
        {"code": "J2", "title": "Bad", "type": "talkx", "starts_at": "yesterday", "ends_at": "today"},
        "not an object",
    ]
    report = _import(client, forum, json.dumps({"sessions": rows}), fmt="json", mode="valid_only").json()
    assert report["created"] == 1
    assert [r["row"] for r in report["rejected"]] == [2, 3]
    assert {e["field"] for e in report["rejected"][0]["errors"]} == {"starts_at", "ends_at"}


@pytest.mark.parametrize(
    ("content", "fmt", "status", "needle"),
    [
        ("not,a,programme\n1,2,3\n", "csv", 422, "header"),
        ("title,colour\nx,red\n", "csv", 422, "unknown column"),
        ("{broken", "json", 422, "not valid JSON"),
        ('{"a": 1}', "json", 422, "JSON list"),
        ("title\n" + "x\n" * 5001, "csv", 413, "at most 5000"),
    ],
)
def test_unusable_files_are_refused_whole(
    client: TestClient, forum: dict, content: str, fmt: str, status: int, needle: str
) -> None:
    """A file that cannot be read at all gets one clear error and writes nothing."""
    response = _import(client, forum, content, fmt=fmt)
    assert response.status_code == status
    assert needle in response.json()["error"]["message"]
    assert client.get("/api/sessions").json()["total"] == 0


def test_format_is_required_when_the_content_type_does_not_say(client: TestClient, forum: dict) -> None:
    """Without format= or a CSV/JSON content type the request is refused, naming 'format'."""
    response = client.post(
        f"/api/forums/{forum['id']}/import",
        content=b"title\nx\n",
        headers={**csrf(client), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "format"

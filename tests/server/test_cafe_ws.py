"""Knowledge cafés over the room WebSocket: tables, rounds on the server's clock with rotation, notes that
survive a restart, attendance per table and round, the plenary, bad input, and the harvest export."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from realtime import cafe_room
from server.app import create_app
from server.settings import Settings
from server.storage.models import CafeNote, CafeSeat
from tests.conftest import BASE_URL, make_forum, make_session, sign_in_organizer
from tests.server.test_rooms_ws import _participant, room_socket

LIMIT = 200  # messages to skip while looking for one (presence batches, other people's events)


def next_of(ws: Any, kind: str) -> dict:
    for _ in range(LIMIT):
        message = ws.receive_json()
        if message["type"] == kind or message.get("kind") == kind:
            return message
    raise AssertionError(f"no {kind} within {LIMIT} messages")


def error_of(ws: Any, message: dict) -> str:
    ws.send_json({**message, "ref": "bad"})
    reply = next_of(ws, "error")
    assert reply["ref"] == "bad"
    return reply["code"]


def done(ws: Any, message: dict, ref: str) -> None:
    """Send a command and wait for its ack (failing on its error)."""
    ws.send_json({**message, "ref": ref})
    for _ in range(LIMIT):
        reply = ws.receive_json()
        if reply["type"] in ("ack", "error") and reply.get("ref") == ref:
            assert reply["type"] == "ack", reply
            return
    raise AssertionError(f"no answer to {ref}")


@pytest.fixture
def cafe(app: Starlette, client: TestClient) -> dict:
    """An organizer's open café session, and four participants' sign-in cookies."""
    sign_in_organizer(app, client)
    forum = make_forum(client)
    session = make_session(client, forum["id"], type="knowledge_cafe", title="Knowledge café on inclusion")
    other = make_session(client, forum["id"], type="knowledge_cafe", title="Another café")
    plain = make_session(client, forum["id"])
    for sid in (session["id"], other["id"], plain["id"]):
        with room_socket(client, sid) as ws:
            next_of(ws, "welcome")
            done(ws, {"type": "room.state", "state": "open"}, "open")
    people = [_participant(app, f"p{i}@example.org", f"Person {i}") for i in range(4)]
    return {"session": session["id"], "other": other["id"], "plain": plain["id"], "people": people}


def test_rounds_rotation_notes_attendance_plenary_and_restart(
    app: Starlette, client: TestClient, settings: Settings, cafe: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rounds: the clock ends the first and rotates, notes reach the table live, attendance records
    table and round, and after a restart a fresh page sees the notes and the plenary."""
    monkeypatch.setattr(cafe_room, "MIN_LEFT_S", 0.5)  # a round the test can shorten to half a second
    sid = cafe["session"]
    with ExitStack() as stack:
        org = stack.enter_context(room_socket(client, sid))
        next_of(org, "welcome")
        tables = []
        for topic in ("Community networks", "Digital skills", "Open data"):
            org.send_json({"type": "cafe.table.add", "topic": topic, "seats": 2})
            tables.append(next_of(org, "cafe.table.added")["data"]["table"]["id"])
        pages = [stack.enter_context(room_socket(client, sid, cookie=c)) for c in cafe["people"]]
        you = [next_of(ws, "welcome")["you"]["id"] for ws in pages]
        for ws, table in zip(pages, [tables[0], tables[0], tables[1], tables[1]], strict=True):
            done(ws, {"type": "cafe.join", "table_id": table}, "join")
        assert error_of(pages[3], {"type": "cafe.join", "table_id": tables[0]}) == "table_full"

        pages[0].send_json({"type": "cafe.note.add", "text": "<b>Local ownership</b> matters"})
        note = next_of(pages[1], "cafe.note")["data"]["note"]
        assert note["text"] == "<b>Local ownership</b> matters" and note["table_id"] == tables[0]
        edit = {"type": "cafe.note.edit", "note_id": note["id"], "text": "Local ownership matters"}
        assert error_of(pages[2], edit) == "not_at_table"
        done(pages[1], edit, "edit")
        changes = [next_of(pages[0], "cafe.note")["data"] for _ in range(2)]  # its own card, then the edit
        assert [(c["action"], c["note"]["text"]) for c in changes] == [
            ("added", "<b>Local ownership</b> matters"),
            ("edited", "Local ownership matters"),
        ]

        done(org, {"type": "cafe.round.start", "duration_s": 60}, "start")
        started = next_of(pages[0], "cafe.round")["data"]
        assert started["state"] == "running" and started["ends_at"] - started["started_at"] == 60
        done(org, {"type": "cafe.round.adjust", "delta_s": -59}, "shorten")  # ends in about a second
        ended = next_of(pages[0], "cafe.round")
        while ended["data"]["state"] != "ended":
            ended = next_of(pages[0], "cafe.round")
        moved = next_of(pages[0], "cafe.seated")["data"]
        assert moved["round"] == 2
        table_of = {m["person_id"]: m["table_id"] for m in moved["moves"]}
        # Everyone moved, and those who sat together in round 1 sit apart now.
        assert [table_of[p] for p in you[:2]].count(tables[0]) == 0
        assert [table_of[p] for p in you[2:]].count(tables[1]) == 0
        assert table_of[you[0]] != table_of[you[1]] and table_of[you[2]] != table_of[you[3]]
        assert error_of(org, {"type": "cafe.round.end"}) == "round_ended"

        done(org, {"type": "cafe.round.start", "duration_s": 600}, "second")
        done(org, {"type": "cafe.round.end"}, "end")
        done(org, {"type": "cafe.note.insight", "note_id": note["id"], "insight": True}, "insight")
        done(org, {"type": "cafe.plenary", "table_id": tables[0]}, "plenary")

    seats = app.state.db.run_read(lambda db: db.exec(select(CafeSeat).order_by(CafeSeat.id)).all())
    by_round = {(s.person_id, s.round_no): s.table_id for s in seats}
    assert by_round[(you[0], 1)] == tables[0] and by_round[(you[2], 1)] == tables[1]
    assert by_round[(you[0], 2)] == table_of[you[0]]
    assert app.state.db.run_read(lambda db: len(db.exec(select(CafeNote)).all())) == 1

    # A restart: a new app on the same data directory rebuilds the café from the database.
    with TestClient(create_app(settings), base_url=BASE_URL) as again:
        with room_socket(again, sid, cookie=cafe["people"][0]) as ws:
            snap = next_of(ws, "welcome")["snapshot"]["cafe"]
    assert snap["phase"] == "plenary" and snap["reporting_table_id"] == tables[0] and snap["round"] == 2
    assert [(n["text"], n["insight"]) for n in snap["notes"]] == [("Local ownership matters", True)]
    assert [t["topic"] for t in snap["tables"]] == ["Community networks", "Digital skills", "Open data"]

    harvest = client.get(f"/api/sessions/{sid}/cafe/harvest")
    assert harvest.status_code == 200
    assert harvest.json()["tables"][0]["insights"][0]["text"] == "Local ownership matters"
    markdown = client.get(f"/api/sessions/{sid}/cafe/harvest?format=markdown")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "## Table" in markdown.text and "**Local ownership matters**" in markdown.text


def test_bad_cafe_input_is_refused_without_change(app: Starlette, client: TestClient, cafe: dict) -> None:
    """A table of another session, a full table, notes of another table, a rotation with more people
    than seats, moderator commands from participants, café commands in a plain room: errors, no change."""
    sid = cafe["session"]
    with room_socket(client, cafe["other"]) as ws:
        next_of(ws, "welcome")
        ws.send_json({"type": "cafe.table.add", "topic": "Elsewhere", "seats": 4})
        foreign = next_of(ws, "cafe.table.added")["data"]["table"]["id"]
    with ExitStack() as stack:
        org = stack.enter_context(room_socket(client, sid))
        next_of(org, "welcome")
        org.send_json({"type": "cafe.table.add", "topic": "Only table", "seats": 1})
        table = next_of(org, "cafe.table.added")["data"]["table"]["id"]
        a, b = (stack.enter_context(room_socket(client, sid, cookie=c)) for c in cafe["people"][:2])
        next_of(a, "welcome")
        next_of(b, "welcome")
        assert error_of(a, {"type": "cafe.join", "table_id": foreign}) == "not_found"
        assert error_of(a, {"type": "cafe.table.add", "topic": "Mine", "seats": 3}) == "forbidden"
        assert error_of(a, {"type": "cafe.round.start", "duration_s": 60}) == "forbidden"
        assert error_of(a, {"type": "cafe.round.end"}) == "forbidden"
        assert error_of(org, {"type": "cafe.round.end"}) == "round_ended"
        done(a, {"type": "cafe.join", "table_id": table}, "a")
        assert error_of(b, {"type": "cafe.join", "table_id": table}) == "table_full"
        assert error_of(b, {"type": "cafe.note.add", "text": "hi", "table_id": table}) == "not_at_table"
        assert error_of(b, {"type": "cafe.note.add", "text": "x" * 1001}) == "invalid"
        done(org, {"type": "cafe.join", "table_id": table}, "org")  # moderators may sit at a full table
        assert error_of(org, {"type": "cafe.rotate"}) == "not_enough_seats"
        org.send_json({"type": "hello", "v": 1})  # a marker: everything before it was answered
        next_of(org, "error")
    seats = app.state.db.run_read(lambda db: db.exec(select(CafeSeat)).all())
    assert sorted(s.table_id for s in seats if s.left_at is None) == [table, table]
    with room_socket(client, cafe["plain"]) as ws:
        next_of(ws, "welcome")
        assert error_of(ws, {"type": "cafe.table.add", "topic": "x", "seats": 2}) == "invalid"


def test_a_running_round_ends_on_time_after_a_restart(
    app: Starlette, client: TestClient, settings: Settings, cafe: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seats and a running round survive a restart; the new process's clock ends the round and rotates."""
    monkeypatch.setattr(cafe_room, "MIN_LEFT_S", 2.0)
    sid = cafe["session"]
    with ExitStack() as stack:
        org = stack.enter_context(room_socket(client, sid))
        next_of(org, "welcome")
        for topic in ("Water", "Energy"):
            done(org, {"type": "cafe.table.add", "topic": topic, "seats": 2}, topic)
        a, b = (stack.enter_context(room_socket(client, sid, cookie=c)) for c in cafe["people"][:2])
        for ws in (a, b):
            next_of(ws, "welcome")
        done(org, {"type": "cafe.seat"}, "seat")
        done(org, {"type": "cafe.round.start", "duration_s": 60}, "start")
        done(org, {"type": "cafe.round.adjust", "delta_s": -57}, "shorten")  # about 3 s left
    # The first process's clock stops (as if it had died); a second process takes over from the database.
    client.portal.call(app.state.rooms.cafes.stop)
    with TestClient(create_app(settings), base_url=BASE_URL) as again:
        with room_socket(again, sid, cookie=cafe["people"][0]) as ws:
            snap = next_of(ws, "welcome")["snapshot"]["cafe"]
            assert snap["phase"] == "round" and len(snap["seated"]) == 2
            tables = {s["person_id"]: s["table_id"] for s in snap["seated"]}
            ended = next_of(ws, "cafe.round")
            while ended["data"]["state"] != "ended":
                ended = next_of(ws, "cafe.round")
            moves = {m["person_id"]: m["table_id"] for m in next_of(ws, "cafe.seated")["data"]["moves"]}
    assert all(moves[p] != t for p, t in tables.items())

"""The room WebSocket through Starlette's test client: connection checks, the protocol, commands,
resume, attendance, limits and the authorization matrix."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from server.storage.models import AttendanceVisit, ChatMessage, Question, Session, SessionRole
from tests.conftest import BASE_URL, csrf, make_forum, make_session, new_client, register, sign_in_organizer


@contextmanager
def room_socket(
    client: TestClient, session_id: int, origin: str = BASE_URL, start: dict | None = None, cookie: str | None = None
):  # noqa: ANN201
    """A socket opened through the main client (whose event loop runs the rooms) as the person whose
    sign-in cookie is given (default: the client's own)."""
    headers = {"origin": origin}
    cookie = cookie if cookie is not None else client.cookies.get("forumlive_session")
    if cookie:  # the test client does not send its cookie jar on WebSocket handshakes
        headers["cookie"] = f"forumlive_session={cookie}"
    with client.websocket_connect(f"/ws/sessions/{session_id}", headers=headers) as ws:
        ws.send_json(start or {"type": "hello", "v": 1})
        yield ws


def next_of(ws: Any, kind: str, limit: int = 20) -> dict:
    """The next message of a type (``event`` kinds by their kind), skipping others."""
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind or message.get("kind") == kind:
            return message
    raise AssertionError(f"no {kind} within {limit} messages")


@pytest.fixture
def setup(app: Starlette, client: TestClient) -> dict:
    """An organizer (client) with a session whose room is open, plus a participant's client."""
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    with room_socket(client, session["id"]) as ws:
        next_of(ws, "welcome")
        ws.send_json({"type": "room.state", "state": "open", "ref": "r1"})
        next_of(ws, "ack")
    return {"session": session}


def _participant(app: Starlette, email: str = "pat@example.org", name: str = "Pat") -> str:
    """Register someone in another browser; returns their sign-in cookie."""
    with new_client(app) as other:
        register(other, email=email, name=name)
        return other.cookies.get("forumlive_session")


def test_welcome_carries_snapshot_and_server_side_role(app: Starlette, client: TestClient, setup: dict) -> None:
    """A participant gets a snapshot; the role comes from the database, whatever the client claims."""
    pat = _participant(app)
    with room_socket(client, setup["session"]["id"], cookie=pat) as ws:
        welcome = next_of(ws, "welcome")
        assert welcome["you"]["role"] == "participant"
        assert welcome["snapshot"]["state"] == "open"
        assert welcome["v"] == 1 and welcome["seq"] >= 1
        ws.send_json({"type": "room.lock", "locked": True, "role": "moderator"})
        assert next_of(ws, "error")["code"] == "invalid"
        ws.send_json({"type": "room.lock", "locked": True})
        assert next_of(ws, "error")["code"] == "forbidden"


def test_chat_is_committed_then_broadcast_to_everyone(app: Starlette, client: TestClient, setup: dict) -> None:
    """A chat line reaches the sender and the others with the same seq, and is in the database."""
    pat = _participant(app)
    sid = setup["session"]["id"]
    with room_socket(client, sid) as org_ws, room_socket(client, sid, cookie=pat) as pat_ws:
        next_of(org_ws, "welcome")
        next_of(pat_ws, "welcome")
        pat_ws.send_json({"type": "chat.send", "text": "<img src=x onerror=alert(1)> hello", "ref": "c1"})
        mine = next_of(pat_ws, "chat.posted")
        theirs = next_of(org_ws, "chat.posted")
        assert mine["seq"] == theirs["seq"] and mine["data"] == theirs["data"]
        assert mine["data"]["text"] == "<img src=x onerror=alert(1)> hello"
        assert next_of(pat_ws, "ack")["ref"] == "c1"
    stored = app.state.db.run_read(lambda db: db.exec(select(ChatMessage)).all())
    assert [m.id for m in stored] == [mine["data"]["id"]]


def test_origin_sign_in_and_unknown_session_are_checked(app: Starlette, client: TestClient, setup: dict) -> None:
    """A foreign Origin is refused at the handshake; strangers get 4401; unknown sessions 4404."""
    with (
        pytest.raises(WebSocketDisconnect) as info,
        room_socket(client, setup["session"]["id"], origin="https://evil.example.org"),
    ):
        pass
    assert info.value.code == 1008
    for cookie in ("", "forged.cookie.value", client.cookies.get("forumlive_session")[:-3] + "abc"):
        with (
            pytest.raises(WebSocketDisconnect) as info,
            room_socket(client, setup["session"]["id"], cookie=cookie) as ws,
        ):
            ws.receive_json()
        assert info.value.code == 4401, cookie
    with pytest.raises(WebSocketDisconnect) as info, room_socket(client, 9999) as ws:
        ws.receive_json()
    assert info.value.code == 4404


def test_bad_frames_get_coded_errors_or_closes(client: TestClient, setup: dict) -> None:
    """Malformed JSON, unknown types, duplicate keys and wrong types get error codes; oversized frames close 1009."""
    sid = setup["session"]["id"]
    with room_socket(client, sid) as ws:
        next_of(ws, "welcome")
        cases = [
            ("{nope", "bad_json"),
            ('{"type": "chat.shout", "text": "x"}', "unknown_type"),
            ('{"type": "chat.send", "text": "a", "text": "b"}', "duplicate_key"),
            ('{"type": "chat.send", "text": 42}', "invalid"),
            ('{"type": "chat.send", "text": "   "}', "invalid"),
            ('["chat.send"]', "invalid"),
            ('{"type": "hello"}', "already_started"),
        ]
        for raw, code in cases:
            ws.send_text(raw)
            assert next_of(ws, "error")["code"] == code, raw
        ws.send_text(json.dumps({"type": "chat.send", "text": "x" * (70 * 1024)}))
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
        assert info.value.code == 1009
    with (
        pytest.raises(WebSocketDisconnect) as info,
        room_socket(client, sid, start={"type": "chat.send", "text": "hi"}) as ws,
    ):
        ws.receive_json()
    assert info.value.code == 4400


def test_resume_gets_exactly_the_missed_events(app: Starlette, client: TestClient, setup: dict) -> None:
    """Reconnecting with (epoch, last_seq) replays exactly the events after last_seq, in order."""
    sid = setup["session"]["id"]
    pat = _participant(app)
    with room_socket(client, sid, cookie=pat) as ws:
        welcome = next_of(ws, "welcome")
        epoch, last_seq = welcome["epoch"], welcome["seq"]
    with room_socket(client, sid) as org_ws:
        next_of(org_ws, "welcome")
        for text in ("one", "two", "three"):
            org_ws.send_json({"type": "chat.send", "text": text})
            next_of(org_ws, "chat.posted")
    with room_socket(client, sid, cookie=pat, start={"type": "resume", "epoch": epoch, "last_seq": last_seq}) as ws:
        resumed = next_of(ws, "resumed")
        events = [ws.receive_json() for _ in range(resumed["missed"])]
    assert [e["seq"] for e in events] == list(range(last_seq + 1, last_seq + 1 + resumed["missed"]))
    assert [e["data"]["text"] for e in events if e["kind"] == "chat.posted"] == ["one", "two", "three"]
    with room_socket(client, sid, cookie=pat, start={"type": "resume", "epoch": "old-epoch", "last_seq": 3}) as ws:
        assert next_of(ws, "welcome")["reason"] == "resync"


def test_removed_participant_is_disconnected_and_cannot_return(app: Starlette, client: TestClient, setup: dict) -> None:
    """Removal closes the person's sockets with 4403 and refuses them afterwards."""
    sid = setup["session"]["id"]
    pat = _participant(app)
    with room_socket(client, sid) as org_ws, room_socket(client, sid, cookie=pat) as pat_ws:
        next_of(org_ws, "welcome")
        me = next_of(pat_ws, "welcome")["you"]["id"]
        org_ws.send_json({"type": "participant.remove", "person_id": me})
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(10):
                pat_ws.receive_json()
        assert info.value.code == 4403
    with pytest.raises(WebSocketDisconnect) as info, room_socket(client, sid, cookie=pat) as ws:
        ws.receive_json()
    assert info.value.code == 4403


def test_flooding_chat_is_rate_limited(app: Starlette, client: TestClient, setup: dict) -> None:
    """More chat lines than the burst allows get rate_limited errors with a retry time."""
    pat = _participant(app)
    with room_socket(client, setup["session"]["id"], cookie=pat) as ws:
        next_of(ws, "welcome")
        for i in range(8):
            ws.send_json({"type": "chat.send", "text": f"spam {i}"})
        errors = []
        for _ in range(30):
            message = ws.receive_json()
            if message["type"] == "error":
                errors.append(message)
            if len(errors) == 3:
                break
        assert {e["code"] for e in errors} == {"rate_limited"} and errors[0]["retry_after_s"] > 0


def test_connections_per_person_are_capped(app: Starlette, client: TestClient, setup: dict) -> None:
    """A sixth simultaneous connection of one person is closed with 4429."""
    pat = _participant(app)
    sid = setup["session"]["id"]
    opened = []
    try:
        for _ in range(5):
            ctx = room_socket(client, sid, cookie=pat)
            ws = ctx.__enter__()
            next_of(ws, "welcome")
            opened.append(ctx)
        with pytest.raises(WebSocketDisconnect) as info, room_socket(client, sid, cookie=pat) as ws:
            ws.receive_json()
        assert info.value.code == 4429
    finally:
        for ctx in reversed(opened):
            ctx.__exit__(None, None, None)


def test_attendance_visit_opens_closes_and_merges_reconnects(app: Starlette, client: TestClient, setup: dict) -> None:
    """Joining opens a visit, leaving closes it; a quick reconnect continues the same visit."""
    pat = _participant(app)
    sid = setup["session"]["id"]
    for _ in range(2):
        with room_socket(client, sid, cookie=pat) as ws:
            next_of(ws, "welcome")
    visits = app.state.db.run_read(
        lambda db: db.exec(
            select(AttendanceVisit).where(AttendanceVisit.session_id == sid, AttendanceVisit.channel == "live")
        ).all()
    )
    mine = [v for v in visits if v.person_id != 1]
    assert len(mine) == 1 and mine[0].left_at is not None and mine[0].left_at >= mine[0].joined_at


def test_closed_room_admits_staff_and_speakers_only(app: Starlette, client: TestClient) -> None:
    """Before the doors open a participant is refused with room_closed."""
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    pat = _participant(app)
    with pytest.raises(WebSocketDisconnect) as info, room_socket(client, session["id"], cookie=pat) as ws:
        ws.receive_json()
    assert info.value.code == 4403 and "room_closed" in info.value.reason


def test_going_live_and_ending_updates_the_programme(client: TestClient, setup: dict) -> None:
    """room.state live/ended is stored and shows as the session's status in the programme."""
    sid = setup["session"]["id"]
    with room_socket(client, sid) as ws:
        next_of(ws, "welcome")
        ws.send_json({"type": "room.state", "state": "live"})
        next_of(ws, "room.state")
        assert client.get(f"/api/sessions/{sid}").json()["status"] == "live"
        ws.send_json({"type": "room.state", "state": "ended"})
        next_of(ws, "room.state")
    assert client.get(f"/api/sessions/{sid}").json()["status"] == "ended"


MODERATOR_COMMANDS = [  # TARGET is replaced by a participant who is in the room
    {"type": "room.lock", "locked": True},
    {"type": "qa.settings", "pre_approval": True},
    {"type": "chat.slow_mode", "interval_s": 0},
    {"type": "chat.mute", "person_id": "TARGET", "muted": True},
    {"type": "poll.create", "question": "Q?", "options": ["a", "b"]},
    {"type": "stage.invite", "person_id": "TARGET"},
    {"type": "stage.remove", "person_id": "TARGET"},
    {"type": "hand.lower", "person_id": "TARGET"},
    {"type": "participant.remove", "person_id": "TARGET"},
    {"type": "room.state", "state": "live"},
]


@pytest.mark.parametrize("role", ["organizer", "moderator", "speaker", "captioner", "participant"])
def test_authorization_matrix(app: Starlette, client: TestClient, setup: dict, role: str) -> None:
    """Every moderator action by every role: staff succeed, speakers, captioners and participants get
    'forbidden'."""
    sid = setup["session"]["id"]
    cookie = None
    if role != "organizer":
        with new_client(app) as other:
            person_id = register(other, email=f"{role}@example.org", name=role)["id"]
            cookie = other.cookies.get("forumlive_session")
        if role != "participant":
            app.state.db.run_write(lambda db: db.add(SessionRole(session_id=sid, person_id=person_id, role=role)))
    target_cookie = _participant(app, email="target@example.org", name="Target")
    with room_socket(client, sid, cookie=target_cookie) as target_ws, room_socket(client, sid, cookie=cookie) as ws:
        target = next_of(target_ws, "welcome")["you"]["id"]
        assert next_of(ws, "welcome")["you"]["role"] == role
        for index, command in enumerate(MODERATOR_COMMANDS):
            command = {k: (target if v == "TARGET" else v) for k, v in command.items()}
            ws.send_json({**command, "ref": f"m{index}"})
            reply = next(m for m in (ws.receive_json() for _ in range(10)) if m.get("ref") == f"m{index}")
            if role in ("organizer", "moderator"):
                assert reply["type"] == "ack", (command, reply)
            else:
                assert reply["type"] == "error" and reply["code"] == "forbidden", (command, reply)
    session = app.state.db.run_read(lambda db: db.get(Session, sid))
    assert (session.status == "live") == (role in ("organizer", "moderator"))


def test_database_refuses_a_second_vote_even_past_the_room(app: Starlette, client: TestClient, setup: dict) -> None:
    """The vote table's key is the last word: a duplicate insert fails in the database itself."""
    from sqlalchemy.exc import IntegrityError

    from server.storage.models import QuestionVote
    from server.storage.types import utcnow

    sid = setup["session"]["id"]
    with room_socket(client, sid) as ws:
        next_of(ws, "welcome")
        ws.send_json({"type": "question.ask", "text": "Why?"})
        qid = next_of(ws, "question.asked")["data"]["question"]["id"]
        ws.send_json({"type": "question.vote", "question_id": qid})
        assert next_of(ws, "question.voted")["data"]["votes"] == 1
    person_id = client.get("/api/me").json()["id"]
    with pytest.raises(IntegrityError):
        app.state.db.run_write(
            lambda db: db.add(QuestionVote(question_id=qid, person_id=person_id, created_at=utcnow())) or db.flush()
        )
    assert app.state.db.run_read(lambda db: db.get(Question, qid)) is not None


def test_a_captioners_line_reaches_viewers_and_the_human_transcript(
    app: Starlette, client: TestClient, setup: dict
) -> None:
    """Someone who accepted a captioner invitation types a line: a participant sees it being typed and then
    final on the human track, and it is stored in that track's transcript only; the participant may not type."""
    from server.rooms.store import transcript

    sid = setup["session"]["id"]
    token = client.post(f"/api/sessions/{sid}/invitations", json={"role": "captioner"}, headers=csrf(client))
    with new_client(app) as other:
        register(other, email="cleo@example.org", name="Cleo Captioner")
        accepted = other.post(f"/api/invitations/{token.json()['token']}/accept", headers=csrf(other))
        assert accepted.json()["role"] == "captioner"
        cleo = other.cookies.get("forumlive_session")
    pat = _participant(app)
    with room_socket(client, sid, cookie=cleo) as captioner, room_socket(client, sid, cookie=pat) as viewer:
        assert next_of(captioner, "welcome")["you"]["role"] == "captioner"
        next_of(viewer, "welcome")
        captioner.send_json({"type": "caption.type", "text": "Welcome to", "speaker": "Chair"})
        partial = next_of(viewer, "caption.partial")["data"]
        assert (partial["track"], partial["speaker"], partial["text"]) == ("human", "Chair", "Welcome to")
        captioner.send_json({"type": "caption.type", "text": "Welcome to the session.", "final": True, "ref": "c1"})
        assert next_of(captioner, "ack")["ref"] == "c1"
        final = next_of(viewer, "caption.final")["data"]
        assert (final["track"], final["language"], final["speaker"]) == ("human", "en", "Cleo Captioner")
        viewer.send_json({"type": "caption.type", "text": "Me too", "final": True})
        assert next_of(viewer, "error")["code"] == "forbidden"
    human = app.state.db.run_read(transcript, sid, "human")
    assert [(c["text"], c["track"], c["speaker"]) for c in human] == [
        ("Welcome to the session.", "human", "Cleo Captioner")
    ]
    assert app.state.db.run_read(transcript, sid, "machine") == []


def test_transcript_endpoints_read_the_chosen_track(app: Starlette, client: TestClient, setup: dict) -> None:
    """?track=human gives the human transcript (JSON and files); the default is machine; an unknown track is 422."""
    sid = setup["session"]["id"]
    with room_socket(client, sid) as ws:
        next_of(ws, "welcome")
        ws.send_json({"type": "caption.type", "text": "Welcome to the session.", "final": True, "ref": "c1"})
        next_of(ws, "ack")
    human = client.get(f"/api/sessions/{sid}/transcript?track=human").json()
    assert human["track"] == "human" and [c["text"] for c in human["captions"]] == ["Welcome to the session."]
    assert client.get(f"/api/sessions/{sid}/transcript").json()["captions"] == []
    vtt = client.get(f"/api/sessions/{sid}/transcript.vtt?track=human")
    assert "Welcome to the session." in vtt.text and "transcript-human.vtt" in vtt.headers["content-disposition"]
    assert client.get(f"/api/sessions/{sid}/transcript?track=robot").status_code == 422

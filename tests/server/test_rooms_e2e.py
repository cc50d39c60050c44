"""Rooms against a real server process (uvicorn) with real ``websockets`` clients, including a
``kill -9`` in the middle of a session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.conftest import ServerProcess as Server


def sign_in_cookie(server: Server, email: str) -> str:
    accounts = {a["email"]: a for a in json.loads((server.data_dir / "demo-accounts.json").read_text())}
    with httpx2.Client(base_url=server.url) as http:
        token = http.get("/api/auth/csrf").json()["csrf_token"]
        response = http.post(
            "/api/auth/signin",
            json={"email": email, "password": accounts[email]["password"]},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 200, response.text
        return http.cookies["forumlive_session"]


def live_session(server: Server) -> int:
    return httpx2.get(f"{server.url}/api/sessions?status=live").json()["sessions"][0]["id"]


@asynccontextmanager
async def socket(
    server: Server, session_id: int, cookie: str, start: dict | None = None, origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    url = f"ws://127.0.0.1:{server.port}/ws/sessions/{session_id}"
    async with connect(
        url, origin=origin or server.url, additional_headers={"Cookie": f"forumlive_session={cookie}"}, open_timeout=10
    ) as ws:
        await ws.send(json.dumps(start or {"type": "hello", "v": 1}))
        yield ws


async def next_of(ws: ClientConnection, kind: str, limit: int = 50, ref: str | None = None) -> dict[str, Any]:
    """The next message of a type or event kind (and with ``ref``, if given), skipping others."""
    async with asyncio.timeout(10):
        for _ in range(limit):
            message = json.loads(await ws.recv())
            if (message["type"] == kind or message.get("kind") == kind) and ref in (None, message.get("ref")):
                return message
    raise AssertionError(f"no {kind}")


async def test_real_clients_chat_and_ping(server: Server) -> None:
    """Two real clients in one room: a chat line reaches the other; ping gets pong."""
    sid = live_session(server)
    ana, olena = sign_in_cookie(server, "ana@demo.forumlive.org"), sign_in_cookie(server, "olena@demo.forumlive.org")
    async with socket(server, sid, ana) as a, socket(server, sid, olena) as b:
        await next_of(a, "welcome")
        await next_of(b, "welcome")
        await a.send(json.dumps({"type": "chat.send", "text": "Bonjour à tous"}))
        assert (await next_of(b, "chat.posted"))["data"]["text"] == "Bonjour à tous"
        await b.send('{"type": "ping"}')
        assert (await next_of(b, "pong"))["type"] == "pong"


async def test_foreign_origin_is_refused_at_the_handshake(server: Server) -> None:
    """Cross-site WebSocket hijacking: a page on another origin cannot open the room socket."""
    cookie = sign_in_cookie(server, "ana@demo.forumlive.org")
    with pytest.raises(InvalidStatus) as info:
        async with socket(server, live_session(server), cookie, origin="https://evil.example.org"):
            pass
    assert info.value.response.status_code == 403


async def test_kill_9_loses_nothing_committed_and_clients_resume(server: Server) -> None:
    """Chat, questions, votes and attendance survive SIGKILL; after restart a resuming client gets
    the rebuilt room (new epoch, fresh snapshot) and open visits are closed at their last heartbeat."""
    sid = live_session(server)
    ana = sign_in_cookie(server, "ana@demo.forumlive.org")
    organizer = sign_in_cookie(server, "organizer@demo.forumlive.org")
    async with socket(server, sid, ana) as a, socket(server, sid, organizer) as org:
        welcome = await next_of(a, "welcome")
        await next_of(org, "welcome")
        for text in ("first", "second", "third"):
            await a.send(json.dumps({"type": "chat.send", "text": text, "ref": text}))
            await next_of(a, "ack", ref=text)
        await a.send(json.dumps({"type": "question.ask", "text": "Will slides be shared?", "ref": "q"}))
        qid = (await next_of(a, "question.asked"))["data"]["question"]["id"]
        await org.send(json.dumps({"type": "question.vote", "question_id": qid, "ref": "v"}))
        await next_of(org, "ack", ref="v")
        await a.send(json.dumps({"type": "question.vote", "question_id": qid, "ref": "v2"}))
        last_seq = 0
        async with asyncio.timeout(10):
            while True:  # Ana's view up to her own vote's ack: the last seq she has seen
                message = json.loads(await a.recv())
                last_seq = message.get("seq", last_seq)
                if message.get("ref") == "v2":
                    break
        epoch = welcome["epoch"]
        server.kill()
    open_visits = server.sql(f"SELECT count(*) FROM attendance_visit WHERE session_id={sid} AND left_at IS NULL")
    assert open_visits == [(2,)]
    assert [r[0] for r in server.sql(f"SELECT text FROM chat_message WHERE session_id={sid} ORDER BY id")][-3:] == [
        "first",
        "second",
        "third",
    ]
    assert server.sql(f"SELECT count(*) FROM question_vote WHERE question_id={qid}") == [(2,)]

    server.start()
    assert server.sql(f"SELECT count(*) FROM attendance_visit WHERE session_id={sid} AND left_at IS NULL") == [(0,)]
    assert server.sql(f"SELECT count(*) FROM attendance_visit WHERE session_id={sid} AND left_at = last_seen_at") == [
        (2,)
    ]
    async with socket(server, sid, ana, start={"type": "resume", "v": 1, "epoch": epoch, "last_seq": last_seq}) as a:
        rebuilt = await next_of(a, "welcome")
    assert rebuilt["reason"] == "resync" and rebuilt["epoch"] != epoch
    snapshot = rebuilt["snapshot"]
    assert [m["text"] for m in snapshot["chat"]][-3:] == ["first", "second", "third"]
    question = next(q for q in snapshot["questions"] if q["id"] == qid)
    assert question["votes"] == 2 and qid in snapshot["my_votes"]

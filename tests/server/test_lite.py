"""The lite socket: the room's frames cut down to the state, head count, Q&A and one caption track."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.lite import LiteFilter
from tests.conftest import BASE_URL, new_client
from tests.server.test_rooms_ws import _participant, next_of, room_socket, setup  # noqa: F401 - fixture


def _event(kind: str, data: dict, seq: int = 5) -> str:
    return json.dumps({"type": "event", "epoch": "e1", "seq": seq, "kind": kind, "data": data})


def _caption(track: str, text: str) -> dict:
    return {"speaker_id": 3, "speaker": "Hana", "track": track, "language": "en", "text": text,
            "start_s": 1.0, "end_s": 2.0, "at": 1764064012.4, "id": 8}  # fmt: skip


def test_filter_keeps_questions_and_the_chosen_caption_track_only() -> None:
    """Chat, hands and other tracks are dropped; captions lose what the page does not draw; votes keep their counts."""
    lite = LiteFilter("human")
    assert lite.frame(_event("chat.posted", {"id": 1, "text": "hi"})) is None
    assert lite.frame(_event("hand.raised", {"person_id": 6, "name": "K", "at": 1.0})) is None
    assert lite.frame(_event("caption.final", _caption("machine", "spoken"))) is None
    kept = json.loads(lite.frame(_event("caption.final", _caption("human", "typed"))) or "{}")
    assert kept["seq"] == 5 and kept["data"] == {"speaker_id": 3, "speaker": "Hana", "track": "human", "text": "typed"}
    vote = json.loads(lite.frame(_event("question.voted", {"id": 5, "votes": 4})) or "{}")
    assert vote["data"] == {"id": 5, "votes": 4}
    assert lite.frame('{"type":"media.levels","levels":{"3":0.5}}') is None
    assert lite.frame('{"type":"ack","ref":"r1"}') == '{"type":"ack","ref":"r1"}'


def test_partial_lines_are_thinned_to_one_a_second_per_speaker() -> None:
    """A speaker's partials reach the lite page at most once a second; finals, the clearing of a line and another
    speaker's partials are not held back, and a new line's first partial goes at once."""
    now = [100.0]
    lite = LiteFilter("machine", clock=lambda: now[0])

    def sent(kind: str, text: str, speaker_id: int = 3) -> bool:
        return lite.frame(_event(kind, {**_caption("machine", text), "speaker_id": speaker_id})) is not None

    assert sent("caption.partial", "ask")
    now[0] += 0.5
    assert not sent("caption.partial", "ask not")  # half a second later: held back
    assert sent("caption.partial", "and so", speaker_id=4)  # another speaker's line
    now[0] += 0.5
    assert sent("caption.partial", "ask not what")  # a second after the last one sent
    now[0] += 0.2
    assert sent("caption.final", "Ask not what your country can do for you.")
    assert sent("caption.partial", "ask what")  # a new line: at once
    now[0] += 0.1
    assert sent("caption.partial", "")  # clearing the line always goes
    assert sent("caption.partial", "ask what you")


def test_presence_becomes_a_count_sent_only_when_it_changes() -> None:
    """Names in presence batches are for the roster the lite page does not draw; an unchanged count is not sent."""
    lite = LiteFilter("machine")
    joined = {"joined": [{"id": 3, "name": "Hana", "role": "speaker"}], "left": [], "count": 7}
    assert json.loads(lite.frame(_event("presence.changed", joined)) or "{}")["data"] == {"count": 7}
    assert lite.frame(_event("presence.changed", {**joined, "joined": []}, seq=6)) is None


def test_lite_socket_asks_and_gets_no_chat(app: Starlette, client: TestClient, setup: dict) -> None:  # noqa: F811
    """Over the real socket: a participant asks on the lite socket; the organizer's chat line never reaches it,
    the question does, and the welcome carries no roster or chat."""
    sid = setup["session"]["id"]
    pat = _participant(app)
    headers = {"origin": BASE_URL, "cookie": f"forumlive_session={pat}"}
    with client.websocket_connect(f"/ws/sessions/{sid}/lite?track=machine", headers=headers) as lite:
        lite.send_json({"type": "hello", "v": 1})
        welcome = next_of(lite, "welcome")
        assert set(welcome["snapshot"]) >= {"questions", "captions", "count"}
        assert not set(welcome["snapshot"]) & {"roster", "chat", "moderation", "polls"}
        with room_socket(client, sid) as room:
            next_of(room, "welcome")
            room.send_json({"type": "chat.send", "text": "not for lite", "ref": "c1"})
            next_of(room, "ack")
        lite.send_json({"type": "question.ask", "text": "From the lite page?", "anonymous": False, "ref": "q1"})
        seen = [lite.receive_json()]
        while seen[-1] != {"type": "ack", "ref": "q1"} and len(seen) < 20:
            seen.append(lite.receive_json())
        kinds = [m.get("kind") or m["type"] for m in seen]
        assert "chat.posted" not in kinds
        asked = next(m for m in seen if m.get("kind") == "question.asked")
        assert asked["data"]["question"]["text"] == "From the lite page?"


def test_lite_page_needs_sign_in_and_has_no_video(client: TestClient, setup: dict) -> None:  # noqa: F811
    """The lite page is for signed-in people (the socket needs an account) and carries no video element."""
    sid = setup["session"]["id"]
    page = client.get(f"/sessions/{sid}/lite")
    assert page.status_code == 200 and "<video" not in page.text and "/static/lite.js" in page.text
    with new_client(client.app) as anonymous:
        response = anonymous.get(f"/sessions/{sid}/lite", follow_redirects=False)
    assert response.status_code == 303 and "/signin?next=" in response.headers["location"]


def test_lite_page_carries_its_messages_in_its_language(client: TestClient, setup: dict) -> None:  # noqa: F811
    """A French lite page carries the messages its scripts show (common.js reads them instead of fetching
    the whole catalogue, server/i18n.py's page_catalogue); an English one carries none."""
    sid = setup["session"]["id"]
    assert 'id="page-messages"' not in client.get(f"/sessions/{sid}/lite").text
    page = client.get(f"/sessions/{sid}/lite", headers={"accept-language": "fr"}).text
    inline = page.split('<script type="application/json" id="page-messages">')[1].split("</script>")[0]
    messages = json.loads(inline)
    assert messages["No questions yet."] == "Pas encore de questions."
    assert "Lower hand" not in messages  # the room page's


def test_lite_socket_visits_are_on_the_lite_channel(app: Starlette, client: TestClient, setup: dict) -> None:  # noqa: F811
    """A visit through the lite socket is recorded on the ``lite`` channel, one through the room socket on
    ``live`` (the key figures count both, by channel)."""
    from sqlmodel import select

    from server.storage.models import AttendanceVisit

    sid = setup["session"]["id"]
    pat = _participant(app)
    headers = {"origin": BASE_URL, "cookie": f"forumlive_session={pat}"}
    with client.websocket_connect(f"/ws/sessions/{sid}/lite?track=machine", headers=headers) as lite:
        lite.send_json({"type": "hello", "v": 1})
        next_of(lite, "welcome")
        with room_socket(client, sid) as room:
            next_of(room, "welcome")
            query = select(AttendanceVisit).where(AttendanceVisit.session_id == sid)
            visits = app.state.db.run_read(lambda db: sorted(v.channel for v in db.exec(query)))
    assert visits == ["lite", "live"]

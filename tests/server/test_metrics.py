"""``/metrics``: Prometheus text with connections, rooms, events, queue drops and caption lag."""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.testclient import TestClient

from server import metrics
from tests.conftest import make_forum, make_session, sign_in_organizer
from tests.server.test_rooms_ws import next_of, room_socket


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample (``labels`` as written, e.g. ``role="owner"``)."""
    pattern = "^" + re.escape(name + (f"{{{labels}}}" if labels else "")) + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no {name}{labels} in:\n{text}"
    return float(found.group(1))


def test_metrics_count_connections_rooms_and_events(app: Starlette, client: TestClient) -> None:
    """A connection and a chat line show up as a connection, an owned room and delivered events."""
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"])
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert sample(before.text, "forumlive_connections") == 0
    with room_socket(client, session["id"]) as ws:
        next_of(ws, "welcome")
        ws.send_json({"type": "room.state", "state": "live", "ref": "r"})
        next_of(ws, "ack")
        ws.send_json({"type": "chat.send", "text": "hello", "ref": "c"})
        next_of(ws, "ack")
        text = client.get("/metrics").text
    assert sample(text, "forumlive_connections") == 1
    assert sample(text, "forumlive_rooms", 'role="owner"') == 1
    assert sample(text, "forumlive_rooms", 'role="replica"') == 0
    assert sample(text, "forumlive_room_events_total") >= 2
    assert sample(text, "forumlive_slow_consumers_total") == 0
    assert "forumlive_bus_pending" not in text  # one process: no bus


def test_caption_lag_per_stream_with_labels_escaped() -> None:
    """Each caption stream's lag is a sample labelled by session, speaker and track; label values are escaped."""

    class Rooms:
        rooms: dict = {}

        def owns(self, live: object) -> bool:
            return True

    class Captions:
        def status(self) -> list[dict]:
            return [{"session_id": 7, "speaker_id": 3, "track": 'ma"chine', "lag_s": 2.5}]

    text = metrics.render(Rooms(), Captions())
    assert 'forumlive_caption_lag_seconds{session="7",speaker_id="3",track="ma\\"chine"} 2.5' in text
    assert "# TYPE forumlive_caption_lag_seconds gauge" in text

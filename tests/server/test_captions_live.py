"""Live captions end to end through the app: a pre-recorded talk played into a room with the real
tiny.en model; viewers receive partial and final captions; the transcript downloads as WebVTT."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from captioning.wer import word_error_rate
from tests.conftest import csrf, make_forum, make_session, new_client, register, sign_in_organizer
from tests.server.test_rooms_ws import next_of, room_socket

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
REFERENCE = json.loads((DATA / "references.json").read_text())["jfk.wav"]


@pytest.fixture
def live_session(app: Starlette, client: TestClient) -> int:
    sign_in_organizer(app, client)
    session = make_session(client, make_forum(client)["id"], status="live")
    return session["id"]


def _wait_for_captioning(app: Starlette, client: TestClient) -> None:
    async def finished() -> None:
        async with asyncio.timeout(120):
            await asyncio.gather(*list(app.state.captions.tasks))

    client.portal.call(finished)


def test_played_talk_reaches_viewers_and_the_transcript(app: Starlette, client: TestClient, live_session: int) -> None:
    """Viewers get caption events while the talk plays; the stored transcript matches the speech."""
    with room_socket(client, live_session) as ws:
        next_of(ws, "welcome")
        response = client.post(
            f"/api/sessions/{live_session}/captions/play?speed=10&speaker=JFK",
            content=(DATA / "jfk.wav").read_bytes(),
            headers={**csrf(client), "Content-Type": "audio/wav"},
        )
        assert response.status_code == 202, response.text
        assert response.json()["duration_s"] == pytest.approx(11.0, abs=0.1)
        first = next_of(ws, "caption.final", limit=200)
        assert first["data"]["speaker"] == "JFK" and first["data"]["track"] == "machine"
        _wait_for_captioning(app, client)
    captions = client.get(f"/api/sessions/{live_session}/transcript").json()["captions"]
    text = " ".join(c["text"] for c in captions)
    assert word_error_rate(REFERENCE, text) <= 0.25, text
    assert all(0 <= c["start_s"] <= c["end_s"] <= 11.5 for c in captions)  # on the talk's own clock
    vtt = client.get(f"/api/sessions/{live_session}/transcript.vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n\n")
    cues = re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$", vtt.text, re.M)
    assert len(cues) == len(captions) and cues[0][0] < cues[0][1]
    assert client.get(f"/api/sessions/{live_session}/transcript.srt").text.startswith("1\n")
    assert client.get(f"/api/sessions/{live_session}/transcript.docx").status_code == 404


def test_only_staff_play_audio_and_bad_audio_is_refused(app: Starlette, client: TestClient, live_session: int) -> None:
    """A participant gets 403; a file that is not 16-bit PCM WAV gets 422 naming 'audio'."""
    bad = client.post(
        f"/api/sessions/{live_session}/captions/play",
        content=b"RIFF....not a wav",
        headers={**csrf(client), "Content-Type": "audio/wav"},
    )
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "audio"
    with new_client(app) as other:
        register(other)
        refused = other.post(
            f"/api/sessions/{live_session}/captions/play",
            content=(DATA / "jfk.wav").read_bytes(),
            headers={**csrf(other), "Content-Type": "audio/wav"},
        )
        assert refused.status_code == 403

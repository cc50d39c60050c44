"""Live captions in another language, end to end through the app with the real multilingual model (base):
a Spanish talk played into a session whose language Whisper does not know is detected as Spanish,
captioned in Spanish, and translated into an English track. The speech is synthetic (espeak-ng)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from captioning.wer import word_error_rate, words_of
from server.settings import Settings, load_settings
from tests.conftest import csrf, make_forum, make_session, sign_in_organizer
from tests.server.test_rooms_ws import next_of, room_socket

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
CLIP = json.loads((DATA / "multilingual.json").read_text())["es_passage.wav"]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # base is joined there
    return load_settings(environ={}, env_file=None, data_dir=tmp_path / "data", captions_model="base")


def test_a_talk_in_another_language_gets_its_captions_and_an_english_track(app: Starlette, client: TestClient) -> None:
    """The machine track is in Spanish (detected: the session says Akan), the translation track in English;
    each transcript is read by its track."""
    sign_in_organizer(app, client)
    session_id = make_session(client, make_forum(client)["id"], status="live", language="ak")["id"]
    with room_socket(client, session_id) as ws:
        next_of(ws, "welcome")
        response = client.post(
            f"/api/sessions/{session_id}/captions/play?speed=4&speaker=Ponente",
            content=(DATA / "es_passage.wav").read_bytes(),
            headers={**csrf(client), "Content-Type": "audio/wav"},
        )
        assert response.status_code == 202, response.text
        first = next_of(ws, "caption.final", limit=200)["data"]
        assert first["track"] in {"machine", "translation"} and first["speaker"] == "Ponente"

        async def finished() -> None:
            async with asyncio.timeout(240):
                await asyncio.gather(*list(app.state.captions.tasks))

        client.portal.call(finished)
    from server.rooms.store import transcript

    spanish = app.state.db.run_read(transcript, session_id, "machine")
    english = app.state.db.run_read(transcript, session_id, "translation")
    assert {c["language"] for c in spanish} == {"es"} and {c["language"] for c in english} == {"en"}
    assert word_error_rate(CLIP["reference"], " ".join(c["text"] for c in spanish)) <= 0.3
    translated = set(words_of(" ".join(c["text"] for c in english)))
    assert {"session", "year", "connected"} <= translated, translated
    # English, not the Spanish again: Whisper base may leave one noun untranslated ("escuelas" in a CI run under
    # the whole suite's load, "squelas" alone), never the sentence.
    spanish_only = set(words_of(CLIP["reference"])) - set(words_of(CLIP["english"]))
    assert len(spanish_only & translated) <= 1, translated
    assert len(translated & set(words_of(CLIP["english"]))) >= len(translated) // 2, translated
    assert app.state.captions.streams == {}

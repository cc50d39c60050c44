"""Caption languages and tracks on the server, with a scripted engine at the engine seam: a session in
another language is captioned in it and gets an English translation track; English sessions, English-only
models and the setting turned off get one track; an unknown language is detected. The real multilingual
model is tested on speech in tests/captioning/test_base_model.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from captioning.engine import SAMPLE_RATE_HZ
from captioning.processor import CaptionOptions
from server.captions import CaptionService, Speaker
from server.rooms.store import transcript
from tests.conftest import make_forum, make_session, sign_in_organizer
from tests.fakes import ScriptedEngine
from tests.server.test_rooms_ws import next_of, room_socket

SPANISH = [
    [(0.0, 0.4, " Hola"), (0.4, 0.8, " a")],
    [(0.0, 0.4, " Hola"), (0.4, 0.8, " a"), (0.8, 1.4, " todos.")],
    [(0.0, 0.4, " Hola"), (0.4, 0.8, " a"), (0.8, 1.4, " todos.")],
]
ENGLISH = [
    [(0.0, 0.4, " Hello"), (0.4, 0.8, " to")],
    [(0.0, 0.4, " Hello"), (0.4, 0.8, " to"), (0.8, 1.4, " everyone.")],
    [(0.0, 0.4, " Hello"), (0.4, 0.8, " to"), (0.8, 1.4, " everyone.")],
]
# The scripts above have a hypothesis for each second of the three played.
ONE_SECOND_STEPS = CaptionOptions(step_s=1.0)


def _speech(seconds: float = 3.0) -> np.ndarray:
    """Loud enough to pass the speech detector; the scripted engine does not listen to it anyway."""
    return np.random.default_rng(3).uniform(-0.3, 0.3, int(seconds * SAMPLE_RATE_HZ)).astype(np.float32)


def _play(
    app: Starlette,
    client: TestClient,
    engine: ScriptedEngine,
    language: str,
    model: str = "base",
    translate: bool = True,
) -> tuple[int, list[Any]]:
    """Play three seconds into a live session of ``language`` (at 5x: each 1 s step waits for its audio, so there
    are three whatever the engine's pace); returns the session and the room's events."""
    sign_in_organizer(app, client)
    session_id = make_session(client, make_forum(client)["id"], status="live", language=language)["id"]
    service = CaptionService(app.state.rooms, model, ONE_SECOND_STEPS, workers=1, translate=translate, vad=False)
    service._engine = engine  # the seam: no model is loaded

    async def run() -> list[Any]:
        await service.play(session_id, _speech(), Speaker(None, "Talk", language=language), speed=5)
        live = await app.state.rooms.room(session_id)
        return live.room.log.since(live.room.log.epoch, 0) or []

    events = client.portal.call(run)
    assert service.streams == {}
    return session_id, [e for e in events if e.kind.startswith("caption.")]


def _tracks(events: list[Any]) -> dict[str, set[tuple[str, str]]]:
    """Per track, the (event kind, language) pairs seen."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for event in events:
        seen.setdefault(event.data["track"], set()).add((event.kind, event.data["language"]))
    return seen


def test_a_spanish_session_gets_its_captions_and_an_english_track(app: Starlette, client: TestClient) -> None:
    """Both processors run on the same audio: Spanish captions on the machine track, English ones on the
    translation track, each stored and sent with its track and language."""
    engine = ScriptedEngine({"transcribe": list(SPANISH), "translate": list(ENGLISH)})
    session_id, events = _play(app, client, engine, "es")
    assert _tracks(events) == {
        "machine": {("caption.partial", "es"), ("caption.final", "es")},
        "translation": {("caption.partial", "en"), ("caption.final", "en")},
    }
    assert {(o.task, o.language) for o in engine.options} == {("transcribe", "es"), ("translate", "es")}
    machine = app.state.db.run_read(transcript, session_id, "machine")
    english = app.state.db.run_read(transcript, session_id, "translation")
    assert " ".join(c["text"] for c in machine) == "Hola a todos."
    assert " ".join(c["text"] for c in english) == "Hello to everyone."
    assert {c["language"] for c in english} == {"en"} and {c["speaker"] for c in english} == {"Talk"}


def test_viewers_receive_both_tracks(app: Starlette, client: TestClient) -> None:
    """A viewer's socket gets the finals of both tracks, told apart by ``track``."""
    sign_in_organizer(app, client)
    session_id = make_session(client, make_forum(client)["id"], status="live", language="es")["id"]
    service = CaptionService(app.state.rooms, "base", ONE_SECOND_STEPS, workers=1, vad=False)
    service._engine = ScriptedEngine({"transcribe": list(SPANISH), "translate": list(ENGLISH)})
    with room_socket(client, session_id) as ws:
        next_of(ws, "welcome")

        async def run() -> None:
            await service.play(session_id, _speech(), Speaker(None, "Talk", language="es"), speed=50)

        client.portal.call(run)
        finals: dict[tuple[str, str], list[str]] = {}
        while sum(text.endswith(".") for texts in finals.values() for text in texts) < 2:
            data = next_of(ws, "caption.final", limit=50)["data"]
            finals.setdefault((data["track"], data["language"]), []).append(data["text"])
    assert {key: " ".join(texts) for key, texts in finals.items()} == {
        ("machine", "es"): "Hola a todos.",
        ("translation", "en"): "Hello to everyone.",
    }


@pytest.mark.parametrize(
    ("language", "model", "translate"),
    [("en", "base", True), ("es", "base", False), ("es", "tiny.en", True)],
    ids=["english-session", "translation-off", "english-only-model"],
)
def test_one_track_when_there_is_nothing_to_translate(
    app: Starlette, client: TestClient, language: str, model: str, translate: bool
) -> None:
    """English sessions, the setting turned off, and English-only models (which caption in English) give
    the machine track alone, and the engine is never asked to translate."""
    engine = ScriptedEngine(list(ENGLISH))
    _, events = _play(app, client, engine, language, model, translate)
    expected = "en" if model == "tiny.en" else language
    assert _tracks(events) == {"machine": {("caption.partial", expected), ("caption.final", expected)}}
    assert {o.task for o in engine.options} == {"transcribe"}
    assert {o.language for o in engine.options} == {expected}


def test_an_unknown_language_is_detected_and_the_translation_follows_it(app: Starlette, client: TestClient) -> None:
    """Akan is no language of Whisper's: the model is given none and detects it (here: Spanish, twice in a row,
    then fixed), the captions carry the detected language, and the translation ends up fixed to it too."""
    engine = ScriptedEngine(
        {"transcribe": list(SPANISH), "translate": list(ENGLISH)}, language="es", language_probability=0.6
    )
    _, events = _play(app, client, engine, "ak")
    machine = [e.data["language"] for e in events if e.data["track"] == "machine"]
    assert machine and set(machine) == {"es"}
    translated = [(o.language, n) for n, o in enumerate(engine.options) if o.task == "translate"]
    assert translated[0][0] is None and translated[-1][0] == "es"  # detected at first, then fixed
    transcribed = [o.language for o in engine.options if o.task == "transcribe"]
    assert transcribed[:2] == [None, None] and set(transcribed[2:]) == {"es"}


def test_a_detected_english_source_drops_its_translation(app: Starlette, client: TestClient) -> None:
    """When the detected language is English, the translation track stops (and its partial is cleared)."""
    engine = ScriptedEngine({"transcribe": list(ENGLISH), "translate": list(ENGLISH)}, language="en")
    _, events = _play(app, client, engine, "ak")
    assert [o.task for o in engine.options].count("translate") == 1  # the first step, before the detection
    translation = [e for e in events if e.data["track"] == "translation"]
    assert all(e.kind == "caption.partial" for e in translation)
    assert translation and translation[-1].data["text"] == ""  # cleared
    assert {e.data["language"] for e in events if e.data["track"] == "machine"} == {"en"}


def test_translation_status_is_its_own_stream(app: Starlette, client: TestClient) -> None:
    """The scheduler's status lists the translation as a stream of its own, with its engine time."""
    sign_in_organizer(app, client)
    session_id = make_session(client, make_forum(client)["id"], status="live", language="fr")["id"]
    service = CaptionService(app.state.rooms, "base", ONE_SECOND_STEPS, workers=1, vad=False)
    service._engine = ScriptedEngine({"transcribe": list(SPANISH), "translate": list(ENGLISH)})
    seen: list[dict[str, Any]] = []

    async def run() -> None:
        task = service.play(session_id, _speech(), Speaker(None, "Talk", language="fr"), speed=5)
        while not task.done():
            await asyncio.sleep(0.05)
            seen.extend(service.status())
        await task

    client.portal.call(run)
    assert {s["track"] for s in seen if s["steps"]} == {"machine", "translation"}


def test_the_translation_setting_reaches_the_caption_service(tmp_path: Path) -> None:
    """FORUMLIVE_CAPTIONS_TRANSLATE=false turns the translation track off (it is on by default)."""
    from server.app import create_app
    from server.settings import load_settings

    on = load_settings(environ={}, env_file=None, data_dir=tmp_path)
    off = load_settings(environ={"FORUMLIVE_CAPTIONS_TRANSLATE": "false"}, env_file=None, data_dir=tmp_path)
    assert on.captions_translate and not off.captions_translate
    assert create_app(off).state.captions.translate is False

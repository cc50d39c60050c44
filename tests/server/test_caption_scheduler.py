"""The caption scheduler: streams take turns for the engine's workers, steps that meet at a busy engine run
as one batch, and when the engine is too slow for them all, steps lengthen instead of the lag growing. A slow
engine stands in at the engine seam; the real model's speed is measured in bench/captions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.testclient import TestClient

from captioning.engine import Segment, TranscribeOptions, Word
from realtime.media.tap import SAMPLE_RATE, PcmChunk
from server.captions import CaptionService, Speaker
from tests.conftest import make_forum, make_session, sign_in_organizer

CALL_S = 0.15  # engine time per step
CHUNK_S = 0.1  # audio per chunk
SPEEDUP = 4  # audio arrives four times faster than real time (keeps the test short)


class SlowEngine:
    """Takes CALL_S per call and says which stream it heard (each stream's audio has its own level)."""

    name = "slow"

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []  # (stream, seconds of audio in the window)
        self.beams: list[int] = []

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        time.sleep(CALL_S)
        stream = round(float(np.abs(audio).max()) * 10) - 1
        self.calls.append((stream, len(audio) / SAMPLE_RATE))
        self.beams.append(options.beam_size)
        word = Word(0.0, 0.5, f" s{stream}")
        return [Segment(0.0, 0.5, word.text, (word,), 0.0, -0.1)]


class SlowBatchEngine(SlowEngine):
    """Also transcribes several windows in one call, for CALL_S plus a little per window (as a batched
    Whisper pass does); notes the streams of each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    def transcribe_batch(self, calls: list[tuple[np.ndarray, TranscribeOptions]]) -> list[list[Segment]]:
        time.sleep(CALL_S + 0.02 * len(calls))
        results = []
        for audio, options in calls:
            stream = round(float(np.abs(audio).max()) * 10) - 1
            self.calls.append((stream, len(audio) / SAMPLE_RATE))
            self.beams.append(options.beam_size)
            word = Word(0.0, 0.5, f" s{stream}")
            results.append([Segment(0.0, 0.5, word.text, (word,), 0.0, -0.1)])
        self.batches.append([stream for stream, _ in self.calls[-len(calls) :]])
        return results


async def _speech(stream: int, seconds: float) -> AsyncIterator[PcmChunk]:
    samples = np.full(int(CHUNK_S * SAMPLE_RATE), int(32767 * 0.1 * (stream + 1)), dtype=np.int16)
    for index in range(int(seconds / CHUNK_S)):
        await asyncio.sleep(CHUNK_S / SPEEDUP)
        yield PcmChunk(samples, index * CHUNK_S, time.time())


def _three_streams(app: Starlette, client: TestClient, engine: SlowEngine) -> dict[str, list[float]]:
    """Three speakers at 4x real time for 12 s through the service, on ``engine``: each stream's lags."""
    sign_in_organizer(app, client)
    session_id = make_session(client, make_forum(client)["id"], status="live")["id"]
    service = CaptionService(app.state.rooms, "tiny.en", workers=1, vad=False)
    service._engine = engine  # the seam: no model is loaded
    lags: dict[str, list[float]] = {"Speaker 0": [], "Speaker 1": [], "Speaker 2": []}

    async def run() -> None:
        async def watch() -> None:
            while True:
                await asyncio.sleep(0.1)
                for status in service.streams.values():
                    if status.steps:
                        lags[status.speaker].append(status.lag_s)

        watcher = asyncio.create_task(watch())
        await asyncio.gather(
            *(service._listen(session_id, Speaker(None, f"Speaker {k}"), _speech(k, 12.0)) for k in range(3))
        )
        watcher.cancel()

    client.portal.call(run)
    assert service.streams == {}
    return lags


def _fair_and_bounded(engine: SlowEngine, lags: dict[str, list[float]]) -> None:
    order = [stream for stream, _ in engine.calls]
    assert sorted(set(order)) == [0, 1, 2]
    # Streams take turns: between two steps of one stream, each other stream has at most two (the steps
    # queued as a batch runs are served in the order they came).
    middle = order[3:-6]
    for stream in (0, 1, 2):
        at = [i for i, s in enumerate(middle) if s == stream]
        for a, b in zip(at, at[1:], strict=False):
            between = middle[a + 1 : b]
            assert all(between.count(other) <= 2 for other in {0, 1, 2} - {stream}), order
    # While others waited, steps decoded greedily (the beam is for a machine that keeps up).
    assert engine.beams.count(1) >= len(engine.beams) // 2, engine.beams
    # And the lag stayed bounded: at the end no worse than in the first half, give or take a turn.
    for stream, seen in lags.items():
        assert seen, stream
        half = seen[: len(seen) // 2]
        assert max(seen[-3:]) <= max(half) + 3 * CALL_S, (stream, seen)


def test_streams_take_turns_and_steps_lengthen_under_load(app: Starlette, client: TestClient) -> None:
    """An engine that takes one window at a time: the batcher hands it the waiting steps one by one."""
    engine = SlowEngine()
    lags = _three_streams(app, client, engine)
    _fair_and_bounded(engine, lags)
    # Three streams at 4x real time need 3 × 4 = 12 s of audio per second; one worker does about 6 steps
    # a second. Steps lengthened: fewer calls than 1 s steps would take (36 in all).
    assert len(engine.calls) < 0.75 * 36


def test_steps_that_meet_at_a_busy_engine_run_as_one_batch(app: Starlette, client: TestClient) -> None:
    engine = SlowBatchEngine()
    lags = _three_streams(app, client, engine)
    _fair_and_bounded(engine, lags)
    # Steps queued while a batch ran went in together, one window per stream in each batch.
    assert all(len(batch) == len(set(batch)) for batch in engine.batches), engine.batches
    assert len(engine.calls) / len(engine.batches) >= 2, engine.batches
    # So each stream got more (shorter) steps than one window at a time allows (fewer than 27, above).
    assert len(engine.calls) >= 27, len(engine.calls)


def test_status_reports_each_stream(app: Starlette, client: TestClient) -> None:
    sign_in_organizer(app, client)
    session_id = make_session(client, make_forum(client)["id"], status="live")["id"]
    service = CaptionService(app.state.rooms, "tiny.en", workers=1, vad=False)
    engine = SlowEngine()
    service._engine = engine
    seen: list[list[dict[str, Any]]] = []

    async def run() -> None:
        task = asyncio.create_task(service._listen(session_id, Speaker(None, "Hana"), _speech(0, 3.0)))
        while not task.done():
            await asyncio.sleep(0.05)
            seen.append(service.status())
        await task

    client.portal.call(run)
    reported = [s for snapshot in seen for s in snapshot if s["steps"]]
    assert reported and reported[-1]["speaker"] == "Hana" and reported[-1]["session_id"] == session_id
    assert reported[-1]["rtf"] is not None and reported[-1]["lag_s"] >= 0
    # Alone on the engine, every step used the beam.
    assert reported[-1]["greedy_steps"] == 0 and set(engine.beams) == {3}


def test_caption_status_is_for_organizers(app: Starlette, client: TestClient) -> None:
    from tests.conftest import new_client, register

    assert client.get("/api/captions/status").status_code == 401
    with new_client(app) as other:
        register(other, "ana@example.org")
        assert other.get("/api/captions/status").status_code == 403
    sign_in_organizer(app, client)
    body = client.get("/api/captions/status").json()
    assert body["engine"] == "faster-whisper" and body["workers"] >= 1 and body["streams"] == []

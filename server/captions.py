"""Live captions on the server: one streaming processor per audio source, its updates published into
the room. The engine is loaded once, on first use, and runs in worker threads, never on the event loop.

Two sources feed the same processor: the WebRTC media tap of every speaker who publishes audio
(``listen``, registered as a tap listener of the media service), and an audio file played into a
session in real time (a pre-recorded talk, ``play``).

When the engine cannot keep up, a live stream's steps lengthen: each step takes all the audio that
arrived meanwhile, so captions come later rather than the backlog growing without bound (the tap
keeps at most 10 s per consumer).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import wave
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np

from captioning.audio import pcm16_to_float, resample, to_mono
from captioning.engine import SAMPLE_RATE_HZ, Engine, TranscribeOptions
from captioning.processor import CaptionOptions, StreamingProcessor, Update
from realtime.media.tap import AudioTap, PcmChunk
from server.errors import InvalidInput
from server.rooms.service import RoomService
from server.storage.models import Session

log = logging.getLogger("forumlive.captions")

MAX_AUDIO_BYTES = 100 * 1024 * 1024


def decode_wav(content: bytes) -> np.ndarray:
    """16-bit PCM WAV (any rate, mono or stereo) to float32 mono 16 kHz.

    Raises:
        InvalidInput: not a WAV file, or not 16-bit PCM.
    """
    try:
        with wave.open(io.BytesIO(content)) as handle:
            if handle.getsampwidth() != 2 or handle.getcomptype() != "NONE":
                raise InvalidInput.field("audio", "must be 16-bit PCM WAV")
            frames = handle.readframes(handle.getnframes())
            channels, rate = handle.getnchannels(), handle.getframerate()
    except (wave.Error, EOFError) as exc:
        raise InvalidInput.field("audio", f"is not a WAV file ({exc})") from None
    return resample(to_mono(pcm16_to_float(frames), channels), rate)


@dataclass(frozen=True)
class Speaker:
    speaker_id: int | None
    name: str
    track: str = "machine"
    language: str = "en"

    def as_data(self) -> dict[str, object]:
        return {"speaker_id": self.speaker_id, "speaker": self.name, "track": self.track, "language": self.language}


class CaptionService:
    """Caption streams for live sessions, sharing one engine."""

    def __init__(
        self,
        rooms: RoomService,
        model: str,
        options: CaptionOptions | None = None,
        engine: str = "faster-whisper",
        models_dir: Path | None = None,
    ) -> None:
        self.rooms = rooms
        self.model = model
        self.options = options or CaptionOptions()
        self.engine_name = engine
        self.models_dir = models_dir or Path("data") / "models"  # where converted checkpoints are kept
        self._engine: Engine | None = None
        self._engine_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    async def engine(self) -> Engine:
        async with self._engine_lock:
            if self._engine is None:
                # Loading (and for openai-whisper, converting on first use) blocks: a worker thread does it.
                self._engine = await anyio.to_thread.run_sync(self._load_engine)
            return self._engine

    def _load_engine(self) -> Engine:
        if self.engine_name == "openai-whisper":
            from captioning.engines.openai import OpenAIWhisperEngine

            return OpenAIWhisperEngine(self._checkpoint())
        from captioning.engines.faster import FasterWhisperEngine
        from captioning.models import find_model

        return FasterWhisperEngine(find_model(self.model).path)

    def _checkpoint(self) -> Path:
        """The openai-whisper checkpoint of the model: given as a ``.pt`` file, or converted from the
        CTranslate2 model into ``models_dir/NAME.pt`` unless an up-to-date one is there."""
        from captioning.convert import convert
        from captioning.models import find_model

        given = Path(self.model)
        if given.suffix == ".pt" and given.is_file():
            return given
        info = find_model(self.model)
        checkpoint = self.models_dir / f"{info.name}.pt"
        result = convert(info.path, checkpoint)
        if not result.reused:
            log.info("converted %s for openai-whisper into %s in %.1f s", info.name, checkpoint, result.seconds)
        return checkpoint

    def listen(self, session_id: int, person_id: int, name: str, tap: AudioTap) -> None:
        """Caption a speaker who started publishing audio (a media tap listener)."""
        self._start(self._listen(session_id, Speaker(person_id, name), tap.stream()))

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _listen(self, session_id: int, speaker: Speaker, stream: AsyncIterator[PcmChunk]) -> None:
        arrived: list[np.ndarray] = []
        more = asyncio.Event()
        ended = False
        origin: float | None = None

        async def read() -> None:
            nonlocal ended, origin
            async for chunk in stream:
                if origin is None:  # the wall-clock time of the processor's time 0
                    origin = chunk.received_at - chunk.duration_s
                arrived.append(chunk.samples)
                more.set()
            ended = True
            more.set()

        reader = asyncio.create_task(read())
        try:
            language = await self.rooms.database.read(_session_language, session_id)
            speaker = Speaker(speaker.speaker_id, speaker.name, language=self._language(language))
            engine = await self.engine()
            processor = StreamingProcessor(engine, self.options, TranscribeOptions(language=speaker.language))
            step = int(self.options.step_s * SAMPLE_RATE_HZ)
            while not ended:
                await more.wait()
                more.clear()
                if sum(len(a) for a in arrived) < step and not ended:
                    continue
                audio, arrived[:] = np.concatenate(arrived) if arrived else np.zeros(0, np.int16), []
                if len(audio):
                    processor.insert_audio(pcm16_to_float(audio))
                    update = await anyio.to_thread.run_sync(processor.process)
                    await self._publish(session_id, speaker, update, origin or time.time())
            await self._publish(
                session_id, speaker, await anyio.to_thread.run_sync(processor.finish), origin or time.time()
            )
        except Exception:
            log.exception("live captions stopped for person %s in session %s", speaker.speaker_id, session_id)
        finally:
            reader.cancel()

    def _language(self, session_language: str | None) -> str:
        """The session's language where the model knows it; English-only models caption in English."""
        if Path(self.model).name.removesuffix(".pt").endswith(".en") or not session_language:
            return "en"
        return session_language

    def play(self, session_id: int, audio: np.ndarray, speaker: Speaker, speed: float = 1.0) -> asyncio.Task[None]:
        """Caption ``audio`` into the session as if it were spoken now (``speed`` > 1 plays faster)."""
        return self._start(self._play(session_id, audio, speaker, speed))

    async def _play(self, session_id: int, audio: np.ndarray, speaker: Speaker, speed: float) -> None:
        engine = await self.engine()
        processor = StreamingProcessor(engine, self.options, TranscribeOptions(language=speaker.language))
        step = int(self.options.step_s * SAMPLE_RATE_HZ)
        began = time.monotonic()
        origin = time.time()
        try:
            for index, start in enumerate(range(0, len(audio), step)):
                # Audio arrives in real time (scaled by speed): wait until this step would have been heard.
                await asyncio.sleep(max(0.0, (index + 1) * self.options.step_s / speed - (time.monotonic() - began)))
                processor.insert_audio(audio[start : start + step])
                update = await anyio.to_thread.run_sync(processor.process)
                await self._publish(session_id, speaker, update, origin, speed)
            await self._publish(session_id, speaker, await anyio.to_thread.run_sync(processor.finish), origin, speed)
        except Exception:
            log.exception("captioning stopped for session %s", session_id)
            raise

    async def _publish(
        self, session_id: int, speaker: Speaker, update: Update, origin: float, speed: float = 1.0
    ) -> None:
        """Send an update into the room; ``origin`` is the wall-clock time of the stream's time 0."""
        finals = [(c.start_s, c.end_s, c.text, origin + c.start_s / speed) for c in update.finals]
        partial = (update.partial.start_s, update.partial.end_s, update.partial.text) if update.partial else None
        await self.rooms.publish_captions(session_id, speaker.as_data(), finals, partial)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _session_language(db: Any, session_id: int) -> str | None:  # noqa: ANN401 - a database session
    session = db.get(Session, session_id)
    return session.language if session is not None else None

"""Live captions on the server: one streaming processor per audio source, its updates published into
the room. The engine is loaded once, on first use, and runs in worker threads, never on the event loop.

Two sources feed the same processor: the WebRTC media tap of every speaker who publishes audio
(``listen``, registered as a tap listener of the media service), and an audio file played into a
session in real time (a pre-recorded talk, ``play``).

When the engine cannot keep up, a live stream's steps lengthen: each step takes all the audio that
arrived meanwhile, so captions come later rather than the backlog growing without bound (the tap
keeps at most 10 s per consumer).

Scheduling: each stream has at most one step in flight. Steps run in worker threads; their engine calls go
through a ``BatchingEngine``: calls made while the engine is busy wait and then run together in one batch
(faster-whisper: one encoder, decoder and aligner pass), ``workers`` batches at a time, at most ``batch``
windows each. A window that shares a batch is decoded greedily instead of with the beam: under load,
quality gives way first, then steps lengthen.

Languages: a source is captioned in its session's language (English with English-only models; detected by
the model when Whisper does not know the session's language). With a multilingual model, a session in
another language also gets an English track (``translation``): a second processor on the same audio with
Whisper's translate task, scheduled like any other stream, so it doubles the source's engine time.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import wave
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np

from captioning.audio import pcm16_to_float, resample, to_mono
from captioning.batching import BatchingEngine
from captioning.engine import SAMPLE_RATE_HZ, Engine, TranscribeOptions, whisper_language
from captioning.processor import CaptionOptions, StreamingProcessor, Update
from captioning.vad import SpeechTrack
from realtime.media.tap import AudioTap, PcmChunk
from realtime.room import CaptionTrack
from server.errors import InvalidInput
from server.rooms.service import RoomService
from server.storage.models import Session

log = logging.getLogger("forumlive.captions")

MAX_AUDIO_BYTES = 100 * 1024 * 1024
CALLING_S = 3.0  # a stream whose last engine call is older than this (a silent speaker) is not waited for


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


@dataclass
class StreamStatus:
    """One live caption stream as the scheduler sees it."""

    session_id: int
    speaker_id: int | None
    speaker: str
    track: str
    lag_s: float = 0.0  # from the newest audio of a step arriving to its captions being sent
    audio_s: float = 0.0
    busy_s: float = 0.0  # engine time spent
    waited_s: float = 0.0  # time spent waiting for a worker slot
    steps: int = 0
    greedy_steps: int = 0  # steps decoded greedily, sharing a batch with other streams
    engine_at: float = float("-inf")  # when a step last called the engine (monotonic; silent steps do not)

    def as_dict(self) -> dict[str, object]:
        return {
            "session_id": self.session_id,
            "speaker_id": self.speaker_id,
            "speaker": self.speaker,
            "track": self.track,
            "lag_s": round(self.lag_s, 2),
            "audio_s": round(self.audio_s, 1),
            "rtf": round(self.busy_s / self.audio_s, 3) if self.audio_s else None,
            "waited_s": round(self.waited_s, 1),
            "steps": self.steps,
            "greedy_steps": self.greedy_steps,
        }


@dataclass(frozen=True)
class Speaker:
    speaker_id: int | None
    name: str
    track: str = "machine"
    language: str = "en"

    def as_data(self) -> dict[str, object]:
        return {"speaker_id": self.speaker_id, "speaker": self.name, "track": self.track, "language": self.language}


@dataclass
class Track:
    """One caption track of an audio source: its processor, what its events say, and its scheduler status."""

    processor: StreamingProcessor
    speaker: Speaker
    status: StreamStatus
    key: tuple[int, int | None, str, str]


class CaptionService:
    """Caption streams for live sessions, sharing one engine."""

    def __init__(
        self,
        rooms: RoomService,
        model: str,
        options: CaptionOptions | None = None,
        engine: str = "faster-whisper",
        models_dir: Path | None = None,
        workers: int = 1,
        translate: bool = True,
        vad: bool = True,
        batch: int = 8,
    ) -> None:
        self.rooms = rooms
        # Silero VAD per stream: steps without speech skip the engine, words placed where no one spoke are
        # dropped. Off: the processor's energy threshold decides (tests whose stand-in engine hears nothing).
        self.vad = vad
        self.model = model
        self.options = options or CaptionOptions()
        self.engine_name = engine
        self.translate = translate  # an English track for sessions in other languages (multilingual models)
        self.models_dir = models_dir or Path("data") / "models"  # where converted checkpoints are kept
        self._engine: BatchingEngine | Engine | None = None
        self._engine_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        # Steps in flight, shared by every stream: a stream has at most one step in flight, and the semaphore
        # serves waiters in order, so streams take turns (round robin). The engine runs ``workers`` batches of
        # at most ``batch`` steps' windows at a time.
        self.workers = workers
        self.batch = batch
        self._slots = asyncio.Semaphore(workers * batch)
        self.streams: dict[tuple[int, int | None, str, str], StreamStatus] = {}

    async def engine(self) -> BatchingEngine:
        async with self._engine_lock:
            if self._engine is None:
                # Loading (and for openai-whisper, converting on first use) blocks: a worker thread does it.
                self._engine = await anyio.to_thread.run_sync(self._load_engine)
            if not isinstance(self._engine, BatchingEngine):  # loaded, or given at the seam by a test
                self._engine = BatchingEngine(
                    self._engine, max_batch=self.batch, runners=self.workers, expected=self._calling
                )
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

    async def _step(self, processor: StreamingProcessor, work: str, status: StreamStatus) -> Update:
        """Run one processor step (``process`` or ``finish``) in a worker thread, taking turns with the other
        streams. A step whose window shares a batch with others is decoded greedily instead of with the beam
        (the batcher decides): under load, quality gives way first, then steps lengthen."""
        waited = time.monotonic()
        await self._slots.acquire()
        engine = self._engine

        def run() -> tuple[Update, bool, bool]:
            if not isinstance(engine, BatchingEngine):
                return getattr(processor, work)(), False, True
            engine.forget_here()
            update = getattr(processor, work)()
            return update, engine.greedy_here(), engine.called_here()

        try:
            began = time.monotonic()
            status.waited_s += began - waited
            update, greedy, called = await anyio.to_thread.run_sync(run)
            status.greedy_steps += greedy
            if called:
                status.engine_at = time.monotonic()
            status.busy_s += time.monotonic() - began
        finally:
            self._slots.release()
        status.steps += 1
        return update

    def _calling(self) -> int:
        """How many streams called the engine in the last ``CALLING_S`` (the batcher waits for no other)."""
        now = time.monotonic()
        return sum(1 for stream in list(self.streams.values()) if now - stream.engine_at < CALLING_S)

    def status(self) -> list[dict[str, object]]:
        """Every live caption stream: lag, real-time factor and turns taken (for organizers and metrics)."""
        return [stream.as_dict() for stream in self.streams.values()]

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
        newest_at = 0.0  # when the newest audio waiting to be captioned arrived

        async def read() -> None:
            nonlocal ended, origin, newest_at
            async for chunk in stream:
                if origin is None:  # the wall-clock time of the processor's time 0
                    origin = chunk.received_at - chunk.duration_s
                arrived.append(chunk.samples)
                newest_at = chunk.received_at
                more.set()
            ended = True
            more.set()

        reader = asyncio.create_task(read())
        tracks: list[Track] = []
        try:
            session_language = await self.rooms.database.read(_session_language, session_id)
            engine = await self.engine()
            tracks = self._tracks(engine, session_id, speaker, session_language)
            step = int(self.options.step_s * SAMPLE_RATE_HZ)
            while not ended:
                await more.wait()
                more.clear()
                if sum(len(a) for a in arrived) < step and not ended:
                    continue
                # Everything that arrived since the last step goes in at once: when the engine is busy,
                # steps lengthen and the backlog does not grow.
                audio, arrived[:] = np.concatenate(arrived) if arrived else np.zeros(0, np.int16), []
                heard_at = newest_at
                if len(audio):
                    _insert(tracks, pcm16_to_float(audio))
                    await self._advance(session_id, tracks, "process", origin or time.time(), heard_at=heard_at)
            await self._advance(session_id, tracks, "finish", origin or time.time())
        except Exception:
            log.exception("live captions stopped for person %s in session %s", speaker.speaker_id, session_id)
        finally:
            reader.cancel()
            self._forget(tracks)

    @property
    def multilingual(self) -> bool:
        """Whether the model knows languages other than English (Whisper's English-only models end in .en)."""
        return not Path(self.model).name.removesuffix(".pt").endswith(".en")

    def _language(self, session_language: str | None) -> str | None:
        """The language to caption in: English with English-only models; else the session's language where
        Whisper knows it, or None: the model detects it."""
        if not self.multilingual:
            return "en"
        return whisper_language(session_language)

    def _translates(self, language: str | None) -> bool:
        """Whether a source gets an English translation track besides its own (Whisper's translate task)."""
        return self.translate and self.multilingual and language != "en"

    def _tracks(
        self, engine: Engine, session_id: int, source: Speaker, session_language: str | None, tag: str = ""
    ) -> list[Track]:
        """The caption tracks of one audio source, registered with the scheduler's status: the captions in
        the spoken language, then the English translation where there is one. ``tag`` tells apart sources
        of the same name (e.g. two talks played at once)."""
        language = self._language(session_language)
        label = language or session_language or "en"  # until the model has detected the language
        kinds = [(CaptionTrack.MACHINE.value, label, "transcribe")]
        if self._translates(language):
            kinds.append((CaptionTrack.TRANSLATION.value, "en", "translate"))
        tracks = []
        for track, track_language, task in kinds:
            speaker = replace(source, track=track, language=track_language)
            options = TranscribeOptions(language=language, task=task)
            status = StreamStatus(session_id, source.speaker_id, source.name, track)
            key = (session_id, source.speaker_id, source.name, track + tag)
            self.streams[key] = status
            processor = StreamingProcessor(engine, self.options, options, vad=SpeechTrack() if self.vad else None)
            tracks.append(Track(processor, speaker, status, key))
        return tracks

    def _forget(self, tracks: list[Track]) -> None:
        for track in tracks:
            if self.streams.get(track.key) is track.status:
                del self.streams[track.key]

    async def _advance(
        self,
        session_id: int,
        tracks: list[Track],
        work: str,
        origin: float,
        speed: float = 1.0,
        heard_at: float | None = None,
    ) -> None:
        """One step (``process`` or ``finish``) of every track of a source, each published as soon as it is
        done. Each track waits for a worker slot of its own: translating doubles a source's engine time."""

        async def advance(track: Track) -> None:
            update = await self._step(track.processor, work, track.status)
            if heard_at is not None:
                track.status.lag_s = max(0.0, time.time() - heard_at)
            lag_s = track.status.lag_s if heard_at is not None else None
            await self._publish(session_id, track.speaker, update, origin, speed, lag_s=lag_s)

        await asyncio.gather(*(advance(track) for track in tracks))
        await self._follow_language(session_id, tracks)

    async def _follow_language(self, session_id: int, tracks: list[Track]) -> None:
        """Once the source's language is known (detected), the translation uses it rather than detecting it
        again; and a source that turns out to speak English loses its translation track."""
        source = tracks[0].processor
        if not source.language_fixed or len(tracks) == 1:
            return
        if source.language == "en":
            for track in tracks[1:]:
                await self._publish(session_id, track.speaker, Update(), time.time())  # clears its partial
                self._forget([track])
            del tracks[1:]
            return
        for track in tracks[1:]:
            if not track.processor.language_fixed and source.language:
                track.processor.set_language(source.language)

    def play(self, session_id: int, audio: np.ndarray, speaker: Speaker, speed: float = 1.0) -> asyncio.Task[None]:
        """Caption ``audio`` into the session as if it were spoken now (``speed`` > 1 plays faster).
        ``speaker.language`` is the session's language."""
        return self._start(self._play(session_id, audio, speaker, speed))

    async def _play(self, session_id: int, audio: np.ndarray, speaker: Speaker, speed: float) -> None:
        engine = await self.engine()
        tracks = self._tracks(engine, session_id, speaker, speaker.language, tag=f"-play-{id(audio)}")
        step = int(self.options.step_s * SAMPLE_RATE_HZ)
        began = time.monotonic()
        origin = time.time()
        try:
            position = 0
            while position < len(audio):
                # Audio arrives in real time (scaled by speed): wait for the next step to have been heard, then
                # take everything heard by now, so that steps lengthen when the engine falls behind.
                next_end = min(len(audio), position + step)
                await asyncio.sleep(max(0.0, next_end / SAMPLE_RATE_HZ / speed - (time.monotonic() - began)))
                heard = int((time.monotonic() - began) * speed * SAMPLE_RATE_HZ)
                end = min(len(audio), max(next_end, heard))
                _insert(tracks, audio[position:end])
                position = end
                # The lag runs from when the newest audio of the step was spoken, not from when it was read.
                heard_at = origin + position / SAMPLE_RATE_HZ / speed
                await self._advance(session_id, tracks, "process", origin, speed, heard_at=heard_at)
            await self._advance(session_id, tracks, "finish", origin, speed)
        except Exception:
            log.exception("captioning stopped for session %s", session_id)
            raise
        finally:
            self._forget(tracks)

    async def _publish(
        self,
        session_id: int,
        speaker: Speaker,
        update: Update,
        origin: float,
        speed: float = 1.0,
        lag_s: float | None = None,
    ) -> None:
        """Send an update into the room; ``origin`` is the wall-clock time of the stream's time 0. Captions in
        the spoken language carry the language the model heard (detected, when the session's is unknown)."""
        finals = [(c.start_s, c.end_s, c.text, origin + c.start_s / speed) for c in update.finals]
        partial = (update.partial.start_s, update.partial.end_s, update.partial.text) if update.partial else None
        data = speaker.as_data()
        if speaker.track == CaptionTrack.MACHINE and update.language:
            data["language"] = update.language
        await self.rooms.publish_captions(session_id, data, finals, partial, lag_s)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _insert(tracks: list[Track], samples: np.ndarray) -> None:
    """The same audio goes to every track of a source."""
    for track in tracks:
        track.processor.insert_audio(samples)
        track.status.audio_s += len(samples) / SAMPLE_RATE_HZ


def _session_language(db: Any, session_id: int) -> str | None:  # noqa: ANN401 - a database session
    session = db.get(Session, session_id)
    return session.language if session is not None else None

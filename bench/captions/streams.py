"""Concurrent speaker streams in this process: ``CaptionService._listen`` (the live path of every speaker who
publishes audio) fed 20 ms ``PcmChunk``s in real time, N streams at once, one live session each, sharing
the engine slots as the server does (``workers``: the server's default for this machine).

Everything from the chunks on is the product's: the scheduler, the StreamingProcessor, the engine, and a
real ``RoomService`` on a temporary SQLite database that commits each final caption and broadcasts it
(to no one: the room socket's delivery is measured by the live part). A final caption counts as shown
when ``publish_captions`` returns. What is left out is the WebRTC leg: Opus decoding in the media tap.

Each step's ``lag_s`` (the newest audio of the step arriving → its captions sent) is sampled from
``CaptionService.status()`` every 0.1 s; a new ``steps`` count marks a new value.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.captions.speech import Program, Shown, TimedWord, latencies, pct, stream_text, wer
from captioning.engine import SAMPLE_RATE_HZ, TranscribeOptions
from captioning.wer import words_of
from realtime.media.tap import PcmChunk
from server.captions import CaptionService, Speaker
from server.rooms.service import RoomService
from server.settings import load_settings
from server.storage import migrate
from server.storage.db import Database
from server.storage.models import Forum, Person, Session
from server.storage.types import utcnow

CHUNK_S = 0.02  # what the media tap hands out (one Opus frame)
SAMPLE_EVERY_S = 0.1
# Lag growth: the median lag of the last third of the time all N streams were fed, minus that of the first
# third, worst stream; measured after the first WARMUP_S (the first steps have short windows).
WARMUP_S = 5.0
GROWTH_LIMIT_S = 1.0
SUSTAINED = (
    "N streams are sustained when, for every stream, the median step lag (newest audio of a step arriving -> "
    f"its captions published) over the last third of the time all N were fed (after the first {WARMUP_S:.0f} s) "
    f"exceeds that over the first third by at most {GROWTH_LIMIT_S:.1f} s, and every stream got captions."
)


class TimedRooms(RoomService):
    """The room service, noting when each caption update has been committed and broadcast."""

    def __init__(self, database: Database, settings: Any) -> None:  # noqa: ANN401 - Settings
        super().__init__(database, settings)
        self.published: dict[int, list[Shown]] = {}

    async def publish_captions(
        self,
        session_id: int,
        speaker: dict[str, object],
        finals: list[tuple[float, float, str, float]],
        partial: tuple[float, float, str] | None,
        lag_s: float | None = None,
    ) -> None:
        await super().publish_captions(session_id, speaker, finals, partial, lag_s)
        at = time.time()
        speaker_id = speaker["speaker_id"]
        if not isinstance(speaker_id, int):
            return
        shown = self.published.setdefault(speaker_id, [])
        shown += [Shown(at, text, start, end, True) for start, end, text, _ in finals]
        if partial is not None:
            shown.append(Shown(at, partial[2], partial[0], partial[1], False))


@dataclass
class Stream:
    index: int
    program: Program
    truth: list[TimedWord]
    origin: float = 0.0  # wall clock of the stream's time 0
    fed_until: float = 0.0  # wall clock when its last chunk went in
    lags: list[tuple[float, float]] = field(default_factory=list)  # (seconds since the start of the run, lag)
    rtf: float | None = None
    steps: int = 0


def seed(database: Database, count: int) -> list[tuple[int, int]]:
    """A forum with ``count`` live sessions and speakers: (session id, person id) of each speaker stream."""

    def work(db: Any) -> list[tuple[int, int]]:  # noqa: ANN401 - a database session
        forum = Forum(slug="bench-captions", name="Bench", start_date=date.today(), end_date=date.today())
        db.add(forum)
        db.flush()
        now = utcnow()
        sessions = [
            Session(
                forum_id=forum.id,
                code=f"C{i}",
                title=f"Captions {i}",
                type="high_level_policy_session",
                starts_at=now,
                ends_at=now + timedelta(hours=2),
                status="live",
                language="en",
            )
            for i in range(count)
        ]
        people = [
            Person(email=f"speaker{i}@bench.invalid", password_hash="-", name=f"Speaker {i}")  # noqa: S106 (no sign-in)
            for i in range(count)
        ]
        db.add_all([*sessions, *people])
        db.flush()
        return [(s.id, p.id) for s, p in zip(sessions, people, strict=True)]

    return database.run_write(work)


async def chunks(samples: np.ndarray, stream: Stream, start: float) -> AsyncIterator[PcmChunk]:
    """The stream's audio as 20 ms chunks, each handed over when its last sample has been 'spoken'."""
    step = int(CHUNK_S * SAMPLE_RATE_HZ)
    stream.origin = time.time() + (start - time.monotonic())
    for first in range(0, len(samples), step):
        due = start + (first + step) / SAMPLE_RATE_HZ
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        yield PcmChunk(samples[first : first + step], first / SAMPLE_RATE_HZ, time.time())
    stream.fed_until = time.time()


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) over all cores since boot."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_jiffies(pid: int | str = "self") -> int:
    """utime + stime of a process and its threads, in clock ticks."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def others_pct(before: tuple[int, int], after: tuple[int, int], ours: int) -> float | None:
    """The share (%) of all cores' time that went to other processes, given our own ticks in between."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(100 * max(0, busy - ours) / total, 1) if total else None


class Ladder:
    """One CaptionService (engine loaded once) on a temporary database, for a series of N."""

    def __init__(self, tmp: Path, engine: str, model: str, max_streams: int, workers: int | None = None) -> None:
        data_dir = tmp / f"streams-{engine}-{Path(model).name}-{workers or 'default'}"
        self.settings = load_settings(environ={}, env_file=None, data_dir=data_dir)
        self.database = Database(self.settings.effective_database_url)
        migrate.upgrade(self.database.engine)
        self.seats = seed(self.database, max_streams)
        self.rooms = TimedRooms(self.database, self.settings)
        self.workers = workers or self.settings.captions_workers
        self.service = CaptionService(
            self.rooms,
            model,
            engine=engine,
            models_dir=tmp / "models",
            workers=self.workers,
            batch=self.settings.captions_batch,
        )

    async def start(self, warmup: np.ndarray) -> None:
        await self.rooms.start()
        engine = await self.service.engine()
        await asyncio.to_thread(engine.transcribe, warmup, TranscribeOptions())

    async def stop(self) -> None:
        await self.service.stop()
        await self.rooms.stop()
        self.database.dispose()

    async def run(self, streams: list[Stream]) -> dict[str, Any]:
        """Feed the streams at once (starts spread over the first second) and measure."""
        service, n = self.service, len(streams)
        self.rooms.published.clear()
        begin = time.monotonic()
        busy0, ours0 = cpu_jiffies(), process_jiffies()
        batcher = await service.engine()
        calls0 = batcher.batches, batcher.batched_calls
        tasks = []
        by_id: dict[int, Stream] = {}
        for stream in streams:
            session_id, person_id = self.seats[stream.index]
            by_id[person_id] = stream
            speaker = Speaker(person_id, f"Speaker {stream.index}")
            feed = chunks(stream.program.int16(), stream, begin + stream.index / n)
            tasks.append(service._start(service._listen(session_id, speaker, feed)))
        sampler = asyncio.create_task(self._sample(by_id, begin))
        timeout = max(s.program.duration_s for s in streams) + 120
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        wall = time.monotonic() - begin
        busy1, ours1 = cpu_jiffies(), process_jiffies()
        figures = self._figures(by_id, wall, (busy0, busy1), ours1 - ours0)
        batches, calls = batcher.batches - calls0[0], batcher.batched_calls - calls0[1]
        figures["engine_calls"] = batches
        figures["windows_per_call"] = round(calls / batches, 2) if batches else None
        return figures

    async def _sample(self, by_id: dict[int, Stream], begin: float) -> None:
        while True:
            now = time.monotonic() - begin
            for status in self.service.status():
                speaker_id = status["speaker_id"]
                stream = by_id.get(speaker_id) if isinstance(speaker_id, int) else None
                if stream is None:
                    continue
                stream.rtf = None if status["rtf"] is None else float(str(status["rtf"]))
                steps = int(str(status["steps"]))
                if steps != stream.steps:
                    stream.steps = steps
                    stream.lags.append((round(now, 2), float(str(status["lag_s"]))))
            await asyncio.sleep(SAMPLE_EVERY_S)

    def _figures(
        self,
        by_id: dict[int, Stream],
        wall: float,
        busy: tuple[tuple[int, int], tuple[int, int]],
        ours: int,
    ) -> dict[str, Any]:
        streams = list(by_id.values())
        n = len(streams)
        # All N streams are fed from 1 s (the last one starts by then) to when the shortest one ends.
        common_end = min(s.program.duration_s for s in streams)
        lo, hi = WARMUP_S, common_end
        third = (hi - lo) / 3
        growth: list[float] = []
        lags_in: list[float] = []
        finals, firsts, wers = [], [], []
        starved = 0
        for person_id, stream in by_id.items():
            inside = [lag for t, lag in stream.lags if lo <= t <= hi]
            lags_in += inside
            first = [lag for t, lag in stream.lags if lo <= t < lo + third]
            last = [lag for t, lag in stream.lags if hi - third <= t <= hi]
            if first and last:
                growth.append(statistics.median(last) - statistics.median(first))
            else:
                growth.append(float("inf"))
            shown = sorted(self.rooms.published.get(person_id, []), key=lambda s: s.at)
            if not any(s.final for s in shown):
                starved += 1
            timing = latencies(stream.truth, shown, stream.origin)
            finals += timing.final_s
            firsts += timing.first_s
            reference = stream.program.reference
            wers.append((wer(reference, stream_text(shown)), len(words_of(reference))))
        worst_growth = max(growth)
        busy_delta = busy[1][0] - busy[0][0], busy[1][1] - busy[0][1]
        rtfs = [s.rtf for s in streams if s.rtf is not None]
        return {
            "streams": n,
            "audio_s": round(sum(s.program.duration_s for s in streams), 1),
            "window_s": round(hi - lo, 1),
            "lag_p50_s": pct(lags_in, 50),
            "lag_p95_s": pct(lags_in, 95),
            "lag_max_s": round(max(lags_in), 2) if lags_in else None,
            "lag_growth_s": round(worst_growth, 2) if worst_growth != float("inf") else None,
            "final_p50_s": pct(finals, 50),
            "final_p95_s": pct(finals, 95),
            "partial_p50_s": pct(firsts, 50),
            "wer_stream": round(sum(w * words for w, words in wers) / sum(words for _, words in wers), 3),
            "rtf_per_stream": round(statistics.median(rtfs), 3) if rtfs else None,
            "steps_per_stream_s": round(statistics.median(s.steps / s.program.duration_s for s in streams), 2),
            "process_cpu_pct": round(100 * ours / TICKS_PER_S / wall, 1),
            "others_pct": others_pct(*busy, ours),
            "machine_busy_pct": round(100 * busy_delta[0] / busy_delta[1], 1) if busy_delta[1] else None,
            "words_timed": len(finals),
            "starved_streams": starved,
            "sustained": worst_growth <= GROWTH_LIMIT_S and starved == 0,
            "lag_series": {str(s.index): s.lags for s in streams},
        }

"""Keeps each speaker's audio, as the captioning tap hears it, in 16 kHz mono WAV files.

Off by default (``FORUMLIVE_RECORD_AUDIO``): recording people needs their consent and a retention
rule. Files go to ``data_dir/recordings/session-N/person-M-YYYYmmddTHHMMSSZ.wav``; they are written
as the audio arrives (about once a second), so a crash loses at most the last second, and the WAV
header is completed when the speaker stops.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from realtime.media.tap import SAMPLE_RATE, AudioTap, PcmChunk

log = logging.getLogger("forumlive.media")

FLUSH_CHUNKS = 50  # 50 × 20 ms


class AudioRecorder:
    """A media tap listener (see ``MediaService.tap_listeners``) that writes one WAV per publication."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tasks: set[asyncio.Task[Path]] = set()

    def __call__(self, session_id: int, person_id: int, name: str, tap: AudioTap) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"session-{session_id}" / f"person-{person_id}-{stamp}.wav"
        task = asyncio.create_task(self._record(tap.stream(), path))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _record(self, stream: AsyncIterator[PcmChunk], path: Path) -> Path:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        writer = await asyncio.to_thread(_open, path)
        pending: list[np.ndarray] = []
        try:
            async for chunk in stream:
                pending.append(chunk.samples)
                if len(pending) >= FLUSH_CHUNKS:
                    data, pending = np.concatenate(pending).tobytes(), []
                    await asyncio.to_thread(writer.writeframes, data)
        finally:
            data = np.concatenate(pending).tobytes() if pending else b""
            await asyncio.to_thread(_close, writer, data)
            log.info("recorded %s", path)
        return path


def _open(path: Path) -> wave.Wave_write:
    writer = wave.open(str(path), "wb")  # noqa: SIM115 - closed by _close when the speaker stops
    writer.setnchannels(1)
    writer.setsampwidth(2)
    writer.setframerate(SAMPLE_RATE)
    return writer


def _close(writer: wave.Wave_write, data: bytes) -> None:
    if data:
        writer.writeframes(data)
    writer.close()

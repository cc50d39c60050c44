"""The ASR engine seam: what every Whisper engine returns, and the protocol they implement.

Times are seconds from the start of the audio given to ``transcribe``; the streaming processor
shifts them to the stream's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE_HZ = 16_000


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str  # as Whisper writes it, usually with a leading space
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0


@dataclass(frozen=True)
class TranscribeOptions:
    """Options for one call. ``prompt`` is text said just before the audio (it steers spelling and style)."""

    language: str | None = "en"
    prompt: str = ""
    task: str = "transcribe"  # or "translate" (to English)
    beam_size: int = 1
    max_new_tokens: int = 64  # caps the repetition loops Whisper falls into on hard audio


class Engine(Protocol):
    """A speech recognizer: blocking; callers run it in worker threads."""

    name: str

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        """Transcribe float32 mono 16 kHz audio."""
        ...


@dataclass
class EngineInfo:
    name: str
    model: str
    languages: list[str] = field(default_factory=list)

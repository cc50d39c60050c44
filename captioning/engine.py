"""The ASR engine seam: what every Whisper engine returns, and the protocol they implement.

Times are seconds from the start of the audio given to ``transcribe``; the streaming processor
shifts them to the stream's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE_HZ = 16_000
MAX_CONTEXT_S = 30.0  # what Whisper's encoder takes: a call's audio is padded (or cut) to this
FRAMES_PER_S = 100  # mel frames per second of audio
CONTEXT_PAD_S = 1.0  # silence the encoder sees after the audio when its input is shortened


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
    # The language of the audio: the one given, or the one detected (with its probability) when none was.
    language: str | None = None
    language_probability: float = 1.0


@dataclass(frozen=True)
class TranscribeOptions:
    """Options for one call. ``prompt`` is text said just before the audio (it steers spelling and style)."""

    language: str | None = "en"  # None: detect it (multilingual models; each call pays an extra encoder pass)
    prompt: str = ""
    task: str = "transcribe"  # or "translate" (to English)
    beam_size: int = 1
    max_new_tokens: int = 64  # caps the repetition loops Whisper falls into on hard audio
    # The encoder sees the audio plus 1 s, rounded up to whole seconds, but at least this much (None: always
    # the 30 s Whisper was trained on). Whisper pads every call to 30 s, and the encoder's cost grows with its
    # input, so a streaming window of a few seconds pays for 30 s unless this is set. Engines that cannot
    # shorten the encoder's input ignore it.
    min_context_s: float | None = None


def context_frames(audio_s: float, min_context_s: float | None) -> int | None:
    """Mel frames (100 per second) the encoder is given for ``audio_s`` of audio, or None for the full 30 s."""
    if min_context_s is None:
        return None
    seconds = max(float(np.ceil(audio_s + CONTEXT_PAD_S)), min_context_s)
    return None if seconds >= MAX_CONTEXT_S else int(seconds * FRAMES_PER_S)


class Engine(Protocol):
    """A speech recognizer: blocking; callers run it in worker threads."""

    name: str

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        """Transcribe float32 mono 16 kHz audio."""
        ...


# The languages Whisper knows that have an ISO 639-1 code (its tokenizer's LANGUAGES, less "haw" and "yue").
WHISPER_LANGUAGES = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la mi "
    "ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd "
    "gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt ln ha ba jw su".split()
)
# ISO 639-1 codes that Whisper spells otherwise.
WHISPER_CODES = {"jv": "jw", "nb": "no"}


def whisper_language(code: str | None) -> str | None:
    """Whisper's code for an ISO 639-1 language, or None when Whisper does not know it (then: detect)."""
    if not code:
        return None
    code = WHISPER_CODES.get(code.lower(), code.lower())
    return code if code in WHISPER_LANGUAGES else None


@dataclass
class EngineInfo:
    name: str
    model: str
    languages: list[str] = field(default_factory=list)

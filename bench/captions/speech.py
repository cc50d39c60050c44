"""Speech for the captions benchmark, and the arithmetic of its figures (no engine, no I/O but WAV files).

A *program* is whole clips of real speech one after the other with a short pause between them, and its
reference transcript. The ground truth for *when* each word was said is the default engine's offline
transcription of each clip (word timestamps; Whisper's word end times are good to about ±0.2 s), shifted
to the program's clock. Streamed captions are matched to those words in order (``difflib`` on normalized
words), so a caption word that Whisper got wrong, or a word it never captioned, is simply not timed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioning.audio import pcm16_to_float, resample, to_mono
from captioning.engine import SAMPLE_RATE_HZ, Engine, TranscribeOptions
from captioning.wer import word_error_rate, words_of

ROOT = Path(__file__).resolve().parents[2]
# The shared speech set (13 clips, ~113 s) when this checkout has one beside it; the tests' 3 clips otherwise.
SPEECH_DIRS = (ROOT.parent / "shared" / "data" / "speech", ROOT / "tests" / "data" / "speech")
# Real (human) speech, in program order: a speech, a reading, spoken commands. tts_passage.wav (espeak-ng,
# synthetic) is left out of the live programs but transcribed offline as a longer continuous passage.
HUMAN = (
    "jfk.wav",
    "libri_0870.wav",
    "libri_0880.wav",
    "libri_0890.wav",
    "libri_0920.wav",
    "libri_0930.wav",
    "goforward.wav",
    "cards_001.wav",
    "cards_002.wav",
    "cards_003.wav",
    "cards_004.wav",
    "cards_005.wav",
)
GAP_S = 0.5  # the pause put between two clips
# Offline (baseline) transcription may write up to Whisper's limit of tokens per 30 s window: the engines'
# default cap (64, against repetition loops in short live windows) drops most words of a 30 s window.
OFFLINE_MAX_TOKENS = 224
# A partial caption is matched against the ground-truth words within this many seconds of its own span.
PARTIAL_SLACK_S = 1.5


def speech_dir() -> Path:
    for directory in SPEECH_DIRS:
        if (directory / "references.json").is_file():
            return directory
    raise FileNotFoundError("no speech clips found (looked in " + ", ".join(map(str, SPEECH_DIRS)) + ")")


@dataclass(frozen=True)
class Clip:
    name: str
    audio: np.ndarray  # float32 mono 16 kHz
    reference: str

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE_HZ


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV file as float32 mono 16 kHz."""
    import wave

    with wave.open(str(path)) as handle:
        if handle.getsampwidth() != 2:
            raise ValueError(f"{path} is not 16-bit PCM")
        frames = handle.readframes(handle.getnframes())
        channels, rate = handle.getnchannels(), handle.getframerate()
    return resample(to_mono(pcm16_to_float(frames), channels), rate)


def load_clips(names: tuple[str, ...] = HUMAN) -> list[Clip]:
    """The clips of ``names`` that this machine has (in that order)."""
    directory = speech_dir()
    references = json.loads((directory / "references.json").read_text())
    return [
        Clip(name, read_wav(directory / name), references[name])
        for name in names
        if (directory / name).is_file() and name in references
    ]


@dataclass(frozen=True)
class Program:
    """Clips played one after another: the audio, where each clip starts, and the reference."""

    clips: tuple[Clip, ...]
    offsets_s: tuple[float, ...]
    audio: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE_HZ

    @property
    def reference(self) -> str:
        return " ".join(c.reference for c in self.clips)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clips]

    def wav_bytes(self) -> bytes:
        import io
        import wave

        pcm = (np.clip(self.audio, -1.0, 32767 / 32768) * 32768).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(SAMPLE_RATE_HZ)
            handle.writeframes(pcm.tobytes())
        return buffer.getvalue()

    def int16(self) -> np.ndarray:
        return (np.clip(self.audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def program(clips: list[Clip], gap_s: float = GAP_S) -> Program:
    gap = np.zeros(int(gap_s * SAMPLE_RATE_HZ), dtype=np.float32)
    parts: list[np.ndarray] = []
    offsets: list[float] = []
    position = 0
    for index, clip in enumerate(clips):
        if index:
            parts.append(gap)
            position += len(gap)
        offsets.append(position / SAMPLE_RATE_HZ)
        parts.append(clip.audio)
        position += len(clip.audio)
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return Program(tuple(clips), tuple(offsets), audio)


def rotation(clips: list[Clip], first: int, at_least_s: float) -> list[Clip]:
    """Whole clips from ``first`` on, round and round, until they last ``at_least_s`` (gaps counted)."""
    chosen: list[Clip] = []
    total = 0.0
    index = first
    while total < at_least_s:
        clip = clips[index % len(clips)]
        chosen.append(clip)
        total += clip.duration_s + GAP_S
        index += 1
    return chosen


@dataclass(frozen=True)
class TimedWord:
    word: str  # normalized (captioning.wer.words_of)
    start_s: float
    end_s: float


def offline_words(engine: Engine, audio: np.ndarray) -> list[TimedWord]:
    """The engine's offline transcription of ``audio`` as normalized words with their times."""
    words: list[TimedWord] = []
    for segment in engine.transcribe(audio, TranscribeOptions(max_new_tokens=OFFLINE_MAX_TOKENS)):
        for word in segment.words:
            words += [TimedWord(token, word.start_s, word.end_s) for token in words_of(word.text)]
    return words


def ground_truth(prog: Program, per_clip: dict[str, list[TimedWord]]) -> list[TimedWord]:
    """The clips' offline words on the program's clock."""
    return [
        TimedWord(w.word, w.start_s + offset, w.end_s + offset)
        for clip, offset in zip(prog.clips, prog.offsets_s, strict=True)
        for w in per_clip[clip.name]
    ]


def matches(truth: list[str], said: list[str]) -> list[tuple[int, int]]:
    """(index in truth, index in said) of the words the two sequences share, in order."""
    matcher = difflib.SequenceMatcher(None, truth, said, autojunk=False)
    return [(a + k, b + k) for a, b, size in matcher.get_matching_blocks() for k in range(size)]


@dataclass(frozen=True)
class Shown:
    """A caption as a viewer received it: ``at`` is the wall-clock arrival, times on the stream clock."""

    at: float
    text: str
    start_s: float
    end_s: float
    final: bool


@dataclass
class Latencies:
    final_s: list[float]  # per word: its final caption's arrival - when the word ended
    first_s: list[float]  # per word (same words): first shown in a partial (or final) - when it ended
    words: int  # ground-truth words
    from_partial: int  # timed words first shown in a partial caption
    censored: int = 0  # words still without a final caption when measuring stopped (their values are lower bounds)


def latencies(truth: list[TimedWord], shown: list[Shown], origin: float, until: float | None = None) -> Latencies:
    """Per-word latencies; ``origin`` is the wall-clock time of the stream's time 0.

    With ``until`` (when measuring stopped, before captioning had caught up), the words after the last final
    caption count as censored: ``until`` stands for their final caption (a lower bound of their latency).
    """
    finals = [s for s in shown if s.final]
    said = [(token, s.at) for s in finals for token in words_of(s.text)]
    final_at: dict[int, float] = {}
    for t, h in matches([w.word for w in truth], [token for token, _ in said]):
        final_at[t] = said[h][1]
    first_at: dict[int, float] = {}
    ends = np.array([w.end_s for w in truth])
    starts = np.array([w.start_s for w in truth])
    for partial in (s for s in shown if not s.final and s.text):
        span = np.nonzero((ends >= partial.start_s - PARTIAL_SLACK_S) & (starts <= partial.end_s + PARTIAL_SLACK_S))[0]
        if not len(span):
            continue
        first, last = int(span[0]), int(span[-1]) + 1
        for t, _ in matches([w.word for w in truth[first:last]], words_of(partial.text)):
            index = first + t
            first_at.setdefault(index, partial.at)
    final_s, first_s = [], []
    from_partial = 0
    for index, at in sorted(final_at.items()):
        heard = origin + truth[index].end_s
        final_s.append(at - heard)
        shown_at = min(at, first_at.get(index, at))
        from_partial += shown_at < at
        first_s.append(shown_at - heard)
    censored = 0
    if until is not None and finals:
        captioned_to = max(s.end_s for s in finals)
        for index, word in enumerate(truth):
            if index in final_at or word.end_s <= captioned_to:
                continue
            heard = origin + word.end_s
            final_s.append(until - heard)
            first_s.append(min(until, first_at.get(index, until)) - heard)
            censored += 1
    return Latencies(final_s, first_s, len(truth), from_partial, censored)


def _normalizer() -> Callable[[str], str]:
    try:
        from whisper.normalizers import EnglishTextNormalizer
    except ImportError:  # openai-whisper missing: the words as captioning.wer reads them
        return lambda text: text
    return EnglishTextNormalizer()


NORMALIZE = _normalizer()
WER = (
    "captioning.wer.word_error_rate after openai-whisper's EnglishTextNormalizer on both texts (numbers as "
    "digits, 'Mr.' = 'mister', British spellings), as Whisper's own evaluations do; offline and streaming alike"
)


def wer(reference: str, hypothesis: str) -> float:
    return round(word_error_rate(NORMALIZE(reference), NORMALIZE(hypothesis)), 3)


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), rounded to 10 ms; None without values."""
    return round(float(np.percentile(values, q)), 2) if values else None


def stream_text(shown: list[Shown]) -> str:
    return " ".join(s.text for s in shown if s.final)

"""Voice activity detection for streaming captions: Silero VAD (the ONNX model faster-whisper ships), run
incrementally on each stream's audio as it arrives.

Silero scores 32 ms frames (512 samples at 16 kHz, each seen with the 64 samples before it). A stream keeps
one score per frame on its own clock, so the processor can ask whether any span of its window holds speech
without scoring the audio again: a step whose new audio is not speech never reaches Whisper, and words
that Whisper places where no one spoke (its "Thank you." in a pause) are dropped.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from captioning.engine import SAMPLE_RATE_HZ

FRAME = 512  # samples per score
CONTEXT = 64  # samples before a frame that the model also sees
FRAME_S = FRAME / SAMPLE_RATE_HZ
THRESHOLD = 0.5  # a frame scoring this much is speech
# Speech is taken to extend this far each side of a voiced frame: Silero lags onsets a little, and
# Whisper's word times are good to about a tenth of a second.
PAD_S = 0.2


class FrameScorer(Protocol):
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Speech probabilities of ``(n, CONTEXT + FRAME)`` float32 frames: ``(n,)`` floats."""
        ...


_model_lock = threading.Lock()
_model: FrameScorer | None = None


def silero_scorer() -> FrameScorer:
    """faster-whisper's bundled Silero VAD (loaded once per process; onnxruntime, one thread)."""
    global _model
    with _model_lock:
        if _model is None:
            from faster_whisper.vad import get_vad_model

            session = get_vad_model().session
            lock = threading.Lock()

            def score(frames: np.ndarray) -> np.ndarray:
                state = np.zeros((1, 1, 128), dtype=np.float32)
                with lock:  # one ONNX session, shared by every stream's worker thread
                    out, _, _ = session.run(None, {"input": frames, "h": state, "c": state})
                return np.asarray(out, dtype=np.float32).reshape(-1)

            _model = score
        return _model


class SpeechTrack:
    """The speech scores of one stream, frame by frame on the stream's clock.

    Args:
        scorer: scores frames; default: Silero VAD.
        threshold: the score from which a frame is speech.
    """

    def __init__(self, scorer: FrameScorer | None = None, threshold: float = THRESHOLD) -> None:
        self.scorer = scorer or silero_scorer()
        self.threshold = threshold
        self._voiced = np.zeros(0, dtype=bool)  # one flag per frame from frame ``_first`` on
        self._first = 0
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet making up a whole frame
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def push(self, samples: np.ndarray) -> None:
        """Score the new audio (float32 mono 16 kHz)."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(audio) // FRAME
        self._pending = audio[whole * FRAME :]
        if not whole:
            return
        frames = audio[: whole * FRAME].reshape(whole, FRAME)
        before = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT:]])
        self._context = frames[-1, -CONTEXT:].copy()
        scores = self.scorer(np.concatenate([before, frames], axis=1))
        self._voiced = np.concatenate([self._voiced, scores >= self.threshold])

    @property
    def end_s(self) -> float:
        """The stream time up to which frames are scored."""
        return (self._first + len(self._voiced)) * FRAME_S

    def speech_in(self, start_s: float, end_s: float, pad_s: float = 0.0) -> bool:
        """Whether any voiced frame lies within ``[start_s - pad_s, end_s + pad_s]``."""
        lo = max(0, int(np.floor((start_s - pad_s) / FRAME_S)) - self._first)
        hi = max(0, int(np.ceil((end_s + pad_s) / FRAME_S)) - self._first)
        return bool(self._voiced[lo:hi].any())

    def forget(self, until_s: float) -> None:
        """Drop the scores of frames that end before ``until_s`` (the window was trimmed)."""
        drop = min(len(self._voiced), max(0, int(until_s / FRAME_S) - self._first))
        self._voiced = self._voiced[drop:]
        self._first += drop

"""faster-whisper (CTranslate2) engine: int8 on the CPU, word timings, no network.

Shorter encoder input (``TranscribeOptions.min_context_s``): faster-whisper pads every window's mel features
to 30 s (3000 frames) before encoding, and the encoder's cost grows with its input. CTranslate2 accepts fewer
frames; the model's ``encode`` is where the padded features pass, so the engine's model cuts them there to
the length this call asked for (kept per thread: worker threads share one model). Decoding, word alignment
and timestamps then run on the shorter encoder output.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from captioning.engine import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word, context_frames


def _model_class() -> type:
    from faster_whisper import WhisperModel

    class ShortContextModel(WhisperModel):
        """faster-whisper's model, encoding at most ``frames.value`` mel frames when that is set."""

        frames = threading.local()

        def encode(self, features: np.ndarray) -> Any:  # noqa: ANN401 - a ctranslate2.StorageView
            limit = getattr(self.frames, "value", None)
            if limit is not None and features.shape[-1] > limit:
                features = np.ascontiguousarray(features[..., :limit])
            return super().encode(features)

    return ShortContextModel


class FasterWhisperEngine:
    """Whisper through CTranslate2. With ``language=None`` a multilingual model detects the language of each
    call's audio, and every segment reports it.

    Args:
        model_dir: a CTranslate2 Whisper model directory (``model.bin``, ``config.json``, tokenizer).
        compute_type: ``int8`` saves memory; ``float32`` was as fast on the machines measured here.
        cpu_threads: threads one call may use.
    """

    name = "faster-whisper"

    def __init__(self, model_dir: Path, compute_type: str = "int8", cpu_threads: int = 2) -> None:
        self.model_dir = model_dir
        self.model = _model_class()(
            str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        frames = context_frames(len(audio) / SAMPLE_RATE_HZ, options.min_context_s)
        self.model.frames.value = frames
        try:
            segments, info = self.model.transcribe(
                audio,
                language=options.language,
                task=options.task,
                beam_size=options.beam_size,
                temperature=0.0,
                initial_prompt=options.prompt or None,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=False,
                max_new_tokens=options.max_new_tokens,
                # One window per call: with a shortened encoder input, a second window over the last second
                # (after the last timestamp) is mostly padding, where Whisper repeats itself.
                without_timestamps=frames is not None,
            )
            return [
                Segment(
                    s.start,
                    s.end,
                    s.text,
                    tuple(Word(w.start, w.end, w.word, w.probability) for w in (s.words or ())),
                    s.no_speech_prob,
                    s.avg_logprob,
                    info.language,
                    info.language_probability,
                )
                for s in segments
            ]
        finally:
            self.model.frames.value = None

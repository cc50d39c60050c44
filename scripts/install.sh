#!/usr/bin/env sh
# Create a virtual environment and install forumlive into it.
# Used by `make install` (and so `make demo` and `make test`) and by the Dockerfile, so both take the same steps.
#   VENV    where to create the environment (default .venv)
#   EXTRAS  optional extras to install, e.g. "test" (default none)
#   EDITABLE  1 for an editable install (default), 0 for a regular one
set -eu
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-}
EDITABLE=${EDITABLE:-1}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
if [ "$EDITABLE" = "1" ]; then
    "$VENV/bin/python" -m pip install --quiet -e "$spec"
else
    "$VENV/bin/python" -m pip install --quiet "$spec"
fi
echo "forumlive installed in $VENV"

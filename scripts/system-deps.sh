#!/usr/bin/env sh
# Install the Debian packages the tests use: chromium for the browser tests.
# As root it installs what is missing; otherwise it only checks and says what to install.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
    echo "installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "missing Debian packages:$missing (run 'sudo apt-get install$missing' or run make test as root)" >&2
    exit 1
fi

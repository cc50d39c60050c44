#!/usr/bin/env sh
# Install the Debian packages the tests use: chromium for the browser tests and PostgreSQL's server
# binaries for the storage tests and redis-server for the bus tests (the tests start their own servers;
# FORUMLIVE_TEST_POSTGRES_URL / FORUMLIVE_TEST_REDIS_URL skip that); nodejs and npm, which install
# axe-core for the accessibility audit (make test runs npm ci in tests/web); nginx and coturn, which run
# docs/deploy.md's configurations (tests/server/test_deploy_nginx.py, test_deploy_coturn.py).
# As root it installs what is missing; otherwise it only checks and says what to install.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v turnserver >/dev/null 2>&1 || missing="$missing coturn"
if [ -z "${FORUMLIVE_TEST_REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
    missing="$missing redis-server"
fi
if [ -z "${FORUMLIVE_TEST_POSTGRES_URL:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing="$missing postgresql"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
    echo "installing Debian packages:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "missing Debian packages:$missing (run 'sudo apt-get install$missing' or run make test as root)" >&2
    exit 1
fi

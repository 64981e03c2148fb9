#!/usr/bin/env bash
# Sets up .venv for `make lab` (base), `make test` (test) or `make bench` (test + bench peers):
# idempotent, and quick once done.
# On a fresh Debian machine it also installs what the system lacks (python3-venv, chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-base}
PYTHON=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.installed-$want-$(sha256sum pyproject.toml | cut -c1-16)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

if [ ! -f "$stamp" ]; then
    extra=""
    [ "$want" = test ] && extra="[test]"
    [ "$want" = bench ] && extra="[test,bench]"
    # torch is pinned in pyproject (2.13.0): that CPU build is what these machines carry.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".$extra"
    rm -f "$VENV"/.installed-"$want"-*
    touch "$stamp"
fi

if [ "$want" != base ] && ! command -v chromium >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt_install chromium
fi

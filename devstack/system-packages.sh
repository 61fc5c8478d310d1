#!/usr/bin/env bash
# Debian packages the project needs outside Python, installed when the file they provide is
# missing: run by `make setup` (the CJK font the PDF transcript embeds) and `make test`
# (Chromium, for the verification page test).
#
# usage: devstack/system-packages.sh (--require|--best-effort) FILE PACKAGE [FILE PACKAGE ...]
# --require fails when a package cannot be installed; --best-effort only warns.
set -euo pipefail
mode=$1
shift
missing=()
files=()
while [ $# -ge 2 ]; do
    if [ ! -e "$1" ]; then
        files+=("$1")
        missing+=("$2")
    fi
    shift 2
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (Debian packages; ${files[*]} missing)"
    export DEBIAN_FRONTEND=noninteractive
    # a fresh machine may have no package lists yet: update once and try again
    if apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }; then
        exit 0
    fi
fi
message="missing ${files[*]}: install the Debian packages ${missing[*]} (as root: apt-get install ${missing[*]})"
if [ "$mode" = "--require" ]; then
    echo "error: $message" >&2
    exit 1
fi
echo "warning: $message; what needs them will not work until then" >&2

#!/bin/sh
# Installs the Debian packages pyexec needs, only those missing. Runs as root on Debian 12.
set -eu
# shellcheck source=scripts/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
# clang and its runtimes (libFuzzer, ASan, UBSan) build the fuzz harnesses of tests/fuzz/;
# gcc's own ASan and UBSan (libasan8, libubsan1) come with gcc. python3-jsonschema: the tests
# hold every answer to nginx/openapi.json (tests/helpers.py). libssl-dev: SHA-256 of API keys
# (libcrypto, fcgi/keys.c).
ensure_packages gcc make libc6-dev pkg-config libfcgi-dev libfcgi-bin libjson-c-dev libseccomp-dev libssl-dev \
        nginx-light spawn-fcgi curl procps systemd \
        python3 python3-numpy python3-pandas python3-scipy python3-sklearn python3-matplotlib \
        python3-seaborn python3-requests python3-pytest python3-yaml python3-jsonschema python3-dev \
        clang libclang-rt-14-dev

#!/bin/sh
# Installs the Debian packages pyexec needs, only those missing. Runs as root on Debian 12.
set -eu
packages="gcc make libc6-dev pkg-config libfcgi-dev libfcgi-bin libjson-c-dev libseccomp-dev
nginx-light spawn-fcgi curl procps systemd
python3 python3-numpy python3-pandas python3-scipy python3-sklearn python3-matplotlib
python3-seaborn python3-requests python3-pytest python3-yaml python3-dev
clang libclang-rt-14-dev"
# clang and its runtimes (libFuzzer, ASan, UBSan) build the fuzz harnesses of tests/fuzz/;
# gcc's own ASan and UBSan (libasan8, libubsan1) come with gcc.
missing=""
for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing Debian packages:$missing (run as root to install them)" >&2
        exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when they are absent (a fresh machine or image).
if [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ]; then
        apt-get update -q
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing || { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }

# shellcheck shell=sh
# scripts/lib/apt.sh — sourced, not run: `. scripts/lib/apt.sh; ensure_packages pkg...`.
# POSIX sh, so that /bin/sh scripts (install-deps.sh) and bash scripts (image-test.sh) share it.

# ensure_packages PKG...: installs, from Debian and without questions, those of the packages
# that are not installed yet; does nothing when all are. Progress goes to stdout (apt's own
# output), messages to stderr, prefixed with the calling script's name. Fails when something is
# missing and this is not root, or when apt fails.
# The body is a subshell: its variables and DEBIAN_FRONTEND stay out of the caller.
ensure_packages() (
        who=$(basename "$0" .sh)
        missing=""
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing="$missing $p"
        done
        [ -z "$missing" ] && exit 0
        if [ "$(id -u)" != 0 ]; then
                echo "$who: missing Debian packages:$missing (run as root to install them)" >&2
                exit 1
        fi
        echo "$who: installing$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        # Refresh the package lists first only when there are none (a fresh machine or image);
        # otherwise only when installing from the lists there are fails (they may be stale).
        # Not `ls | grep -q`: under a caller's pipefail, ls killed by SIGPIPE would read as "none".
        # shellcheck disable=SC2010,SC2143 # (file names here are apt's own: no odd characters)
        if [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ]; then
                apt-get update -q
        fi
        # shellcheck disable=SC2086 # (one word per package)
        apt-get install -y -q --no-install-recommends $missing ||
                { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }
)

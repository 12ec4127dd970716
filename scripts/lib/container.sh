# shellcheck shell=bash disable=SC2154 # ($image and $tmp are the caller's)
# scripts/lib/container.sh — sourced by scripts/image-test.sh: start the image as a container and
# read what it says. Needs $image (the image to run), $tmp (a scratch directory) and say() from
# the caller; every container start() makes, cleanup() removes.

# read_run_flags FILE: the flags in FILE (deploy/run-flags: one per line, # comments), one per
# line. A path into the checkout (=deploy/...) is made absolute, as podman reads it from its
# own working directory.
read_run_flags() {
        local top
        top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v -e '^#' -e '^$' |
                sed "s|=deploy/|=$top/deploy/|"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

started=()
cleanup() {
        local c
        for c in "${started[@]}"; do
                # A removal can race the last sandbox's mount namespace going away: retry once.
                podman rm -f -t 5 "$c" >/dev/null 2>&1 || { sleep 1; podman rm -f "$c" >/dev/null 2>&1 || true; }
        done
}

# start NAME FLAGS...: runs the image as container NAME, publishing 8080 on a free loopback
# port (in $port), and returns once the worker has logged its start-up line or the container
# has stopped.
port=
start() {
        local name=$1
        shift
        port=$(free_port)
        started+=("$name")
        # podman's complaints about the missing systemd (no healthcheck timers) are kept out of
        # the way unless the run itself fails.
        podman run -d --name "$name" -p "127.0.0.1:$port:8080" "$@" "$image" >"$tmp/run.out" 2>&1 ||
                { cat "$tmp/run.out" >&2; return 1; }
        for _ in $(seq 300); do
                podman logs "$name" 2>&1 | grep -q 'event=start ' && break
                [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
                sleep 0.2
        done
}

# The worker's verdict on the sandbox: "ok", the reason it is unavailable, or what went wrong.
verdict() {
        local line
        line=$(podman logs "$1" 2>&1 | grep -m1 'event=start ' || true)
        case "$line" in
        *sandbox=ok*) echo ok ;;
        *sandbox=UNAVAILABLE*) echo "UNAVAILABLE: $(sed -n 's/.*reason="\([^"]*\)".*/\1/p' <<<"$line")" ;;
        *) echo "no start-up line: $(podman logs "$1" 2>&1 | grep -v -e '^serve: \(stopping\|stopped\|a component\)' | tail -n 1)" ;;
        esac
}

# health PORT: /health's status once the pool has settled (up to 60 s): 200, a 503 that is not
# "the workers are still starting", or 000 when nothing answers within 15 s.
health() {
        local code start=$SECONDS
        while :; do
                code=$(curl -s -m 2 -o "$tmp/health.json" -w '%{http_code}' "http://127.0.0.1:$1/health" || true)
                case "$code" in
                200) break ;;
                503) grep -q 'still starting' "$tmp/health.json" || break ;;
                *) [ $((SECONDS - start)) -lt 15 ] || break ;; # nginx is not coming
                esac
                [ $((SECONDS - start)) -lt 60 ] || break
                sleep 0.2
        done
        echo "${code:-000}"
}

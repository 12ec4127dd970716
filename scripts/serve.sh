#!/bin/bash
# serve.sh — start the pyexec service in the foreground: the spawn-fcgi pool on a unix socket
# and nginx on HOST:PORT, both under a run directory. Ctrl-C or SIGTERM stops both and leaves
# no process behind.
#
#   scripts/serve.sh [--host H] [--port P] [--workers N] [--run-dir DIR] [--config FILE]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
host=${HOST:-127.0.0.1}
port=${PORT:-8080}
workers=${WORKERS:-4}
run_dir=${RUN_DIR:-$top/run}
config=${PYEXEC_CONFIG:-$top/config/pyexec.conf}

while [ $# -gt 0 ]; do
        case "$1" in
        --host) host=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --run-dir) run_dir=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        *) echo "serve.sh: unknown argument $1" >&2; exit 2 ;;
        esac
done

say() { echo "serve: $*" >&2; }

for bin in "$top/build/pyexec-worker" /usr/sbin/nginx /usr/bin/spawn-fcgi; do
        [ -x "$bin" ] || { say "missing $bin (run 'make run', which installs and builds)"; exit 1; }
done

# A value from the config file, or the default the C code would use.
conf() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p" "$config" | tail -n 1; }
wall=$(conf wall_time_s); wall=${wall:-10}
body_max=$(conf body_max_bytes); body_max=${body_max:-8388608}

mkdir -p "$run_dir/nginx"
# nginx's workers (www-data) must reach the socket inside.
chmod 0711 "$run_dir"
socket="$run_dir/pyexec.sock"
rm -f "$socket"
sed -e "s|@RUN_DIR@|$run_dir|g" -e "s|@HOST@|$host|g" -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$socket|g" \
    -e "s|@BODY_MAX_BYTES@|$body_max|g" -e "s|@FASTCGI_TIMEOUT@|$((wall + 30))|g" \
    "$top/nginx/nginx.conf.in" > "$run_dir/nginx/nginx.conf"

pool_pid= nginx_pid=
stop() {
        trap - INT TERM EXIT
        say "stopping"
        [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null || true
        [ -n "$pool_pid" ] && kill -TERM "$pool_pid" 2>/dev/null || true
        wait 2>/dev/null || true
        rm -f "$socket"
        say "stopped"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# -n: spawn-fcgi binds the socket and execs the pool's master in place, so $! is the master
# (which supervises its workers). The socket belongs to nginx's worker user.
PYEXEC_CONFIG=$config spawn-fcgi -n -s "$socket" -M 0660 -U www-data -G www-data -- \
        "$top/build/pyexec-worker" -c "$config" -w "$workers" &
pool_pid=$!

for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
[ -S "$socket" ] || { say "the pool did not create $socket"; exit 1; }

nginx -p "$run_dir/nginx" -c "$run_dir/nginx/nginx.conf" -e stderr &
nginx_pid=$!
say "pyexec on http://$host:$port (workers: $workers, run dir: $run_dir, config: $config)"

# Whichever ends first ends the service.
wait -n "$pool_pid" "$nginx_pid" || true
say "a component exited; shutting down"

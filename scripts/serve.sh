#!/bin/bash
# serve.sh — run the pyexec service in the foreground: the spawn-fcgi pool on a unix socket
# and nginx on HOST:PORT, both under a run directory, logs on this terminal.
#
#   scripts/serve.sh [--host H] [--port P] [--workers N] [--run-dir DIR] [--config FILE]
#
# The run directory (sockets, nginx's config and temp files) is run/PORT by default; an
# instance locks it, so a second one on the same directory refuses to start.
#
# Several pools behind one nginx (each pool on its own machine or port):
#   scripts/serve.sh --pool-only --listen 127.0.0.1:9001 --monitor-listen 127.0.0.1:9101
#   scripts/serve.sh --upstreams "127.0.0.1:9001 127.0.0.1:9002" \
#                    --monitor-upstreams "127.0.0.1:9101 127.0.0.1:9102"
#
#   SIGINT/SIGTERM  drain and stop: nginx stops taking requests and finishes the ones in
#                   flight (each up to its time limit), then the pool stops; nothing is left.
#   SIGHUP          reload config/pyexec.conf without downtime: nginx re-reads its generated
#                   config, the pool starts a new generation of workers and retires the old.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
host=${HOST:-127.0.0.1}
port=${PORT:-8080}
workers=${WORKERS:-}
run_dir=${RUN_DIR:-}
# The build to serve: build/, or PYEXEC_BUILD (relative to the checkout), e.g. build-san.
build=${PYEXEC_BUILD:-build}
[[ $build == /* ]] || build=$top/$build
config=${PYEXEC_CONFIG:-$top/config/pyexec.conf}
pool_only= listen= monitor_listen= upstreams= monitor_upstreams=

while [ $# -gt 0 ]; do
        case "$1" in
        --host) host=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --run-dir) run_dir=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --pool-only) pool_only=1; shift ;;
        --listen) listen=$2; shift 2 ;;
        --monitor-listen) monitor_listen=$2; shift 2 ;;
        --upstreams) upstreams=$2; shift 2 ;;
        --monitor-upstreams) monitor_upstreams=$2; shift 2 ;;
        *) echo "serve.sh: unknown argument $1" >&2; exit 2 ;;
        esac
done

say() { echo "serve: $*" >&2; }

# One run directory per instance: several instances from one checkout (make run PORT=8081
# beside PORT=8080) each get their own, and a second one on the same directory refuses to
# start instead of taking the first one's sockets. The lock is held (and inherited by every
# process of the instance) until the last of them is gone.
if [ -z "$run_dir" ]; then
        if [ -n "$pool_only" ]; then run_dir=$top/run/pool-${listen##*:}; else run_dir=$top/run/$port; fi
fi
mkdir -p "$run_dir"
# Every process of an instance holds the lock (its descriptor is inherited). What holds it
# besides this script is a part of the instance that outlived its end: nginx's workers when
# nginx's master was killed (they go on serving 502s on the port), the pool's workers while
# they take their sandboxes down after their master was killed (~2 s where PID 1 reaps orphans
# slowly), the whole service when serve.sh itself was killed.
holders() {
        local found entry pid list=" "
        # find, not this shell's fork, looks (exec), and without the descriptor ({lock_fd}>&-).
        found=$(exec find /proc/[0-9]*/fd -maxdepth 1 -lname "$run_dir/lock" {lock_fd}>&- 2>/dev/null) || true
        [ -n "$found" ] || return 0
        # Only the descriptors that share the locked open file (their fdinfo shows the lock): a
        # new instance waiting for the lock has the file open too.
        found=$(exec grep -ls '^lock:.*FLOCK' ${found//\/fd\//\/fdinfo\/} {lock_fd}>&-) || true
        for entry in $found; do
                pid=${entry#/proc/}
                pid=${pid%%/*}
                # (not this script, nor the subshell that runs this function for $(holders))
                [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ] || [[ $list == *" $pid "* ]] || list+="$pid "
        done
        echo $list
}
# Ends them, if any (whose: $1): SIGTERM, then SIGKILL for what is still there after 10 s.
end_leftovers() {
        local left what
        left=$(holders)
        [ -n "$left" ] || return 0
        what=$(ps -o pid=,comm= -p "${left// /,}" | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}') || true
        say "ending what is left of $1: $what"
        kill -TERM $left 2>/dev/null || true
        for _ in $(seq 100); do
                left=$(holders)
                [ -z "$left" ] && return 0
                sleep 0.1
        done
        kill -KILL $left 2>/dev/null || true
}

run_dir=$(cd "$run_dir" && pwd -P) # as /proc shows the lock's path
exec {lock_fd}>>"$run_dir/lock"
# The pid file says "pid N" while instance N runs, "stopping N" once it stops. A restart right
# after a stop waits for it (a stop lasts as long as the requests in flight); one after a crash
# or a kill ends what the ended instance left.
take_lock() {
        flock -n "$lock_fd" && return 0
        local state='' holder=''
        read -r state holder < "$run_dir/pid" 2>/dev/null || true
        if [ "$state" = stopping ] && kill -0 "$holder" 2>/dev/null; then
                say "waiting for the instance in $run_dir (pid $holder) to finish stopping"
                until flock -w 1 "$lock_fd"; do
                        kill -0 "$holder" 2>/dev/null || break
                done
                flock -n "$lock_fd" && return 0
        fi
        # An instance that has just taken the lock writes its pid file the moment after.
        if ! kill -0 "$holder" 2>/dev/null; then
                sleep 0.2
                read -r state holder < "$run_dir/pid" 2>/dev/null || true
        fi
        if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
                say "another instance already runs in $run_dir (pid $holder); stop it, or give this one --run-dir or another --port"
                return 1
        fi
        end_leftovers "the previous instance in $run_dir (pid ${holder:-unknown}), which has ended"
        flock -w 5 "$lock_fd" && return 0
        say "the lock on $run_dir is still held by $(holders)"
        return 1
}
take_lock || exit 1
echo "pid $$" > "$run_dir/pid"

for bin in "$build/pyexec-worker" "$build/pyexec-keys" "$build/pyexec-zygote" "$build/pyexec-init" /usr/sbin/nginx /usr/bin/spawn-fcgi; do
        [ -x "$bin" ] || { say "missing $bin (run 'make run', which installs and builds)"; exit 1; }
done
[ -r "$config" ] || { say "cannot read $config"; exit 1; }

mkdir -p "$run_dir/nginx"
# nginx's workers (www-data) must reach the sockets inside.
chmod 0711 "$run_dir"
# The admission server's socket (nginx makes it 0666): only nginx's workers (group www-data)
# may pass through here, so nothing but nginx's public server can send it a request. Owned by
# root, which binds it: a container's root has no CAP_DAC_OVERRIDE. A stale socket would stop
# the bind.
install -d -m 0710 -o root -g www-data "$run_dir/nginx/private"
rm -f "$run_dir/nginx/private/admission.sock"
socket="$run_dir/pyexec.sock"
monitor_socket="$run_dir/monitor.sock"

# The settings in force, from the pool's own parser (pyexec-worker --print-config): one parser,
# no defaults of our own here, and a config it refuses stops us with its message.
declare -A settings
read_config() {
        local out key value
        out=$("$build/pyexec-worker" -c "$config" --print-config) || { say "refusing $config (see above)"; return 1; }
        while IFS='=' read -r key value; do settings[$key]=$value; done <<<"$out"
}
conf() { echo "${settings[$1]:?serve.sh: pyexec-worker printed no $1}"; }

# nginx's config follows the pool's: body limit, in-flight cap, and a read timeout longer than
# the longest a worker can take to answer (the queue, then a script to its wall-clock limit).
write_nginx_conf() {
        local wall body_max slots n
        wall=$(conf wall_time_s)
        body_max=$(conf body_max_bytes)
        slots=$(conf queue_slots)
        n=${workers:-$(conf workers)}
        local pools=1 servers monitors a
        if [ -n "$upstreams" ]; then
                pools=$(echo $upstreams | wc -w)
                servers=$(for a in $upstreams; do printf '        server %s;\\n' "$a"; done)
                monitors=$(for a in $monitor_upstreams; do printf '        server %s;\\n' "$a"; done)
        else
                servers="        server unix:$socket;"
                monitors="        server unix:$monitor_socket;"
        fi
        local fastcgi_timeout=$(( (slots / n + 2) * wall + 30 ))
        # The public server waits longer than the admission server, whose 504 is JSON.
        local fill=(-e "s|@RUN_DIR@|$run_dir|g" -e "s|@HOST@|$host|g" -e "s|@PORT@|$port|g"
                    -e "s|@POOL_SERVERS@|$servers|" -e "s|@MONITOR_SERVERS@|$monitors|"
                    -e "s|@BODY_MAX_BYTES@|$body_max|g" -e "s|@MAX_IN_FLIGHT@|$(( (n + slots) * pools ))|g"
                    -e "s|@FASTCGI_TIMEOUT@|$fastcgi_timeout|g" -e "s|@PROXY_TIMEOUT@|$(( fastcgi_timeout + 10 ))|g")
        # API keys: the zones of the keys' limits, from the same parser as the pool's.
        "$build/pyexec-keys" nginx -c "$config" "$run_dir/nginx" || { say "cannot write nginx's keys config"; return 1; }
        sed "${fill[@]}" "$top/nginx/json_errors.conf.in" > "$run_dir/nginx/json_errors.conf"
        sed "${fill[@]}" "$top/nginx/nginx.conf.in" > "$run_dir/nginx/nginx.conf.new"
        cp "$top/nginx/fastcgi_params" "$run_dir/nginx/fastcgi_params"
        # GET /openapi.json is this file, served by nginx's workers (www-data) from here.
        install -m 0644 "$top/nginx/openapi.json" "$run_dir/nginx/openapi.json"
        mv "$run_dir/nginx/nginx.conf.new" "$run_dir/nginx/nginx.conf"
}

# Listening beyond loopback with no keys: a free compute service for whoever finds it. Said
# here, in the pool's start-up log and in /health (the pool is told with --exposed).
exposed=()
case $host in
127.* | ::1 | localhost) ;;
*) [ -n "$pool_only" ] || exposed=(--exposed) ;;
esac
warn_if_open() {
        if [ ${#exposed[@]} -gt 0 ] && [ -z "${settings[api_keys_file]:-}" ]; then
                say "WARNING: listening on $host:$port with no api_keys_file: anyone who can reach it runs code here"
                say "WARNING: set api_keys_file in $config (README, Deploy: API keys)"
        fi
}

pool_pid= nginx_pid=
stop() {
        trap - INT TERM HUP EXIT
        echo "stopping $$" > "$run_dir/pid"
        say "stopping: finishing the requests in flight"
        # QUIT: nginx stops accepting and waits for in-flight requests; the pool keeps serving
        # them. Then the pool drains whatever is left and exits.
        if [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null; then
                for _ in $(seq $(( ($(conf wall_time_s) + 30) * 10 ))); do
                        kill -0 "$nginx_pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -TERM "$nginx_pid" 2>/dev/null || true
        fi
        [ -n "$pool_pid" ] && kill -TERM "$pool_pid" 2>/dev/null || true
        wait 2>/dev/null || true
        end_leftovers "this instance"
        rm -f "$socket" "$monitor_socket"
        say "stopped"
}
reload() {
        say "reloading $config"
        # A config the pool refuses leaves nginx's as it is; the pool logs event=reload_rejected.
        if read_config && write_nginx_conf; then
                warn_if_open
                kill -HUP "$nginx_pid" 2>/dev/null || true
        fi
        kill -HUP "$pool_pid" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
trap reload HUP

read_config || exit 1
write_nginx_conf || exit 1
warn_if_open
pin=()
[ -n "$workers" ] && pin=(-w "$workers")

if [ -z "$upstreams" ]; then
        # -n: spawn-fcgi binds the socket and execs the pool's master in place, so $! is the
        # master (which supervises its workers). The sockets belong to nginx's worker user.
        if [ -n "$listen" ]; then
                bind=(-a "${listen%:*}" -p "${listen##*:}")
                monitor_at=${monitor_listen:?--listen needs --monitor-listen}
        else
                rm -f "$socket"
                bind=(-s "$socket" -M 0660 -U www-data -G www-data)
                monitor_at=$monitor_socket
        fi
        spawn-fcgi -n "${bind[@]}" -- "$build/pyexec-worker" -c "$config" "${pin[@]}" "${exposed[@]}" -m "$monitor_at" -o www-data &
        pool_pid=$!
        if [ -z "$listen" ]; then
                for _ in $(seq 100); do [ -S "$socket" ] && [ -S "$monitor_socket" ] && break; sleep 0.05; done
                [ -S "$socket" ] || { say "the pool did not create $socket"; exit 1; }
        fi
fi

if [ -z "$pool_only" ]; then
        nginx -p "$run_dir/nginx" -c "$run_dir/nginx/nginx.conf" -e stderr &
        nginx_pid=$!
        say "pyexec on http://$host:$port (config: $config, run dir: $run_dir); Ctrl-C stops, SIGHUP reloads"
else
        say "pool on $listen (monitor $monitor_listen, config: $config); Ctrl-C stops, SIGHUP reloads"
fi

# Whichever ends first ends the service (a trapped HUP also returns from wait: keep waiting),
# as a failure: a part ending on its own is a crash or a kill from outside, and a supervisor
# (systemd's Restart=on-failure, docker's --restart on-failure) restarts only what fails.
alive() { for p in "$@"; do [ -z "$p" ] || kill -0 "$p" 2>/dev/null || return 1; done; }
ended='' status=''
while alive "$pool_pid" "$nginx_pid"; do
        ended='' status=0
        wait -n -p ended $pool_pid $nginx_pid 2>/dev/null || status=$?
done
if [ -z "$ended" ]; then # it ended before the wait began, or between two waits
        for ended in $pool_pid $nginx_pid; do alive "$ended" || break; done
        status=0
        wait "$ended" 2>/dev/null || status=$?
fi
part="the pool (pid $ended)"
[ "$ended" = "$nginx_pid" ] && part="nginx (pid $ended)"
how="exited with status $status"
[ "$status" -gt 128 ] && how="killed by signal $((status - 128)) ($(kill -l "$status"))"
say "$part $how; stopping the rest"
exit 1

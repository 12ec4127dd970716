#!/bin/bash
# container-start.sh — the image's PID 1: runs its arguments (scripts/serve.sh ...) with their
# standard output and error relayed through pipes that belong to the container, and passes
# SIGTERM/SIGINT/SIGHUP on.
#
# Why the relay: nginx reopens /dev/stdout for its access log. When stdout is the container
# runtime's pipe and the container has its own user namespace (Kubernetes hostUsers: false,
# podman --userns, Docker userns-remap), that pipe belongs to a uid outside the namespace and the
# open fails with EACCES. The two cat processes hold the runtime's pipes instead; at the end
# they are drained before this script exits, so the last lines (why something failed) are kept.
set -u

exec 3>&1 4>&2
exec 1> >(exec cat >&3)
out=$!
exec 2> >(exec cat >&4)
err=$!
exec 3>&- 4>&-

"$@" &
child=$!
for sig in TERM INT HUP; do
        # shellcheck disable=SC2064
        trap "kill -$sig $child 2>/dev/null" "$sig"
done

# wait returns early when a trapped signal arrives; keep waiting until the child is gone.
while :; do
        wait "$child"
        rc=$?
        kill -0 "$child" 2>/dev/null || break
done

# Closing our ends lets the relays see end-of-file once everything written has been passed on.
exec 1>&- 2>&-
wait "$out" "$err" 2>/dev/null
exit "$rc"

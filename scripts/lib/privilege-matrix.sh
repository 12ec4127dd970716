# shellcheck shell=bash disable=SC2154 # ($container and the flag arrays are the caller's)
# scripts/lib/privilege-matrix.sh — sourced by scripts/image-test.sh for --probe-privileges: the
# evidence table of deploy/README.md. Starts the image under the least flags (least_flags, from
# deploy/run-flags) with one of them taken away or changed, then under wider sets, and prints
# for each the /health status, whether container root could write the kernel's global sysctls
# (/proc/sys/kernel/core_pattern: the reason for --userns), and the worker's start-up verdict.
# Needs host_flags, least_flags, $container and scripts/lib/container.sh.

flags=()
nrow=0

# variant PREFIX [NEW]: flags=least_flags with the flag that starts with PREFIX replaced by NEW
# (dropped without NEW). Fails, and the row is left out, when no flag has the prefix: the
# matrix names flags of deploy/run-flags, which may change apart from it.
variant() {
        local f found=false
        flags=()
        for f in "${least_flags[@]}"; do
                if [[ "$f" == "$1"* ]]; then
                        found=true
                        [ -n "${2:-}" ] && flags+=("$2")
                else
                        flags+=("$f")
                fi
        done
        $found || say "probe: no flag $1... in deploy/run-flags: row left out"
        $found
}

# probe_row LABEL: start the image with host_flags and "${flags[@]}" and print one row.
probe_row() {
        local name=$container-probe$((++nrow)) code sysctl
        if start "$name" "${host_flags[@]}" "${flags[@]}"; then
                code=$(health "$port")
                sysctl=$(podman exec "$name" sh -c 'test -w /proc/sys/kernel/core_pattern && echo WRITABLE || echo ro' 2>/dev/null || echo "?")
                printf '%-48s %-6s %-8s %s\n' "$1" "$code" "$sysctl" "$(verdict "$name" | cut -c1-140)" >&2
        else
                printf '%-48s %s\n' "$1" "podman run failed" >&2
        fi
        podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
}

probe_privileges() {
        local profile=--security-opt=seccomp= unmask=--security-opt=unmask= caps=--cap-add=
        printf '%-48s %-6s %-8s %s\n' "flags (host flags + ...)" health sysctl sandbox >&2
        flags=("${least_flags[@]}"); probe_row "least (${least_flags[*]})"
        variant "$unmask" && probe_row "least without unmask"
        variant "$unmask" "--security-opt=unmask=/proc/acpi:/proc/kcore:/proc/keys:/proc/latency_stats:/proc/timer_list:/proc/timer_stats:/proc/sched_debug:/proc/scsi" &&
                probe_row "least, unmask only the masked /proc paths"
        variant "$profile" && probe_row "least, podman's default seccomp profile"
        variant "$profile" "--security-opt=seccomp=unconfined" && probe_row "least, seccomp=unconfined"
        variant "$caps" --cap-add=CHOWN && probe_row "least without SETUID,SETGID"
        variant "$caps" --cap-add=SETUID,SETGID && probe_row "least without CHOWN"
        variant --security-opt=no-new-privileges && probe_row "least without no-new-privileges"
        variant --userns= && probe_row "least without --userns (root is host root)"
        flags=(--userns=auto:size=65536); probe_row "podman defaults (+ --userns)"
        flags=(--userns=auto:size=65536 --cap-add=SYS_ADMIN); probe_row "podman defaults + SYS_ADMIN"
        flags=(--userns=auto:size=65536 --security-opt=unmask=ALL --security-opt=seccomp=unconfined); probe_row "unmask=ALL + seccomp=unconfined"
        flags=(--userns=auto:size=65536 --privileged); probe_row "--privileged (+ --userns)"
        flags=(--privileged); probe_row "--privileged"
}

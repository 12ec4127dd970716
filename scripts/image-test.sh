#!/bin/bash
# image-test.sh — build the pyexec container image with podman and run the end-to-end seed tests
# and the library smoke test (tests/container/) against a container started with the
# least-privilege flags of deploy/run-flags, then against deploy/deployment.yaml run with
# `podman kube play` (scripts/kube-test.sh) (`make image-test`; not part of `make test`). Runs
# as root on Debian 12 and installs what it needs from Debian (podman, runc, debootstrap, ...).
#
#   scripts/image-test.sh                    build, run, test, report image size and build time
#   scripts/image-test.sh --probe-privileges also start the image under a range of weaker and
#                                            stronger flag sets and report, for each, whether the
#                                            sandbox works (the evidence behind deploy/README.md;
#                                            scripts/lib/privilege-matrix.sh)
#
# Environment: IMAGE (default pyexec), NO_CACHE=1 (rebuild every layer), BASE_CACHE (directory
# of the cached debootstrap base, default /var/cache/pyexec-image; scripts/lib/debian-base.sh),
# PYEXEC_RUN_FLAGS (replace deploy/run-flags, to try another set).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
# shellcheck source=scripts/lib/container.sh
. scripts/lib/container.sh
# shellcheck source=scripts/lib/debian-base.sh
. scripts/lib/debian-base.sh
# shellcheck source=scripts/lib/privilege-matrix.sh
. scripts/lib/privilege-matrix.sh

image=${IMAGE:-pyexec}
base=debian:bookworm-slim
base_cache=${BASE_CACHE:-/var/cache/pyexec-image}
container=pyexec-image-test-$$

say() { echo "image-test: $*" >&2; }

probe=false
for arg in "$@"; do
        case "$arg" in
        --probe-privileges) probe=true ;;
        *) say "unknown argument $arg"; exit 2 ;;
        esac
done

[ "$(id -u)" = 0 ] || { say "run as root (podman is used rootful)"; exit 1; }

# The least privilege the sandbox needs: deploy/run-flags says why each flag is there,
# deploy/README.md what fails without it; --probe-privileges shows it on this machine.
mapfile -t least_flags < <(read_run_flags deploy/run-flags)
[ ${#least_flags[@]} -gt 0 ] || { say "no flags in deploy/run-flags"; exit 1; }
# --runtime runc and the two --ulimit are for this machine (crun fails on its hybrid cgroups;
# root here lacks CAP_SYS_RESOURCE, so podman's default nofile limit cannot be set).
host_flags=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
if [ -n "${PYEXEC_RUN_FLAGS:-}" ]; then
        # shellcheck disable=SC2206 # (words of the variable, as on a command line)
        run_flags=("${host_flags[@]}" $PYEXEC_RUN_FLAGS)
else
        run_flags=("${host_flags[@]}" "${least_flags[@]}")
fi

# install_tools: podman and what it runs with, debootstrap for the base, the test clients.
install_tools() {
        ensure_packages podman runc python3-yaml netavark aardvark-dns iptables uidmap slirp4netns \
                fuse-overlayfs catatonit debootstrap curl python3 python3-pytest python3-jsonschema
        # --userns=auto takes the container's uids from the "containers" entries of /etc/subuid
        # and /etc/subgid; give them a range far from any login user's.
        local f
        for f in /etc/subuid /etc/subgid; do
                [ -e "$f" ] || touch "$f"
                grep -q '^containers:' "$f" || echo "containers:2147483647:2147483648" >> "$f"
        done
}

now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.1f}')"; } # seconds since $1 (a now), to 0.1 s
mib() { python3 -c "print(f'{$1 / 1048576:.1f} MiB')"; }

# build_image: podman build, timed (build_s).
build_image() {
        local args=(--pull=never --format docker -t "$image") t0
        [ "${NO_CACHE:-0}" = 1 ] && args+=(--no-cache)
        say "podman build ${args[*]} ."
        t0=$(now)
        podman build "${args[@]}" . >&2
        build_s=$(since "$t0")
}

# test_container: start $container with run_flags; fails at once when the sandbox or /health is
# not ok, else sets rc to 1 when a check or a test against it fails. Sets url.
test_container() {
        say "podman run ${run_flags[*]} $image"
        start "$container" "${run_flags[@]}"
        url="http://127.0.0.1:$port"
        local v code
        v=$(verdict "$container")
        code=$(health "$port")
        if [ "$v" != ok ] || [ "$code" != 200 ]; then
                podman logs "$container" 2>&1 | tail -n 30 >&2
                say "FAILED: sandbox $v, /health answered $code"
                exit 1
        fi
        say "container $container healthy on $url (sandbox=ok)"

        # The image's own HEALTHCHECK (kept by --format docker) must be there and pass.
        case "$(podman image inspect --format '{{json .Config.Healthcheck}}' "$image")" in
        */health*) ;;
        *) say "FAILED: the image has no HEALTHCHECK on /health"; exit 1 ;;
        esac
        podman healthcheck run "$container" >/dev/null 2>&1 || { say "FAILED: the image's HEALTHCHECK fails"; exit 1; }

        PYEXEC_URL=$url /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_e2e_seeds.py || rc=$?
        if PYEXEC_URL=$url /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/container/test_image_smoke.py; then
                say "library smoke test passed (numpy, pandas, scipy, sklearn, matplotlib, seaborn, requests)"
        else
                say "FAILED: the library smoke test"
                rc=1
        fi
}

# stop_container: SIGTERM must stop everything, promptly and cleanly (stop_s).
stop_container() {
        local t0 exit_code
        t0=$(now)
        podman stop -t 20 "$container" >/dev/null 2>&1
        stop_s=$(since "$t0")
        exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
        if [ "$exit_code" != 0 ]; then
                say "FAILED: the container exited with $exit_code after SIGTERM (took ${stop_s}s)"
                rc=1
        fi
}

# kube_test: the Kubernetes manifest itself, run with podman kube play (its own report and
# clean-up); sets kube_rc.
kube_test() {
        local t0 kube_s
        t0=$(now)
        kube_rc=0
        IMAGE=$image scripts/kube-test.sh || kube_rc=$?
        kube_s=$(since "$t0")
        if [ $kube_rc = 0 ]; then say "kube play test PASSED (${kube_s}s)"; else say "kube play test FAILED (${kube_s}s)"; rc=1; fi
}

passed() { if [ "$1" = 0 ]; then echo passed; else echo FAILED; fi; }

install_tools
ensure_base "$base" "$base_cache"
build_image

tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT
$probe && probe_privileges

rc=0
test_container
stop_container
container_rc=$rc
say "image $image: $(mib "$(podman image inspect --format '{{.Size}}' "$image")") (base $base:" \
        "$(mib "$(podman image inspect --format '{{.Size}}' "$base")")); build took ${build_s}s; stop took ${stop_s}s"
say "run flags: ${run_flags[*]}"
say "container test $(passed $container_rc | tr '[:lower:]' '[:upper:]')"

kube_test
say "build ${build_s}s; container test: $(passed $container_rc); kube play test: $(passed $kube_rc)"
say "$(passed $rc | tr '[:lower:]' '[:upper:]')"
exit $rc

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
#                                            sandbox works (the evidence behind deploy/README.md)
#
# Environment: IMAGE (default pyexec), NO_CACHE=1 (rebuild every layer), BASE_CACHE (directory
# of the cached debootstrap base, default /var/cache/pyexec-image), PYEXEC_RUN_FLAGS (replace
# the run flags below, to try another set).
#
# debian:bookworm-slim is used as it is when podman has it (pulled or loaded); otherwise, with no
# registry reachable, an equivalent base is made with debootstrap from this machine's Debian
# mirror, cached as a tarball and imported under that name.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
image=${IMAGE:-pyexec}
base=debian:bookworm-slim
base_cache=${BASE_CACHE:-/var/cache/pyexec-image}
container=pyexec-image-test-$$

# The least privilege the sandbox needs: deploy/run-flags says why each flag is there,
# deploy/README.md what fails without it; --probe-privileges shows it on this machine.
# A path into the checkout (=deploy/...) is made absolute, as podman reads it from its own
# working directory.
read_run_flags() {
        sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v -e '^#' -e '^$' |
                sed "s|=deploy/|=$top/deploy/|"
}
mapfile -t least_flags < <(read_run_flags deploy/run-flags)
[ ${#least_flags[@]} -gt 0 ] || { echo "image-test: no flags in deploy/run-flags" >&2; exit 1; }
# --runtime runc and the two --ulimit are for this machine (crun fails on its hybrid cgroups;
# root here lacks CAP_SYS_RESOURCE, so podman's default nofile limit cannot be set).
host_flags=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
if [ -n "${PYEXEC_RUN_FLAGS:-}" ]; then
        # shellcheck disable=SC2206
        run_flags=("${host_flags[@]}" $PYEXEC_RUN_FLAGS)
else
        run_flags=("${host_flags[@]}" "${least_flags[@]}")
fi

probe=false
for arg in "$@"; do
        case "$arg" in
        --probe-privileges) probe=true ;;
        *) echo "image-test: unknown argument $arg" >&2; exit 2 ;;
        esac
done

say() { echo "image-test: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "run as root (podman is used rootful)"; exit 1; }

# ---- tools ---------------------------------------------------------------------------------
ensure_packages podman runc python3-yaml netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs \
        catatonit debootstrap curl python3 python3-pytest

# --userns=auto takes the container's uids from the "containers" entries of /etc/subuid and
# /etc/subgid; give them a range far from any login user's.
for f in /etc/subuid /etc/subgid; do
        [ -e "$f" ] || touch "$f"
        grep -q '^containers:' "$f" || echo "containers:2147483647:2147483648" >> "$f"
done

# ---- the base image ------------------------------------------------------------------------

# The first Debian mirror apt uses for bookworm (or bookworm-security with $1 = security), from
# sources.list, *.list or deb822 *.sources.
apt_mirror() {
        SUITE=bookworm${1:+-$1} python3 - <<'EOF'
import glob, os, re
suite = os.environ["SUITE"]
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
      + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
for path in files:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith(("#", " ", "\t")) or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and suite in fields.get("suites", []) \
                    and fields.get("enabled", ["yes"])[0] != "no" and fields.get("uris"):
                print(fields["uris"][0])
                raise SystemExit(0)
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                print(words[1])
                raise SystemExit(0)
raise SystemExit(1)
EOF
}

make_base() {
        local tarball="$base_cache/debian-bookworm-slim.tar"
        if [ ! -s "$tarball" ]; then
                local mirror security dir
                mirror=$(apt_mirror) || { say "no bookworm mirror in /etc/apt/sources.list*"; exit 1; }
                security=$(apt_mirror security || true)
                dir=$(mktemp -d /var/tmp/pyexec-base.XXXXXX)
                say "no $base in podman: debootstrap --variant=minbase bookworm from $mirror"
                debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
                        { tail -n 30 "$dir.log" >&2; say "debootstrap failed (log: $dir.log)"; exit 1; }
                # What makes the official image "slim": no documentation, manual pages or
                # translations, now or for packages installed later; no apt caches.
                cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
                cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
                {
                        echo "deb $mirror bookworm main"
                        echo "deb $mirror bookworm-updates main"
                        [ -n "$security" ] && echo "deb $security bookworm-security main"
                } > "$dir/etc/apt/sources.list"
                find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
                find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
                rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/groff/* \
                       "$dir"/usr/share/lintian/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
                       "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log "$dir"/var/log/apt/*
                find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
                : > "$dir/etc/resolv.conf"
                rm -f "$dir/etc/hostname"
                mkdir -p "$base_cache"
                tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
                mv "$tarball.tmp" "$tarball"
                rm -rf "$dir" "$dir.log"
        fi
        say "importing $tarball as $base"
        podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'CMD ["bash"]' "$tarball" "$base" >/dev/null
}

podman image exists "$base" || make_base

# ---- build ---------------------------------------------------------------------------------
build_args=(--pull=never --format docker -t "$image")
[ "${NO_CACHE:-0}" = 1 ] && build_args+=(--no-cache)
say "podman build ${build_args[*]} ."
t0=$(date +%s.%N)
podman build "${build_args[@]}" . >&2
t1=$(date +%s.%N)
build_s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
size=$(podman image inspect --format '{{.Size}}' "$image")
base_size=$(podman image inspect --format '{{.Size}}' "$base")
mib() { python3 -c "print(f'{$1 / 1048576:.1f} MiB')"; }

# ---- run -----------------------------------------------------------------------------------
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

tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT

if $probe; then
        # Each row: the least flags with one of them taken away or changed, then wider sets. For
        # each, the worker's start-up verdict, /health, and whether the container's root could
        # write the kernel's global sysctls (/proc/sys/kernel/core_pattern; the reason for
        # --userns).
        flags=()
        variant() { # OLD NEW: least_flags with the word OLD replaced by NEW (dropped if empty)
                local f
                flags=()
                for f in "${least_flags[@]}"; do
                        if [ "$f" = "$1" ]; then
                                [ -n "$2" ] && flags+=("$2")
                        else
                                flags+=("$f")
                        fi
                done
        }
        probe_row() { # LABEL: start the image with "${flags[@]}" and report
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
        nrow=0
        profile="--security-opt=seccomp=$top/deploy/seccomp-pyexec.json"
        unmask="--security-opt=unmask=/proc/*"
        printf '%-48s %-6s %-8s %s\n' "flags (host flags + ...)" health sysctl sandbox >&2
        variant x x; probe_row "least (${least_flags[*]})"
        variant "$unmask" ""; probe_row "least without unmask"
        variant "$unmask" "--security-opt=unmask=/proc/acpi:/proc/kcore:/proc/keys:/proc/latency_stats:/proc/timer_list:/proc/timer_stats:/proc/sched_debug:/proc/scsi"
        probe_row "least, unmask only the masked /proc paths"
        variant "$profile" ""; probe_row "least, podman's default seccomp profile"
        variant "$profile" "--security-opt=seccomp=unconfined"; probe_row "least, seccomp=unconfined"
        variant --cap-add=CHOWN,SETUID,SETGID --cap-add=CHOWN; probe_row "least without SETUID,SETGID"
        variant --cap-add=CHOWN,SETUID,SETGID --cap-add=SETUID,SETGID; probe_row "least without CHOWN"
        variant --security-opt=no-new-privileges ""; probe_row "least without no-new-privileges"
        variant --userns=auto:size=65536 ""; probe_row "least without --userns (root is host root)"
        flags=(--userns=auto:size=65536); probe_row "podman defaults (+ --userns)"
        flags=(--userns=auto:size=65536 --cap-add=SYS_ADMIN); probe_row "podman defaults + SYS_ADMIN"
        flags=(--userns=auto:size=65536 --security-opt=unmask=ALL --security-opt=seccomp=unconfined); probe_row "unmask=ALL + seccomp=unconfined"
        flags=(--userns=auto:size=65536 --privileged); probe_row "--privileged (+ --userns)"
        flags=(--privileged); probe_row "--privileged"
fi

say "podman run ${run_flags[*]} $image"
start "$container" "${run_flags[@]}"
url="http://127.0.0.1:$port"
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

rc=0
PYEXEC_URL=$url /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_e2e_seeds.py || rc=$?

# Every library the README promises, used for real inside the sandbox (tests/container/).
if PYEXEC_URL=$url /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/container/test_image_smoke.py; then
        say "library smoke test passed (numpy, pandas, scipy, sklearn, matplotlib, seaborn, requests)"
else
        say "FAILED: the library smoke test"
        rc=1
fi

# SIGTERM must stop everything, promptly and cleanly.
t0=$(date +%s.%N)
podman stop -t 20 "$container" >/dev/null 2>&1
t1=$(date +%s.%N)
stop_s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
if [ "$exit_code" != 0 ]; then
        say "FAILED: the container exited with $exit_code after SIGTERM (took ${stop_s}s)"
        rc=1
fi

container_rc=$rc
say "image $image: $(mib "$size") (base $base: $(mib "$base_size")); build took ${build_s}s; stop took ${stop_s}s"
say "run flags: ${run_flags[*]}"
if [ $rc = 0 ]; then say "container test PASSED"; else say "container test FAILED"; fi

# The Kubernetes manifest itself, run with podman kube play (its own report and clean-up).
t0=$(date +%s.%N)
kube_rc=0
IMAGE=$image scripts/kube-test.sh || kube_rc=$?
t1=$(date +%s.%N)
kube_s=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
if [ $kube_rc = 0 ]; then say "kube play test PASSED (${kube_s}s)"; else say "kube play test FAILED (${kube_s}s)"; rc=1; fi

say "build ${build_s}s; container test: $([ $container_rc = 0 ] && echo passed || echo FAILED); kube play test: $([ $kube_rc = 0 ] && echo passed || echo FAILED)"
if [ $rc = 0 ]; then say "PASSED"; else say "FAILED"; fi
exit $rc

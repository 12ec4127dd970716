#!/bin/bash
# image-test.sh — build the pyexec container image with podman and run the end-to-end seed tests
# against a container started with the least-privilege flags of deploy/README.md
# (`make image-test`; not part of `make test`). Runs as root on Debian 12 and installs what it
# needs from Debian (podman, runc, debootstrap, ...).
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
image=${IMAGE:-pyexec}
base=debian:bookworm-slim
base_cache=${BASE_CACHE:-/var/cache/pyexec-image}
container=pyexec-image-test-$$

# The least privilege the sandbox needs in a rootful podman/docker container (deploy/README.md
# says why each one is needed and what was tried without it):
#   --cap-drop=all --cap-add=...   only the capabilities nginx, spawn-fcgi and the worker use;
#                                  SETUID/SETGID also let the worker write the two-line uid_map
#   seccomp=unconfined             the default profiles refuse clone(CLONE_NEWUSER|...), mount,
#                                  umount2 and pivot_root without CAP_SYS_ADMIN
#   unmask=/proc/*                 the kernel mounts a new procfs in a user namespace only when
#                                  the container's /proc is fully visible (nothing masked or
#                                  mounted over it); /sys stays masked
#   --userns=auto                  container root is not host root: it cannot use the now
#                                  writable /proc/sys, and the sandbox's uids are ordinary
#                                  unprivileged uids of the container's own range
#   --read-only                    the service writes only to /run/pyexec (a tmpfs)
default_run_flags=(
        --runtime runc
        --cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,KILL
        --security-opt seccomp=unconfined
        --security-opt unmask=/proc/*
        --userns=auto:size=165536
        --read-only
        --ulimit nofile=20000:20000 --ulimit nproc=32768:32768
)
if [ -n "${PYEXEC_RUN_FLAGS:-}" ]; then
        # shellcheck disable=SC2206
        run_flags=(--runtime runc $PYEXEC_RUN_FLAGS)
else
        run_flags=("${default_run_flags[@]}")
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
packages="podman runc netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs catatonit debootstrap
curl python3 python3-pytest"
missing=""
for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
        say "installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        if [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ]; then
                apt-get update -q
        fi
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing ||
                { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }
fi

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
        for c in "${started[@]}"; do podman rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# Starts the image as container $1 with the flags after it, publishing 8080 on a free loopback
# port (printed). Returns once the worker has logged its start-up line.
start() {
        local name=$1 port
        shift
        port=$(free_port)
        started+=("$name")
        podman run -d --name "$name" -p "127.0.0.1:$port:8080" "$@" "$image" >/dev/null
        for _ in $(seq 300); do
                podman logs "$name" 2>&1 | grep -q 'event=start ' && break
                [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
                sleep 0.2
        done
        echo "$port"
}

# The worker's verdict on the sandbox: "ok", the reason it is unavailable, or what went wrong.
verdict() {
        local line
        line=$(podman logs "$1" 2>&1 | grep -m1 'event=start ' || true)
        case "$line" in
        *sandbox=ok*) echo ok ;;
        *sandbox=UNAVAILABLE*) echo "UNAVAILABLE: $(sed -n 's/.*reason="\([^"]*\)".*/\1/p' <<<"$line")" ;;
        *) echo "no start-up line; container: $(podman inspect --format '{{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}' "$1" 2>/dev/null) $(podman logs "$1" 2>&1 | tail -n 2 | tr '\n' ' ')" ;;
        esac
}

if $probe; then
        # Each set is the default podman profile plus the flags shown. "least" is the set above.
        base_flags="--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
        sets=(
                ""
                "--security-opt seccomp=unconfined"
                "--security-opt unmask=ALL"
                "--security-opt unmask=/proc/*"
                "--security-opt seccomp=unconfined --security-opt unmask=/proc/*"
                "--cap-add SYS_ADMIN"
                "--cap-add SYS_ADMIN --security-opt unmask=/proc/*"
                "--cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,KILL --security-opt seccomp=unconfined --security-opt unmask=/proc/*"
                "--cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,KILL --security-opt seccomp=unconfined --security-opt unmask=/proc/*"
                "--cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,KILL --security-opt seccomp=unconfined --security-opt unmask=/proc/* --userns=auto:size=165536 --read-only"
                "--cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,KILL --security-opt seccomp=unconfined --security-opt unmask=/proc/* --userns=auto:size=65536 --read-only"
                "--security-opt systempaths=unconfined --security-opt seccomp=unconfined"
                "--privileged"
        )
        i=0
        for s in "${sets[@]}"; do
                i=$((i + 1))
                # shellcheck disable=SC2086
                port=$(start "$container-probe$i" $base_flags $s)
                health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
                printf '%-14s /health=%s  flags: %s\n' "$(verdict "$container-probe$i" | cut -c1-200)" "$health" "${s:-(podman defaults)}"
                podman rm -f -t 5 "$container-probe$i" >/dev/null 2>&1 || true
        done
fi

say "podman run ${run_flags[*]} $image"
port=$(start "$container" "${run_flags[@]}")
url="http://127.0.0.1:$port"
v=$(verdict "$container")
code=000
for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url/health" || true)
        [ "$code" = 000 ] || break
        sleep 0.2
done
if [ "$v" != ok ] || [ "$code" != 200 ]; then
        podman logs "$container" 2>&1 | tail -n 30 >&2
        say "FAILED: sandbox $v, /health answered $code"
        exit 1
fi
say "container $container healthy on $url (sandbox=ok)"

# The image's own HEALTHCHECK (kept by --format docker) must pass too.
health_cmd=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$image" 2>/dev/null || true)
case "$health_cmd" in
*/health*) ;;
*) say "FAILED: the image has no HEALTHCHECK on /health ($health_cmd)"; exit 1 ;;
esac
if ! podman healthcheck run "$container" >/dev/null 2>&1; then
        # podman runs the check with `podman exec`; confirm it by hand if that is unavailable.
        podman exec "$container" curl -fsS -o /dev/null http://127.0.0.1:8080/health ||
                { say "FAILED: the HEALTHCHECK command fails inside the container"; exit 1; }
fi

rc=0
PYEXEC_URL=$url /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_e2e_seeds.py || rc=$?

say "image $image: $(mib "$size") (base $base: $(mib "$base_size")); build took ${build_s}s"
say "run flags: ${run_flags[*]}"
[ $rc = 0 ] && say "PASSED" || { podman logs "$container" 2>&1 | tail -n 30 >&2; say "FAILED: pytest exited $rc"; }
exit $rc

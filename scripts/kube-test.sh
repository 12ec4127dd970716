#!/bin/bash
# kube-test.sh — run deploy/deployment.yaml with `podman kube play`, wait for /health, check the
# pod runs the sandbox as the manifest intends, run the seed examples against it, then
# `podman kube down`. Called by scripts/image-test.sh after its container test (root, podman 4.3).
#
# The manifest stays the source: a copy is made at run time with only the changes podman needs,
# each printed with its reason ("kube-test: deviation: ..."). Environment: IMAGE (default pyexec).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
image=localhost/${IMAGE:-pyexec}:latest
say() { echo "kube-test: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }

tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman network exists podman-default-kube-network && kube_net_existed=true || kube_net_existed=false
# Host settings, as image-test.sh's host_flags: root here lacks CAP_SYS_RESOURCE (podman's
# default nofile limit cannot be set) and crun fails on the hybrid cgroups: runc, through the
# wrapper that applies procMount: Unmasked when the manifest asks for it.
cat > "$tmp/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
CONF
export CONTAINERS_CONF=$tmp/containers.conf
runtime=runc
/usr/bin/python3 - deploy/deployment.yaml <<'PY' && runtime=$top/scripts/runc-unmasked-proc.sh
import sys, yaml
cs = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"]
sys.exit(0 if all(c.get("securityContext", {}).get("procMount") == "Unmasked" for c in cs) else 1)
PY
pm() { podman --runtime "$runtime" "$@"; }

# ---- the podman copy of the manifest ------------------------------------------------------
/usr/bin/python3 - deploy/deployment.yaml "$tmp/kube.yaml" "$image" "$port" "$$" <<'PY'
import sys, yaml
src, dst, image, port, tag = sys.argv[1:]
doc = yaml.safe_load(open(src))
def dev(what, why):
    print(f"kube-test: deviation: {what}: {why}", file=sys.stderr)
dev(f"replicas {doc['spec']['replicas']} -> 1", "podman 4.3 makes one pod per replica, each publishing the same host port")
doc["spec"]["replicas"] = 1
meta = doc["spec"]["template"]["metadata"]
notes = meta.setdefault("annotations", {})
for c in doc["spec"]["template"]["spec"]["containers"]:
    dev(f"image {c['image']} -> {image}", "the image image-test.sh built; nothing is pulled")
    c["image"] = image
    for p in c.get("ports", []):
        p["hostPort"], p["hostIP"] = int(port), "127.0.0.1"
        dev(f"port {p['containerPort']}: hostPort {port}, hostIP 127.0.0.1",
            "podman 4.3 publishes every containerPort on 0.0.0.0 at the same number; a free loopback port instead")
    sc = c.get("securityContext", {})
    seccomp = sc.get("seccompProfile", {}).get("type")
    if seccomp == "Unconfined":
        notes[f"container.seccomp.security.alpha.kubernetes.io/{c['name']}"] = "unconfined"
        dev("seccompProfile Unconfined -> annotation container.seccomp.security.alpha.kubernetes.io",
            "podman 4.3 ignores securityContext.seccompProfile and reads only the old annotation")
    if sc.get("procMount") == "Unmasked":
        dev("procMount Unmasked -> podman --runtime scripts/runc-unmasked-proc.sh",
            "podman 4.3 ignores procMount and has no unmask for kube play; the runc wrapper empties "
            "maskedPaths and readonlyPaths as CRI runtimes do")
for v in doc["spec"]["template"]["spec"].get("volumes", []):
    if "emptyDir" in v:
        dev(f"emptyDir {v['name']} -> {v['name']}-kube-test-{tag}",
            "podman 4.3 makes a named volume of the same name: a unique one, removed afterwards")
        for c in doc["spec"]["template"]["spec"]["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] == v["name"]:
                    m["name"] = f"{v['name']}-kube-test-{tag}"
        v["name"] = f"{v['name']}-kube-test-{tag}"
print("kube-test: deviation: podman kube play --userns=auto:size=65536 (hostUsers: false): "
      "podman's auto user namespace has 1024 ids by default, Kubernetes gives 65536", file=sys.stderr)
yaml.safe_dump(doc, open(dst, "w"), sort_keys=False)
PY

pod=$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$tmp/kube.yaml")-pod-0
ctr=$pod-$(/usr/bin/python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]["name"])' "$tmp/kube.yaml")
cleanup() {
        pm kube down "$tmp/kube.yaml" >/dev/null 2>&1 || true
        podman pod exists "$pod" && podman pod rm -f "$pod" >/dev/null 2>&1
        local v
        for v in $(podman volume ls -q --filter "name=-kube-test-$$\$"); do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
        $kube_net_existed || podman network rm podman-default-kube-network >/dev/null 2>&1 || true
        rm -rf "$tmp"
}
trap cleanup EXIT
podman pod exists "$pod" && { say "pod $pod exists already (not ours): not touching it"; trap - EXIT; rm -rf "$tmp"; exit 1; }

# ---- play ------------------------------------------------------------------------------------
say "podman kube play --userns=auto:size=65536 (deploy/deployment.yaml + deviations above)"
t0=$SECONDS
pm kube play --userns=auto:size=65536 "$tmp/kube.yaml" >"$tmp/play.out" 2>&1 ||
        { cat "$tmp/play.out" >&2; say "FAILED: podman kube play"; exit 1; }
url=http://127.0.0.1:$port
code=000
while [ $((SECONDS - t0)) -lt 120 ]; do
        code=$(curl -s -m 2 -o "$tmp/health.json" -w '%{http_code}' "$url/health" || true)
        [ "$code" = 200 ] && break
        podman logs "$ctr" 2>&1 | grep -q 'event=start .*sandbox=UNAVAILABLE' && break
        sleep 0.5
done
ready_s=$((SECONDS - t0))
start_line=$(podman logs "$ctr" 2>&1 | grep -m1 'event=start ' || true)
if [ "$code" != 200 ] || [[ "$start_line" != *sandbox=ok* ]]; then
        podman logs "$ctr" 2>&1 | tail -n 20 >&2
        say "FAILED: /health answered $code after ${ready_s}s; start-up line: ${start_line:-none}"
        exit 1
fi
say "pod $pod healthy on $url after ${ready_s}s (sandbox=ok)"

# ---- does it run as the manifest says? ----------------------------------------------------
rc=0
check() { if eval "$2"; then say "ok: $1"; else say "FAILED: $1"; rc=1; fi; }
pid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
read -r _ host_uid size < "/proc/$pid/uid_map"
check "own user namespace: container root is host uid $host_uid, $size ids (hostUsers: false)" \
        '[ "$host_uid" != 0 ] && [ "$size" = 65536 ]'
# The container's processes: those in its user namespace. The warm sandboxes sit in user
# namespaces of their own below it, where the kernel gives them every capability (over that
# namespace only); they are counted apart.
pidns=$(readlink "/proc/$pid/ns/pid")
userns=$(readlink "/proc/$pid/ns/user")
caps='' nested=0
for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$pidns" ] || continue
        if [ "$(readlink "$p/ns/user" 2>/dev/null)" = "$userns" ]; then
                caps+=$(awk '/^Cap(Eff|Bnd):/ {printf "%s%s ", $1, $2} END {print ""}' "$p/status" 2>/dev/null || true)$'\n'
        else
                nested=$((nested + 1))
        fi
done
caps=$(sort <<<"$caps" | grep . | uniq -c)
say "capabilities of the container's processes (count, sets): $(tr '\n' ' ' <<<"$caps"); $nested more in sandboxes' user namespaces"
# 0xc1 = CHOWN (0), SETGID (6), SETUID (7): drop ALL, add CHOWN, SETUID, SETGID.
check "every process's bounding set is CHOWN,SETGID,SETUID and no effective set exceeds it" \
        '[ -n "$caps" ] && ! grep -v "CapEff:00000000000000\(c1\|00\) CapBnd:00000000000000c1 *$" <<<"$caps" | grep -q .'
check "/proc unmasked (procMount: Unmasked)" '! grep -q " /proc/[a-z_]" "/proc/$pid/mountinfo"'
check "read-only root (readOnlyRootFilesystem)" 'grep -q " / / ro," "/proc/$pid/mountinfo"'
check "no-new-privileges (allowPrivilegeEscalation: false)" 'grep -q "^NoNewPrivs:[[:space:]]*1" "/proc/$pid/status"'
check "memory limit 3Gi" '[ "$(podman inspect --format "{{.HostConfig.Memory}}" "$ctr")" = 3221225472 ]'
uid=$(curl -s -m 30 "$url/execute" -H 'Content-Type: application/json' \
        -d '{"script": "import os\ndef main():\n    return os.getuid()"}' || true)
check "a script runs as uid 1000 in its sandbox ($uid)" '[[ "$uid" == *'"'"'"result": 1000'"'"'* ]]'

PYEXEC_URL=$url /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_e2e_seeds.py || rc=$?

t1=$SECONDS
# A removal can race the last sandbox's mount namespace going away: retry once.
pm kube down "$tmp/kube.yaml" >/dev/null 2>&1 || { sleep 1; pm kube down "$tmp/kube.yaml" >"$tmp/down.out" 2>&1; } ||
        { tail -n 3 "$tmp/down.out" >&2; say "FAILED: podman kube down"; rc=1; }
down_s=$((SECONDS - t1))
podman pod exists "$pod" && { say "FAILED: pod $pod still there after kube down"; rc=1; }
say "ready after ${ready_s}s; kube down took ${down_s}s"
if [ $rc = 0 ]; then say "PASSED"; else say "FAILED"; fi
exit $rc

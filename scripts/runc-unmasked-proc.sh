#!/bin/sh
# runc-unmasked-proc.sh — runc, with Kubernetes' `procMount: Unmasked` applied the way the CRI
# runtimes apply it: the container's OCI config gets empty maskedPaths and readonlyPaths.
# podman 4.3's `kube play` parses procMount but ignores it, and it has no flag or annotation
# for unmask (and passes neither pod nor --annotation annotations on to the container, so there
# is no per-container marker); scripts/kube-test.sh passes this file as podman's --runtime only
# when every container of the manifest asks for Unmasked. The pod's containers are changed (not
# its infra container); everything else is passed to runc untouched.
set -eu
# conmon runs `runc [global options] create --bundle DIR ... ID`.
create=false
bundle=
prev=
for arg in "$@"; do
        case "$arg" in create) create=true ;; --bundle=*) bundle=${arg#--bundle=} ;; esac
        case "$prev" in --bundle | -b) bundle=$arg ;; esac
        prev=$arg
done
if $create && [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
        /usr/bin/python3 - "$bundle/config.json" <<'PY'
import json, os, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
notes = spec.get("annotations", {})
if notes.get("io.kubernetes.cri-o.ContainerType") == "container":
    spec["linux"]["maskedPaths"] = []
    spec["linux"]["readonlyPaths"] = []
    with open(path + ".tmp", "w") as f:
        json.dump(spec, f)
    os.rename(path + ".tmp", path)
PY
fi
exec /usr/sbin/runc "$@"

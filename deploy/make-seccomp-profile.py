#!/usr/bin/python3
"""Writes deploy/seccomp-pyexec.json: the container runtime's default seccomp profile plus the
one system call pyexec's sandbox needs beyond it, in the portable OCI runtime-spec form.

Source: /usr/share/containers/seccomp.json, the default profile of podman and CRI-O (Debian
package golang-github-containers-common). It already allows clone/clone3/unshare with namespace
flags, mount, umount2 and pivot_root (for nested containers); of what the sandbox does, it
refuses only sethostname without CAP_SYS_ADMIN, which the sandbox calls for its own UTS
namespace. So the only change is: sethostname is allowed.

The source format has capability- and architecture-dependent rules ("includes"/"excludes") and
an "archMap", which podman and Docker understand but containerd does not (it reads a Localhost
profile as a plain OCI LinuxSeccomp). They are resolved here for the container pyexec runs as
(capabilities CHOWN, SETUID, SETGID only; x86-64 or arm64), which gives a profile every runtime
reads the same way: Docker, podman, containerd and CRI-O.

    python3 deploy/make-seccomp-profile.py [SOURCE] > deploy/seccomp-pyexec.json
"""
import json
import sys

SOURCE = "/usr/share/containers/seccomp.json"
# The container's capabilities (deploy/README.md). Rules for other capabilities resolve to "not
# held": their ALLOW rules go, their ERRNO rules stay.
CAPS = {"CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"}
# Architectures kept: x86-64 (with its 32-bit sub-architectures) and arm64.
ARCHES = {"amd64", "x86", "x32", "arm64", "arm"}
ARCH_NAMES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
EXTRA_ALLOW = ["sethostname"]


def applies(rule):
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= CAPS:
        return False
    if exc.get("caps") and set(exc["caps"]) & CAPS:
        return False
    if inc.get("arches") and not set(inc["arches"]) & ARCHES:
        return False
    if exc.get("arches") and set(exc["arches"]) >= ARCHES:
        return False
    return True


def main():
    src = json.load(open(sys.argv[1] if len(sys.argv) > 1 else SOURCE))
    rules = []
    for r in src["syscalls"]:
        if not applies(r):
            continue
        out = {"names": list(r["names"]), "action": r["action"]}
        if r.get("args"):
            out["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op")} for a in r["args"]]
        if r.get("errnoRet") is not None:
            out["errnoRet"] = r["errnoRet"]
        rules.append(out)

    # A name allowed unconditionally must not also have a conditionless rule with another action
    # (libseccomp refuses the pair); the extra names join the unconditional allow list.
    plain_allow = next(r for r in rules if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r)
    plain_allow["names"] = sorted(set(plain_allow["names"]) | set(EXTRA_ALLOW))
    allowed = set(plain_allow["names"])
    for r in rules:
        if r is not plain_allow and "args" not in r:
            r["names"] = [n for n in r["names"] if n not in allowed or r["action"] == "SCMP_ACT_ALLOW"]
    rules = [r for r in rules if r["names"]]

    profile = {
        "defaultAction": src["defaultAction"],
        "defaultErrnoRet": src["defaultErrnoRet"],
        "architectures": ARCH_NAMES,
        "syscalls": rules,
    }
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""tests/test_cgroup2.py on a real cgroup v2 kernel: Debian's, booted under qemu by
tests/vm/run-in-vm.sh (this machine's own cgroups are v1, and are not ours to change).

What `make test-cgroup2` runs, so that `make test` covers it too. The first run installs
qemu-system-x86 and busybox-static and caches the kernel (tests/vm/prepare.sh).
"""
import os
import re
import subprocess

import pytest

from helpers import ROOT

IN_VM_TIMEOUT = 900  # seconds; the VM emulates its CPUs (TCG), and this machine may be busy


@pytest.mark.parametrize("placement", ["root", "delegated"])
def test_cgroup2_suite_passes_in_a_vm(placement):
    """In the root cgroup (a host's root, a container's own cgroup namespace), and in a leaf of
    its own as systemd's Delegate=yes leaves a service (the pool then moves its processes into
    <leaf>/pool to hand memory and pids to <leaf>/pyexec)."""
    where = ["--cgroup", "system.slice/pyexec.service"] if placement == "delegated" else []
    cmd = [os.path.join(ROOT, "tests", "vm", "run-in-vm.sh"), "--timeout", str(IN_VM_TIMEOUT), *where, "--",
           "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cgroup2.py"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=IN_VM_TIMEOUT + 120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # A suite that skipped itself (no cgroup2 in the VM) would pass without testing anything.
    assert re.search(r"\b\d+ passed\b", proc.stdout), out

"""tests/test_cgroup2.py on a real cgroup v2 kernel: Debian's, booted under qemu by
tests/vm/run-in-vm.sh (this machine's own cgroups are v1, and are not ours to change).

What `make test-cgroup2` runs, so that `make test` covers it too. The first run installs
qemu-system-x86 and busybox-static and caches the kernel (tests/vm/prepare.sh).
"""
import os
import re
import subprocess

from conftest import ROOT

IN_VM_TIMEOUT = 900  # seconds; the VM emulates its CPUs (TCG), and this machine may be busy


def test_cgroup2_suite_passes_in_a_vm():
    cmd = [os.path.join(ROOT, "tests", "vm", "run-in-vm.sh"), "--timeout", str(IN_VM_TIMEOUT), "--",
           "/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cgroup2.py"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=IN_VM_TIMEOUT + 120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # A suite that skipped itself (no cgroup2 in the VM) would pass without testing anything.
    assert re.search(r"\b\d+ passed\b", proc.stdout), out

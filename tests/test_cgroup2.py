"""Per-request cgroups on a real cgroup v2 kernel (issue 11). Runs inside the qemu VM of
tests/vm/run-in-vm.sh (make test-cgroup2; tests/test_vm_cgroup2.py runs it from make test):
the same limits and verdicts as with v1, for all of a request's processes together, and
nothing left behind. Skipped anywhere /sys/fs/cgroup is not cgroup v2."""
import json
import os
import subprocess
import textwrap

import pytest

from helpers import PYEXEC_RUN, suite_config


def cgroup2_mounted():
    with open("/proc/self/mounts") as f:
        return any(line.split()[1:3] == ["/sys/fs/cgroup", "cgroup2"] for line in f)


pytestmark = pytest.mark.skipif(not cgroup2_mounted(), reason="needs a cgroup v2 kernel: make test-cgroup2 boots one")


def run(script, mode="-W", **config):
    # Generous time: the VM emulates its CPUs, where python3 alone takes a second to start.
    conf = suite_config(**dict({"wall_time_s": 120, "cpu_time_s": 60, "memory_mb": 128, "tmp_size_mb": 16,
                                "max_processes": 16}, **config))
    p = subprocess.run([PYEXEC_RUN, "-c", conf, "-v", mode, "-"], input=textwrap.dedent(script).encode(),
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout), p.stderr.decode()


def request_cgroups():
    """Per-request cgroups that exist now (below any .../pyexec)."""
    found = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(dirpath) == "pyexec":
            found += [os.path.join(dirpath, d) for d in dirnames]
    return found


def test_controllers_and_the_default_config():
    """memory, pids and cpu are there, and with the shipped config (require_cgroups = 1) a script
    runs: its cgroups are made in the unified hierarchy."""
    with open("/sys/fs/cgroup/cgroup.controllers") as f:
        assert {"memory", "pids", "cpu"} <= set(f.read().split())
    p = subprocess.run([PYEXEC_RUN, "-W", "-"], input=b"def main():\n    print('hello')\n    return 'world'\n",
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout) == {"result": "world", "stdout": "hello\n"}


@pytest.fixture(params=["-W", "-w"], ids=["cold", "warm"])
def mode(request):
    return request.param


def test_memory_of_several_processes_together(mode):
    """4 processes of 60 MiB each stay under RLIMIT_AS (128 MiB) one by one, not together."""
    body, _ = run('''
        import os, time
        def main():
            for _ in range(4):
                if os.fork() == 0:
                    data = bytearray(60 << 20)
                    for i in range(0, len(data), 4096):
                        data[i] = 1
                    time.sleep(30)
                    os._exit(0)
            time.sleep(30)
    ''', mode)
    assert body.get("error_kind") == "memory_limit", body


def test_pids_limit(mode):
    body, _ = run('''
        import os, time
        def main():
            n = 0
            try:
                while n < 100:
                    if os.fork() == 0:
                        time.sleep(10)
                        os._exit(0)
                    n += 1
            except BlockingIOError:
                return n
    ''', mode)
    assert "result" in body and body["result"] < 16, body


def test_cpu_over_the_limit_across_processes(mode):
    body, log = run('''
        import os, time
        def burn(seconds):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass
        def main():
            for _ in range(3):
                if os.fork() == 0:
                    burn(1.5)
                    os._exit(0)
            burn(1.5)
            while True:
                try:
                    os.wait()
                except ChildProcessError:
                    return "6 s of CPU"
    ''', mode, cpu_time_s=2)
    assert body.get("error_kind") == "timeout" and body["error"] == "Script execution timed out (2 seconds)", body


def test_ok_and_nothing_left_behind(mode):
    before = request_cgroups()
    body, log = run("def main():\n    return open('/proc/self/cgroup').read()\n", mode)
    assert body["result"] == "0::/\n", body  # its own cgroup namespace, rooted at its cgroup
    assert request_cgroups() == before == [], request_cgroups()

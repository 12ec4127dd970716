"""The system call probe: tests/probe/try_syscall.c run inside the sandbox, every blocked
system call with bad pointers (EFAULT = the filter let it pass), in both modes and with the
service's own config.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""

import base64
import os
import subprocess

import pytest

from helpers import BUILD, ROOT, S, run_ok


DEFAULT_CONFIG = os.path.join(ROOT, "config", "pyexec.conf")
PROBE_SRC = os.path.join(ROOT, "tests", "probe", "try_syscall.c")
PROBE_BIN = os.path.join(BUILD, "tests", "try_syscall")


# Every probe of tests/probe/try_syscall.c that must be refused with EPERM or ENOSYS.
BLOCKED = [
    "ptrace", "ptrace_traceme", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "unshare", "unshare_newuser", "unshare_newns", "unshare_newnet", "setns",
    "clone_newuser", "clone_newns", "clone_newpid", "clone_newnet", "clone_newipc", "clone_newuts",
    "clone_newcgroup", "clone_newuser_hibits", "clone3",
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "perf_event_open", "bpf",
    "syslog", "personality", "modify_ldt", "iopl", "ioperm", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl",
    "quotactl_fd", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "lookup_dcookie",
    "fanotify_init", "vhangup", "uselib", "move_pages", "migrate_pages",
    "ioctl_tiocsti", "ioctl_tiocsti_hibits", "ioctl_tioclinux", "ioctl_tiocsctty", "ioctl_tiocsetd",
    "ioctl_random",
]
SOCKETS = ["socket_inet", "socket_inet_hibits", "socket_inet6", "socket_netlink", "socket_packet",
           "socket_vsock", "socket_alg", "socketpair_inet"]
OTHER_ABIS = ["x32_getpid", "x32_ptrace", "x32_mount", "i386_getpid", "i386_ptrace", "i386_mount"]


@pytest.fixture(scope="module")
def probe_bin(tmp_path_factory):
    """build/tests/try_syscall when make built it from the current source, else a fresh build."""
    if os.path.exists(PROBE_BIN) and os.path.getmtime(PROBE_BIN) >= os.path.getmtime(PROBE_SRC):
        return PROBE_BIN
    out = str(tmp_path_factory.mktemp("probe") / "try_syscall")
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", out, PROBE_SRC], check=True)
    return out


def probe_script(binary, names=()):
    with open(binary, "rb") as f:
        blob = base64.b64encode(f.read()).decode()
    return S('''
        import base64, os, subprocess
        BIN = "%s"
        def main():
            path = "/tmp/try_syscall"
            with open(path, "wb") as f:
                f.write(base64.b64decode(BIN))
            os.chmod(path, 0o755)
            p = subprocess.run([path] + %r, capture_output=True, text=True, timeout=60)
            return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
    ''') % (blob, list(names))


def parse_probe(text):
    res = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            res[parts[0]] = (parts[1], parts[2])
    return res


# The filter is installed on different paths in the two modes: probe it in each, and in the
# warm mode with the service's own config (numpy and pandas preloaded into the zygote).
PROBE_RUNS = {"warm": {"mode": "warm"}, "cold": {"mode": "cold"},
              "warm-preloaded": {"mode": "warm", "config": DEFAULT_CONFIG}}


@pytest.fixture(scope="module")
def probe_results(probe_bin):
    """Every probe, run inside the sandbox once per mode: {name: {mode: (RESULT, ERRNO)}}."""
    script = probe_script(probe_bin)
    res = {}
    for run, kw in PROBE_RUNS.items():
        body = run_ok(script, **kw)
        r = body["result"]
        assert r["rc"] == 0, (run, r)
        for name, outcome in parse_probe(r["out"]).items():
            res.setdefault(name, {})[run] = outcome
    return res


def probe_outcomes(results, name):
    got = results.get(name, {})
    return {run: got.get(run, ("missing", "-")) for run in PROBE_RUNS}


@pytest.fixture(scope="module")
def host_i386_outcome(probe_bin):
    """What an int 0x80 call does on this kernel without any filter (SIGSEGV: no IA-32 entry)."""
    p = subprocess.run([probe_bin, "i386_getpid"], capture_output=True, text=True, timeout=30)
    return parse_probe(p.stdout).get("i386_getpid")


class TestSyscallProbe:

    def test_probe_controls_get_through(self, probe_results):
        # The probe itself works: allowed calls run, and a bad pointer is reported as EFAULT.
        for run, (ret, err) in probe_outcomes(probe_results, "ctl_getpid").items():
            assert err == "-" and int(ret) > 0, (run, ret, err)
        for run, got in probe_outcomes(probe_results, "ctl_uname").items():
            assert got == ("-1", "EFAULT"), (run, got)

    def test_probe_knows_every_name(self, probe_bin):
        names = subprocess.run([probe_bin, "-l"], capture_output=True, text=True, check=True).stdout.split()
        assert set(BLOCKED + SOCKETS + OTHER_ABIS) <= set(names)

    @pytest.mark.parametrize("name", BLOCKED)
    def test_blocked(self, probe_results, name):
        # EFAULT/EINVAL/EBADF/success mean the call reached the kernel; killed means the
        # filter kills instead of failing the call.
        got = probe_outcomes(probe_results, name)
        through = {run: o for run, o in got.items() if not (o[0] == "-1" and o[1] in ("EPERM", "ENOSYS"))}
        assert through == {}, "%s got through: %s" % (name, through)

    @pytest.mark.parametrize("name", SOCKETS)
    def test_socket_family_refused(self, probe_results, name):
        got = probe_outcomes(probe_results, name)
        through = {run: o for run, o in got.items()
                   if not (o[0] == "-1" and o[1] in ("EPERM", "ENOSYS", "EAFNOSUPPORT"))}
        assert through == {}, "%s got through: %s" % (name, through)

    @pytest.mark.parametrize("name", OTHER_ABIS)
    def test_other_abi_killed(self, probe_results, host_i386_outcome, name):
        expected = {("killed", "SIGSYS")}
        if name.startswith("i386") and host_i386_outcome == ("killed", "SIGSEGV"):
            expected.add(("killed", "SIGSEGV"))  # the kernel has no IA-32 entry point at all
        got = probe_outcomes(probe_results, name)
        wrong = {run: o for run, o in got.items() if o not in expected}
        assert wrong == {}, "%s not killed: %s" % (name, wrong)
